"""Aggregation of velocity products: per-pixel median, its error, spread and count, and a time series.

Every product is brought onto the grid of the *first* product (its transform, shape and CRS,
:mod:`.grid`), so maps from different tracking grids or UTM zones are never silently
misaligned. Each product keeps its own acquisition dates: the summary lists one
:class:`PairEntry` per product, in input order, each with its own reference and secondary
datetimes, baseline and median speed.

Streamed (issue 23, finding 12): the products are read one at a time and written into the
datacube (:mod:`.datacube`, every pair on the common grid), and the statistics are made from
it a block of rows at a time (:func:`block_rows`: every pair's rows of one block fit in
:data:`BLOCK_MEMORY_MB`). Memory holds one product and one block, whatever the number of
pairs; the blocks give exactly the numbers of one pass over the whole grid.

Statistics are NaN-aware. A pixel counts as valid in a map when its speed ``v`` is finite.
Statistics are only evaluated on pixels with at least ``min_count`` valid maps (and the
standard deviation on pixels with at least two), so no all-NaN slice ever reaches
``numpy.nanmedian`` and no warning needs to be silenced.

What the summary holds (design record ``docs/design/0006-error-aware-aggregation.md``): a
pair whose stable-ground correction was not applied, or that has no error estimate, is left out
unless ``keep_uncorrected_pairs`` is set (its speeds carry the pair's misregistration, and
nothing says how large it is), and so is a pair whose typical 1-sigma speed error (median of
its ``v_error``) exceeds ``max_pair_error_m_per_yr``. :attr:`Summary.excluded` lists each with
its :data:`ExclusionCause` and the reason in words; ``min_count`` is checked against the pairs
that remain. The error of each median is propagated from the per-pair errors of the pairs
that entered it (:func:`median_error`). Headline numbers and the time series are taken over
the glacier (:mod:`.regions`), never over stable ground, and the headline carries its +/- or
says why it has none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from affine import Affine

from .._version import __version__
from ..domain.dates import format_datetime
from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct
from ..errors import InputError, InvalidParameter, PairsLeftOut
from ..io.atomic import output_directory
from ..io.points import PointOfInterest
from .datacube import DatacubeWriter, mid_date_order, open_datacube
from .grid import (
    RESAMPLING,
    GriddedProduct,
    ProductLike,
    ResamplingName,
    as_utc,
    grid_of,
    product_header,
    products_on_grid,
    refuse_repeated_files,
)
from .regions import PointCell, Region, given_region, headline_region, locate_points

if TYPE_CHECKING:
    from ..io.cog import VelocityHeader

log = logging.getLogger(__name__)

#: File names (without directory) of the summary COGs written by :func:`write_summary`.
SUMMARY_BANDS: tuple[tuple[str, str, str], ...] = (
    ("median_v", "m/yr", "median over pairs of the speed of each pair"),
    ("median_vx", "m/yr", "median over pairs of the east velocity"),
    ("median_vy", "m/yr", "median over pairs of the north velocity"),
    ("std_v", "m/yr", "standard deviation over pairs of the speed (ddof=1; NaN with fewer than 2 maps)"),
    ("count", "1", "number of pairs with a valid speed at the pixel (0 = none)"),
    ("v_error", "m/yr", "1-sigma error of median_v, propagated from the pairs' v_error (NaN: no error estimate)"),
    ("vx_error", "m/yr", "1-sigma error of median_vx, propagated from the pairs' vx_error (NaN: no error estimate)"),
    ("vy_error", "m/yr", "1-sigma error of median_vy, propagated from the pairs' vy_error (NaN: no error estimate)"),
)

#: Default of ``max_pair_error_m_per_yr`` (m/yr): a pair noisier than this (its median 1-sigma
#: speed error) is left out of the summary. A 10-day Sentinel-2 pair has about 40 m/yr
#: (design 0005), a 5-day pair about twice that; above 100 m/yr a pair adds more noise than
#: signal for most mountain glaciers. Raise it for fast glaciers measured with short baselines.
MAX_PAIR_ERROR_M_PER_YR = 100.0

#: Ratio of the standard error of the median to that of the mean for many normal samples,
#: sqrt(pi / 2); with 1 or 2 values the median is the mean (ratio 1).
MEDIAN_EFFICIENCY = float(np.sqrt(np.pi / 2))


def median_error(errors: np.ndarray, axis: int = 0) -> np.ndarray:
    """1-sigma error of a median of independent values, from their own 1-sigma errors.

    Over the finite values along ``axis`` (NaN marks an absent value), with ``n`` of them:

    - n <= 2: the median is the mean, so ``sqrt(sum(e_i^2)) / n``;
    - n >= 3: ``sqrt(pi/2) * H / sqrt(n)``, with ``H = n / sum(1 / e_i)`` the harmonic mean
      of the errors. The median's variance is ``1 / (4 n f(m)^2)`` with ``f(m)`` the density
      of the values at the median; for values with errors ``e_i`` around one truth that is
      ``mean(1 / (sqrt(2 pi) e_i))``, which gives the formula (equal errors: the familiar
      ``1.2533 e / sqrt(n)``). A precise pair narrows the median more than a noisy one
      widens it; an RMS of the errors would overstate it (design 0006 measures both).
      For n = 3..5 the asymptotic factor overstates the exact one by 4-8 %, a safe side.

    Parameters
    ----------
    errors : ndarray
        Per-value 1-sigma errors (m/yr), NaN where a value is absent.

    Returns
    -------
    ndarray of float32
        NaN where no value is present.

    >>> float(median_error(np.array([30.0, 40.0, np.nan])))
    25.0
    """
    e = np.asarray(errors, dtype=np.float64)
    present = np.isfinite(e)
    n = present.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_like = np.sqrt(np.where(present, e * e, 0.0).sum(axis=axis)) / n
        harmonic = n / np.where(present, 1.0 / e, 0.0).sum(axis=axis)
        median_like = MEDIAN_EFFICIENCY * harmonic / np.sqrt(n)
        out = np.where(n >= 3, median_like, np.where(n > 0, mean_like, np.nan))
    return out.astype(np.float32)


@dataclass(frozen=True)
class PairEntry:
    """One velocity product in a summary, with its own dates.

    Attributes
    ----------
    reference_id, secondary_id : str
        Identifiers of the two scenes of the pair.
    reference_datetime, secondary_datetime : datetime or None
        Acquisition times of this pair (timezone-aware, UTC when the input was naive).
    dt_days : float
        Baseline of this pair (days, fractional).
    median_v : float
        Median speed (m/yr) over the pixels where this pair has a speed, on the summary grid;
        NaN when it has none there.
    valid_px : int
        Number of summary-grid pixels where this pair has a speed.
    valid_fraction : float
        ``valid_px`` over the number of summary-grid pixels (0..1).
    resampled : bool
        Whether the product was resampled onto the summary grid (False: same grid).
    source : str
        File the product was read from, or ``""`` for an in-memory product.
    max_velocity_m_per_yr : float or None
        The fastest speed the pair was tracked for (m/yr), when recorded.
    v_error : float
        The pair's typical 1-sigma speed error: median of its ``v_error`` over its valid
        summary-grid pixels (m/yr); NaN when the product has no errors (correction off).
        Compared with ``max_pair_error_m_per_yr``.
    region_median_v : float
        Median speed of the pair over the summary's headline region (the glacier; m/yr).
    region_v_error : float
        Median ``v_error`` of the pair over the same cells (m/yr): the error bar of
        ``region_median_v`` in the time series (errors of one pair are correlated in space
        through its residual misregistration, so they do not shrink with the cell count).
    point_v, point_v_error : tuple of float
        Speed and its error (m/yr) at each point of interest (NaN off the grid or no value).
    """

    reference_id: str
    secondary_id: str
    reference_datetime: datetime | None
    secondary_datetime: datetime | None
    dt_days: float
    median_v: float
    valid_px: int
    valid_fraction: float
    resampled: bool
    source: str = ""
    max_velocity_m_per_yr: float | None = None
    v_error: float = float("nan")
    region_median_v: float = float("nan")
    region_v_error: float = float("nan")
    point_v: tuple[float, ...] = ()
    point_v_error: tuple[float, ...] = ()

    @property
    def mid_datetime(self) -> datetime | None:
        """Midpoint between the reference and secondary acquisitions, when both are known."""
        if self.reference_datetime is None or self.secondary_datetime is None:
            return None
        return self.reference_datetime + (self.secondary_datetime - self.reference_datetime) / 2

    @property
    def pair_id(self) -> str:
        """``reference_id`` and ``secondary_id`` joined by ``__``."""
        return f"{self.reference_id}__{self.secondary_id}"


#: Why a pair was left out of the summary (:attr:`ExcludedPair.cause`):
#:
#: - ``"not_corrected"``: its stable-ground correction was not applied (no stable ground found,
#:   an implausible shift, or the correction turned off): its speeds include the pair's
#:   misregistration and it has no error estimate;
#: - ``"no_error"``: corrected or not, the product has no error estimate (``v_error``), e.g. a
#:   product made before the correction stage existed, so nothing says how good it is;
#: - ``"error_above_threshold"``: its typical error exceeds ``max_pair_error_m_per_yr``.
#:
#: The first two are kept with ``keep_uncorrected_pairs``; the third with a higher threshold.
ExclusionCause = Literal["not_corrected", "no_error", "error_above_threshold"]
EXCLUSION_CAUSES: tuple[str, ...] = ("not_corrected", "no_error", "error_above_threshold")


@dataclass(frozen=True)
class ExcludedPair:
    """A pair left out of the summary, and why.

    Attributes
    ----------
    entry : PairEntry
        The pair; its ``source`` is the file it was read from (``""`` in memory) and its
        ``v_error`` the typical error (NaN when it has none).
    cause : {"not_corrected", "no_error", "error_above_threshold"}
        Why, for programs (see :data:`ExclusionCause`).
    reason : str
        Why, in words: names the parameter that keeps the pair in, and the numbers.
    """

    entry: PairEntry
    cause: ExclusionCause
    reason: str

    def __post_init__(self) -> None:
        if self.cause not in EXCLUSION_CAUSES:
            raise ValueError(f"unknown exclusion cause {self.cause!r}; one of {EXCLUSION_CAUSES}")

    @property
    def pair_id(self) -> str:
        """``reference_id__secondary_id`` of the pair."""
        return self.entry.pair_id

    @property
    def source(self) -> str:
        """The product file the pair was read from (``""`` for an in-memory product)."""
        return self.entry.source


def speed_with_error(speed: float, error: float) -> str:
    """A headline speed in words: ``"243.1 +/- 1.9 m/yr"``, or ``"243.1 m/yr"`` when the error is unknown."""
    pm = f" +/- {error:.1f}" if np.isfinite(error) else ""
    return f"{speed:.1f}{pm} m/yr"


@dataclass(frozen=True)
class YearHeadline:
    """The headline of the pairs of one year: a run over several years gives one per year,
    since a median over years mixes speeds that differ by more than their errors.

    Attributes
    ----------
    year : int
        Calendar year of the pairs' mid dates.
    pair_count : int
        Pairs of that year in the summary.
    headline_median_v, headline_median_v_error : float
        Median over the headline region of the year's per-cell median speed, and of its
        1-sigma error (m/yr; NaN when unknown), as :attr:`Summary.headline_median_v` for all pairs.
    cells : int
        Cells of the headline region with a median speed that year.
    """

    year: int
    pair_count: int
    headline_median_v: float
    headline_median_v_error: float
    cells: int

    def describe(self) -> str:
        """E.g. ``"2022 122.9 +/- 1.5 m/yr (2 pairs)"``."""
        pairs = f"{self.pair_count} pair{'s' if self.pair_count != 1 else ''}"
        if not np.isfinite(self.headline_median_v):
            return f"{self.year} no speed measured ({pairs})"
        return f"{self.year} {speed_with_error(self.headline_median_v, self.headline_median_v_error)} ({pairs})"


@dataclass(frozen=True)
class Summary:
    """Per-pixel statistics of a stack of velocity maps on one grid.

    Attributes
    ----------
    median_v, median_vx, median_vy : ndarray of float32, shape (rows, cols)
        Median of the per-pair speed, east velocity and north velocity (m/yr); NaN where fewer
        than ``min_count`` maps are valid. ``median_v`` is the median of the speeds, not the
        speed of the median vector.
    std_v : ndarray of float32, shape (rows, cols)
        Sample standard deviation (ddof=1) of the per-pair speed (m/yr); NaN where fewer than
        ``max(2, min_count)`` maps are valid.
    count : ndarray of uint16, shape (rows, cols)
        Number of maps with a valid speed at each pixel (0 = none); never masked by
        ``min_count``.
    v_error, vx_error, vy_error : ndarray of float32, shape (rows, cols)
        1-sigma errors (m/yr) of ``median_v``, ``median_vx``, ``median_vy``
        (:func:`median_error` of the pairs' errors); NaN where a pair that entered the
        median has no error, or where the median is NaN.
    transform : Affine
        Affine transform of the grid (the first product's).
    crs : str
        CRS of the grid (the first product's).
    entries : tuple of PairEntry
        One entry per aggregated product, in input order, each with its own dates.
    min_count : int
        Minimum number of valid maps a pixel needs to get statistics.
    excluded : tuple of ExcludedPair
        Pairs left out (not corrected, no error, or error above ``max_pair_error_m_per_yr``),
        in input order, each with its cause and reason.
    max_pair_error_m_per_yr : float or None
        The threshold applied (m/yr); None: none.
    keep_uncorrected_pairs : bool
        Whether pairs without a correction or without an error were kept in.
    region : Region or None
        The headline region (glacier outlines, points of interest, or a flagged fallback).
    points : tuple of PointCell
        The points of interest on the grid, in the order given.
    years : tuple of YearHeadline
        One headline per calendar year when the pairs span several years, else empty.
    """

    median_v: np.ndarray
    median_vx: np.ndarray
    median_vy: np.ndarray
    std_v: np.ndarray
    count: np.ndarray
    transform: Affine
    crs: str
    entries: tuple[PairEntry, ...]
    min_count: int = 1
    v_error: np.ndarray | None = None
    vx_error: np.ndarray | None = None
    vy_error: np.ndarray | None = None
    excluded: tuple[ExcludedPair, ...] = ()
    max_pair_error_m_per_yr: float | None = MAX_PAIR_ERROR_M_PER_YR
    region: Region | None = None
    points: tuple[PointCell, ...] = ()
    keep_uncorrected_pairs: bool = False
    years: tuple[YearHeadline, ...] = ()

    def __post_init__(self) -> None:
        # Summaries built without errors (tests, old callers) get NaN error maps: unknown.
        for name in ("v_error", "vx_error", "vy_error"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(self.median_v.shape, np.nan, dtype=np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(rows, cols)``."""
        return self.median_v.shape

    @property
    def product_count(self) -> int:
        """Number of products aggregated."""
        return len(self.entries)

    @property
    def start_datetime(self) -> datetime | None:
        """Earliest reference acquisition over all pairs (None when no pair has dates)."""
        times = [e.reference_datetime for e in self.entries if e.reference_datetime is not None]
        return min(times) if times else None

    @property
    def end_datetime(self) -> datetime | None:
        """Latest secondary acquisition over all pairs (None when no pair has dates)."""
        times = [e.secondary_datetime for e in self.entries if e.secondary_datetime is not None]
        return max(times) if times else None

    @property
    def valid_fraction(self) -> float:
        """Fraction of pixels with a median speed (0..1)."""
        return float(np.isfinite(self.median_v).mean()) if self.median_v.size else 0.0

    @property
    def max_velocity_m_per_yr(self) -> float | None:
        """The largest ``max_velocity_m_per_yr`` the pairs were tracked with (m/yr), if recorded."""
        values = [e.max_velocity_m_per_yr for e in self.entries if e.max_velocity_m_per_yr is not None]
        return max(values) if values else None

    @property
    def region_name(self) -> str:
        """What the headline numbers are taken over (see :mod:`.regions`)."""
        return self.region.name if self.region is not None else "whole grid"

    def _region_values(self, values: np.ndarray) -> np.ndarray:
        mask = self.region.mask if self.region is not None else np.ones(self.shape, dtype=bool)
        return values[mask & np.isfinite(self.median_v)]

    @property
    def headline_median_v(self) -> float:
        """Headline speed: median of ``median_v`` over the headline region (m/yr); NaN when empty."""
        finite = self._region_values(self.median_v)
        return float(np.median(finite)) if finite.size else float("nan")

    @property
    def headline_median_v_error(self) -> float:
        """Median of ``v_error`` over the same cells as :attr:`headline_median_v` (m/yr); NaN if unknown."""
        if self.v_error is None:
            return float("nan")
        errors = self._region_values(self.v_error)
        return float(np.median(errors)) if errors.size and np.isfinite(errors).all() else float("nan")

    @property
    def region_cells(self) -> int:
        """Cells of the headline region with a median speed."""
        return int(self._region_values(self.median_v).size)

    def missing_error_reason(self) -> str:
        """Why the headline speed has no +/- (``""`` when it has one)."""
        if self.region_cells == 0:
            return f"no cell of the {self.region_name} has a median speed (at least {self.min_count} valid map(s))"
        if np.isfinite(self.headline_median_v_error):
            return ""
        without = [e.pair_id for e in self.entries if not np.isfinite(e.v_error)]
        if without:
            return (
                f"{len(without)} of the {self.product_count} pairs aggregated have no error estimate "
                f"(kept in by keep_uncorrected_pairs: {', '.join(without)})"
            )
        errors = self._region_values(self.v_error) if self.v_error is not None else np.array([])
        unknown = int((~np.isfinite(errors)).sum())
        return f"the error is unknown at {unknown} of the {self.region_cells} cells (a pair there has no error)"

    def headline(self) -> str:
        """The headline in words over the headline region, per year when the pairs span years.

        E.g. ``"median speed 243.1 +/- 1.9 m/yr over glacier outlines (459 cells)"``, or
        ``"median speed over glacier outlines (593 cells): 2022 122.9 +/- 1.5 m/yr (2 pairs),
        2023 199.6 +/- 1.0 m/yr (4 pairs)"``. Without an error the headline says why
        (:meth:`missing_error_reason`) instead of a +/-.
        """
        where = f"over {self.region_name} ({self.region_cells} cells)"
        if len(self.years) > 1:
            text = f"median speed {where}: {', '.join(y.describe() for y in self.years)}"
            if any(np.isfinite(y.headline_median_v) and not np.isfinite(y.headline_median_v_error) for y in self.years):
                reason = self.missing_error_reason() or "a pair of that year has no error"
                text += f"; no +/-: {reason}"
            return text
        error = self.headline_median_v_error
        if np.isfinite(error):
            return f"median speed {speed_with_error(self.headline_median_v, error)} {where}"
        return f"median speed {self.headline_median_v:.1f} m/yr {where}, no +/-: {self.missing_error_reason()}"

    def exclusion_lines(self) -> list[str]:
        """One line per excluded pair: its id and the reason."""
        return [f"{x.pair_id}: {x.reason}" for x in self.excluded]

    def excluded_sources(self) -> dict[str, ExcludedPair]:
        """The excluded pairs by the product file they were read from (pairs read from files only)."""
        return {x.source: x for x in self.excluded if x.source}

    def band(self, name: str) -> np.ndarray:
        """Array of one summary band by its name in :data:`SUMMARY_BANDS`."""
        if name not in {b for b, _, _ in SUMMARY_BANDS}:
            raise KeyError(f"unknown summary band {name!r}; bands are {[b for b, _, _ in SUMMARY_BANDS]}")
        return getattr(self, name)


@dataclass(frozen=True)
class SummaryFiles:
    """Paths of the summary COGs written by :func:`write_summary`, and optionally the figures."""

    median_v: Path
    median_vx: Path
    median_vy: Path
    std_v: Path
    count: Path
    v_error: Path
    vx_error: Path
    vy_error: Path
    summary_figure: Path | None = None
    time_series_figure: Path | None = None
    datacube: Path | None = None
    aoi: Path | None = None

    def moved(self, directory: Path) -> SummaryFiles:
        """The same files after their directory was renamed to ``directory`` (file names kept)."""
        return replace(
            self,
            **{f.name: directory / Path(v).name for f in fields(self) if (v := getattr(self, f.name)) is not None},
        )

    def with_aoi(self, aoi: Path | None) -> SummaryFiles:
        """A copy that also lists the run's area of interest (GeoJSON, stored once for the run)."""
        return replace(self, aoi=aoi)

    def with_datacube(self, datacube: Path | None) -> SummaryFiles:
        """A copy that also lists the velocity datacube (see :mod:`glacier_velocity.aggregation.datacube`)."""
        return replace(self, datacube=datacube)

    def with_figures(self, summary_figure: Path | None, time_series_figure: Path | None) -> SummaryFiles:
        """A copy that also lists the figure PNGs (see :mod:`glacier_velocity.products.figures`)."""
        return replace(self, summary_figure=summary_figure, time_series_figure=time_series_figure)

    def cogs(self) -> dict[str, Path]:
        """Band name -> COG path, in :data:`SUMMARY_BANDS` order."""
        return {name: getattr(self, name) for name, _, _ in SUMMARY_BANDS}

    def figures(self) -> dict[str, Path]:
        """Figure name -> PNG path, for the figures that exist."""
        out = {"summary_figure": self.summary_figure, "time_series_figure": self.time_series_figure}
        return {k: v for k, v in out.items() if v is not None}


def _pair_error(v_error: np.ndarray | None, valid: np.ndarray) -> float:
    """Median of a pair's ``v_error`` over its valid pixels (m/yr); NaN when it has none."""
    if v_error is None or not valid.any():
        return float("nan")
    values = v_error[valid]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def check_max_pair_error(value: float | None) -> float | None:
    """Check ``max_pair_error_m_per_yr``: a speed error in m/yr > 0, or None (no threshold)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise InvalidParameter(
            "max_pair_error_m_per_yr", f"must be a speed error in m/yr > 0 (or none for no threshold), got {value!r}"
        )
    return float(value)


def _exclusion(
    entry: PairEntry, correction: dict, threshold: float | None, keep_uncorrected_pairs: bool
) -> ExcludedPair | None:
    """Whether a pair is left out of the summary, and why (None: it enters)."""
    keep = "keep_uncorrected_pairs = true keeps it in"
    if not keep_uncorrected_pairs:
        if correction and not correction.get("stable_shift_applied", False):
            why = str(correction.get("stable_shift_warning") or "no reason recorded")
            return ExcludedPair(
                entry,
                "not_corrected",
                f"no stable-ground correction ({why}); its speeds include the pair's misregistration "
                f"and have no error estimate ({keep})",
            )
        if not np.isfinite(entry.v_error):
            return ExcludedPair(
                entry,
                "no_error",
                "no error estimate (v_error): nothing says whether its speeds include a misregistration "
                f"({keep}; re-run the pair to get the correction and its errors)",
            )
    if threshold is not None and np.isfinite(entry.v_error) and entry.v_error > threshold:
        return ExcludedPair(
            entry,
            "error_above_threshold",
            f"typical speed error {entry.v_error:.1f} m/yr (median v_error) exceeds "
            f"max_pair_error_m_per_yr = {threshold:g} m/yr",
        )
    return None


def _counted(excluded: Sequence[ExcludedPair], threshold: float | None) -> str:
    """The left-out pairs counted by cause, e.g. ``"2 not corrected (a, b); 1 without an error estimate (c)"``."""
    words = {
        "not_corrected": "not corrected (no stable ground found, or an implausible shift)",
        "no_error": "without an error estimate",
        "error_above_threshold": f"with an error above max_pair_error_m_per_yr = {threshold} m/yr",
    }
    parts = []
    for cause in EXCLUSION_CAUSES:
        ids = [x.pair_id for x in excluded if x.cause == cause]
        if ids:
            parts.append(f"{len(ids)} {words[cause]} ({', '.join(ids)})")
    return "; ".join(parts)


def _nothing_left(excluded: Sequence[ExcludedPair], threshold: float | None) -> PairsLeftOut:
    """The error when every pair was left out: names the parameter that would keep them."""
    listing = _counted(excluded, threshold)
    if all(x.cause == "error_above_threshold" for x in excluded):
        return PairsLeftOut(
            "max_pair_error_m_per_yr",
            f"every pair was left out of the summary: {listing}; nothing is left to aggregate: "
            "raise the threshold or check the pairs' stable ground",
            tuple(excluded),
        )
    return PairsLeftOut(
        "keep_uncorrected_pairs",
        f"every pair was left out of the summary: {listing}; nothing is left to aggregate: give the "
        "correlation glacier_outlines or a larger area with stable ground around the glacier, or set "
        "keep_uncorrected_pairs to aggregate the uncorrected speeds",
        tuple(excluded),
    )


def _median_with_error(values: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median along axis 0 of ``values`` (n, k), every column with a finite value, and its
    1-sigma error from ``errors`` (:func:`median_error`); the error is NaN (unknown rather
    than too small) where a value that entered the median has no error."""
    median = np.nanmedian(values, axis=0)
    present = np.isfinite(values)
    unknown = (present & ~np.isfinite(errors)).any(axis=0)
    error = np.where(unknown, np.nan, median_error(np.where(present, errors, np.nan)))
    return median.astype(np.float32), error.astype(np.float32)


@dataclass(frozen=True)
class _YearMaps:
    """One calendar year's per-cell median speed and its error over that year's pairs."""

    pairs: int
    median_v: np.ndarray
    v_error: np.ndarray


def _year_headlines(years: dict[int, _YearMaps], region: np.ndarray) -> tuple[YearHeadline, ...]:
    """One :class:`YearHeadline` per calendar year over ``region``, when there are several years."""
    if len(years) < 2:
        return ()
    headlines = []
    for year, maps in sorted(years.items()):
        inside = region & np.isfinite(maps.median_v)
        median, error = maps.median_v[inside], maps.v_error[inside]
        known = bool(median.size) and bool(np.isfinite(error).all())
        headlines.append(
            YearHeadline(
                year=year,
                pair_count=maps.pairs,
                headline_median_v=_median_or_nan(median),
                headline_median_v_error=float(np.median(error)) if known else float("nan"),
                cells=int(median.size),
            )
        )
    return tuple(headlines)


def _median_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


#: Memory (MB) the statistics of one block of rows may take: the block of every pair's layers
#: and the temporaries of the median and its error. Whatever the number of pairs, the blocks
#: are made smaller to stay within it.
BLOCK_MEMORY_MB = 512.0
#: Bytes per stacked cell at the peak of a block's statistics: the values and errors of a band
#: as read and as selected (4 x 4), nanmedian's copy (4) and median_error's float64 arrays (3 x 8).
BYTES_PER_STACKED_CELL = 64


def block_rows(layers: int, cols: int, memory_mb: float = BLOCK_MEMORY_MB) -> int:
    """Rows per block so that ``layers`` layers of ``cols`` cells fit in ``memory_mb`` (at least 1).

    >>> block_rows(300, 915)
    29
    """
    return max(1, int(memory_mb * 1e6 // (BYTES_PER_STACKED_CELL * max(layers, 1) * max(cols, 1))))


def _refuse_repeated_pairs(
    products: Sequence[ProductLike], headers: Sequence[VelocityProduct | VelocityHeader]
) -> None:
    """The same pair twice would count twice (count 12 for 6 pairs) and weigh double."""
    seen: dict[tuple[str, str], str] = {}
    for index, (product, header) in enumerate(zip(products, headers, strict=True)):
        source = "" if isinstance(product, VelocityProduct) else str(product)
        key = (header.reference_id, header.secondary_id)
        if key in seen:
            raise InputError(
                f"velocity product {index} ({header.reference_id} -> {header.secondary_id}"
                f"{', ' + source if source else ''}) is the same pair as {seen[key] or 'an earlier product'}; "
                "give each pair's product once"
            )
        seen[key] = source


def _pair_entry(gridded: GriddedProduct, cells: Sequence[PointCell]) -> tuple[PairEntry, np.ndarray]:
    """A pair's entry (dates, median speed, typical error, values at the points) and its ``v_error``
    on the common grid."""
    product = gridded.product
    v = gridded.v
    v_error = (
        gridded.regrid(product.v_error)
        if product.v_error is not None
        else np.full(gridded.grid.shape, np.nan, dtype=np.float32)
    )
    valid = np.isfinite(v)
    valid_px = int(valid.sum())
    entry = PairEntry(
        reference_id=product.reference_id,
        secondary_id=product.secondary_id,
        reference_datetime=as_utc(product.reference_datetime),
        secondary_datetime=as_utc(product.secondary_datetime),
        dt_days=float(product.dt_days),
        median_v=float(np.median(v[valid])) if valid_px else float("nan"),
        valid_px=valid_px,
        valid_fraction=valid_px / valid.size if valid.size else 0.0,
        resampled=gridded.resampled,
        source=gridded.source,
        max_velocity_m_per_yr=product.max_velocity_m_per_yr,
        v_error=_pair_error(v_error, valid),
        point_v=tuple(float(v[c.row, c.col]) if c.on_grid else float("nan") for c in cells),
        point_v_error=tuple(float(v_error[c.row, c.col]) if c.on_grid else float("nan") for c in cells),
    )
    return entry, v_error


def _in_region(entry: PairEntry, v: np.ndarray, v_error: np.ndarray, region: Region) -> PairEntry:
    """The entry with its median speed and error over the headline region."""
    inside = region.mask & np.isfinite(v)
    return replace(entry, region_median_v=_median_or_nan(v[inside]), region_v_error=_median_or_nan(v_error[inside]))


def _block_statistics(
    cube: DatacubeWriter, layers: Sequence[int], years: dict[int, list[int]], min_count: int, rows_per_block: int
) -> tuple[dict[str, np.ndarray], dict[int, _YearMaps]]:
    """Median, error, spread and count maps of the ``layers`` of ``cube``, a block of rows at a time.

    ``years`` gives, per calendar year, the positions in ``layers`` of that year's pairs; each
    year gets its own median speed and error maps. Only one block of every layer (and one
    band at a time) is in memory.
    """
    rows, cols = cube.grid.shape
    maps = {
        name: np.full((rows, cols), np.nan, dtype=np.float32)
        for name in ("median_v", "median_vx", "median_vy", "v_error", "vx_error", "vy_error", "std_v")
    }
    maps["count"] = np.zeros((rows, cols), dtype=np.uint16)
    year_maps = {
        year: _YearMaps(
            len(positions), np.full((rows, cols), np.nan, np.float32), np.full((rows, cols), np.nan, np.float32)
        )
        for year, positions in years.items()
    }
    selected = np.asarray(layers, dtype=np.intp)
    for start in range(0, rows, rows_per_block):
        stop = min(rows, start + rows_per_block)
        block = slice(start, stop)
        for name in ("v", "vx", "vy"):
            values = cube.read_rows(name, start, stop)[selected]
            errors = cube.read_rows(f"{name}_error", start, stop)[selected]
            if name == "v":
                count = np.isfinite(values).sum(axis=0)
                maps["count"][block] = count
                enough, spread = count >= min_count, count >= max(2, min_count)
                std = np.full(count.shape, np.nan, dtype=np.float32)
                std[spread] = np.nanstd(values[:, spread].astype(np.float64), axis=0, ddof=1)
                maps["std_v"][block] = std
                for year, positions in years.items():
                    mine = values[positions]
                    here = np.isfinite(mine).sum(axis=0) >= min(min_count, len(positions))
                    year_maps[year].median_v[block][here], year_maps[year].v_error[block][here] = _median_with_error(
                        mine[:, here], errors[positions][:, here]
                    )
            # Only cells with enough valid values reach nanmedian: no all-NaN slices, no warnings.
            median, error = maps[f"median_{name}"][block], maps[f"{name}_error"][block]
            median[enough], error[enough] = _median_with_error(values[:, enough], errors[:, enough])
            del values, errors
    return maps, year_maps


def aggregate_products(
    products: Sequence[ProductLike],
    *,
    min_count: int = 1,
    resampling: ResamplingName = "nearest",
    max_pair_error_m_per_yr: float | None = MAX_PAIR_ERROR_M_PER_YR,
    glacier_outlines: GlacierOutlines | None = None,
    points_of_interest: Sequence[PointOfInterest] = (),
    keep_uncorrected_pairs: bool = False,
    datacube: str | os.PathLike[str] | None = None,
    memory_mb: float = BLOCK_MEMORY_MB,
) -> Summary:
    """Median speed and velocity, their errors, spread and valid-map count per pixel.

    The products are read one at a time and written, each on the common grid, into the
    velocity datacube (:mod:`.datacube`); the statistics are then made a block of rows at a
    time from it (:func:`block_rows`). Memory holds one product and one block of every
    pair, whatever the number of pairs.

    Parameters
    ----------
    products : sequence of VelocityProduct or path
        Velocity products, in memory or as velocity COGs (read with
        :func:`glacier_velocity.io.cog.read_velocity_cog`). The first one defines the output
        grid (transform, shape, CRS).
    min_count : int, default 1
        Pixels with fewer valid maps get NaN statistics (``count`` keeps the true number).
    resampling : {"nearest", "bilinear"}, default "nearest"
        How products on another grid are brought onto the first grid. Nodata (NaN) never
        enters an interpolated value. When the CRS differs, ``vx``/``vy`` are also rotated
        to the first grid's axes (their errors are not: the rotation is about a degree).
    max_pair_error_m_per_yr : float or None, default :data:`MAX_PAIR_ERROR_M_PER_YR`
        Pairs whose typical 1-sigma speed error (median ``v_error``, m/yr) exceeds it are
        left out and listed in :attr:`Summary.excluded`. None: no threshold.
    glacier_outlines : GlacierOutlines, optional
        The headline numbers and time series are taken over these outlines (read at the edge:
        :func:`glacier_velocity.io.outlines.read_glacier_outlines`).
    points_of_interest : sequence of PointOfInterest
        Points (read by :func:`glacier_velocity.io.points.read_points_of_interest`) where each
        pair's speed is sampled for the time series; the headline region without outlines.
    keep_uncorrected_pairs : bool, default False
        Keep pairs whose stable-ground correction was not applied, or that have no error
        estimate. By default they are left out (:attr:`Summary.excluded` says why): their
        speeds include the pair's misregistration. Kept, they make the error of every median
        they enter unknown (NaN), and the headline says so.
    datacube : path-like, optional
        Where to keep the datacube (every pair, those left out flagged; products need their
        acquisition dates). None: a scratch file, removed afterwards.
    memory_mb : float, default :data:`BLOCK_MEMORY_MB`
        Memory the statistics of one block of rows may take (MB).

    Returns
    -------
    Summary
        Statistics on the first product's grid (m/yr) and one :class:`PairEntry` per
        aggregated product with its own dates, in input order.

    Raises
    ------
    PairsLeftOut
        Every pair was left out, or fewer pairs than ``min_count`` remain; its ``excluded``
        lists them (an :class:`~glacier_velocity.errors.InvalidParameter` naming the parameter
        to change).
    InvalidParameter
        No products, ``min_count`` < 1, an unknown ``resampling`` or a bad threshold.
    InputError
        A product file is missing, a product does not overlap the first product's grid, the
        same pair twice, or (with ``datacube``) a product without acquisition dates.
    """
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise InvalidParameter("min_count", f"must be an integer >= 1, got {min_count!r}")
    if resampling not in RESAMPLING:
        raise InvalidParameter("resampling", f"must be one of {sorted(RESAMPLING)}, got {resampling!r}")
    threshold = check_max_pair_error(max_pair_error_m_per_yr)
    n = len(products)
    if n == 0:
        raise InvalidParameter("products", "no velocity products given; pass at least one")
    if n > np.iinfo(np.uint16).max:
        raise InvalidParameter("products", f"at most {np.iinfo(np.uint16).max} products per summary, got {n}")
    if min_count > n:
        # No pixel could have min_count valid maps: the summary would be all NaN, "0 %".
        raise InvalidParameter(
            "min_count",
            f"{min_count} is more than the {n} product(s) given, so no pixel could have that many valid maps; "
            f"lower --min-count to at most {n} or add products",
        )
    refuse_repeated_files(products)
    headers = [product_header(p) for p in products]
    _refuse_repeated_pairs(products, headers)
    grid = grid_of(headers[0], 0, "" if isinstance(products[0], VelocityProduct) else str(products[0]))
    crs = grid.crs.to_string()
    cells = locate_points(points_of_interest, grid.transform, grid.shape, crs)
    for cell in cells:
        if not cell.on_grid:
            log.warning(
                "point of interest %s (%g, %g) lies off the summary grid", cell.name, cell.point.x, cell.point.y
            )
    given = given_region(grid.transform, grid.shape, crs, glacier_outlines=glacier_outlines, points=cells)
    dated = all(h.reference_datetime is not None and h.secondary_datetime is not None for h in headers)
    # The datacube's layers go in mid-date order; a scratch stack of undated products in input order.
    order = mid_date_order(products, headers) if dated or datacube is not None else list(range(n))
    rows_per_block = block_rows(n, grid.shape[1], memory_mb)
    layer_of: dict[int, int] = {}
    entries_of: dict[int, PairEntry] = {}
    excluded_of: dict[int, ExcludedPair] = {}
    with contextlib.ExitStack() as stack:
        path = Path(datacube) if datacube is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cube = stack.enter_context(
            open_datacube(
                path if datacube is not None else path / "stack.nc",
                grid,
                pairs=n,
                flags=True,
                chunk_rows=rows_per_block,
                require_dates=datacube is not None,
            )
        )
        gridded_products = products_on_grid(products, resampling=resampling, grid=grid, order=order)
        for layer, (index, gridded) in enumerate(zip(order, gridded_products, strict=True)):
            entry, v_error = _pair_entry(gridded, cells)
            exclusion = _exclusion(entry, gridded.product.correction, threshold, bool(keep_uncorrected_pairs))
            cube.append(gridded, left_out=exclusion.reason if exclusion is not None else None)
            layer_of[index] = layer
            if exclusion is not None:
                log.warning("pair %s left out of the summary: %s", entry.pair_id, exclusion.reason)
                excluded_of[index] = exclusion
                continue
            entries_of[index] = _in_region(entry, gridded.v, v_error, given) if given is not None else entry
        entries = [entries_of[i] for i in sorted(entries_of)]
        excluded = [excluded_of[i] for i in sorted(excluded_of)]
        if not entries:
            raise _nothing_left(excluded, threshold)
        if min_count > len(entries):
            # Checked after the pairs are left out: else the summary is all NaN ("median speed nan").
            raise PairsLeftOut(
                "min_count",
                f"{min_count} is more than the {len(entries)} pair(s) left after {len(excluded)} of {n} were left out "
                f"({_counted(excluded, threshold)}), so no pixel could have that many valid maps; lower --min-count "
                f"to at most {len(entries)}, or keep the pairs in",
                tuple(excluded),
            )
        layers = [layer_of[i] for i in sorted(entries_of)]
        years: dict[int, list[int]] = {}
        for position, entry in enumerate(entries):
            if entry.mid_datetime is not None:
                years.setdefault(entry.mid_datetime.year, []).append(position)
        maps, year_maps = _block_statistics(cube, layers, years if len(years) > 1 else {}, min_count, rows_per_block)
        region = given or headline_region(
            grid.transform,
            grid.shape,
            crs,
            glacier_outlines=None,
            points=(),
            median_v=maps["median_v"],
            v_error=maps["v_error"],
        )
        if given is None:
            # The region comes from the medians: each pair's numbers over it, a layer at a time.
            entries = [
                _in_region(entry, cube.read_layer("v", layer), cube.read_layer("v_error", layer), region)
                for entry, layer in zip(entries, layers, strict=True)
            ]
    if not region.is_glacier:
        log.warning("headline numbers over %s; pass glacier_outlines or points_of_interest", region.name)
    summary = Summary(
        median_v=maps["median_v"],
        median_vx=maps["median_vx"],
        median_vy=maps["median_vy"],
        std_v=maps["std_v"],
        count=maps["count"],
        transform=grid.transform,
        crs=crs,
        entries=tuple(entries),
        min_count=int(min_count),
        v_error=maps["v_error"],
        vx_error=maps["vx_error"],
        vy_error=maps["vy_error"],
        excluded=tuple(excluded),
        max_pair_error_m_per_yr=threshold,
        region=region,
        points=cells,
        keep_uncorrected_pairs=bool(keep_uncorrected_pairs),
        years=_year_headlines(year_maps, region.mask),
    )
    log.info(
        "aggregated %d of %d products on a %dx%d grid in blocks of %d rows; %.1f%% of pixels have a median speed; %s",
        len(entries),
        n,
        *grid.shape,
        rows_per_block,
        100 * summary.valid_fraction,
        summary.headline(),
    )
    return summary


#: File name of each summary COG inside the output directory.
SUMMARY_FILE_NAMES: dict[str, str] = {name: f"summary_{name}.tif" for name, _, _ in SUMMARY_BANDS}


def _rounded(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 3)


def summary_tags(summary: Summary) -> dict[str, str]:
    """Dataset tags shared by every summary COG (all values strings).

    ``start_datetime`` is the first reference acquisition and ``end_datetime`` the last
    secondary acquisition; ``pairs`` is a JSON list with each pair's own ids, dates and
    baseline, so no map borrows another's dates.
    """
    pairs = [
        {
            "reference_id": e.reference_id,
            "secondary_id": e.secondary_id,
            "reference_datetime": format_datetime(e.reference_datetime),
            "secondary_datetime": format_datetime(e.secondary_datetime),
            "dt_days": e.dt_days,
            "median_v": _rounded(e.median_v),
            "v_error": _rounded(e.v_error),
            "region_median_v": _rounded(e.region_median_v),
            "region_v_error": _rounded(e.region_v_error),
        }
        for e in summary.entries
    ]
    excluded = [
        {"pair_id": x.pair_id, "cause": x.cause, "v_error": _rounded(x.entry.v_error), "reason": x.reason}
        for x in summary.excluded
    ]
    return {
        "product": "glacier-velocity summary",
        "start_datetime": format_datetime(summary.start_datetime),
        "end_datetime": format_datetime(summary.end_datetime),
        "product_count": str(summary.product_count),
        "product_ids": json.dumps([e.pair_id for e in summary.entries]),
        "pairs": json.dumps(pairs),
        "min_count": str(summary.min_count),
        "max_pair_error_m_per_yr": "none"
        if summary.max_pair_error_m_per_yr is None
        else f"{summary.max_pair_error_m_per_yr:g}",
        "excluded_pairs": json.dumps(excluded),
        "keep_uncorrected_pairs": str(summary.keep_uncorrected_pairs).lower(),
        "headline": summary.headline(),
        "headline_years": json.dumps(
            [
                {
                    "year": y.year,
                    "pair_count": y.pair_count,
                    "median_v": _rounded(y.headline_median_v),
                    "v_error": _rounded(y.headline_median_v_error),
                }
                for y in summary.years
            ]
        ),
        "headline_region": summary.region_name,
        "headline_median_v": str(_rounded(summary.headline_median_v)),
        "headline_median_v_error": str(_rounded(summary.headline_median_v_error)),
        "error_method": (
            "error of the median from the per-pair 1-sigma errors e_i of its n pairs: "
            "sqrt(sum e_i^2) / n for n <= 2, 1.2533 * harmonic_mean(e_i) / sqrt(n) for n >= 3"
        ),
        "software": "glacier-velocity",
        "software_version": __version__,
        "velocity_convention": "vx east, vy north, v magnitude, 1 yr = 365.25 days",
    }


def write_summary(summary: Summary, out_dir: str | os.PathLike[str]) -> SummaryFiles:
    """Write the summary bands as Cloud-Optimized GeoTIFFs, one file per band.

    Parameters
    ----------
    summary : Summary
        Result of :func:`aggregate_products`.
    out_dir : path-like
        Output directory, created if missing. Files are named ``summary_<band>.tif``.

    Returns
    -------
    SummaryFiles
        The paths of the eight COGs.

    Notes
    -----
    ``median_v``, ``median_vx``, ``median_vy``, ``std_v`` and the errors ``v_error``,
    ``vx_error``, ``vy_error`` are float32 in m/yr with NaN declared as nodata. ``count`` is uint16 with **no** nodata value: every pixel has a
    count, and 0 means that no pair has a valid speed there. Every file carries the tags of
    :func:`summary_tags` (time span, number of products, their ids and dates) and a
    ``description`` tag.
    """
    from ..io.cog import write_cog  # the COG writer is only needed when files are written

    out = output_directory(out_dir)
    tags = summary_tags(summary)
    paths: dict[str, Path] = {}
    for name, unit, description in SUMMARY_BANDS:
        path = out / SUMMARY_FILE_NAMES[name]
        band_tags = {**tags, "description": description, "units": unit}
        # The count is an integer band where 0 means "no valid map": it declares no nodata.
        integer = name == "count"
        paths[name] = write_cog(
            path,
            {name: summary.band(name)},
            summary.transform,
            summary.crs,
            tags=band_tags,
            band_units={name: unit},
            nodata=None if integer else float("nan"),
            dtype="uint16" if integer else "float32",
        )
    log.info("wrote %d summary COGs to %s", len(paths), out)
    return SummaryFiles(**paths)
