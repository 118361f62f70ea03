"""Stable-ground correction and error estimates on synthetic pairs with a known misregistration."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.features import shapes
from rasterio.warp import transform_geom
from shapely.geometry import Point, box, mapping, shape
from shapely.ops import unary_union

from glacier_velocity.correction import (
    MIN_STABLE_POINTS,
    StableGroundStats,
    StableGroundWarning,
    apply_stable_shift,
    correct_velocity,
    estimate_errors,
    estimate_stable_shift,
    ice_mask_from_outlines,
)
from glacier_velocity.correction.uncertainty import point_errors_m_per_yr
from glacier_velocity.demo.synthetic import GlacierTongue, Misregistered, make_pair
from glacier_velocity.domain.offsets import OffsetField
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.domain.robust import weighted_median
from glacier_velocity.domain.velocity import displacement_to_velocity, grid_transform, offsets_to_velocity
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.tracking import TrackingParams, track_offsets

SHAPE = (512, 512)
#: A north-up 10 m UTM grid (zone 43N, the Karakoram) for the synthetic images.
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
CRS = "EPSG:32643"
DT_DAYS = 10.0
MISREGISTRATION = (0.43, -0.71)  # px, (dx along columns, dy along rows)
TRACKING = TrackingParams(grid_spacing_px=8, search_px=8.0)


@dataclass(frozen=True)
class Scene:
    tongue: GlacierTongue
    offsets: OffsetField
    ice: np.ndarray  # true ice at the grid points
    glacier_outlines: GlacierOutlines  # the tongue's outline, in lon/lat


def _outlines_lonlat(tongue: GlacierTongue) -> GlacierOutlines:
    """The tongue's ice mask as polygons in EPSG:4326 (the way RGI outlines come)."""
    rows = np.arange(SHAPE[0], dtype=np.float64)[:, None]
    cols = np.arange(SHAPE[1], dtype=np.float64)[None, :]
    mask = tongue.ice_mask(rows, cols).astype(np.uint8)
    polygons = [shape(g) for g, value in shapes(mask, mask=mask.astype(bool), transform=TRANSFORM) if value == 1]
    return GlacierOutlines(shape(transform_geom(CRS, "EPSG:4326", mapping(unary_union(polygons)))), "EPSG:4326")


@pytest.fixture(scope="module")
def scene() -> Scene:
    tongue = GlacierTongue(SHAPE, max_px=4.0)
    pair = make_pair(SHAPE, Misregistered(tongue, *MISREGISTRATION), seed=21)
    offsets = track_offsets(pair.reference, pair.secondary, TRACKING, progress=False)
    ice = tongue.ice_mask(offsets.rows[:, None], offsets.cols[None, :])
    return Scene(tongue, offsets, ice, _outlines_lonlat(tongue))


def _truth_velocity(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = scene.tongue.displacement(scene.offsets.rows[:, None], scene.offsets.cols[None, :])
    return displacement_to_velocity(dx, dy, TRANSFORM, DT_DAYS)


# -- shift recovery -----------------------------------------------------------------------


def test_outlines_recover_the_misregistration_and_stats_are_over_stable_ground_only(scene):
    result = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=scene.glacier_outlines)
    shift = result.shift
    assert shift.method == "outlines" and shift.applied and not shift.automatic and shift.warning == ""
    np.testing.assert_allclose((shift.dx_px, shift.dy_px), MISREGISTRATION, atol=0.01)
    # 0.43 px east = 157.0 m/yr east; -0.71 px along rows = 0.71 px north = 259.3 m/yr north.
    np.testing.assert_allclose((shift.vx_m_per_yr, shift.vy_m_per_yr), (157.0, 259.3), atol=4.0)
    # Stable ground: valid points outside the outline plus its 200 m buffer, never ice.
    assert not (shift.stable & scene.ice).any()
    assert shift.stable_count == int(shift.stable.sum()) == shift.stats.count
    assert 1000 < shift.stable_count < int((scene.offsets.valid & ~scene.ice).sum())
    stable_vx = result.vx[shift.stable]
    assert shift.stats.vx_median_m_per_yr == pytest.approx(float(np.median(stable_vx.astype(np.float64))), abs=1e-3)
    assert abs(shift.stats.vx_median_m_per_yr) < 1.0 and abs(shift.stats.vy_median_m_per_yr) < 1.0
    # The ice now moves at its true speed: uncorrected it would be off by ~300 m/yr.
    tvx, tvy = _truth_velocity(scene)
    on_ice = scene.ice & scene.offsets.valid
    # (Issue 20's engine measures 5.8 and 2.9 m/yr here: its narrower pre-filter and larger chips
    # on uniform texture cost 1 m/yr on this small synthetic tongue and cut real-pair scatter by a third.)
    assert np.median(np.abs(result.vx[on_ice] - tvx[on_ice])) < 6.5
    assert np.median(np.abs(result.vy[on_ice] - tvy[on_ice])) < 6.5


