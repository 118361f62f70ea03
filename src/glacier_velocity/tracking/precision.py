"""Precision of an offset field over stable ground, without a reference tool.

On ground that does not move, what a tracker measures between two scenes is their
misregistration, which varies slowly across a scene (attitude and terrain errors). Removing
a low-order 2-D polynomial fitted to the field leaves the tracker's own scatter, plus whatever
the polynomial cannot follow. Comparing engines on the same pair and the same fit is fair,
and needs no independent tie points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
