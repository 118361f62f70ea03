"""Aggregation: exact statistics on small stacks, NaN handling, grid mismatch, dates, COG output."""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timedelta

import numpy as np
import pytest
import rasterio
from affine import Affine
from numpy.testing import assert_allclose, assert_array_equal

from glacier_velocity.aggregation.summary import SUMMARY_FILE_NAMES, aggregate_products, write_summary
from glacier_velocity.domain.dates import format_datetime
from glacier_velocity.domain.velocity import VelocityProduct
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.cog import write_velocity_cog
from helpers import PRODUCT_CRS as CRS
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import PRODUCT_TRANSFORM as TRANSFORM
from helpers import T0, make_product


def _gradient() -> np.ndarray:
    rows, cols = np.mgrid[0:4, 0:5]
    return (100.0 * rows + cols).astype(np.float32)


def _three_products() -> list[VelocityProduct]:
    """Speeds 10, 20, 40 m/yr plus a gradient; pixel (0, 0) NaN in the third, (1, 1) only in the second,
    (2, 2) NaN everywhere."""
    g = _gradient()
    v1, v2, v3 = 10.0 + g, 20.0 + g, 40.0 + g
    v3[0, 0] = np.nan
    v1[1, 1] = v3[1, 1] = np.nan
    v1[2, 2] = v2[2, 2] = v3[2, 2] = np.nan
    return [
        make_product(v1, reference_datetime=T0, dt_days=10.0, name="p1"),
        make_product(v2, reference_datetime=T0 + timedelta(days=30), dt_days=5.0, name="p2"),
        make_product(v3, reference_datetime=T0 + timedelta(days=365), dt_days=20.5, name="p3"),
    ]


def test_exact_median_std_count_with_nans():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from all-NaN or single-value slices
        summary = aggregate_products(_three_products())
    g = _gradient()
    expected_median = 20.0 + g
    expected_median[0, 0] = 15.0  # (10, 20) -> 15
    expected_median[2, 2] = np.nan
    assert_array_equal(summary.median_v, expected_median.astype(np.float32))
    expected_std = np.full(SHAPE, math.sqrt(700.0 / 3.0))  # sample std of (10, 20, 40) + g: mean 70/3
    expected_std[0, 0] = math.sqrt(50.0)  # (10, 20)
    expected_std[1, 1] = np.nan  # one map
    expected_std[2, 2] = np.nan  # none
    assert_allclose(summary.std_v, expected_std, rtol=1e-6, equal_nan=True)
    expected_count = np.full(SHAPE, 3)
    expected_count[0, 0], expected_count[1, 1], expected_count[2, 2] = 2, 1, 0
    assert_array_equal(summary.count, expected_count)
    assert summary.count.dtype == np.uint16
    for band in (summary.median_v, summary.median_vx, summary.median_vy, summary.std_v):
        assert band.dtype == np.float32
    # Flow is due east: vx carries the whole speed, vy is zero where there is a median.
    assert_array_equal(summary.median_vx, summary.median_v)
    assert_array_equal(np.isnan(summary.median_vy), np.isnan(summary.median_v))
    assert np.nanmax(np.abs(summary.median_vy)) < 1e-5
    assert summary.transform == TRANSFORM and summary.crs == CRS
    assert summary.valid_fraction == pytest.approx(19 / 20)


def test_median_of_speed_is_not_speed_of_median_vector():
    east = make_product(np.full(SHAPE, 10.0), direction_deg=0.0, name="e")
    north = make_product(np.full(SHAPE, 10.0), direction_deg=90.0, name="n", reference_datetime=T0 + timedelta(days=40))
    summary = aggregate_products([east, north])
    assert_allclose(summary.median_v, 10.0)
    assert_allclose(summary.median_vx, 5.0, atol=1e-5)
    assert_allclose(summary.median_vy, 5.0, atol=1e-5)
    assert_allclose(summary.std_v, 0.0, atol=1e-6)


def test_min_count_masks_statistics_but_keeps_count():
    summary = aggregate_products(_three_products(), min_count=3)
    assert np.isnan(summary.median_v[0, 0]) and np.isnan(summary.std_v[0, 0])
    assert np.isnan(summary.median_v[1, 1])
    assert summary.median_v[3, 4] == 20.0 + 304.0
    assert summary.count[0, 0] == 2 and summary.count[1, 1] == 1


def test_single_product_has_nan_spread():
    (p1, *_) = _three_products()
    summary = aggregate_products([p1])
    assert_array_equal(summary.median_v, p1.v)
    assert np.isnan(summary.std_v).all()
    assert summary.count.max() == 1