def test_raw_displacements_stay_untouched(scene):
    before = scene.offsets.dx.copy()
    result = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=scene.glacier_outlines)
    np.testing.assert_array_equal(scene.offsets.dx, before)
    raw = offsets_to_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, reference_id="r", secondary_id="s")
    np.testing.assert_allclose(result.vx, raw.vx - result.shift.vx_m_per_yr, atol=1e-3)


def test_without_outlines_the_automatic_mode_finds_the_shift_and_says_so(scene):
    result = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS)
    shift = result.shift
    assert shift.method == "automatic-mode" and shift.automatic and shift.applied
    assert shift.as_properties()["stable_shift_method"] == "automatic-mode"
    np.testing.assert_allclose((shift.dx_px, shift.dy_px), MISREGISTRATION, atol=0.02)
    # The cluster is stable ground plus, at most, ice whose chip-averaged motion lies within the
    # cluster's half-width (4 robust sigma, at least 0.2 px).
    dx, dy = scene.tongue.displacement(scene.offsets.rows[:, None], scene.offsets.cols[None, :])
    assert np.hypot(dx, dy)[shift.stable].max() < 0.3
    assert shift.stable_count >= 0.9 * int((scene.offsets.valid & ~scene.ice).sum())


def test_too_few_stable_points_give_a_warning_and_no_correction(scene):
    # An "outline" covering the whole scene leaves no stable ground.
    everything = GlacierOutlines(box(490000, 3990000, 510000, 4010000), CRS)
    with pytest.warns(StableGroundWarning, match="no stable-ground correction applied"):
        result = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=everything)
    shift = result.shift
    assert shift.method == "none" and not shift.applied and shift.stable_count == 0
    assert "only 0 stable points" in shift.warning
    assert (shift.dx_px, shift.dy_px, shift.vx_m_per_yr, shift.vy_m_per_yr) == (0.0, 0.0, 0.0, 0.0)
    raw = offsets_to_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, reference_id="r", secondary_id="s")
    np.testing.assert_array_equal(result.vx, raw.vx)
    assert np.isnan(result.errors.vx_error).all() and np.isnan(result.errors.v_error).all()


def test_one_point_short_of_the_minimum_is_refused(scene):
    ice = scene.ice.copy()
    stable = np.flatnonzero((scene.offsets.valid & ~ice).ravel())
    ice.ravel()[stable[MIN_STABLE_POINTS - 1 :]] = True  # leave MIN_STABLE_POINTS - 1
    with pytest.warns(StableGroundWarning):
        shift = estimate_stable_shift(scene.offsets, TRANSFORM, DT_DAYS, ice=ice)
    assert shift.method == "none" and shift.stable_count == MIN_STABLE_POINTS - 1
    np.testing.assert_allclose((shift.measured_dx_px, shift.measured_dy_px), MISREGISTRATION, atol=0.02)
    ice.ravel()[stable[MIN_STABLE_POINTS - 1]] = False
    assert estimate_stable_shift(scene.offsets, TRANSFORM, DT_DAYS, ice=ice).method == "outlines"


