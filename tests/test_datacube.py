"""Velocity datacube: every pair with exact values under ITS_LIVE's names, CF-1.8 by the IOOS
compliance checker, written a layer at a time, and the summary's choice flagged per layer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import netCDF4
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from numpy.testing import assert_array_equal
from pyproj import Transformer

from glacier_velocity.aggregation.datacube import DATACUBE_FILE_NAME, FILL_VALUE, write_datacube
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.cog import write_velocity_cog
from helpers import PRODUCT_CRS as CRS
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import PRODUCT_TRANSFORM as TRANSFORM
from helpers import cf_compliance_failures, make_product

T = datetime(2022, 6, 1, 5, 30, tzinfo=UTC)


def _speeds(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).uniform(0, 300, SHAPE).astype(np.float32)
    v[0, seed % SHAPE[1]] = np.nan  # a hole per pair
    return v


@pytest.fixture
def products():
    # Given out of date order, with a fractional baseline and a pair in another direction.
    # Made without the correction (error_m_per_yr=None): no errors, no shift.
    return [
        make_product(
            _speeds(1), reference_datetime=T + timedelta(days=20), dt_days=10.5, name="c", error_m_per_yr=None
        ),
        make_product(_speeds(2), reference_datetime=T, dt_days=10.0, name="a", direction_deg=30.0, error_m_per_yr=None),
        make_product(_speeds(3), reference_datetime=T + timedelta(days=5), dt_days=20.0, name="b", error_m_per_yr=None),
    ]


def _naive(value: datetime) -> np.datetime64:
    return np.datetime64(value.replace(tzinfo=None), "ns")


def test_datacube_holds_every_pair_under_its_live_names_with_exact_values(tmp_path, products):
    cogs = [write_velocity_cog(p, tmp_path / f"pair_{i}.tif") for i, p in enumerate(products)]
    info = write_datacube(cogs, tmp_path / DATACUBE_FILE_NAME)
    assert info.pair_count == 3 and info.shape == SHAPE
    with xr.open_dataset(info.path) as cube:
        assert dict(cube.sizes) == {"mid_date": 3, "y": 4, "x": 5}
        # Sorted by mid date: a (mid 06-06 05:30), b (mid 06-16 05:30), c (mid 06-26 11:30: 10.5 days).
        expected = [products[1], products[2], products[0]]
        mids = [p.reference_datetime + (p.secondary_datetime - p.reference_datetime) / 2 for p in expected]
        # Float days since 1970 resolve a microsecond.
        tolerance = np.timedelta64(1, "ms")
        assert np.all(abs(cube.mid_date.values - np.array([_naive(m) for m in mids])) < tolerance)
        assert abs(cube.mid_date.values[2] - np.datetime64("2022-06-26T11:30:00", "ns")) < tolerance
        for i, product in enumerate(expected):
            for name in ("vx", "vy", "v"):
                assert_array_equal(cube[name].values[i], getattr(product, name))  # NaN where NaN
            assert cube.date_dt.values[i] == product.dt_days
            assert abs(cube.acquisition_date_img1.values[i] - _naive(product.reference_datetime)) < tolerance
            assert abs(cube.acquisition_date_img2.values[i] - _naive(product.secondary_datetime)) < tolerance
            assert cube.date_center.values[i] == cube.mid_date.values[i]
            assert cube.id_img1.values[i] == product.reference_id and cube.id_img2.values[i] == product.secondary_id
            assert cube.roi_valid_percentage.values[i] == pytest.approx(100 * 19 / 20)
        # ITS_LIVE's codes: S2A_... -> mission S, satellite 2A.
        assert list(cube.mission_img1.values) == list(cube.mission_img2.values) == ["S"] * 3
        assert list(cube.satellite_img1.values) == ["2A"] * 3 and list(cube.satellite_img2.values) == ["2B"] * 3
        # Cell centres of the 100 m grid whose corner is (500000, 7000000), and their lon/lat.
        assert_array_equal(cube.x.values, 500_050.0 + 100.0 * np.arange(5))
        assert_array_equal(cube.y.values, 6_999_950.0 - 100.0 * np.arange(4))
        lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(500_450.0, 6_999_650.0)
        assert (cube.lon.values[3, 4], cube.lat.values[3, 4]) == pytest.approx((lon, lat), abs=1e-9)
        assert {"lat", "lon"} <= set(cube.v.coords) and cube.lat.attrs["units"] == "degrees_north"
        # CF-1.8 metadata, ITS_LIVE's units.
        assert cube.attrs["Conventions"] == "CF-1.8"
        assert cube.vx.attrs["standard_name"] == "land_ice_surface_x_velocity"
        assert cube.vy.attrs["standard_name"] == "land_ice_surface_y_velocity"
        assert "standard_name" not in cube.v.attrs  # CF names no ice speed
        for name in ("v", "vx", "vy", "v_error", "vx_error", "vy_error", "vx_stable_shift"):
            assert cube[name].attrs["units"] == "meter/year", name
        assert cube.v.attrs["grid_mapping"] == "mapping"
        assert cube.mapping.attrs["grid_mapping_name"] == "transverse_mercator"
        assert cube.mapping.attrs["longitude_of_central_meridian"] == 15.0
        assert cube.mapping.attrs["spatial_epsg"] == 32633
        assert "UTM zone 33N" in cube.mapping.attrs["crs_wkt"]
        assert cube.mapping.attrs["GeoTransform"] == "500000.0 100.0 0.0 7000000.0 0.0 -100.0"
        assert cube.x.attrs["standard_name"] == "projection_x_coordinate" and cube.x.attrs["units"] == "m"
        # The products were made without the correction: no error, no shift, flag 0.
        assert np.isnan(cube.v_error.values).all() and np.isnan(cube.vx_stable_shift.values).all()
        assert list(cube.stable_shift_flag.values) == [0, 0, 0]
        assert "in_summary" not in cube  # the summary's choice was not given
    # On disk: the fill value, float64 days since 1970 (CF 1.8 has no 64-bit integers), an
    # unlimited mid_date chunked one layer at a time.
    with netCDF4.Dataset(info.path) as raw:
        assert raw.dimensions["mid_date"].isunlimited()
        assert raw["v"].getncattr("_FillValue") == np.float32(FILL_VALUE)
        raw.set_auto_mask(False)
        assert raw["v"][0][0, 2] == np.float32(FILL_VALUE)  # the hole of pair "a" (seed 2)
        assert raw["v"].chunking() == [1, 4, 5]
        for name in ("mid_date", "acquisition_date_img1", "acquisition_date_img2", "date_center"):
            assert raw[name].units == "days since 1970-01-01 00:00:00" and raw[name].dtype == np.float64, name
        assert not [name for name, var in raw.variables.items() if var.dtype in (np.int64, np.uint64)]


def test_the_datacube_passes_the_cf_1_8_compliance_checker(tmp_path):
    corrected = _corrected_pairs(tmp_path)
    left_out = {f"{corrected[0].reference_id}__{corrected[0].secondary_id}": "too noisy"}
    cube = write_datacube(corrected, tmp_path / DATACUBE_FILE_NAME, left_out=left_out)
    assert cf_compliance_failures(cube.path) == []


def test_rasterio_reads_the_cube_georeferenced(tmp_path, products):
    import rasterio

    path = write_datacube(products, tmp_path / "cube.nc").path
    with rasterio.open(f"netcdf:{path}:v") as src:
        assert src.count == 3 and src.crs.to_epsg() == 32633
        assert src.transform.almost_equals(TRANSFORM)


def test_products_on_another_grid_are_resampled_onto_the_first(tmp_path, products):
    # The last product on a grid shifted by exactly one cell east: its values move one column.
    shifted = make_product(
        _speeds(4), transform=TRANSFORM @ Affine.translation(1, 0), reference_datetime=T + timedelta(days=40)
    )
    with xr.open_dataset(write_datacube([*products, shifted], tmp_path / "cube.nc").path) as cube:
        last = cube.v.values[3]
    assert_array_equal(last[:, 1:], shifted.v[:, :-1])
    assert np.isnan(last[:, 0]).all()


def test_the_grid_is_the_first_products_even_when_a_later_pair_comes_first_in_time(tmp_path, products):
    # Given first but latest in time, on a shifted grid: the cube keeps this product's grid.
    first = make_product(
        _speeds(5), transform=TRANSFORM @ Affine.translation(1, 0), reference_datetime=T + timedelta(days=90)
    )
    with xr.open_dataset(write_datacube([first, *products], tmp_path / "cube.nc").path) as cube:
        assert cube.x.values[0] == 500_150.0
        assert_array_equal(cube.v.values[3], first.v)


def test_datacube_refuses_what_it_cannot_index(tmp_path, products):
    with pytest.raises(InvalidParameter, match="^products: no velocity products"):
        write_datacube([], tmp_path / "cube.nc")
    undated = replace(products[0], reference_datetime=None)
    with pytest.raises(InputError, match="has no acquisition dates"):
        write_datacube([products[1], undated], tmp_path / "cube.nc")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_every_layer_the_summary_left_out_is_flagged_with_its_reason(tmp_path, products):
    reason = "typical speed error 140.0 m/yr (median v_error) exceeds max_pair_error_m_per_yr = 100 m/yr"
    cube = write_datacube(
        products, tmp_path / "cube.nc", left_out={f"{products[2].reference_id}__{products[2].secondary_id}": reason}
    )
    with xr.open_dataset(cube.path) as ds:
        # Layers in mid-date order: a (products[1]), b (products[2], left out), c (products[0]).
        assert list(ds.in_summary.values) == [1, 0, 1]
        assert list(ds.summary_exclusion_reason.values) == ["", reason, ""]
        assert ds.in_summary.attrs["flag_meanings"] == "left_out_of_summary used_in_summary"


def _corrected_pairs(tmp_path):
    """Two pairs tracked on synthetic misregistered images and put through the real correction stage."""
    from glacier_velocity.correction import correct_product
    from glacier_velocity.demo.synthetic import Misregistered, Translation, make_pair
    from glacier_velocity.domain.outlines import GlacierOutlines
    from glacier_velocity.domain.velocity import offsets_to_velocity
    from glacier_velocity.tracking import TrackingParams, track_offsets

    transform = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0)
    corrected = []
    for index, shift in enumerate([(0.4, -0.3), (-0.6, 0.8)]):
        pair = make_pair((192, 192), Misregistered(Translation(0.0, 0.0), *shift), seed=30 + index)
        offsets = track_offsets(
            pair.reference, pair.secondary, TrackingParams(grid_spacing_px=8, search_px=4.0), progress=False
        )
        start = T + timedelta(days=30 * index)
        product = offsets_to_velocity(
            offsets,
            transform,
            "EPSG:32643",
            10.0,
            reference_id=f"S2B_43SEA_{start:%Y%m%d}_0_L2A",
            secondary_id=f"S2A_43SEA_{start + timedelta(days=10):%Y%m%d}_0_L2A",
            reference_datetime=start,
            secondary_datetime=start + timedelta(days=10),
        )
        corrected.append(correct_product(product, offsets, transform, glacier_outlines=GlacierOutlines.empty()))
    return corrected


def test_datacube_carries_the_error_bands_and_shifts_of_corrected_pairs(tmp_path):
    corrected = _corrected_pairs(tmp_path)
    cogs = [write_velocity_cog(p, tmp_path / f"pair_{i}.tif") for i, p in enumerate(corrected)]
    info = write_datacube(cogs, tmp_path / DATACUBE_FILE_NAME)
    with xr.open_dataset(info.path) as cube:
        for i, product in enumerate(corrected):
            # Real NMAD errors: positive, finite where the pair has a speed, exactly the product's.
            assert_array_equal(cube.vx_error.values[i], product.vx_error)
            assert_array_equal(cube.v_error.values[i], product.v_error)
            assert np.nanmin(cube.vx_error.values[i]) > 0
            assert cube.vx_stable_shift.values[i] == pytest.approx(product.correction["stable_shift_vx_m_per_yr"])
            assert cube.vy_stable_shift.values[i] == pytest.approx(product.correction["stable_shift_vy_m_per_yr"])
            assert cube.stable_count_stationary.values[i] == product.correction["stable_count"] > 100
            assert cube.stable_shift_method.values[i] == product.correction["stable_shift_method"]
        # 0.4 and -0.6 px of 10 m in 10 days, east; -0.3 and 0.8 px along the rows (down = south).
        np.testing.assert_allclose(cube.vx_stable_shift.values, [146.1, -219.2], atol=0.05 * 365.25)
        np.testing.assert_allclose(cube.vy_stable_shift.values, [109.6, -292.2], atol=0.05 * 365.25)
        assert list(cube.stable_shift_flag.values) == [1, 1]  # measured outside the (empty) outlines
        assert list(cube.satellite_img1.values) == ["2B", "2B"] and list(cube.satellite_img2.values) == ["2A", "2A"]
