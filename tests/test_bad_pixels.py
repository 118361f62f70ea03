"""One bad pixel never kills a pair (issue 23, finding 5): +-Inf, NaN and absurd finite values
(a 3e38 fill) in a float asset are nodata, on both ways of reading (the reference window and
the secondary brought onto its grid, resampled or not), and the pair is tracked as without them."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.io.raster import MAX_PIXEL_MAGNITUDE, read_window
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair
from helpers import REF_TIME, SEC_TIME, X0, Y0, write_scene_cog, write_scene_item

SHAPE = (128, 128)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
SHIFT = Translation(2.5, -1.5)  # px
# 2.5, -1.5 px of 10 m over the 16.25 days between REF_TIME and SEC_TIME, in m/yr.
TRUE_SPEED = math.hypot(2.5, -1.5) * 10.0 / 16.25 * 365.25
BAD_VALUES = [np.inf, -np.inf, 3e38, -3e38, 2 * MAX_PIXEL_MAGNITUDE]


def test_non_finite_and_absurd_values_are_read_as_nodata_and_counted(tmp_path, caplog):
    values = np.arange(1.0, 1.0 + 20 * 30, dtype=np.float32).reshape(20, 30) / 7.0
    values[0, :5] = BAD_VALUES
    values[1, 0] = np.nan  # a float raster's own nodata: no warning
    values[1, 1] = MAX_PIXEL_MAGNITUDE  # the largest measurement: kept
    values[1, 2] = -0.05  # a slightly negative reflectance: kept
    write_scene_cog(tmp_path / "b08.tif", values, TRANSFORM)
    with caplog.at_level(logging.WARNING, logger="glacier_velocity"):
        raster = read_window(str(tmp_path / "b08.tif"), label="reference 'S2B' nir")
    expected = values.copy()
    expected[0, :5] = 0
    expected[1, 0] = 0
    np.testing.assert_array_equal(raster.array, expected)
    assert raster.array.dtype == np.float32
    warnings = [r.getMessage() for r in caplog.records]
    what = f"reference 'S2B' nir ({str(tmp_path / 'b08.tif')!r})"
    assert warnings == [
        f"{what}: 5 pixel(s) are not finite or beyond +-1000000 (no measurement: a fill value or an overflow); "
        "they are read as nodata"
    ]
    assert_documented(warnings[0], what, "5")


def test_absurd_values_resampled_onto_another_grid_are_nodata_too(tmp_path):
    values = np.full((40, 40), 500.0, dtype=np.float32)
    values[20, 20] = 3e38
    write_scene_cog(tmp_path / "sec.tif", values, TRANSFORM)
    # Half a pixel off: cubic resampling spreads the fill value over its neighbours.
    grid = Affine(10.0, 0.0, X0 + 5.0, 0.0, -10.0, Y0 - 5.0)
    raster = read_window(str(tmp_path / "sec.tif"), dst_crs="EPSG:32643", dst_transform=grid, dst_shape=(39, 39))
    assert np.isfinite(raster.array).all()
    assert np.abs(raster.array).max() <= MAX_PIXEL_MAGNITUDE
    assert (raster.array[18:22, 18:22] == 0).any() and (raster.array[:10, :10] == 500.0).all()


@pytest.fixture
def float_pair(tmp_path):
    synthetic = make_pair(SHAPE, SHIFT, seed=7)
    reference = synthetic.reference.astype(np.float32)
    secondary = synthetic.secondary.astype(np.float32)

    def write(bad: float | None, where: str = "secondary"):
        ref, sec = reference.copy(), secondary.copy()
        if bad is not None:
            (sec if where == "secondary" else ref)[60, 60] = bad
        write_scene_cog(tmp_path / "ref_B08.tif", ref, TRANSFORM)
        write_scene_cog(tmp_path / "sec_B08.tif", sec, TRANSFORM)
        return (
            write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", TRANSFORM, SHAPE),
            write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", TRANSFORM, SHAPE),
        )

    return write, tmp_path


@pytest.mark.parametrize(("bad", "where"), [(np.inf, "secondary"), (-3e38, "reference")])
def test_one_bad_pixel_does_not_fail_the_pair(float_pair, bad, where):
    write, tmp_path = float_pair
    params = CorrelationParams(grid_spacing_px=16, stable_correction=False)  # a uniform shift: no stable ground
    with_nan = attempt_pair(*write(np.nan, where), tmp_path / "nan", params)
    attempt = attempt_pair(*write(bad, where), tmp_path / "bad", params)
    assert attempt.succeeded, attempt.status.reason
    # The bad pixel is nodata, exactly as NaN (a float raster's nodata) always was.
    assert attempt.status.median_v_m_per_yr == with_nan.status.median_v_m_per_yr
    assert attempt.status.median_v_m_per_yr == pytest.approx(TRUE_SPEED, rel=0.01)
