"""Choosing scenes within a season and pairing them in time.

Season convention
-----------------
A season runs from ``start_month`` to ``end_month`` inclusive (:func:`season_months`). When
``start_month > end_month`` the season wraps the year end: for months 11..2, *season year* Y
is November and December of Y followed by January and February of Y + 1. A search for season
years 2019..2020 therefore covers 2019-11-01 to 2021-02-28. When the season does not wrap,
season year Y is simply calendar year Y.

Pairs
-----
With N pairs per image, scene i (in time order) is paired with scenes i+1 ... i+N; the last
scenes get fewer partners (all "tail" pairs are kept, unlike the seed workflow, which dropped
them). The pairs are then filtered by baseline. The order is by reference time, then
secondary time.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain.names import pair_name
from ..domain.velocity import baseline_days
from ..errors import InputError, InvalidParameter
from ..io.atomic import write_text_atomic
from .scene import Scene

#: Format version of the pair list JSON written by :func:`write_pairs_json`.
PAIRS_JSON_VERSION = 1


@dataclass(frozen=True)
class Pair:
    """Two scenes of the same place, the secondary acquired after the reference.

    Attributes
    ----------
    reference : Scene
        The earlier acquisition; offsets are measured on its grid.
    secondary : Scene
        The later acquisition.

    Raises
    ------
    InputError
        The two scenes are the same item, the secondary is not later than the reference, or
        they are of different missions (band table rows: Sentinel-2 and Landsat).
    """

    reference: Scene
    secondary: Scene

    def __post_init__(self) -> None:
        if self.reference.id == self.secondary.id:
            raise InputError(
                f"pair: the same scene {self.reference.id!r} was given as reference and secondary; "
                "give two different acquisitions"
            )
        if self.secondary.datetime <= self.reference.datetime:
            raise InputError(
                f"pair: secondary {self.secondary.id!r} ({self.secondary.datetime.isoformat()}) is not later than "
                f"reference {self.reference.id!r} ({self.reference.datetime.isoformat()}); swap them"
            )
        if self.reference.sensor != self.secondary.sensor:
            # Different bands (near-infrared against panchromatic) show the ground differently:
            # vegetation, water and snow change contrast between them, and the chips decorrelate.
            raise InputError(
                f"pair: reference {self.reference.id!r} is {self.reference.sensor.name} and secondary "
                f"{self.secondary.id!r} is {self.secondary.sensor.name}; their tracked bands "
                f"({self.reference.sensor.band}, {self.secondary.sensor.band}) differ - pair scenes of one mission"
            )

    @property
    def dt_days(self) -> float:
        """Baseline from reference to secondary (days, fractional, > 0)."""
        return baseline_days(self.reference.datetime, self.secondary.datetime)

    @property
    def tile(self) -> str | None:
        """MGRS tile or Landsat WRS-2 path and row of the reference scene (None if unknown)."""
        return self.reference.tile or self.secondary.tile

    @property
    def id(self) -> str:
        """File-system-safe name from tile and the two dates, e.g. ``"43SEA_20200601_20200721"``
        (:func:`~glacier_velocity.domain.names.pair_name`: safe characters, under 80 of them)."""
        return pair_name(self.tile, self.reference.datetime, self.secondary.datetime)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :func:`write_pairs_json`)."""
        return {
            "id": self.id,
            "reference": self.reference.to_dict(),
            "secondary": self.secondary.to_dict(),
            "dt_days": self.dt_days,
            "tile": self.tile,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pair:
        """Inverse of :meth:`to_dict`; ``id`` and ``dt_days`` are recomputed, not trusted."""
        try:
            return cls(Scene.from_dict(data["reference"]), Scene.from_dict(data["secondary"]))
        except (KeyError, TypeError) as exc:
            raise InputError(f"pair record {data!r:.80} is malformed ({exc!r})") from exc


def season_months(start_month: int, end_month: int) -> tuple[int, ...]:
    """Calendar months of a season in season order, wrapping the year end when needed.

    >>> season_months(6, 9)
    (6, 7, 8, 9)
    >>> season_months(11, 2)
    (11, 12, 1, 2)
    """
    for name, month in (("start_month", start_month), ("end_month", end_month)):
        _check_month(name, month)
    if start_month <= end_month:
        return tuple(range(start_month, end_month + 1))
    return tuple(range(start_month, 13)) + tuple(range(1, end_month + 1))


def season_year_of(year: int, month: int, months: Sequence[int]) -> int | None:
    """Season year of calendar ``(year, month)``, or None when the month is outside the season.

    ``months`` is a season in season order (:func:`season_months`). In a wrapping season the
    months after the year end belong to the previous season year.

    >>> season_year_of(2021, 1, (11, 12, 1, 2))
    2020
    >>> season_year_of(2020, 11, (11, 12, 1, 2))
    2020
    >>> season_year_of(2020, 5, (11, 12, 1, 2)) is None
    True
    """
    if month not in months:
        return None
    position = list(months).index(month)
    wraps = sum(1 for a, b in zip(months[:position], months[1 : position + 1], strict=True) if b < a)
    return year - wraps


def select_monthly(scenes: Iterable[Scene], years: Iterable[int], months: Sequence[int]) -> list[Scene]:
    """The first scene of each calendar month of the season, for each season year.

    Parameters
    ----------
    scenes : iterable of Scene
        Candidate scenes, already filtered for cloud, footprint and tile (any order).
    years : iterable of int
        Season years to keep (see the module notes on seasons that wrap the year end).
    months : sequence of int
        Months of the season in season order, e.g. ``season_months(11, 2) == (11, 12, 1, 2)``.

    Returns
    -------
    list of Scene
        At most one scene per (season year, month): the earliest acquisition of that month
        (ties broken by item id). Sorted by time.
    """
    months = tuple(months)
    for month in months:
        _check_month("months", month)
    wanted_years = set(years)
    first: dict[tuple[int, int], Scene] = {}
    for scene in sorted(scenes, key=lambda s: (s.datetime, s.id)):
        season_year = season_year_of(scene.datetime.year, scene.datetime.month, months)
        if season_year is None or season_year not in wanted_years:
            continue
        first.setdefault((scene.datetime.year, scene.datetime.month), scene)
    return sorted(first.values(), key=lambda s: (s.datetime, s.id))


def make_pairs(
    scenes: Iterable[Scene],
    pairs_per_image: int,
    min_baseline_days: float | None = None,
    max_baseline_days: float | None = None,
) -> list[Pair]:
    """Pair each scene with the next ``pairs_per_image`` scenes, then filter by baseline.

    Parameters
    ----------
    scenes : iterable of Scene
        Scenes to pair (any order; sorted by time here, duplicates of an item id dropped).
    pairs_per_image : int
        N >= 1: scene i is paired with scenes i+1 ... i+N. The last scenes have fewer later
        partners; those tail pairs are all included.
    min_baseline_days, max_baseline_days : float, optional
        Keep only pairs whose baseline (days, fractional) lies in this closed range.

    Returns
    -------
    list of Pair
        Sorted by reference time, then secondary time. Before the baseline filter there are
        ``sum(min(N, n - 1 - i) for i in range(n))`` pairs for n distinct scenes.

    Raises
    ------
    InvalidParameter
        N < 1, a non-positive baseline bound, or min > max.
    """
    check_pairs_per_image(pairs_per_image)
    check_baseline_bounds(min_baseline_days, max_baseline_days)
    pairs = [Pair(reference, secondary) for reference, secondary in _partners(scenes, pairs_per_image)]
    return filter_baseline(pairs, min_baseline_days, max_baseline_days)


def _partners(scenes: Iterable[Scene], pairs_per_image: int) -> Iterator[tuple[Scene, Scene]]:
    """(reference, secondary) of :func:`make_pairs`, before the baseline filter, in its order."""
    unique: dict[str, Scene] = {}
    for scene in scenes:
        unique.setdefault(scene.id, scene)
    ordered = sorted(unique.values(), key=lambda s: (s.datetime, s.id))
    for i, reference in enumerate(ordered):
        for secondary in ordered[i + 1 : i + 1 + pairs_per_image]:
            if secondary.datetime > reference.datetime:
                yield reference, secondary


#: Default most pairs a discovery may give. One scene a month over every Sentinel-2 year
#: (2015-2026: 132 scenes) paired with the next 12 (a year of baselines) gives 1506 pairs;
#: 2000 leaves room for that. Each pair is a tracking job (seconds to minutes, and 2-4 s of
#: job overhead) and a product the aggregation holds: 1000 scenes with pairs_per_image 1000
#: gave 499,500 pairs, a 1.15 GB pair list and 6.7 GB of memory before any tracking.
DEFAULT_MAX_PAIRS = 2000


def check_max_pairs(max_pairs: Any) -> None:
    """Raise InvalidParameter unless ``max_pairs`` is an integer >= 1."""
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1:
        raise InvalidParameter(
            "max_pairs", f"must be an integer >= 1 (the most pairs a discovery may give), got {max_pairs!r}"
        )


def check_pair_count(
    scenes: Sequence[Scene],
    pairs_per_image: int,
    max_pairs: int,
    min_baseline_days: float | None = None,
    max_baseline_days: float | None = None,
) -> None:
    """Refuse, before building them, more pairs than ``max_pairs`` from :func:`make_pairs`.

    Counts the pairs ``make_pairs(scenes, pairs_per_image, min_baseline_days,
    max_baseline_days)`` would give without building one, and stops counting past ``max_pairs``.

    Raises
    ------
    InvalidParameter
        ``max_pairs``: more pairs than that; the message gives the counts and what to change.
    """
    check_max_pairs(max_pairs)
    lo = -math.inf if min_baseline_days is None else min_baseline_days
    hi = math.inf if max_baseline_days is None else max_baseline_days
    count = 0
    for reference, secondary in _partners(scenes, pairs_per_image):
        if lo <= baseline_days(reference.datetime, secondary.datetime) <= hi:
            count += 1
            if count > max_pairs:
                break
    if count <= max_pairs:
        return
    total = sum(1 for _ in _partners(scenes, pairs_per_image))
    bounded = min_baseline_days is not None or max_baseline_days is not None
    within = " and more than that within the baseline bounds" if bounded else ""
    raise InvalidParameter(
        "max_pairs",
        f"{len(scenes)} scenes were selected and each is paired with the next {pairs_per_image} (pairs_per_image): "
        f"{total} pairs{within}, more than max_pairs = {max_pairs}; each pair is a tracking job - lower "
        "pairs_per_image, narrow the years or months, bound the baselines (max_baseline_days), or raise max_pairs "
        "if you mean it",
    )


def filter_baseline(
    pairs: Iterable[Pair], min_baseline_days: float | None = None, max_baseline_days: float | None = None
) -> list[Pair]:
    """Pairs whose baseline (days) lies within ``[min_baseline_days, max_baseline_days]``."""
    check_baseline_bounds(min_baseline_days, max_baseline_days)
    lo = -math.inf if min_baseline_days is None else min_baseline_days
    hi = math.inf if max_baseline_days is None else max_baseline_days
    return [pair for pair in pairs if lo <= pair.dt_days <= hi]


def check_pairs_per_image(pairs_per_image: Any) -> None:
    """Raise InvalidParameter unless ``pairs_per_image`` is an integer >= 1."""
    if isinstance(pairs_per_image, bool) or not isinstance(pairs_per_image, int) or pairs_per_image < 1:
        raise InvalidParameter(
            "pairs_per_image",
            f"must be an integer >= 1 (each scene is paired with the next N scenes), got {pairs_per_image!r}",
        )


def check_baseline_bounds(min_baseline_days: Any, max_baseline_days: Any) -> None:
    """Raise InvalidParameter unless the baseline bounds are positive numbers with min <= max."""
    for name, value in (("min_baseline_days", min_baseline_days), ("max_baseline_days", max_baseline_days)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InvalidParameter(name, f"must be a positive number of days (or left out for no bound), got {value!r}")
    if min_baseline_days is not None and max_baseline_days is not None and min_baseline_days > max_baseline_days:
        raise InvalidParameter(
            "min_baseline_days",
            f"{min_baseline_days} is larger than max_baseline_days {max_baseline_days}; lower it or raise the maximum",
        )


def _check_month(name: str, month: Any) -> None:
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise InvalidParameter(name, f"must be a month number 1-12, got {month!r}")


def write_pairs_json(
    pairs: Sequence[Pair], path: str | os.PathLike[str], parameters: dict[str, Any] | None = None
) -> Path:
    """Write a pair list as JSON, atomically (temporary file, then rename).

    The document is ``{"version": 1, "count": n, "parameters": {...}, "pairs": [...]}``; each
    pair holds ``id``, ``dt_days`` (days, fractional), ``tile`` and the ``reference`` and
    ``secondary`` scenes (``id``, ``href`` = item self href, ``datetime`` (UTC, ISO 8601),
    ``cloud_cover`` (%), ``tile``, ``epsg``, ``sensor``, ``band_href``, ``classification_href``, ``product_uri``,
    ``geometry``).

    Parameters
    ----------
    pairs : sequence of Pair
    path : path-like
        Output file; its directory must exist.
    parameters : dict, optional
        The discovery parameters, recorded for provenance (JSON-serialisable values).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    document = {
        "version": PAIRS_JSON_VERSION,
        "count": len(pairs),
        "parameters": parameters or {},
        "pairs": [pair.to_dict() for pair in pairs],
    }
    text = json.dumps(document, indent=2, default=str) + "\n"
    return write_text_atomic(path, text)


def read_pairs_json(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a pair list written by :func:`write_pairs_json`.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a pair list.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read pair list {str(path)!r}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"pair list {str(path)!r} is not valid JSON ({exc}); re-create it with 'glacier-velocity discover'"
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("pairs"), list):
        raise InputError(
            f"{str(path)!r} is not a pair list (no 'pairs' array); re-create it with 'glacier-velocity discover'"
        )
    return [Pair.from_dict(record) for record in document["pairs"]]


def format_scene_table(scenes: Sequence[Scene]) -> str:
    """Plain-text table of scenes: id, UTC datetime, tile, cloud cover (%)."""
    rows = [("#", "scene", "datetime (UTC)", "tile", "cloud %")]
    for i, scene in enumerate(scenes, 1):
        cloud = "-" if scene.cloud_cover is None else f"{scene.cloud_cover:.1f}"
        rows.append((str(i), scene.id, scene.datetime.strftime("%Y-%m-%d %H:%M"), scene.tile or "-", cloud))
    return _table(rows, right=(0, 4))


def format_pair_table(pairs: Sequence[Pair]) -> str:
    """Plain-text table of pairs: pair id, reference and secondary ids, baseline (days)."""
    rows = [("#", "pair", "reference", "secondary", "dt (days)")]
    for i, pair in enumerate(pairs, 1):
        rows.append((str(i), pair.id, pair.reference.id, pair.secondary.id, f"{pair.dt_days:.2f}"))
    return _table(rows, right=(0, 4))


def _table(rows: Sequence[Sequence[str]], right: tuple[int, ...] = ()) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for r, row in enumerate(rows):
        cells = [
            cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if r == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
