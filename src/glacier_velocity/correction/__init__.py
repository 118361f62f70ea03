"""Stable-ground correction and error estimates of a pair's velocities.

The stage between tracking and the products: find ground that does not move (outside glacier
outlines, on land the scenes' classification shows, or from the displacements alone), measure the pair's displacement bias there, subtract it from
``vx``, ``vy``, ``v`` (``dx``, ``dy`` stay raw), and derive 1-sigma errors from the scatter of
the corrected stable ground. See docs/design/0005-stable-ground-correction.md.
"""

from __future__ import annotations

from .correct import (
    CORRECTION_TURNED_OFF,
    CorrectedVelocity,
    apply_stable_shift,
    correct_product,
    correct_velocity,
    describe_correction,
)
from .land import NOT_STABLE_SCL_CLASSES, land_at_points, stable_land
from .outlines import OUTLINE_BUFFER_M, ice_mask_from_outlines
from .stable import (
    MAX_SHIFT_PX,
    METHODS,
    MIN_STABLE_POINTS,
    Method,
    StableGroundStats,
    StableGroundWarning,
    StableShift,
    estimate_stable_shift,
)
from .uncertainty import VelocityErrors, estimate_errors, speed_error

__all__ = [
    "CORRECTION_TURNED_OFF",
    "MAX_SHIFT_PX",
    "METHODS",
    "MIN_STABLE_POINTS",
    "NOT_STABLE_SCL_CLASSES",
    "OUTLINE_BUFFER_M",
    "CorrectedVelocity",
    "Method",
    "StableGroundStats",
    "StableGroundWarning",
    "StableShift",
    "VelocityErrors",
    "apply_stable_shift",
    "correct_product",
    "correct_velocity",
    "describe_correction",
    "estimate_errors",
    "estimate_stable_shift",
    "ice_mask_from_outlines",
    "land_at_points",
    "speed_error",
    "stable_land",
]
