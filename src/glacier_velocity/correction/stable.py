"""The pair's displacement bias on stable ground (co-registration shift), estimated robustly.

Two acquisitions of Sentinel-2 are never perfectly co-registered: their geolocation differs by
a fraction of a pixel to about 2 px. Feature tracking measures that misregistration as motion
of the whole scene. Over ground that does not move the true displacement is zero, so the
displacement measured there is the pair's bias, which is then subtracted from every point.

Three ways to find stable ground (design record 0005):

- ``"outlines"``: valid points outside the (buffered) glacier outlines. The shift is the
  quality-weighted median of all of them: the outlines are the user's knowledge.
- ``"scene-classification"``: points whose chip lies on land that is neither snow/ice, water,
  cloud, shadow nor no data in both scenes (Sentinel-2 SCL, :mod:`.land`). Debris-covered ice
  reads as bare ground, so the shift is that of the *tightest* cluster of their displacements.
- ``"automatic-mode"`` (no outlines, no scene classification): the tightest cluster of all
  valid displacements. Stable rock and vegetation share one displacement, the bias, up to the
  matching noise; ice spreads over many, even where a glacier fills most of the area.

A cluster is grown around each peak of the 2-D ``(dx, dy)`` histogram; its tightness is its
point count over the product of its robust spreads (points per px^2). The tightest cluster with
at least ``min_stable_points`` points is stable ground, and the shift is the quality-weighted
(correlation peak) median of ``dx`` and ``dy`` over it. Nothing is corrected, and the result
carries a warning naming what to give (glacier outlines, a larger area), when: too few points
qualify; a second, distinct cluster is nearly as tight (ambiguous: which one is stable?); or the
shift exceeds ``max_shift_px``, beyond any documented Sentinel-2 misregistration. Never a
silent wrong correction: in the automatic mode, a shift shared by nearly every point is applied
with a caution that the whole area may be moving.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from affine import Affine
from scipy import ndimage

from ..domain.offsets import OffsetField
from ..domain.robust import nmad, weighted_median
from ..domain.velocity import displacement_to_velocity
from ..errors import GlacierVelocityWarning, InvalidParameter

log = logging.getLogger(__name__)

Method = Literal["outlines", "scene-classification", "automatic-mode", "none"]
METHODS: tuple[str, ...] = ("outlines", "scene-classification", "automatic-mode", "none")

#: Fewest stable points for a correction. The median of n points scatters by about
#: 1.25 sigma / sqrt(n) and the NMAD by about 1.17 sigma / sqrt(2n) relative: with 100 points,
#: 0.13 sigma and 8 %; with fewer, the error estimate itself becomes unreliable.
MIN_STABLE_POINTS = 100

#: Largest shift (px of 10 m) accepted as a misregistration. The documented Sentinel-2
#: multi-temporal registration is 12 m at 95.5 % of products before the Global Reference Image
#: (GRI, April 2021) and better than 5 m after it (ESA Data Quality Reports); before a
#: processing update of June 2016 it was 1.6 px on average with a standard deviation above
#: 0.9 px (Yan et al. 2018; the 2016 pair of ../shared measures 1.9 px). 2.5 px (25 m) keeps
#: all of that; a larger "misregistration" is ground taken for stable that moves (design 0005).
MAX_SHIFT_PX = 2.5

#: Histogram bin (px) of the cluster search; a power of two so that bin indices of shifted
#: data are exact.
MODE_BIN_PX = 0.125
#: Half-width (px) of the first window around a histogram peak, and the cluster half-width in
#: robust standard deviations (4 sigma keeps 99.99 % of normal scatter, so the NMAD is not
#: truncated), at most :data:`MODE_MAX_HALF_WIDTH_PX`: the matching noise of real pairs is
#: 0.05-0.15 px (design 0005), and a cluster must not grow into the slow ice next to it.
MODE_WINDOW_PX = 0.25
MODE_CLUSTER_SIGMAS = 4.0
MODE_MAX_HALF_WIDTH_PX = 0.5
#: Smallest sigma (px) a cluster's width and tightness are computed from, so that neither
#: collapses onto one bin.
MODE_MIN_SIGMA_PX = 0.05
#: Largest ratio of a cluster's two robust spreads for it to be stable ground. Stable ground
#: scatters round (matching noise; the real pair of design 0005: 0.10 x 0.12 px); ice whose
#: speed varies along the flow draws its cluster out along it (the demo's trunk: 0.2-0.6 x
#: 0.05 px), however many points it has.
MAX_ELONGATION = 2.0
_MODE_ITERATIONS = 3
#: Displacements further than this (px) from the field's median are not searched for peaks.
_MODE_REACH_PX = 16.0
#: Peaks lower than this share of the highest (smoothed histogram) are not grown into clusters,
#: and at most this many are.
_PEAK_FRACTION = 0.05
_MAX_PEAKS = 8
#: A second distinct round cluster at least this tight relative to the tightest makes the
#: choice ambiguous: stable ground cannot be told from a block of ice moving as one. (The
#: tightness of 100-200 points is uncertain by about 20 %: 2/3 is well beyond that.)
AMBIGUOUS_TIGHTNESS_RATIO = 2.0 / 3.0
#: In the automatic mode, a cluster holding at least this share of the valid points leaves
#: nothing that moves relative to it: the shift is applied with a caution (the area may move
#: as a whole).
WHOLE_AREA_FRACTION = 0.95


class StableGroundWarning(GlacierVelocityWarning):
    """The stable-ground correction was not applied (too few stable points, an ambiguous cluster,
    an implausible shift), or was applied with a caution (the whole area may be moving)."""


@dataclass(frozen=True)
class StableGroundStats:
    """Statistics of the velocities on stable ground, after the correction (if applied).

    Attributes
    ----------
    count : int
        Number of stable grid points.
    vx_median_m_per_yr, vy_median_m_per_yr : float
        Median east and north velocity (m/yr); about 0 after a correction.
    vx_nmad_m_per_yr, vy_nmad_m_per_yr : float
        Normalized median absolute deviation of east and north velocity (m/yr): their
        robust 1-sigma scatter. NaN when there are no stable points.
    """

    count: int
    vx_median_m_per_yr: float
    vy_median_m_per_yr: float
    vx_nmad_m_per_yr: float
    vy_nmad_m_per_yr: float


@dataclass(frozen=True)
class StableShift:
    """The displacement bias of one pair on stable ground, and how it was found.

    Attributes
    ----------
    dx_px, dy_px : float
        Bias subtracted from the pair (px of the reference image): ``dx`` along columns, ``dy``
        along rows (+ down), the convention of :class:`~glacier_velocity.tracking.OffsetField`.
        0 when no correction is applied (``method == "none"``).
    vx_m_per_yr, vy_m_per_yr : float
        The same bias as velocity (m/yr; ``vx`` east, ``vy`` north), subtracted from ``vx``
        and ``vy``.
    stable_count : int
        Number of stable grid points the bias was estimated from.
    method : {"outlines", "scene-classification", "automatic-mode", "none"}
        Stable ground from glacier outlines, from the scenes' classification (SCL), from the
        displacements alone, or no correction.
    stable : ndarray of bool, shape (n_rows, n_cols)
        The stable grid points.
    stats : StableGroundStats
        Stable-ground velocities after the correction (before it when none was applied).
    measured_dx_px, measured_dy_px : float
        The bias as measured, also when it was not applied (NaN when nothing was measurable).
    warning : str
        Why no correction was applied, naming what to give; when it was applied, a caution
        (the automatic mode found no motion relative to the shift: the area may move as a
        whole). Empty when there is nothing to say.
    """

    dx_px: float
    dy_px: float
    vx_m_per_yr: float
    vy_m_per_yr: float
    stable_count: int
    method: Method
    stable: np.ndarray
    stats: StableGroundStats
    measured_dx_px: float = float("nan")
    measured_dy_px: float = float("nan")
    warning: str = ""

    @property
    def applied(self) -> bool:
        """True when the bias was subtracted."""
        return self.method != "none"

    @property
    def automatic(self) -> bool:
        """True when stable ground was found from the displacements alone (no outlines, no SCL)."""
        return self.method == "automatic-mode"

    def as_properties(self) -> dict[str, Any]:
        """Flat ``name -> value`` record of the correction, the names used in COG tags and items."""
        s = self.stats
        return {
            "stable_shift_method": self.method,
            "stable_shift_applied": self.applied,
            "stable_shift_dx_px": self.dx_px,
            "stable_shift_dy_px": self.dy_px,
            "stable_shift_vx_m_per_yr": self.vx_m_per_yr,
            "stable_shift_vy_m_per_yr": self.vy_m_per_yr,
            "stable_count": self.stable_count,
            "stable_vx_median_m_per_yr": s.vx_median_m_per_yr,
            "stable_vy_median_m_per_yr": s.vy_median_m_per_yr,
            "stable_vx_nmad_m_per_yr": s.vx_nmad_m_per_yr,
            "stable_vy_nmad_m_per_yr": s.vy_nmad_m_per_yr,
            "stable_shift_warning": self.warning,
        }


def _stats(vx: np.ndarray, vy: np.ndarray) -> StableGroundStats:
    if vx.size == 0:
        nan = float("nan")
        return StableGroundStats(0, nan, nan, nan, nan)
    return StableGroundStats(
        count=int(vx.size),
        vx_median_m_per_yr=float(np.median(vx)),
        vy_median_m_per_yr=float(np.median(vy)),
        vx_nmad_m_per_yr=nmad(vx),
        vy_nmad_m_per_yr=nmad(vy),
    )


def _quality_weights(offsets: OffsetField) -> np.ndarray:
    """Per-point weight of the median: the correlation peak, clipped to 0.05..1 (NaN -> 0.05)."""
    peak = np.asarray(offsets.peak, dtype=np.float64)
    return np.clip(np.where(np.isfinite(peak), peak, 0.05), 0.05, 1.0)


def _histogram_peaks(dx: np.ndarray, dy: np.ndarray, w: np.ndarray) -> list[tuple[float, float]]:
    """Peaks of the weighted, lightly smoothed 2-D histogram of (dx, dy) (px), highest first.

    Bins are anchored on the field's median, so the peaks move exactly with the data.
    """
    anchor_x, anchor_y = float(np.median(dx)), float(np.median(dy))
    reach = int(round(_MODE_REACH_PX / MODE_BIN_PX))
    ix = np.floor((dx - anchor_x) / MODE_BIN_PX + 0.5).astype(np.int64)
    iy = np.floor((dy - anchor_y) / MODE_BIN_PX + 0.5).astype(np.int64)
    inside = (np.abs(ix) <= reach) & (np.abs(iy) <= reach)
    size = 2 * reach + 1
    hist = np.zeros((size, size))
    np.add.at(hist, (ix[inside] + reach, iy[inside] + reach), w[inside])
    hist = ndimage.gaussian_filter(hist, sigma=1.0, mode="constant")
    # A peak is the highest bin within +-2 bins (0.25 px) and not negligible.
    peak = (hist == ndimage.maximum_filter(hist, size=5, mode="constant")) & (hist >= _PEAK_FRACTION * hist.max())
    i, j = np.nonzero(peak)
    order = np.argsort(-hist[i, j], kind="stable")[:_MAX_PEAKS]
    return [(anchor_x + (i[k] - reach) * MODE_BIN_PX, anchor_y + (j[k] - reach) * MODE_BIN_PX) for k in order]


@dataclass(frozen=True)
class _Cluster:
    """Points gathered around one histogram peak."""

    member: np.ndarray  # bool over the candidate points
    dx_px: float
    dy_px: float
    sigma_x_px: float
    sigma_y_px: float

    @property
    def count(self) -> int:
        return int(self.member.sum())

    @property
    def tightness(self) -> float:
        """Points per px^2 of its wider robust spread: high for many points sharing one displacement."""
        return self.count / max(self.sigma_x_px, self.sigma_y_px) ** 2

    @property
    def round(self) -> bool:
        """Whether it scatters like stable ground (its spreads within :data:`MAX_ELONGATION`), not like flow."""
        wide, narrow = max(self.sigma_x_px, self.sigma_y_px), min(self.sigma_x_px, self.sigma_y_px)
        return wide <= MAX_ELONGATION * narrow

    def describe(self) -> str:
        return (
            f"({self.dx_px:+.2f}, {self.dy_px:+.2f}) px with {self.count} points "
            f"(spread {self.sigma_x_px:.2f}, {self.sigma_y_px:.2f} px)"
        )


def _grow_cluster(dx: np.ndarray, dy: np.ndarray, w: np.ndarray, start: tuple[float, float]) -> _Cluster:
    """The points around ``start``: a box of 4 robust sigma (at most 1 px) around their weighted median."""
    mx, my = start
    member = (np.abs(dx - mx) <= MODE_WINDOW_PX) & (np.abs(dy - my) <= MODE_WINDOW_PX)
    sx = sy = MODE_MIN_SIGMA_PX
    for _ in range(_MODE_ITERATIONS):
        if not member.any():
            break
        mx, my = weighted_median(dx[member], w[member]), weighted_median(dy[member], w[member])
        sx = max(nmad(dx[member]), MODE_MIN_SIGMA_PX)
        sy = max(nmad(dy[member]), MODE_MIN_SIGMA_PX)
        hx = min(MODE_CLUSTER_SIGMAS * sx, MODE_MAX_HALF_WIDTH_PX)
        hy = min(MODE_CLUSTER_SIGMAS * sy, MODE_MAX_HALF_WIDTH_PX)
        member = (np.abs(dx - mx) <= hx) & (np.abs(dy - my) <= hy)
    return _Cluster(member, mx, my, sx, sy)


def _clusters(dx: np.ndarray, dy: np.ndarray, w: np.ndarray) -> list[_Cluster]:
    """Distinct clusters of the displacements, tightest first.

    Two peaks of one broad cluster grow into nearly the same points: a cluster sharing more
    than half of its points with a tighter one is the same cluster and is dropped.
    """
    grown = sorted((_grow_cluster(dx, dy, w, peak) for peak in _histogram_peaks(dx, dy, w)), key=lambda c: -c.tightness)
    distinct: list[_Cluster] = []
    for cluster in grown:
        if cluster.count and all((cluster.member & kept.member).sum() <= 0.5 * cluster.count for kept in distinct):
            distinct.append(cluster)
    return distinct


@dataclass(frozen=True)
class _Choice:
    """The cluster taken as stable ground (None: none qualifies), a rival that makes it
    ambiguous, and the largest round cluster (to say how close a refusal was)."""

    best: _Cluster | None
    rival: _Cluster | None
    largest_round: _Cluster | None


def _choose_cluster(dx: np.ndarray, dy: np.ndarray, w: np.ndarray, min_points: int) -> _Choice:
    """The tightest round cluster with enough points, and a rival as tight that makes it ambiguous."""
    round_ = [c for c in _clusters(dx, dy, w) if c.round]
    largest = max(round_, key=lambda c: c.count, default=None)
    eligible = [c for c in round_ if c.count >= min_points]
    if not eligible:
        return _Choice(None, None, largest)
    best, *others = eligible
    rival = next((c for c in others if c.tightness >= AMBIGUOUS_TIGHTNESS_RATIO * best.tightness), None)
    return _Choice(best, rival, largest)


def _check_settings(dt_days: float, min_stable_points: int, max_shift_px: float) -> None:
    if not (isinstance(dt_days, (int, float)) and math.isfinite(dt_days) and dt_days > 0):
        raise InvalidParameter("dt_days", f"the baseline must be a positive number of days, got {dt_days!r}")
    if isinstance(min_stable_points, bool) or not isinstance(min_stable_points, int) or min_stable_points < 1:
        raise InvalidParameter("min_stable_points", f"must be a whole number >= 1, got {min_stable_points!r}")
    if not (isinstance(max_shift_px, (int, float)) and math.isfinite(max_shift_px) and max_shift_px > 0):
        raise InvalidParameter("max_shift", f"must be a positive number of pixels, got {max_shift_px!r}")


def _cluster_ground(
    offsets: OffsetField, candidates: np.ndarray, weights: np.ndarray, min_points: int, *, scl: bool
) -> tuple[np.ndarray, str, str]:
    """Stable ground as the tightest round cluster of the candidates' displacements.

    Returns the stable points, the warning that refuses the correction (``""``: none) and the
    caution that goes with an applied one (``""``: none).
    """
    pool = "on land that is not snow, ice, water or cloud" if scl else "among the tracked points"
    stable = np.zeros(offsets.shape, dtype=bool)
    n_candidates = int(candidates.sum())
    choice = _Choice(None, None, None)
    if n_candidates >= min_points:
        dx = np.asarray(offsets.dx, dtype=np.float64)[candidates]
        dy = np.asarray(offsets.dy, dtype=np.float64)[candidates]
        choice = _choose_cluster(dx, dy, weights[candidates], min_points)
    best, rival = choice.best, choice.rival
    if best is None:
        largest = choice.largest_round
        found = (
            f"the largest cluster that scatters like stable ground (round, not drawn out along a flow) is "
            f"{largest.describe()}"
            if largest is not None
            else "no cluster scatters like stable ground (round, not drawn out along a flow)"
        )
        warning = (
            f"stable ground not found {pool} ({n_candidates} points there): {found}, and at least {min_points} "
            f"points are needed: no stable-ground correction applied; {GIVE}"
        )
        return stable, warning, ""
    stable[candidates] = best.member
    if rival is not None:
        warning = (
            f"stable ground is ambiguous: two distinct clusters of displacement {pool}, {best.describe()} and "
            f"{rival.describe()}; either may be ice moving as one: no stable-ground correction applied; {GIVE}"
        )
        return stable, warning, ""
    valid = int(offsets.valid.sum())
    if not scl and best.count >= WHOLE_AREA_FRACTION * valid:
        caution = (
            f"every tracked point moves alike ({best.count} of {valid} in one cluster): the shift removed is the "
            f"pair's misregistration only if the area does not move as a whole; if it is mostly ice, {GIVE}"
        )
        return stable, "", caution
    return stable, "", ""


#: What a warning asks the user to give, when stable ground cannot be found or trusted.
GIVE = "give glacier outlines (glacier_outlines) or a larger area of interest with stable ground around the glacier"


def estimate_stable_shift(
    offsets: OffsetField,
    reference_transform: Affine,
    dt_days: float,
    *,
    ice: np.ndarray | None = None,
    land: np.ndarray | None = None,
    min_stable_points: int = MIN_STABLE_POINTS,
    max_shift_px: float = MAX_SHIFT_PX,
) -> StableShift:
    """Estimate the pair's displacement bias on stable ground.

    Parameters
    ----------
    offsets : OffsetField
        Raw displacements (px; ``dx`` along columns, ``dy`` along rows, + down) with their
        correlation peak, which weights the median.
    reference_transform : Affine
        Transform of the reference image (m per px); converts the shift to m/yr.
    dt_days : float
        Baseline (days, fractional, > 0).
    ice : ndarray of bool, shape offsets.shape, optional
        True at grid points on (buffered) glacier ice, e.g. from
        :func:`~glacier_velocity.correction.ice_mask_from_outlines`. Stable ground is then every
        valid point outside it (method ``"outlines"``).
    land : ndarray of bool, shape offsets.shape, optional
        True at grid points whose chip lies on land that is neither snow/ice, water, cloud nor
        shadow in both scenes (:func:`~glacier_velocity.correction.land.land_at_points`; with
        outlines, snow counts as land). With ``ice``, it takes the clouds and water away from
        the ground outside the outlines; alone, stable ground is the tightest displacement
        cluster among these points (method ``"scene-classification"``). With neither, the
        tightest cluster of all valid points (method ``"automatic-mode"``).
    min_stable_points : int
        Fewest stable points for a correction.
    max_shift_px : float
        Largest bias (px, magnitude) accepted as a misregistration (:data:`MAX_SHIFT_PX`).

    Returns
    -------
    StableShift
        The bias and the stable-ground statistics after subtracting it; ``method == "none"``
        with a ``warning`` (also issued as :class:`StableGroundWarning`) when not applied.

    Examples
    --------
    >>> from glacier_velocity.tracking import OffsetField
    >>> n = np.ones((20, 20), dtype=np.float32)
    >>> field = OffsetField(np.arange(20.0), np.arange(20.0), -0.5 * n, 1.25 * n, n, 5 * n, "demo")
    >>> shift = estimate_stable_shift(field, Affine(10, 0, 0, 0, -10, 0), 10.0, land=n > 0)
    >>> shift.method, shift.dx_px, shift.dy_px, round(shift.vy_m_per_yr, 2)
    ('scene-classification', -0.5, 1.25, -456.56)
    """
    _check_settings(dt_days, min_stable_points, max_shift_px)
    for name, mask in (("outlines", ice), ("scl", land)):
        if mask is not None and np.shape(mask) != offsets.shape:
            raise InvalidParameter(name, f"the mask has shape {np.shape(mask)}, the grid {offsets.shape}")
    valid = offsets.valid
    dx_all = np.asarray(offsets.dx, dtype=np.float64)
    dy_all = np.asarray(offsets.dy, dtype=np.float64)
    weights = _quality_weights(offsets)
    candidates = valid if land is None else valid & np.asarray(land, dtype=bool)
    method: Method
    if ice is not None:
        method = "outlines"
        stable = candidates & ~np.asarray(ice, dtype=bool)
        count = int(stable.sum())
        warning = caution = ""
        if count < min_stable_points:
            clear = "" if land is None else " on land clear of cloud and water"
            warning = (
                f"only {count} stable points outside the glacier outlines{clear} (at least {min_stable_points} "
                f"needed): no stable-ground correction applied; {GIVE}"
            )
    else:
        method = "automatic-mode" if land is None else "scene-classification"
        stable, warning, caution = _cluster_ground(
            offsets, candidates, weights, min_stable_points, scl=land is not None
        )
        count = int(stable.sum())
    dx, dy, w = dx_all[stable], dy_all[stable], weights[stable]
    measured = (weighted_median(dx, w), weighted_median(dy, w)) if count else (float("nan"), float("nan"))
    if not warning and math.hypot(*measured) > max_shift_px:
        warning = (
            f"the stable-ground shift ({measured[0]:+.2f}, {measured[1]:+.2f}) px, {math.hypot(*measured):.2f} px, "
            f"exceeds {max_shift_px:g} px, more than a Sentinel-2 misregistration: the ground taken as stable "
            f"moves (ice filling the area?): no stable-ground correction applied; {GIVE}"
        )
    if warning:
        warnings.warn(warning, StableGroundWarning, stacklevel=2)
        log.warning("stable-ground correction: %s", warning)
        vx, vy = displacement_to_velocity(dx, dy, reference_transform, dt_days)
        return StableShift(0.0, 0.0, 0.0, 0.0, count, "none", stable, _stats(vx, vy), measured[0], measured[1], warning)
    if caution:
        warnings.warn(caution, StableGroundWarning, stacklevel=2)
        log.warning("stable-ground correction: %s", caution)

    shift_vx, shift_vy = displacement_to_velocity(measured[0], measured[1], reference_transform, dt_days)
    vx, vy = displacement_to_velocity(dx - measured[0], dy - measured[1], reference_transform, dt_days)
    stats = _stats(vx, vy)
    log.info(
        "stable-ground shift (%s, %d points): dx %.3f px, dy %.3f px = vx %.1f, vy %.1f m/yr; "
        "corrected NMAD vx %.1f, vy %.1f m/yr",
        method,
        count,
        measured[0],
        measured[1],
        shift_vx,
        shift_vy,
        stats.vx_nmad_m_per_yr,
        stats.vy_nmad_m_per_yr,
    )
    return StableShift(
        dx_px=measured[0],
        dy_px=measured[1],
        vx_m_per_yr=float(shift_vx),
        vy_m_per_yr=float(shift_vy),
        stable_count=count,
        method=method,
        stable=stable,
        stats=stats,
        measured_dx_px=measured[0],
        measured_dy_px=measured[1],
        warning=caution,
    )
