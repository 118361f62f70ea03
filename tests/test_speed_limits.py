"""Absurd speeds are not results (issue 11, finding 5): points faster than the search range
allows (with SEARCH_MARGIN) are invalid, and a baseline below min_correlation_baseline_days is
refused with a message naming it. Real images through the real engine."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.errors import InputError, InvalidParameter, TrackingFailed
from glacier_velocity.tracking import SEARCH_MARGIN, TrackingParams, track_offsets
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair
from helpers import REF_TIME, X0, Y0, write_scene_cog, write_scene_item

SHAPE = (128, 128)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)


def test_motion_beyond_the_search_range_and_its_margin_is_invalid():
    # 2.0 px of motion, a search range of 1.5 px: within the engine's reach (it searches a
    # little beyond), but 33 % faster than max_velocity allows - more than the 20 % margin.
    pair = make_pair(SHAPE, Translation(2.0, 0.0), seed=5)
    with pytest.raises(TrackingFailed, match="none of the 49 grid points matched"):
        track_offsets(pair.reference, pair.secondary, TrackingParams(grid_spacing_px=16, search_px=1.5))


def test_motion_within_the_margin_still_counts():
    pair = make_pair(SHAPE, Translation(1.6, 0.0), seed=5)
    field = track_offsets(pair.reference, pair.secondary, TrackingParams(grid_spacing_px=16, search_px=1.5))
    assert SEARCH_MARGIN == 0.2
    assert field.valid_fraction > 0.8
    assert np.nanmedian(field.dx) == pytest.approx(1.6, abs=0.05)


def test_a_pair_one_second_apart_is_refused_with_the_parameter_named(tmp_path):
    pair = make_pair(SHAPE, Translation(0.3, 0.0), seed=5)
    write_scene_cog(tmp_path / "ref.tif", pair.reference, TRANSFORM)
    write_scene_cog(tmp_path / "sec.tif", pair.secondary, TRANSFORM)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref.tif", TRANSFORM, SHAPE)
    sec = write_scene_item(
        tmp_path, "S2A_43SEA_20200601_1_L2A", REF_TIME + timedelta(seconds=1), "sec.tif", TRANSFORM, SHAPE
    )
    with pytest.raises(InputError) as caught:
        correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(grid_spacing_px=16))
    message = str(caught.value)
    assert "the baseline is 1 s (0.000012 days), shorter than min_correlation_baseline_days = 1;" in message
    assert_documented(message, "43SEA_20200601T053629_20200601T053630", "1 s (0.000012 days)", "= 1;")
    assert not (tmp_path / "out").exists()
    # With the bound lowered, the noise of a 1 s pair is still no result (this was "82.9 %
    # valid, median 10,542,926 m/yr"): its search range is far below a pixel, refused before
    # any read (issue 23, finding 14).
    params = CorrelationParams(grid_spacing_px=16, min_correlation_baseline_days=1e-6)
    with pytest.raises(InvalidParameter, match=r"a search range of 3.17e-06 px, below one pixel"):
        correlate_pair(ref, sec, tmp_path / "out", params)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "1"])
def test_min_correlation_baseline_days_is_checked(bad):
    with pytest.raises(InvalidParameter, match="^min_correlation_baseline_days: must be a positive number of days"):
        CorrelationParams(min_correlation_baseline_days=bad)
