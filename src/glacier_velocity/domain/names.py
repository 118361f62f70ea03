"""File names built from catalogue values (tile codes, item ids): safe characters, bounded length.

A catalogue decides its tile codes and item ids; they become the names of pair directories,
executed notebooks (``correlation_<pair id>.ipynb``), statuses and product files. Linux allows
255 bytes per name, so a 300-character tile code made the Workflow fail with "File name too
long". Every such name is reduced to safe characters here and cut to a bound, with a short hash
of the whole value so that two long values sharing a prefix still get two names.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

#: Longest name :func:`safe_name` gives. The longest file name built around one - a temporary
#: copy of a quicklook, ``.S2_<name>_quicklook.png.<32 hex>.tmp`` - adds 55 characters, and
#: the file system allows 255.
MAX_NAME_CHARS = 100

#: Characters of the hash :func:`shorten` appends to a name it cut.
_HASH_CHARS = 8

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# A tile code in a pair name holds no '_' or '.': '_' separates the tile from the dates.
_UNSAFE_IN_TILE = re.compile(r"[^A-Za-z0-9-]+")

#: Longest tile part of a pair name: MGRS tiles are 5 characters, grid codes of other
#: catalogues a few more; a pair name (tile and two dates) stays under 80 characters.
MAX_TILE_CHARS = 40


def shorten(name: str, limit: int, whole: str | None = None) -> str:
    """``name`` when at most ``limit`` characters, else its start and 8 hex digits of a hash.

    The hash is of ``whole`` (the value the name was made from; default ``name``), so names
    cut from different values differ. The result is at most ``limit`` characters.

    >>> shorten("43SEA", 40)
    '43SEA'
    >>> len(shorten("X" * 300, 40))
    40
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256((name if whole is None else whole).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[: limit - _HASH_CHARS - 1].rstrip('.-_')}-{digest[:_HASH_CHARS]}"


def safe_name(text: str, fallback: str = "unnamed", limit: int = MAX_NAME_CHARS) -> str:
    """``text`` reduced to a safe file name: ``[A-Za-z0-9_.-]`` only, no ``..``, no leading dot.

    Separators (``/``, ``\\``), spaces, control and non-ASCII characters become ``-``; a result
    longer than ``limit`` characters is cut, with a hash of ``text`` (:func:`shorten`);
    ``fallback`` when nothing is left.

    >>> safe_name("../../etc/passwd")
    'etc-passwd'
    >>> safe_name("S2A_43SEA_20200601_0_L2A")
    'S2A_43SEA_20200601_0_L2A'
    """
    cleaned = _UNSAFE.sub("-", str(text))
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip(".-_")
    return shorten(cleaned, limit, str(text)) if cleaned else fallback


def pair_name(tile: str | None, reference: datetime, secondary: datetime) -> str:
    """Name of a pair from its tile and the two acquisition times (UTC), e.g. ``"43SEA_20200601_20200721"``.

    Only ASCII letters, digits, ``-`` and ``_`` appear in it; a tile code longer than
    :data:`MAX_TILE_CHARS` is cut, with a hash of it (:func:`shorten`). Two acquisitions on the
    same UTC day get their times too (``..._20200601T050000_20200601T060000``).

    >>> pair_name("43SEA", datetime(2020, 6, 1, 5, 36, tzinfo=UTC), datetime(2020, 7, 21, 5, 36, tzinfo=UTC))
    '43SEA_20200601_20200721'
    """
    cleaned = _UNSAFE_IN_TILE.sub("-", tile or "scene").strip("-") or "scene"
    ref, sec = reference.astimezone(UTC), secondary.astimezone(UTC)
    fmt = "%Y%m%dT%H%M%S" if ref.date() == sec.date() else "%Y%m%d"
    return f"{shorten(cleaned, MAX_TILE_CHARS, tile)}_{ref.strftime(fmt)}_{sec.strftime(fmt)}"


__all__ = ["MAX_NAME_CHARS", "MAX_TILE_CHARS", "pair_name", "safe_name", "shorten"]
