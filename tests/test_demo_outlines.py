"""The demo ships outlines of its synthetic glacier: they cover exactly the moving ice."""

from __future__ import annotations

import json

import numpy as np

from glacier_velocity.demo.scenes import (
    DEMO_EPSG,
    DEMO_MAX_SPEED_M_PER_YR,
    DEMO_OUTLINES_FILE,
    DEMO_SHAPE,
    demo_glacier_outlines,
    demo_transform,
    true_speed,
    write_demo_outlines,
)
from glacier_velocity.io.outlines import read_glacier_outlines


def test_demo_outlines_mask_the_moving_ice_and_nothing_else(tmp_path):
    path = write_demo_outlines(tmp_path)
    assert path.name == DEMO_OUTLINES_FILE
    document = json.loads(path.read_text())
    assert "crs" not in document  # RFC 7946 lon/lat
    outlines = read_glacier_outlines(path)
    assert outlines.crs == "EPSG:4326" and outlines.count == 1
    assert outlines.geometry.equals_exact(demo_glacier_outlines().geometry, 1e-12)
    mask = outlines.ice_mask(demo_transform(), DEMO_SHAPE, f"EPSG:{DEMO_EPSG}")
    rows, cols = np.mgrid[0 : DEMO_SHAPE[0], 0 : DEMO_SHAPE[1]].astype(float)
    for year in DEMO_MAX_SPEED_M_PER_YR:
        moving = true_speed(year, rows, cols) > 0
        # The outline burnt at pixel centres is exactly the set of moving pixels (97 940).
        np.testing.assert_array_equal(mask, moving)
    share = mask.mean()
    assert 0.42 < share < 0.43, share  # the tongue covers 42.5 % of the 480 x 480 scene
