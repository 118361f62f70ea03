"""How precise and how complete a tracker's field is on real images.

Three yardsticks, used by the benchmark (``benchmarks/bench_tracking.py``) and the real-pair tests:

- :func:`stable_scatter`, without any reference: on ground that does not move, what a tracker
  measures between two scenes is their misregistration, which varies slowly across a scene
  (attitude and terrain errors). Removing a low-order 2-D polynomial fitted to the field leaves
  the tracker's own scatter, plus whatever the polynomial cannot follow.
- :func:`tie_point_agreement`: against independent tie points of the same pair (AROSICS'
  co-registration points of the real Sentinel-2 pair, ``tests/data/arosics-tie-points-t33uuu.csv``).
- :func:`compare_with_reference`: against another tool's velocity map of the same pair (autoRIFT's
  and CARST's of Yahtse Glacier): how much of a fast region is found and how fast, the scatter
  on ground the other tool reads as slow, and the share of its area that is measured.

Every comparison takes, at each reference point, the value of the nearest grid point: one
measured match, never an interpolation or an average of several.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
from affine import Affine

from ..domain.offsets import OffsetField
from ..domain.robust import nmad
from ..errors import InvalidParameter


@dataclass(frozen=True)
class StableScatter:
    """Residual scatter of an offset field about a smooth fit (px).

    Attributes
    ----------
    nmad_px : float
        ``sqrt(nmad(rx)^2 + nmad(ry)^2)``: robust scatter of the residual vector (px).
    p90_px : float
        90th percentile of the residual vector's length (px).
    valid_fraction : float
        Valid points over all grid points (0..1).
    points : int
        Valid points used.
    """

    nmad_px: float
    p90_px: float
    valid_fraction: float
    points: int


def _design(rows: np.ndarray, cols: np.ndarray, degree: int, centre: tuple[float, float], scale: float) -> np.ndarray:
    y = (rows - centre[0]) / scale
    x = (cols - centre[1]) / scale
    return np.stack([x**i * y**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)


def stable_scatter(field: OffsetField, degree: int = 3, clip: float = 4.0) -> StableScatter:
    """Scatter of ``field`` (stable ground) about a robust polynomial fit of ``degree``.

    Each component is fitted by least squares, points beyond ``clip`` NMAD of the residual
    are left out, and the fit is repeated (three times) so that outliers do not bend it; the
    figures are computed over *all* valid points, outliers included.

    Parameters
    ----------
    field : OffsetField
        Offsets (px) of a pair over ground that does not move.
    degree : int
        Polynomial degree in row and column (3: 10 terms).
    clip : float
        Outlier cut for the fit, in NMAD.
    """
    if not (isinstance(degree, int) and 0 <= degree <= 6):
        raise InvalidParameter("degree", f"must be a whole number from 0 to 6, got {degree!r}")
    rows, cols = np.meshgrid(np.asarray(field.rows, float), np.asarray(field.cols, float), indexing="ij")
    valid = field.valid
    n_terms = (degree + 1) * (degree + 2) // 2
    if valid.sum() < 3 * n_terms:
        raise InvalidParameter(
            "field", f"only {int(valid.sum())} valid points; a degree-{degree} fit needs {3 * n_terms}"
        )
    centre = (float(rows[valid].mean()), float(cols[valid].mean()))
    scale = float(max(np.ptp(rows), np.ptp(cols), 1.0)) / 2.0
    a = _design(rows[valid], cols[valid], degree, centre, scale)
    residuals = []
    for comp in (field.dx, field.dy):
        values = comp[valid].astype(np.float64)
        keep = np.ones(values.shape, dtype=bool)
        for _ in range(3):
            coef, *_ = np.linalg.lstsq(a[keep], values[keep], rcond=None)
            res = values - a @ coef
            keep = np.abs(res - np.median(res[keep])) <= clip * max(nmad(res[keep]), 1e-6)
        residuals.append(res)
    rx, ry = residuals
    return StableScatter(
        nmad_px=float(np.hypot(nmad(rx), nmad(ry))),
        p90_px=float(np.percentile(np.hypot(rx, ry), 90)),
        valid_fraction=float(valid.mean()),
        points=int(valid.sum()),
    )


@dataclass(frozen=True)
class TiePoints:
    """Independent measurements of a pair's displacement at scattered map positions.

    Attributes
    ----------
    x, y : ndarray, shape (n,)
        Map coordinates of the points (m, the pair's CRS).
    dx, dy : ndarray, shape (n,)
        Displacement (px) from the reference to the secondary scene, in the tracking
        convention: ``dx`` along columns, ``dy`` along rows (down).
    """

    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray
    dy: np.ndarray


def read_tie_points(path: str | os.PathLike[str]) -> TiePoints:
    """Tie points from a CSV with columns ``x_m, y_m, dx_px, dy_px`` (lines starting with # are comments)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    columns = {name: np.array([float(r[name]) for r in rows]) for name in ("x_m", "y_m", "dx_px", "dy_px")}
    return TiePoints(x=columns["x_m"], y=columns["y_m"], dx=columns["dx_px"], dy=columns["dy_px"])


def _nearest_points(
    rows: np.ndarray, cols: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the grid point nearest to each map position, and whether it lies on the grid.

    ``rows``/``cols`` are pixel-centre coordinates of the image whose affine ``transform`` is
    given (an OffsetField's grid, or a velocity grid's own pixels with ``rows = arange(n)``).
    """
    col, row = ~transform @ (np.asarray(x, float), np.asarray(y, float))
    gi = np.rint((row - 0.5 - rows[0]) / (rows[1] - rows[0])).astype(int)
    gj = np.rint((col - 0.5 - cols[0]) / (cols[1] - cols[0])).astype(int)
    inside = (gi >= 0) & (gi < len(rows)) & (gj >= 0) & (gj < len(cols))
    return np.clip(gi, 0, len(rows) - 1), np.clip(gj, 0, len(cols) - 1), inside


@dataclass(frozen=True)
class TieAgreement:
    """A field against tie points (px): the length of the difference vector at each covered point.

    Attributes
    ----------
    rms_px, median_px, p90_px : float
        Root mean square, median and 90th percentile of the difference's length (px).
    covered : float
        Share of the tie points whose nearest grid point has a valid offset (0..1).
    points : int
        Tie points compared (covered).
    """

    rms_px: float
    median_px: float
    p90_px: float
    covered: float
    points: int


def tie_point_agreement(field: OffsetField, transform: Affine, ties: TiePoints) -> TieAgreement:
    """Compare ``field`` with ``ties`` at the grid point nearest to each tie point.

    Parameters
    ----------
    field : OffsetField
        Offsets (px) of the pair, on the grid of the reference image.
    transform : Affine
        Affine transform of the reference image the field was measured on.
    ties : TiePoints
        Displacements of the same pair (px, same direction: reference to secondary).
    """
    gi, gj, inside = _nearest_points(np.asarray(field.rows), np.asarray(field.cols), transform, ties.x, ties.y)
    dx = np.where(inside, field.dx[gi, gj], np.nan)
    dy = np.where(inside, field.dy[gi, gj], np.nan)
    covered = np.isfinite(dx) & np.isfinite(dy)
    error = np.hypot(dx - ties.dx, dy - ties.dy)[covered]
    if error.size == 0:
        raise InvalidParameter("field", "no tie point falls on a valid grid point")
    return TieAgreement(
        rms_px=float(np.sqrt(np.mean(error**2))),
        median_px=float(np.median(error)),
        p90_px=float(np.percentile(error, 90)),
        covered=float(covered.mean()),
        points=int(covered.sum()),
    )


@dataclass(frozen=True)
class ReferenceAgreement:
    """A velocity map against another tool's map of the same pair (m/yr).

    Attributes
    ----------
    box_points : int
        Grid points of the map inside the box.
    fast_share : float
        Share of them that are valid and faster than the fast threshold (0..1).
    fast_median_m_per_yr : float
        Median speed of those fast points (NaN when there is none).
    slow_points, slow_valid : int
        Reference points slower than the slow threshold; how many of them the map measures.
    nmad_vx_m_per_yr, nmad_vy_m_per_yr : float
        NMAD of the map's ``vx`` and ``vy`` on those points (m/yr): its scatter on slow ground.
    p90_speed_slow_m_per_yr : float
        90th percentile of the map's speed on those points (m/yr).
    valid_share : float
        Share of the reference's valid points where the map is valid too (0..1).
    """

    box_points: int
    fast_share: float
    fast_median_m_per_yr: float
    slow_points: int
    slow_valid: int
    nmad_vx_m_per_yr: float
    nmad_vy_m_per_yr: float
    p90_speed_slow_m_per_yr: float
    valid_share: float


def _pixel_centres(vx: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of every pixel centre of a north-up grid (x per column, y per row)."""
    xs = transform.c + transform.a * (np.arange(vx.shape[1]) + 0.5)
    ys = transform.f + transform.e * (np.arange(vx.shape[0]) + 0.5)
    return xs, ys


def compare_with_reference(
    vx: np.ndarray,
    vy: np.ndarray,
    transform: Affine,
    reference_vx: np.ndarray,
    reference_vy: np.ndarray,
    reference_transform: Affine,
    *,
    box: tuple[float, float, float, float],
    fast_m_per_yr: float = 3000.0,
    slow_m_per_yr: float = 100.0,
) -> ReferenceAgreement:
    """Compare a velocity map with a reference map of the same pair (both north-up, same CRS).

    Parameters
    ----------
    vx, vy : ndarray, shape (rows, cols)
        East and north velocity (m/yr) of the map; NaN where no match.
    transform : Affine
        Its grid's transform (pixel centres are the measurement points).
    reference_vx, reference_vy, reference_transform
        The reference map, likewise; NaN where it has no value.
    box : (left, bottom, right, top)
        Map coordinates (m) of the region whose fast points are counted.
    fast_m_per_yr, slow_m_per_yr : float
        Speeds (m/yr) above which a point of the box is fast, and below which a reference
        point is slow ground.
    """
    v = np.hypot(vx, vy)
    xs, ys = _pixel_centres(vx, transform)
    left, bottom, right, top = box
    in_box = ((xs >= left) & (xs <= right))[None, :] & ((ys >= bottom) & (ys <= top))[:, None]
    fast = in_box & (v > fast_m_per_yr)
    rxs, rys = _pixel_centres(reference_vx, reference_transform)
    rx, ry = np.meshgrid(rxs, rys)
    pixels = (np.arange(vx.shape[0], dtype=float), np.arange(vx.shape[1], dtype=float))
    gi, gj, inside = _nearest_points(*pixels, transform, rx, ry)
    mvx = np.where(inside, vx[gi, gj], np.nan)
    mvy = np.where(inside, vy[gi, gj], np.nan)
    known = np.isfinite(reference_vx) & np.isfinite(reference_vy)
    slow = known & (np.hypot(reference_vx, reference_vy) < slow_m_per_yr)
    measured = slow & np.isfinite(mvx) & np.isfinite(mvy)
    return ReferenceAgreement(
        box_points=int(in_box.sum()),
        fast_share=float(fast.sum() / max(int(in_box.sum()), 1)),
        fast_median_m_per_yr=float(np.median(v[fast])) if fast.any() else float("nan"),
        slow_points=int(slow.sum()),
        slow_valid=int(measured.sum()),
        nmad_vx_m_per_yr=nmad(mvx[measured]),
        nmad_vy_m_per_yr=nmad(mvy[measured]),
        p90_speed_slow_m_per_yr=float(np.percentile(np.hypot(mvx, mvy)[measured], 90)) if measured.any() else np.nan,
        valid_share=float((np.isfinite(mvx) & known).sum() / max(int(known.sum()), 1)),
    )