def test_a_shift_too_large_for_a_misregistration_is_not_applied():
    n = np.ones((30, 30), dtype=np.float32)
    field = OffsetField(np.arange(30.0), np.arange(30.0), 6.0 * n, 0.5 * n, 0.8 * n, 5 * n, "test")
    with pytest.warns(StableGroundWarning, match=r"6.02 px, exceeds 2.5 px, more than a Sentinel-2 misregistration"):
        shift = estimate_stable_shift(field, TRANSFORM, DT_DAYS)
    assert shift.method == "none" and shift.measured_dx_px == 6.0


# -- errors ----------------------------------------------------------------------------------


def test_errors_are_calibrated_on_held_out_stable_ground(scene):
    """Errors from half the stable ground (checkerboard) cover ~68 % of the other half's truth error."""
    rows, cols = np.indices(scene.offsets.shape)
    held_out = (rows + cols) % 2 == 1
    shift = estimate_stable_shift(scene.offsets, TRANSFORM, DT_DAYS, ice=scene.ice | held_out)
    raw_vx, raw_vy = displacement_to_velocity(scene.offsets.dx, scene.offsets.dy, TRANSFORM, DT_DAYS)
    vx, vy, _ = apply_stable_shift(raw_vx, raw_vy, shift)
    errors = estimate_errors(vx, vy, shift, point_errors_m_per_yr(scene.offsets, TRANSFORM, DT_DAYS))
    check = held_out & ~scene.ice & scene.offsets.valid
    assert check.sum() > 800
    # Truth on stable ground is 0: the error of each point is its corrected velocity.
    for value, sigma in ((vx, errors.vx_error), (vy, errors.vy_error)):
        within = float(np.mean(np.abs(value[check]) <= sigma[check]))
        print(f"within 1 sigma: {within:.3f} of {int(check.sum())} held-out points")
        # 68.3 % for normal errors. NMAD under-weights the tails, so a field with heavier tails
        # is over-covered: with the per-point errors of issue 20's engine (scaled to the NMAD
        # of the stable half) this synthetic scene measures 83 % for vx and 62 % for vy (on the
        # two real pairs 65-72 %, tests/test_real_pair_*.py). Outside 58-85 % the errors are
        # not calibrated.
        assert 0.58 <= within <= 0.85, within
    assert errors.vx_sigma_m_per_yr == pytest.approx(shift.stats.vx_nmad_m_per_yr)
    # The stable half's median error is its NMAD; the errors vary from point to point.
    stable = shift.stable & scene.offsets.valid
    assert np.median(errors.vx_error[stable]) == pytest.approx(shift.stats.vx_nmad_m_per_yr, rel=1e-3)
    assert np.ptp(errors.vx_error[check]) > 0.2 * shift.stats.vx_nmad_m_per_yr
    assert np.isnan(errors.vx_error[~scene.offsets.valid]).all()


def test_speed_error_propagates_the_component_errors():
    vx = np.array([[300.0, 0.0, 0.0]])
    vy = np.array([[400.0, 0.0, np.nan]])
    n = np.ones((1, 3), dtype=np.float32)
    field = OffsetField(np.zeros(1), np.arange(3.0), n, n, n, n, "test")
    # Outlines with no ice on these points: all three are stable ground (no automatic-mode caution).
    no_ice = np.zeros((1, 3), dtype=bool)
    shift = estimate_stable_shift(field, TRANSFORM, DT_DAYS, ice=no_ice, min_stable_points=3)
    assert shift.method == "outlines" and shift.warning == ""
    shift = replace(shift, stats=StableGroundStats(3, 0.0, 0.0, 30.0, 40.0))
    errors = estimate_errors(vx, vy, shift)
    # sqrt((300*30)^2 + (400*40)^2) / 500 = 36.7; at v = 0 the RMS sqrt((30^2 + 40^2) / 2) = 35.36
    np.testing.assert_allclose(errors.v_error[0, :2], [36.715, 35.355], atol=1e-3)
    assert np.isnan(errors.v_error[0, 2])


# -- outlines --------------------------------------------------------------------------------


