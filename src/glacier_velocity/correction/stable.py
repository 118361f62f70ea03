"""The pair's displacement bias on stable ground (co-registration shift), estimated robustly.

Two acquisitions of Sentinel-2 are never perfectly co-registered: their geolocation differs by
a fraction of a pixel to about 2 px. Feature tracking measures that misregistration as motion
of the whole scene. Over ground that does not move the true displacement is zero, so the
displacement measured there is the pair's bias, which is then subtracted from every point.

Two ways to find stable ground:

- ``"outlines"``: valid points outside the (buffered) glacier outlines.
- ``"automatic-mode"`` (no outlines): in a glacier scene most tracked points lie on rock,
  moraine and vegetation that do not move, and they share one displacement (the bias), while
  ice spreads over many. The dominant 2-D mode of the ``(dx, dy)`` field is taken as the bias,
  and the points clustered around it as stable ground. It fails when ice covers most of the
  scene or moves by less than the noise; the product says the estimate was automatic.

In both, the shift is the quality-weighted (correlation peak) median of ``dx`` and ``dy`` over
stable ground. With fewer than ``min_stable_points`` stable points, or a shift larger than
``max_shift_px`` (not a misregistration), nothing is corrected and the result carries a
warning: never a silent wrong correction.
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

Method = Literal["outlines", "automatic-mode", "none"]
METHODS: tuple[str, ...] = ("outlines", "automatic-mode", "none")

#: Fewest stable points for a correction. The median of n points scatters by about
#: 1.25 sigma / sqrt(n) and the NMAD by about 1.17 sigma / sqrt(2n) relative: with 100 points,
#: 0.13 sigma and 8 %; with fewer, the error estimate itself becomes unreliable.
MIN_STABLE_POINTS = 100

#: Largest shift (px) accepted as a misregistration. Sentinel-2 inter-orbit misregistration is
#: up to about 2 px (the 2016 L1C pair of ../shared measures 1.9 px); a larger "bias" means the
#: stable ground was not stable (e.g. a glacier taken for the dominant mode).
MAX_SHIFT_PX = 5.0

#: Histogram bin (px) of the automatic mode search; a power of two so that bin indices of
#: shifted data are exact.
MODE_BIN_PX = 0.125
#: Half-width (px) of the first window around the mode, and the cluster half-width in robust
#: standard deviations (4 sigma keeps 99.99 % of normal scatter, so the NMAD is not truncated).
MODE_WINDOW_PX = 1.0
MODE_CLUSTER_SIGMAS = 4.0
#: Smallest sigma (px) the cluster width is computed from, so it cannot collapse onto one bin.
MODE_MIN_SIGMA_PX = 0.05
_MODE_ITERATIONS = 3
#: Displacements further than this (px) from the field's median are not searched for the mode.
_MODE_REACH_PX = 16.0


class StableGroundWarning(GlacierVelocityWarning):
    """The stable-ground correction was not applied (too few stable points, implausible shift)."""


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
    method : {"outlines", "automatic-mode", "none"}
        Stable ground from glacier outlines, from the automatic mode search, or no correction.
    stable : ndarray of bool, shape (n_rows, n_cols)
        The stable grid points.
    stats : StableGroundStats
        Stable-ground velocities after the correction (before it when none was applied).
    measured_dx_px, measured_dy_px : float
        The bias as measured, also when it was not applied (NaN when nothing was measurable).
    warning : str
        Why no correction was applied; empty when it was.
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
        """True when stable ground was found without outlines (the automatic mode search)."""
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


def _dominant_mode(dx: np.ndarray, dy: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Peak of the weighted, lightly smoothed 2-D histogram of (dx, dy) (px).

    Bins are anchored on the field's median, so the result moves exactly with the data.
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
    i, j = np.unravel_index(int(np.argmax(hist)), hist.shape)
    return anchor_x + (i - reach) * MODE_BIN_PX, anchor_y + (j - reach) * MODE_BIN_PX


def _mode_cluster(dx: np.ndarray, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Points clustered around the dominant mode: a box of 4 robust sigma around its median."""
    mx, my = _dominant_mode(dx, dy, w)
    member = (np.abs(dx - mx) <= MODE_WINDOW_PX) & (np.abs(dy - my) <= MODE_WINDOW_PX)
    for _ in range(_MODE_ITERATIONS):
        if not member.any():
            break
        mx, my = weighted_median(dx[member], w[member]), weighted_median(dy[member], w[member])
        sx = max(nmad(dx[member]), MODE_MIN_SIGMA_PX)
        sy = max(nmad(dy[member]), MODE_MIN_SIGMA_PX)
        member = (np.abs(dx - mx) <= MODE_CLUSTER_SIGMAS * sx) & (np.abs(dy - my) <= MODE_CLUSTER_SIGMAS * sy)
    return member


