"""Outputs that are never half-written: write to a temporary name, then rename into place."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is hidden (``.name.<random>.part``) and in the same directory, so the
    final :func:`os.replace` is atomic: a file at ``path`` is always complete, an interrupted
    write leaves nothing that looks like a result, and re-running replaces the old file. The
    name is made with :mod:`uuid` rather than :func:`tempfile.mkstemp`, whose 0600 mode would
    make outputs unreadable to other users (e.g. a container reading a CWL output).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_output`)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