def test_outline_mask_reprojects_and_buffers():
    grid = grid_transform(TRANSFORM, np.arange(0.0, 500.0, 10.0), np.arange(0.0, 500.0, 10.0))
    square = box(501000.0, 3996000.0, 502000.0, 3997000.0)  # 1 km, in the grid's own CRS
    own = ice_mask_from_outlines(GlacierOutlines(square, CRS), grid, (50, 50), CRS, outline_buffer_m=0.0)
    assert own.sum() == 100  # 10 x 10 points at 100 m
    lonlat = GlacierOutlines(shape(transform_geom(CRS, "EPSG:4326", mapping(square))), "EPSG:4326")
    assert (ice_mask_from_outlines(lonlat, grid, (50, 50), CRS, outline_buffer_m=0.0) == own).mean() > 0.995
    buffered = ice_mask_from_outlines(GlacierOutlines(square, CRS), grid, (50, 50), CRS, outline_buffer_m=200.0)
    assert buffered.sum() == pytest.approx(14 * 14 - 4 * 1, abs=8)  # rounded corners
    assert (buffered >= own).all()


def test_outline_errors_name_the_parameter():
    grid = grid_transform(TRANSFORM, np.arange(5.0), np.arange(5.0))
    with pytest.raises(InvalidParameter, match="glacier_outlines: must be polygons of ice, got Point"):
        GlacierOutlines(Point(75.0, 36.0), "EPSG:4326")
    square = GlacierOutlines(box(0, 0, 1, 1), "EPSG:4326")
    with pytest.raises(InvalidParameter, match="crs: the tracking grid must be in a projected CRS"):
        ice_mask_from_outlines(square, grid, (5, 5), "EPSG:4326")
    with pytest.raises(InvalidParameter, match="outline_buffer"):
        ice_mask_from_outlines(square, grid, (5, 5), CRS, outline_buffer_m=-1.0)


# -- general rules ---------------------------------------------------------------------------


def _field(dx: np.ndarray, dy: np.ndarray, peak: np.ndarray) -> OffsetField:
    n_rows, n_cols = dx.shape
    return OffsetField(np.arange(n_rows) * 8.0, np.arange(n_cols) * 8.0, dx, dy, peak, peak * 10, "test")


quantized = st.integers(-256, 256).map(lambda k: k / 64.0)  # exact in binary: sums stay exact


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    # Within +-1 px: the shifted estimate stays below MAX_SHIFT_PX (2.5 px).
    add_dx=st.integers(-8, 8).map(lambda k: k / 8.0),
    add_dy=st.integers(-8, 8).map(lambda k: k / 8.0),
    use_outlines=st.booleans(),
)
def test_adding_a_constant_shift_moves_the_estimate_by_exactly_that(seed, add_dx, add_dy, use_outlines):
    rng = np.random.default_rng(seed)
    shape_ = (24, 24)
    dx = np.round(rng.normal(0.3, 0.15, shape_) * 64) / 64
    dy = np.round(rng.normal(-0.2, 0.15, shape_) * 64) / 64
    ice = np.zeros(shape_, dtype=bool)
    ice[:, 8:14] = True
    dx[ice] += np.linspace(1.5, 2.5, shape_[0]).repeat(6)  # a glacier flowing 1.5-2.5 px east
    dx[0, :5] = np.nan  # some failed matches
    peak = rng.uniform(0.3, 1.0, shape_)
    kwargs = {"ice": ice} if use_outlines else {}
    before = estimate_stable_shift(_field(dx, dy, peak), TRANSFORM, DT_DAYS, **kwargs)
    after = estimate_stable_shift(_field(dx + add_dx, dy + add_dy, peak), TRANSFORM, DT_DAYS, **kwargs)
    assert before.method == after.method != "none"
    assert after.dx_px - before.dx_px == add_dx
    assert after.dy_px - before.dy_px == add_dy
    np.testing.assert_array_equal(before.stable, after.stable)
    assert before.stats.vx_nmad_m_per_yr == pytest.approx(after.stats.vx_nmad_m_per_yr, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    angle=st.floats(-180, 180),
    sx=st.floats(-2, 2),
    sy=st.floats(-2, 2),
    dt=st.floats(1.0, 400.0),
)
def test_subtracting_the_shift_in_m_per_yr_equals_subtracting_it_in_px(angle, sx, sy, dt):
    transform = Affine.rotation(angle) @ Affine.scale(10.0, -10.0)
    rng = np.random.default_rng(0)
    dx, dy = rng.normal(0, 2, (2, 6, 6))
    n = np.ones((6, 6))
    # Outlines with no ice here: every point is stable ground and its shift is (sx, sy), without
    # the automatic mode's caution that the whole area moves alike.
    shift = estimate_stable_shift(
        _field(sx + 0 * n, sy + 0 * n, n), transform, dt, ice=n < 0, min_stable_points=1, max_shift_px=5.0
    )
    assert shift.method == "outlines" and (shift.dx_px, shift.dy_px) == (sx, sy)
    raw = displacement_to_velocity(dx, dy, transform, dt)
    expected = displacement_to_velocity(dx - sx, dy - sy, transform, dt)
    vx, vy, v = apply_stable_shift(*raw, shift)
    np.testing.assert_allclose(vx, expected[0], atol=1e-3 * (1 + np.abs(expected[0]).max()))
    np.testing.assert_allclose(vy, expected[1], atol=1e-3 * (1 + np.abs(expected[1]).max()))
    np.testing.assert_allclose(v, np.hypot(*expected), atol=1e-3 * (1 + np.hypot(*expected).max()))


