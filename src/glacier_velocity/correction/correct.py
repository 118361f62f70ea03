"""The correction stage of one pair: stable ground -> shift -> corrected velocity -> errors."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from affine import Affine

from ..domain.offsets import OffsetField
from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct, displacement_to_velocity, grid_transform
from .outlines import OUTLINE_BUFFER_M, ice_mask_from_outlines
from .stable import MAX_SHIFT_PX, MIN_STABLE_POINTS, StableShift, estimate_stable_shift
from .uncertainty import VelocityErrors, estimate_errors, point_errors_m_per_yr


@dataclass(frozen=True)
class CorrectedVelocity:
    """Velocity of one pair after the stable-ground correction, with its errors.

    Attributes
    ----------
    vx, vy, v : ndarray of float32, shape (rows, cols)
        Corrected east and north velocity and speed (m/yr), NaN where no match. The raw
        displacements ``dx``, ``dy`` (px) are not changed: they stay in the OffsetField.
    errors : VelocityErrors
        1-sigma errors ``vx_error``, ``vy_error``, ``v_error`` (m/yr).
    shift : StableShift
        The bias that was subtracted, how it was found and the stable-ground statistics.
    """

    vx: np.ndarray
    vy: np.ndarray
    v: np.ndarray
    errors: VelocityErrors
    shift: StableShift


def apply_stable_shift(vx: np.ndarray, vy: np.ndarray, shift: StableShift) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subtract the stable-ground bias from a velocity map.

    Parameters
    ----------
    vx, vy : ndarray, shape (rows, cols)
        Uncorrected east and north velocity (m/yr).
    shift : StableShift
        The bias; nothing changes when it was not applied (``shift.method == "none"``).

    Returns
    -------
    vx, vy, v : ndarray of float32
        ``vx - shift.vx_m_per_yr``, ``vy - shift.vy_m_per_yr`` and their magnitude (m/yr).
        The conversion px -> m/yr is linear, so this equals converting ``dx - shift.dx_px``,
        ``dy - shift.dy_px``.
    """
    cx = np.asarray(vx, dtype=np.float64) - shift.vx_m_per_yr
    cy = np.asarray(vy, dtype=np.float64) - shift.vy_m_per_yr
    return cx.astype(np.float32), cy.astype(np.float32), np.hypot(cx, cy).astype(np.float32)


def correct_velocity(
    offsets: OffsetField,
    reference_transform: Affine,
    crs: str,
    dt_days: float,
    *,
    glacier_outlines: GlacierOutlines | None = None,
    outline_buffer_m: float = OUTLINE_BUFFER_M,
    land: np.ndarray | None = None,
    min_stable_points: int = MIN_STABLE_POINTS,
    max_shift_px: float = MAX_SHIFT_PX,
) -> CorrectedVelocity:
    """Stable-ground correction and error estimate of one pair's offsets.

    Parameters
    ----------
    offsets : OffsetField
        Raw displacements (px) from :func:`~glacier_velocity.tracking.track_offsets`.
    reference_transform : Affine
        Transform of the reference image (m per px).
    crs : str
        CRS of the reference image (projected, metres).
    dt_days : float
        Baseline (days, fractional, > 0).
    glacier_outlines : GlacierOutlines, optional
        Glacier outlines (read at the edge, any CRS); stable ground is every valid point more
        than ``outline_buffer_m`` outside them. Without outlines (None) the stable ground is
        the tightest cluster of displacements (on ``land`` when given), and the product says
        how it was found. :meth:`GlacierOutlines.empty` means "no glacier here": every valid
        point is stable.
    outline_buffer_m : float
        Growth of the outlines (m) before points count as stable.
    land : ndarray of bool, shape offsets.shape, optional
        Grid points whose chip lies on land that is neither snow/ice, water nor cloud in both
        scenes (:func:`~glacier_velocity.correction.land.land_at_points` of the scenes' SCL).
    min_stable_points : int
        Fewest stable points for a correction; with fewer, none is applied and the errors
        are NaN, with a warning.
    max_shift_px : float
        Largest bias (px) accepted as a misregistration.

    Returns
    -------
    CorrectedVelocity
    """
    ice = None
    if glacier_outlines is not None:
        ice = ice_mask_from_outlines(
            glacier_outlines,
            grid_transform(reference_transform, offsets.rows, offsets.cols),
            offsets.shape,
            crs,
            outline_buffer_m=outline_buffer_m,
        )
    shift = estimate_stable_shift(
        offsets,
        reference_transform,
        dt_days,
        ice=ice,
        land=land,
        min_stable_points=min_stable_points,
        max_shift_px=max_shift_px,
    )
    raw_vx, raw_vy = displacement_to_velocity(offsets.dx, offsets.dy, reference_transform, dt_days)
    vx, vy, v = apply_stable_shift(raw_vx, raw_vy, shift)
    errors = estimate_errors(vx, vy, shift, point_errors_m_per_yr(offsets, reference_transform, dt_days))
    return CorrectedVelocity(vx=vx, vy=vy, v=v, errors=errors, shift=shift)


