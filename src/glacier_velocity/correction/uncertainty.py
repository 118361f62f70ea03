"""1-sigma velocity errors from the scatter of the corrected stable ground.

After the stable-ground correction, the velocity of ground that does not move should be 0;
what remains is the pair's measurement error (matching noise, the part of the misregistration
that varies across the scene, residual clouds and shadows). Its robust spread, the NMAD, is the
1-sigma error of ``vx`` and ``vy`` at every point, as in ITS_LIVE's ``vx_error`` / ``vy_error``
(there from stable-surface scatter too). ``v_error`` follows by linear propagation:

    v_error = sqrt((vx * vx_error)^2 + (vy * vy_error)^2) / v

which holds where ``v`` is well above the error (moving ice); on stable ground ``v`` is the
length of a noise vector and is biased high (a Rayleigh-like variable), so ``v_error`` there is
the 1-sigma of each component, not of ``v``. Where ``v == 0`` it is the RMS of the two errors.

When the tracker gives a per-point error of each offset (``OffsetField.dx_error``, from the
quality of each match: its peak sharpness and chip size, see docs/design/0007), the error
varies from point to point as the matches' quality does, and the pair's stable ground sets its
level: ``vx_error = point_vx * NMAD / median(point_vx on stable ground)``, so that its typical
value on stable ground is the NMAD, as before. (The tracker's errors are calibrated on real
pairs; on a synthetic pair, whose matches are far better, they are 4 times too large, and the
scale brings them down.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

from ..domain.offsets import OffsetField
from ..domain.velocity import DAYS_PER_YEAR
from .stable import StableShift


@dataclass(frozen=True)
class VelocityErrors:
    """Per-point 1-sigma errors of a velocity map (m/yr), float32, NaN where no velocity.

    Attributes
    ----------
    vx_error, vy_error, v_error : ndarray of float32, shape (rows, cols)
        1-sigma errors of the east and north velocity and of the speed (m/yr).
    vx_sigma_m_per_yr, vy_sigma_m_per_yr : float
        The stable-ground NMAD behind them (m/yr); NaN when it could not be measured.
    """

    vx_error: np.ndarray
    vy_error: np.ndarray
    v_error: np.ndarray
    vx_sigma_m_per_yr: float
    vy_sigma_m_per_yr: float


def _with_stable_scatter(point: np.ndarray, nmad: float, stable: np.ndarray) -> np.ndarray:
    """``point`` (m/yr) scaled so that its median over ``stable`` is ``nmad``."""
    typical = float(np.nanmedian(point[stable])) if stable.any() else float("nan")
    if not (np.isfinite(typical) and typical > 0):
        return np.full(point.shape, nmad)
    return point * (nmad / typical)


def speed_error(vx: np.ndarray, vy: np.ndarray, vx_error: np.ndarray, vy_error: np.ndarray) -> np.ndarray:
    """Linear propagation of component errors to the speed (m/yr); RMS of the two where v is 0."""
    vx = np.asarray(vx, dtype=np.float64)
    vy = np.asarray(vy, dtype=np.float64)
    ex = np.asarray(vx_error, dtype=np.float64)
    ey = np.asarray(vy_error, dtype=np.float64)
    v = np.hypot(vx, vy)
    with np.errstate(invalid="ignore", divide="ignore"):
        propagated = np.hypot(vx * ex, vy * ey) / v
    rms = np.sqrt(0.5 * (ex * ex + ey * ey))
    return np.where(v > 0, propagated, rms).astype(np.float32)


def point_errors_m_per_yr(
    offsets: OffsetField, reference_transform: Affine, dt_days: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The tracker's per-point 1-sigma offset errors as east and north velocity errors (m/yr).

    The two offset components' errors are independent; through the affine's linear part
    ``A``: ``var(vx) = (a ex)^2 + (b ey)^2``, ``var(vy) = (d ex)^2 + (e ey)^2``, times
    ``365.25 / dt_days``. None when the tracker gives no per-point errors.
    """
    if offsets.dx_error is None or offsets.dy_error is None:
        return None
    t = reference_transform
    per_year = DAYS_PER_YEAR / dt_days
    ex = np.asarray(offsets.dx_error, dtype=np.float64)
    ey = np.asarray(offsets.dy_error, dtype=np.float64)
    return np.hypot(t.a * ex, t.b * ey) * per_year, np.hypot(t.d * ex, t.e * ey) * per_year


def estimate_errors(
    vx: np.ndarray, vy: np.ndarray, shift: StableShift, point_errors: tuple[np.ndarray, np.ndarray] | None = None
) -> VelocityErrors:
    """Errors of a corrected velocity map from its stable-ground scatter.

    Parameters
    ----------
    vx, vy : ndarray, shape (rows, cols)
        Corrected east and north velocity (m/yr), NaN where unknown.
    shift : StableShift
        The pair's correction; its ``stats`` hold the NMAD of the corrected stable ground.
    point_errors : (ndarray, ndarray), optional
        The tracker's per-point errors of ``vx`` and ``vy`` (m/yr, :func:`point_errors_m_per_yr`).

    Returns
    -------
    VelocityErrors
        Without ``point_errors``: ``vx_error = NMAD(vx on stable ground)`` and likewise for
        ``vy``, at every point with a velocity. With them: each point's own error, scaled so
        that its median on the stable ground is that NMAD (module docstring).
        ``v_error`` propagated. All NaN when no correction was applied: an error measured on too
        few points, or on ground that moved, would be a wrong error.
    """
    vx = np.asarray(vx)
    vy = np.asarray(vy)
    known = np.isfinite(vx) & np.isfinite(vy)
    if shift.applied:
        sx, sy = shift.stats.vx_nmad_m_per_yr, shift.stats.vy_nmad_m_per_yr
    else:
        sx = sy = float("nan")
    if point_errors is None or not shift.applied:
        vx_error = np.where(known, sx, np.nan).astype(np.float32)
        vy_error = np.where(known, sy, np.nan).astype(np.float32)
    else:
        vx_error, vy_error = (
            np.where(known, _with_stable_scatter(point, nmad, shift.stable & known), np.nan).astype(np.float32)
            for point, nmad in zip(point_errors, (sx, sy), strict=True)
        )
    v_error = np.where(known, speed_error(vx, vy, vx_error, vy_error), np.nan).astype(np.float32)
    return VelocityErrors(vx_error, vy_error, v_error, float(sx), float(sy))