def test_velocity_conversion_matches_the_product_and_signs():
    n = np.ones((2, 2), dtype=np.float32)
    field = OffsetField(np.arange(2.0), np.arange(2.0), 0.5 * n, 1.0 * n, n, n, "test")
    product = offsets_to_velocity(field, TRANSFORM, CRS, DT_DAYS, reference_id="r", secondary_id="s")
    vx, vy = displacement_to_velocity(field.dx, field.dy, TRANSFORM, DT_DAYS)
    np.testing.assert_allclose(vx, product.vx, rtol=1e-6)
    np.testing.assert_allclose(vy, product.vy, rtol=1e-6)
    assert vx[0, 0] > 0 and vy[0, 0] < 0  # + columns = east, + rows = south


def test_weighted_median_follows_the_weights():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    assert weighted_median(values) == 1.0  # lower median
    assert weighted_median(values, np.array([1.0, 1.0, 1.0, 10.0])) == 3.0
    assert np.isnan(weighted_median(np.array([])))


def _weighted_median_by_sorting(values: np.ndarray, weights: np.ndarray) -> float:
    """The definition written out: sort, accumulate the weights, take the first value reaching half."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, 0.5 * cumulative[-1], side="left"))
    return float(values[order[min(index, values.size - 1)]])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    # below 16,384 points the values are sorted whole, above it a sample brackets the median
    n=st.sampled_from([1, 2, 7, 1000, 16_385, 40_000, 131_165]),
    decimals=st.integers(0, 3),  # few decimals: many ties
    zero_share=st.floats(0.0, 0.9),
)
def test_weighted_median_is_the_sorted_definition(seed, n, decimals, zero_share):
    # Whole-number weights make every partial sum exact, so the bracketed median must be the
    # sorted one exactly, ties and zero weights included.
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(0.0, 0.5, n), decimals)
    weights = rng.integers(1, 50, n).astype(np.float64) * (rng.random(n) >= zero_share)
    if weights.sum() == 0:
        assert np.isnan(weighted_median(values, weights))
        return
    assert weighted_median(values, weights) == _weighted_median_by_sorting(values, weights)
    assert weighted_median(values) == _weighted_median_by_sorting(values, np.ones(n))


def test_weighted_median_when_the_sample_misses_it():
    # One point outside the strided sample carries almost half the weight: the median moves to
    # the top of the other values (4.04), far above the sample's bracket (about -0.1 to 0.1),
    # so the whole input is sorted instead.
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, 50_000)
    weights = rng.uniform(0.5, 2.0, values.size)
    values[1] = 9.0  # the sample takes every 12th point from 0
    weights[1] = weights.sum() - 2.0
    assert weighted_median(values, weights) == _weighted_median_by_sorting(values, weights)
    assert weighted_median(values, weights) == pytest.approx(4.0369, abs=1e-4)
    # real weights (1 / sigma^2 of offsets) on a stable-ground-sized input: the same value
    sigma = rng.uniform(0.02, 0.3, 131_165)
    offsets = rng.normal(0.05, sigma)
    assert weighted_median(offsets, 1.0 / sigma**2) == _weighted_median_by_sorting(offsets, 1.0 / sigma**2)


def test_glacier_outlines_read_from_geojson_give_the_same_correction(scene):
    # Written as RFC 7946 GeoJSON and read back as a user's file is: the same stable ground.
    read = read_glacier_outlines(json.dumps(scene.glacier_outlines.to_geojson()))
    as_read = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=read)
    as_made = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=scene.glacier_outlines)
    np.testing.assert_array_equal(as_read.shift.stable, as_made.shift.stable)
    assert (as_read.shift.dx_px, as_read.shift.dy_px) == (as_made.shift.dx_px, as_made.shift.dy_px)


def test_empty_outlines_make_every_valid_point_stable_ground(scene):
    # "No glacier here" (GlacierOutlines.empty()) is not "no outlines known" (None): no point is
    # ice, so the shift is the median over the whole field, ice included, and says "outlines".
    none_here = GlacierOutlines.empty()
    assert none_here.is_empty and none_here.count == 0
    result = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS, glacier_outlines=none_here)
    shift = result.shift
    assert shift.method == "outlines" and not shift.automatic
    np.testing.assert_array_equal(shift.stable, scene.offsets.valid)
    assert shift.stable_count == int(scene.offsets.valid.sum())
    automatic = correct_velocity(scene.offsets, TRANSFORM, CRS, DT_DAYS).shift
    assert automatic.stable_count < shift.stable_count


def test_point_errors_go_through_the_affine_and_the_baseline():
    ones = np.ones((2, 2), dtype=np.float32)
    field = OffsetField(
        np.arange(2.0), np.arange(2.0), ones, ones, ones, ones, "test", dx_error=0.1 * ones, dy_error=0.2 * ones
    )
    # 10 m pixels, north up, 10 days: 1 px = 365.25 m/yr; east from columns, north from rows.
    vx_error, vy_error = point_errors_m_per_yr(field, TRANSFORM, DT_DAYS)
    np.testing.assert_allclose(vx_error, 36.525, rtol=1e-6)
    np.testing.assert_allclose(vy_error, 73.05, rtol=1e-6)
    # A grid rotated by 90 degrees swaps them.
    rotated = Affine(0.0, 10.0, 0.0, -10.0, 0.0, 0.0)
    vx_error, vy_error = point_errors_m_per_yr(field, rotated, DT_DAYS)
    np.testing.assert_allclose((vx_error[0, 0], vy_error[0, 0]), (73.05, 36.525), rtol=1e-6)
    assert point_errors_m_per_yr(replace(field, dx_error=None, dy_error=None), TRANSFORM, DT_DAYS) is None


def test_point_errors_are_scaled_to_the_stable_ground_nmad():
    vx = np.array([[1.0, -2.0, 3.0, 500.0]])
    vy = np.zeros((1, 4))
    n = np.ones((1, 4), dtype=np.float32)
    field = OffsetField(np.zeros(1), np.arange(4.0), n, n, n, n, "test")
    # The fourth point (500 m/yr) lies inside the glacier outlines; the other three are stable ground.
    ice = np.array([[False, False, False, True]])
    shift = estimate_stable_shift(field, TRANSFORM, DT_DAYS, ice=ice, min_stable_points=3)
    np.testing.assert_array_equal(shift.stable, ~ice)
    shift = replace(shift, stats=StableGroundStats(3, 0.0, 0.0, 30.0, 40.0))
    point = (np.array([[10.0, 20.0, 30.0, 60.0]]), np.array([[5.0, 5.0, 5.0, 5.0]]))
    errors = estimate_errors(vx, vy, shift, point)
    # The stable points' median error (20 and 5) becomes their NMAD (30 and 40).
    np.testing.assert_allclose(errors.vx_error[0], [15.0, 30.0, 45.0, 90.0])
    np.testing.assert_allclose(errors.vy_error[0], [40.0, 40.0, 40.0, 40.0])
    # Without a correction there is no error, whatever the tracker says.
    unapplied = replace(shift, method="none")
    assert np.isnan(estimate_errors(vx, vy, unapplied, point).vx_error).all()
