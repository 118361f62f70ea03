"""Motion must not leak across a glacier margin onto the stable ground next to it.

A glacier tongue (1000 px, 12 px grid, 30-day-like displacements of 3-5 px) with shear
margins; the stable-ground error is scored by distance to the nearest moving-ice pixel.
Figures measured side by side with autoRIFT 2.1.1 on the same pairs are in
benchmarks/README.md; the bounds here sit above our measured values with room for
platform differences, and below autoRIFT's where we are ahead of it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from glacier_velocity.demo.synthetic import GlacierTongue, make_pair
from glacier_velocity.tracking import TrackingParams, track_offsets

SHAPE = (1000, 1000)
PARAMS = TrackingParams(grid_spacing_px=12, chip_px=32, search_px=10.0)


def _margin_errors(field: GlacierTongue, noise_dn: float) -> dict[str, float]:
    pair = make_pair(SHAPE, field, seed=3, noise_dn=noise_dn)
    offsets = track_offsets(pair.reference, pair.secondary, PARAMS, progress=False)
    rows, cols = offsets.rows[:, None], offsets.cols[None, :]
    true_dx, true_dy = field.displacement(rows, cols)
    moving = np.broadcast_to(field.is_moving(rows, cols), offsets.shape)
    pixel_rows, pixel_cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    distance = ndimage.distance_transform_edt(~field.is_moving(pixel_rows, pixel_cols))
    d = distance[np.ix_(np.rint(offsets.rows).astype(int), np.rint(offsets.cols).astype(int))]
    err2 = (offsets.dx - true_dx) ** 2 + (offsets.dy - true_dy) ** 2
    assert offsets.valid.mean() > 0.99

    def rmse(mask):
        assert mask.sum() > 100, "too few points in the class for an RMSE"
        return float(np.sqrt(err2[mask & offsets.valid].mean()))

    return {
        "moving": rmse(moving),
        "near": rmse(~moving & (d <= 24)),
        "far": rmse(~moving & (d > 48)),
    }


def test_stable_ground_next_to_the_margin_stays_still():
    # Shear margins of 88 px (the default tongue). Measured: near 0.011 px, far 0.008 px,
    # moving ice 0.023 px; autoRIFT 0.016 / 0.003 / 0.068 px.
    errors = _margin_errors(GlacierTongue(SHAPE, max_px=5.0), noise_dn=20.0)
    assert errors["near"] <= 0.02  # the goal: max(0.02 px, autoRIFT's)
    assert errors["moving"] <= 0.034  # the goal: half of autoRIFT's 0.068 px
    assert errors["far"] <= 0.012  # 0.008 measured; the 0.005 px goal is not reached


def test_sharp_margin_does_not_leak_onto_stable_ground():
    # Margins of 22 px (gradients up to 0.34 px/px: the speed drops from 5 px to 0 within two
    # grid cells). Measured: near the ice 0.041 px (0.188 px with plain Gaussian predictor
    # smoothing), moving ice 0.116 px; autoRIFT 0.060 and 0.178 px.
    errors = _margin_errors(GlacierTongue(SHAPE, max_px=5.0, margin_frac=0.1), noise_dn=20.0)
    assert errors["near"] <= 0.06  # the goal: max(0.02 px, autoRIFT's 0.060 px)
    assert errors["moving"] <= 0.14  # better than autoRIFT's 0.178; half of it is not reached
    assert errors["far"] <= 0.012


def test_steeper_than_default_margin():
    # Margins of 44 px. Measured: near the ice 0.028 px, moving ice 0.041 px; autoRIFT 0.027
    # and 0.097 px.
    errors = _margin_errors(GlacierTongue(SHAPE, max_px=5.0, margin_frac=0.2), noise_dn=20.0)
    assert errors["near"] <= 0.035
    assert errors["moving"] <= 0.048  # the goal: half of autoRIFT's
    assert errors["far"] <= 0.012