def test_each_entry_keeps_its_own_dates_and_median():
    products = _three_products()
    summary = aggregate_products(products)
    assert [e.reference_datetime for e in summary.entries] == [p.reference_datetime for p in products]
    assert [e.secondary_datetime for e in summary.entries] == [p.secondary_datetime for p in products]
    assert [e.dt_days for e in summary.entries] == [10.0, 5.0, 20.5]
    assert [e.reference_id for e in summary.entries] == [p.reference_id for p in products]
    assert summary.entries[1].mid_datetime == T0 + timedelta(days=32.5)
    # Medians over each map's own valid pixels: 18 (p1), 19 (p2), 17 (p3) pixels.
    assert [e.valid_px for e in summary.entries] == [18, 19, 17]
    g = _gradient().ravel()
    # Flat indices of the NaN pixels (0, 0) = 0, (1, 1) = 6, (2, 2) = 12 in each map.
    for entry, base, invalid in zip(summary.entries, (10, 20, 40), ({6, 12}, {12}, {0, 6, 12}), strict=True):
        keep = [i for i in range(20) if i not in invalid]
        assert entry.median_v == pytest.approx(float(np.median(base + g[keep])))
    assert summary.start_datetime == T0
    assert summary.end_datetime == T0 + timedelta(days=365 + 20.5)


def test_naive_datetimes_are_read_as_utc():
    p = make_product(np.full(SHAPE, 5.0), reference_datetime=datetime(2021, 6, 3, 10, 30))
    entry = aggregate_products([p]).entries[0]
    assert entry.reference_datetime == T0


def test_integer_pixel_shift_lands_on_the_right_pixels():
    base = make_product(_gradient() + 1.0, name="base")
    # Second product: 2 columns east and 1 row south of the first grid.
    shifted_transform = TRANSFORM @ Affine.translation(2, 1)
    shifted = make_product(np.full(SHAPE, 1000.0, dtype=np.float32), transform=shifted_transform, name="shift")
    summary = aggregate_products([base, shifted])
    expected_count = np.ones(SHAPE, dtype=np.uint16)
    expected_count[1:, 2:] = 2
    assert_array_equal(summary.count, expected_count)
    expected = (_gradient() + 1.0).astype(np.float64)
    expected[1:, 2:] = (expected[1:, 2:] + 1000.0) / 2
    assert_allclose(summary.median_v, expected, rtol=0, atol=1e-4)
    assert summary.entries[1].resampled and not summary.entries[0].resampled
    assert summary.entries[1].valid_px == 9  # 3 rows x 3 columns overlap


def test_coarser_product_is_resampled_onto_first_grid():
    # 200 m pixels, 2 x 3: each coarse pixel covers 2 x 2 fine pixels.
    coarse_values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]], dtype=np.float32)
    coarse = make_product(coarse_values, transform=Affine(200.0, 0, 500_000.0, 0, -200.0, 7_000_000.0), name="coarse")
    wide = make_product(np.full((4, 6), 7.0), name="wide")
    summary = aggregate_products([coarse, wide])  # the coarse grid comes first: it defines the grid
    assert summary.shape == (2, 3) and summary.transform.a == 200.0
    assert_array_equal(summary.count, [[2, 2, 2], [2, 2, 1]])
    assert_allclose(summary.median_v, [[4.0, 4.5, 5.0], [5.5, 6.0, 7.0]])
    # The 4 x 5 grid first: the coarse map is spread over 2 x 2 fine pixels (its last column half).
    base = make_product(np.full(SHAPE, 7.0), name="base")
    summary = aggregate_products([base, coarse])
    assert summary.shape == SHAPE
    up = np.repeat(np.repeat(coarse_values, 2, axis=0), 2, axis=1)[:4, :5]
    expected_count = np.where(np.isnan(up), 1, 2)
    assert_array_equal(summary.count, expected_count)
    expected = np.where(np.isnan(up), 7.0, (up + 7.0) / 2)
    assert_allclose(summary.median_v, expected, atol=1e-5)


def test_bilinear_resampling_ignores_nan_neighbours():
    base = make_product(np.full(SHAPE, 7.0), name="base")
    values = np.full(SHAPE, 30.0, dtype=np.float32)
    values[:, 0] = np.nan
    # Half a pixel east: every target pixel blends two source columns.
    half = make_product(values, transform=TRANSFORM @ Affine.translation(0.5, 0), name="half")
    summary = aggregate_products([base, half], resampling="bilinear")
    # A NaN neighbour must not poison or drag down the blend: where a value exists it is 30.
    resampled = 2 * summary.median_v - 7.0
    assert_allclose(resampled[summary.count == 2], 30.0, atol=1e-4)
    assert (summary.count[:, 2:] == 2).all()