def _check_settings(dt_days: float, min_stable_points: int, max_shift_px: float) -> None:
    if not (isinstance(dt_days, (int, float)) and math.isfinite(dt_days) and dt_days > 0):
        raise InvalidParameter("dt_days", f"the baseline must be a positive number of days, got {dt_days!r}")
    if isinstance(min_stable_points, bool) or not isinstance(min_stable_points, int) or min_stable_points < 1:
        raise InvalidParameter("min_stable_points", f"must be a whole number >= 1, got {min_stable_points!r}")
    if not (isinstance(max_shift_px, (int, float)) and math.isfinite(max_shift_px) and max_shift_px > 0):
        raise InvalidParameter("max_shift", f"must be a positive number of pixels, got {max_shift_px!r}")


def estimate_stable_shift(
    offsets: OffsetField,
    reference_transform: Affine,
    dt_days: float,
    *,
    ice: np.ndarray | None = None,
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
        valid point outside it (method ``"outlines"``). Without it, the automatic mode search
        (method ``"automatic-mode"``).
    min_stable_points : int
        Fewest stable points for a correction.
    max_shift_px : float
        Largest bias (px, magnitude) accepted as a misregistration.

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
    >>> shift = estimate_stable_shift(field, Affine(10, 0, 0, 0, -10, 0), 10.0)
    >>> shift.method, shift.dx_px, shift.dy_px, round(shift.vy_m_per_yr, 2)
    ('automatic-mode', -0.5, 1.25, -456.56)
    """
    _check_settings(dt_days, min_stable_points, max_shift_px)
    if ice is not None and np.shape(ice) != offsets.shape:
        raise InvalidParameter("outlines", f"the ice mask has shape {np.shape(ice)}, the grid {offsets.shape}")
    valid = offsets.valid
    dx_all = np.asarray(offsets.dx, dtype=np.float64)
    dy_all = np.asarray(offsets.dy, dtype=np.float64)
    weights = _quality_weights(offsets)
    method: Method
    if ice is not None:
        method = "outlines"
        stable = valid & ~np.asarray(ice, dtype=bool)
    else:
        method = "automatic-mode"
        stable = np.zeros(offsets.shape, dtype=bool)
        if valid.sum() >= min_stable_points:
            stable[valid] = _mode_cluster(dx_all[valid], dy_all[valid], weights[valid])
    count = int(stable.sum())
    dx, dy, w = dx_all[stable], dy_all[stable], weights[stable]

    measured = (weighted_median(dx, w), weighted_median(dy, w)) if count else (float("nan"), float("nan"))
    warning = ""
    if count < min_stable_points:
        where = "outside the glacier outlines" if method == "outlines" else "in the dominant displacement mode"
        warning = (
            f"only {count} stable points {where} (at least {min_stable_points} needed): "
            "no stable-ground correction applied; give glacier outlines or a larger area with stable ground"
        )
    elif math.hypot(*measured) > max_shift_px:
        warning = (
            f"the stable-ground shift ({measured[0]:.2f}, {measured[1]:.2f}) px exceeds {max_shift_px:g} px, "
            "more than a misregistration: no correction applied; check the glacier outlines"
        )
    if warning:
        warnings.warn(warning, StableGroundWarning, stacklevel=2)
        log.warning("stable-ground correction: %s", warning)
        vx, vy = displacement_to_velocity(dx, dy, reference_transform, dt_days)
        return StableShift(0.0, 0.0, 0.0, 0.0, count, "none", stable, _stats(vx, vy), measured[0], measured[1], warning)

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
    )