#: ``VelocityProduct.correction`` of a product whose correction was turned off on purpose.
CORRECTION_TURNED_OFF: dict[str, object] = {
    "stable_shift_method": "none",
    "stable_shift_applied": False,
    "stable_shift_warning": "stable-ground correction turned off (stable_correction = false): "
    "vx, vy, v include the pair's misregistration and have no error estimate",
}


def correct_product(
    product: VelocityProduct,
    offsets: OffsetField,
    reference_transform: Affine,
    *,
    stable_correction: bool = True,
    glacier_outlines: GlacierOutlines | None = None,
    outline_buffer_m: float = OUTLINE_BUFFER_M,
    land: np.ndarray | None = None,
    min_stable_points: int = MIN_STABLE_POINTS,
    max_shift_px: float = MAX_SHIFT_PX,
) -> VelocityProduct:
    """The correction stage applied to a pair's velocity product.

    Parameters
    ----------
    product : VelocityProduct
        Uncorrected product of ``offsets`` (:func:`~glacier_velocity.domain.velocity.offsets_to_velocity`).
    offsets : OffsetField
        The raw displacements (px) the product was made from.
    reference_transform : Affine
        Transform of the reference image (m per px).
    stable_correction : bool
        Apply the correction (default). When False, ``vx``, ``vy``, ``v`` stay raw, the error
        bands stay NaN, and ``correction`` says it was turned off.
    glacier_outlines, outline_buffer_m, land, min_stable_points, max_shift_px
        As in :func:`correct_velocity`.

    Returns
    -------
    VelocityProduct
        Corrected ``vx``, ``vy``, ``v``, the error bands and ``correction`` (the
        :meth:`StableShift.as_properties` record); ``dx``, ``dy`` unchanged.
    """
    if not stable_correction:
        return replace(product, correction=dict(CORRECTION_TURNED_OFF))
    corrected = correct_velocity(
        offsets,
        reference_transform,
        product.crs,
        product.dt_days,
        glacier_outlines=glacier_outlines,
        outline_buffer_m=outline_buffer_m,
        land=land,
        min_stable_points=min_stable_points,
        max_shift_px=max_shift_px,
    )
    return replace(
        product,
        vx=corrected.vx,
        vy=corrected.vy,
        v=corrected.v,
        vx_error=corrected.errors.vx_error,
        vy_error=corrected.errors.vy_error,
        v_error=corrected.errors.v_error,
        correction=corrected.shift.as_properties(),
    )


def describe_correction(correction: dict[str, object]) -> str:
    """One line about a product's stable-ground correction (its ``correction`` record)."""
    if not correction:
        return "stable-ground correction: not run"
    if not correction.get("stable_shift_applied"):
        return f"stable-ground correction: NOT applied: {correction.get('stable_shift_warning', '')}"
    c = correction
    how = {
        "automatic-mode": " (automatic: no glacier outlines, no scene classification)",
        "scene-classification": " (stable land from the scene classification)",
    }.get(str(c["stable_shift_method"]), "")
    caution = f"; caution: {c['stable_shift_warning']}" if c.get("stable_shift_warning") else ""
    return (
        f"stable-ground correction{how}: shift dx {c['stable_shift_dx_px']:+.3f} px, dy {c['stable_shift_dy_px']:+.3f} px "
        f"(vx {c['stable_shift_vx_m_per_yr']:+.1f}, vy {c['stable_shift_vy_m_per_yr']:+.1f} m/yr) removed, "
        f"{c['stable_count']} stable points; error (NMAD) vx {c['stable_vx_nmad_m_per_yr']:.1f}, "
        f"vy {c['stable_vy_nmad_m_per_yr']:.1f} m/yr{caution}"
    )