def test_other_utm_zone_is_reprojected_and_rotated():
    base = make_product(np.full(SHAPE, 1.0), name="base")
    # The same area in UTM 34N; flow due grid-east of zone 34 is not grid-east of zone 33.
    with rasterio.Env():
        from rasterio.warp import transform as warp_transform

        xs, ys = warp_transform(CRS, "EPSG:32634", [500_000.0], [7_000_000.0])
    other_transform = Affine(50.0, 0, xs[0] - 200, 0, -50.0, ys[0] + 200)
    other = make_product(np.full((16, 18), 100.0), transform=other_transform, crs="EPSG:32634", name="z34")
    summary = aggregate_products([base, other])
    assert summary.entries[1].resampled and summary.entries[1].valid_px > 0
    vx = 2 * summary.median_vx - 1.0
    vy = 2 * summary.median_vy
    both = summary.count == 2
    assert_allclose(np.hypot(vx, vy)[both], 100.0, rtol=1e-4)
    # Expected direction: a 1 km step along zone-34 grid east, seen in zone-33 coordinates
    # (about 6 deg * sin(63 deg) = 5.4 deg at 63 N, 6 deg of longitude between the two meridians).
    ex, ey = warp_transform("EPSG:32634", CRS, [xs[0], xs[0] + 1000.0], [ys[0], ys[0]])
    expected_deg = math.degrees(math.atan2(ey[1] - ey[0], ex[1] - ex[0]))
    assert 5.0 < abs(expected_deg) < 5.7
    angle = np.degrees(np.arctan2(vy[both], vx[both]))
    assert_allclose(angle, expected_deg, atol=0.01)


def test_non_overlapping_product_is_refused():
    base = make_product(np.full(SHAPE, 1.0), name="base")
    far = make_product(np.full(SHAPE, 1.0), transform=TRANSFORM @ Affine.translation(50, 0), name="far")
    with pytest.raises(InputError, match="does not overlap"):
        aggregate_products([base, far])


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"min_count": 0}, "min_count"), ({"min_count": 1.5}, "min_count"), ({"resampling": "cubic"}, "resampling")],
)
def test_bad_parameters_name_the_parameter(kwargs, parameter):
    with pytest.raises(InvalidParameter) as info:
        aggregate_products(_three_products(), **kwargs)
    assert info.value.parameter == parameter


def test_product_without_crs_is_an_input_error():
    product = make_product(np.full(SHAPE, 1.0), crs="")
    with pytest.raises(InputError, match="no usable CRS"):
        aggregate_products([product])


def test_no_products_is_an_error():
    with pytest.raises(InvalidParameter, match="products"):
        aggregate_products([])


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        aggregate_products([tmp_path / "nope.tif"])


def test_aggregate_velocity_cog_files_and_write_summary(tmp_path):
    paths = []
    for index, product in enumerate(_three_products()):
        paths.append(write_velocity_cog(product, tmp_path / f"pair{index}.tif"))
    summary = aggregate_products(paths)
    in_memory = aggregate_products(_three_products())
    assert_array_equal(summary.median_v, in_memory.median_v)
    assert [e.source for e in summary.entries] == [str(p) for p in paths]
    assert [e.reference_datetime for e in summary.entries] == [e.reference_datetime for e in in_memory.entries]

    files = write_summary(summary, tmp_path / "out")
    assert {p.name for p in files.cogs().values()} == set(SUMMARY_FILE_NAMES.values())
    for name in ("median_v", "median_vx", "median_vy", "std_v"):
        with rasterio.open(files.cogs()[name]) as src:
            assert src.dtypes == ("float32",) and math.isnan(src.nodata)
            assert src.crs.to_epsg() == 32633 and src.transform == TRANSFORM
            assert src.tags(1)["units"] == "m/yr" and src.descriptions == (name,)
            assert_array_equal(src.read(1), getattr(summary, name))
            tags = src.tags()
    with rasterio.open(files.count) as src:
        assert src.dtypes == ("uint16",) and src.nodata is None
        assert src.profile["driver"] == "GTiff" and src.profile["tiled"] in (True, False)
        assert_array_equal(src.read(1), summary.count)
        assert src.tags(1)["units"] == "1"
    assert tags["start_datetime"] == T0.isoformat().replace("+00:00", "Z")
    assert tags["end_datetime"] == (T0 + timedelta(days=385.5)).isoformat().replace("+00:00", "Z")
    assert tags["product_count"] == "3"
    pairs = json.loads(tags["pairs"])
    assert [p["reference_datetime"] for p in pairs] == [format_datetime(e.reference_datetime) for e in summary.entries]
    assert [p["secondary_datetime"] for p in pairs] == [format_datetime(e.secondary_datetime) for e in summary.entries]
    assert json.loads(tags["product_ids"])[2] == summary.entries[2].pair_id
