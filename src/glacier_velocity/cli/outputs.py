"""Output locations checked before any work: a file option must name a file in a writable
directory, a directory option a directory (existing or to be created) that can be written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InvalidParameter


def _writable(directory: Path) -> bool:
    # Try it: permission bits say nothing on a read-only mount, or for root.
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _existing_ancestor(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists():
            return parent
    return Path(".")


def check_output_file(path: str | os.PathLike[str], option: str, example: str) -> Path:
    """Raise unless ``path`` can be written as a file (its directory exists and is writable).

    ``example`` is a file name suggested when ``path`` is a directory.
    """
    path = Path(path)
    name = option.lstrip("-").replace("-", "_")
    if path.is_dir():
        raise InvalidParameter(
            name, f"{str(path)!r} is a directory; give a file name for {option}, e.g. {str(path / example)!r}"
        )
    parent = path.parent
    if not parent.exists():
        raise InvalidParameter(name, f"directory {str(parent)!r} does not exist; create it or choose another {option}")
    if not parent.is_dir():
        raise InvalidParameter(name, f"{str(parent)!r} is a file, not a directory; choose another {option}")
    if not _writable(parent):
        raise InvalidParameter(name, f"directory {str(parent)!r} is not writable; choose another {option}")
    return path


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Raise unless ``path`` is, or can be created as, a writable directory."""
    path = Path(path)
    name = option.lstrip("-").replace("-", "_")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        what = "" if ancestor == path else f" (in {option} {str(path)!r})"
        raise InvalidParameter(name, f"{str(ancestor)!r} is a file, not a directory{what}; choose another {option}")
    if not _writable(ancestor):
        raise InvalidParameter(name, f"directory {str(ancestor)!r} is not writable; choose another {option}")
    return path
