"""Names of a pair's product files, and the rule that keeps every written path inside its directory.

File names derive from the mission, the tile and the two acquisition dates
(:func:`product_basename`), e.g. ``S2_43SEA_20200601_20200721.tif`` (velocity COG; a Landsat 8/9
pair is ``LC_063018_20160718_20160803.tif``), ``..._quicklook.png`` and ``....json``
(STAC item), all in one directory with relative asset hrefs, so the directory can be moved
or served as it is.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.names import pair_name, safe_name
from ..domain.sensors import SENTINEL_2
from ..errors import InputError, InvalidParameter

if TYPE_CHECKING:
    from ..stac.pairing import Pair

#: Prefix of a product file name given by its parts (the mission: Sentinel-2); a pair's
#: products take their mission's (:attr:`~glacier_velocity.domain.sensors.Sensor.product_prefix`).
MISSION_PREFIX = SENTINEL_2.product_prefix


def path_in(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory / name``, refusing any name that would leave ``directory``.

    Raises
    ------
    InputError
        ``name`` is absolute, holds a path separator or ``..``, or resolves outside
        ``directory`` (e.g. through a symbolic link).
    """
    base = Path(directory)
    if not name or name != safe_name(name, ""):
        raise InputError(f"{name!r} is not a safe file name (only letters, digits, '_', '.', '-'); it was not written")
    target = base / name
    resolved_base = base.resolve()
    if resolved_base not in target.resolve().parents:
        raise InputError(
            f"{str(target)!r} resolves outside the output directory {str(resolved_base)!r}; it was not written"
        )
    return target


def _as_datetime(value: datetime | date | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter("date", f"{value!r} is not an ISO date or datetime (e.g. 2020-06-01)") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def product_basename(pair_or_parts: Pair | tuple[str | None, Any, Any]) -> str:
    """File name stem of a pair's products, safe on any file system.

    Parameters
    ----------
    pair_or_parts : Pair or (tile, reference_date, secondary_date)
        A :class:`~glacier_velocity.stac.pairing.Pair`, or the MGRS tile (None if unknown) and the
        two acquisition dates of a Sentinel-2 pair (``date``, ``datetime`` or ISO strings;
        datetimes in UTC).

    Returns
    -------
    str
        ``<mission>_<tile>_<YYYYMMDD>_<YYYYMMDD>`` (mission ``S2``, or ``LC`` for Landsat 8/9); when both acquisitions fall on the same UTC day
        the times are added (``YYYYMMDDTHHMMSS``). Only ``[A-Za-z0-9_.-]`` occur in it.

    >>> product_basename(("43SEA", "2020-06-01T05:36:29Z", "2020-07-21"))
    'S2_43SEA_20200601_20200721'
    >>> product_basename(("../etc/passwd", "2020-06-01", "2020-06-11"))
    'S2_etc-passwd_20200601_20200611'
    """
    if isinstance(pair_or_parts, tuple):
        tile, ref, sec = pair_or_parts
        stem = pair_name(tile, _as_datetime(ref), _as_datetime(sec))
        prefix = MISSION_PREFIX
    else:
        stem = pair_or_parts.id
        prefix = pair_or_parts.reference.sensor.product_prefix
    return f"{prefix}_{safe_name(stem, 'pair')}"


def product_paths(out_dir: str | os.PathLike[str], basename: str) -> tuple[Path, Path, Path]:
    """``(cog, quicklook, item json)`` paths of a product in ``out_dir``.

    Raises
    ------
    InputError
        ``basename`` is not a safe file name (see :func:`safe_name`), so a path could leave
        ``out_dir``.
    """
    return (
        path_in(out_dir, f"{basename}.tif"),
        path_in(out_dir, f"{basename}_quicklook.png"),
        path_in(out_dir, f"{basename}.json"),
    )


__all__ = ["MISSION_PREFIX", "path_in", "product_basename", "product_paths", "safe_name"]
