"""The autoRIFT adapter: same grid and sign convention as our engine, clear errors without it.

autoRIFT is not on PyPI; the tests that run it skip unless it is importable (install it from
conda-forge to run them). The error and parameter tests always run.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from glacier_velocity.errors import EngineUnavailable, InvalidParameter, TrackingFailed
from glacier_velocity.tracking import TrackingParams, track_offsets
from glacier_velocity.tracking.autorift_adapter import (
    _grid_spacing_for_autorift,
    _max_chip_factor,
    track_autorift,
)
from glacier_velocity.tracking.grid import make_grid

HAVE_AUTORIFT = importlib.util.find_spec("autoRIFT") is not None
needs_autorift = pytest.mark.skipif(
    not HAVE_AUTORIFT,
    reason="autoRIFT is not installed (not on PyPI; `mamba install -c conda-forge autorift` to run these)",
)

# Small enough for a few seconds per autoRIFT run, large enough for its coarse search
# (24 x 24 grid points at chip 16 px, spacing 16 px).
SHAPE = (384, 384)
PARAMS = TrackingParams(grid_spacing_px=16, chip_px=16, search_px=8)
SHIFT = (-3.25, 4.5)  # (dx, dy) px: left and down, both signs exercised


def test_missing_autorift_raises_engine_unavailable(monkeypatch):
    # A None entry in sys.modules makes `import autoRIFT` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "autoRIFT", None)
    image = np.full((256, 256), 1000, np.uint16)
    with pytest.raises(EngineUnavailable, match="conda-forge"):
        track_offsets(image, image, TrackingParams(), engine="autorift")


def test_chip_size_must_suit_autorift():
    image = np.full((256, 256), 1000, np.uint16)
    with pytest.raises(InvalidParameter, match="multiple of 4"):
        track_autorift(image, image, TrackingParams(chip_px=30))
    with pytest.raises(InvalidParameter, match="orientation"):
        track_autorift(image, image, TrackingParams(filter="oc"))


@pytest.mark.parametrize(
    ("chip_px", "spacing_px", "expected"),
    [(24, 12, 12), (32, 12, 16), (32, 8, 8), (32, 40, 40), (20, 12, 20), (48, 10, 12)],
)
def test_autorift_grid_spacing_divides_the_chip(chip_px, spacing_px, expected):
    got = _grid_spacing_for_autorift(chip_px, spacing_px)
    assert got == expected
    assert got >= spacing_px or chip_px % got == 0


def test_chip_factor_shrinks_for_small_grids():
    # chip 32 at autoRIFT spacing 16: coarse step 8 grid points, two samples needed per level
    assert _max_chip_factor((164, 164), 32, 16) == 4
    assert _max_chip_factor((40, 64), 32, 16) == 2
    assert _max_chip_factor((16, 100), 32, 16) == 1
    with pytest.raises(TrackingFailed, match="too small"):
        _max_chip_factor((15, 100), 32, 16)


@pytest.fixture(scope="module")
def holed_pair():
    """A translated pair with a nodata rectangle in the reference and a masked cloud."""
    from glacier_velocity.demo.synthetic import Translation, make_pair

    pair = make_pair(SHAPE, Translation(*SHIFT), seed=3, noise_dn=10.0)
    reference = pair.reference.copy()
    reference[100:200, 150:260] = 0
    cloud = np.zeros(SHAPE, bool)
    cloud[260:340, 40:120] = True
    return reference, pair.secondary, cloud


@pytest.fixture(scope="module")
def autorift_field(holed_pair):
    reference, secondary, cloud = holed_pair
    return track_offsets(reference, secondary, PARAMS, engine="autorift", secondary_mask=cloud)


@pytest.fixture(scope="module")
def holed_chips(holed_pair):
    """Grid points whose chip holds more nodata than ``max_nodata_fraction``."""
    reference, _, cloud = holed_pair
    grid = make_grid(SHAPE, PARAMS.chip_px, PARAMS.grid_spacing_px)
    rows = grid.row_starts[:, None] + np.arange(PARAMS.chip_px)[None, :]
    cols = grid.col_starts[:, None] + np.arange(PARAMS.chip_px)[None, :]
    bad = (reference == 0) | cloud
    chip_bad = bad[rows[:, None, :, None], cols[None, :, None, :]].mean(axis=(2, 3))
    return chip_bad > PARAMS.max_nodata_fraction


@needs_autorift
def test_translation_recovered_with_our_signs(autorift_field, holed_chips):
    field = autorift_field
    assert field.engine == "autorift"
    # autoRIFT gives nothing on the outer ring of the grid, and testautoRIFT.py's
    # post-processing also drops the neighbours of skipped points.
    assert field.valid[~holed_chips].mean() >= 0.6
    valid = field.valid
    # autoRIFT's sub-pixel lattice is 1/16 px at the smallest chip
    assert np.median(field.dx[valid]) == pytest.approx(SHIFT[0], abs=1 / 16)
    assert np.median(field.dy[valid]) == pytest.approx(SHIFT[1], abs=1 / 16)
    rmse = np.sqrt(np.mean((field.dx[valid] - SHIFT[0]) ** 2 + (field.dy[valid] - SHIFT[1]) ** 2))
    assert rmse < 0.15
    assert np.isnan(field.peak).all() and np.isnan(field.snr).all()
    assert field.params["autorift_version"]
    assert field.params["chip_px"] == PARAMS.chip_px


@needs_autorift
def test_nodata_chips_are_nan(autorift_field, holed_chips):
    assert holed_chips.sum() >= 30
    assert not autorift_field.valid[holed_chips].any()


@needs_autorift
def test_grid_is_the_ncc_grid(autorift_field, holed_pair):
    grid = make_grid(SHAPE, PARAMS.chip_px, PARAMS.grid_spacing_px)
    np.testing.assert_array_equal(autorift_field.rows, grid.rows)
    np.testing.assert_array_equal(autorift_field.cols, grid.cols)
    assert autorift_field.rows[0] == PARAMS.chip_px / 2 - 0.5
    reference, secondary, cloud = holed_pair
    ncc = track_offsets(reference, secondary, PARAMS, engine="ncc", secondary_mask=cloud)
    np.testing.assert_array_equal(autorift_field.rows, ncc.rows)
    np.testing.assert_array_equal(autorift_field.cols, ncc.cols)
    assert autorift_field.dx.shape == ncc.dx.shape
