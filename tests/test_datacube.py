"""Velocity datacube: every pair with exact values, CF-1.8 metadata, opens with xarray."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from numpy.testing import assert_array_equal

from glacier_velocity.aggregation.datacube import (
    DATACUBE_FILE_NAME,
    FILL_VALUE,
    build_datacube,
    write_datacube,
)
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.cog import write_velocity_cog
from helpers import PRODUCT_CRS as CRS
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import PRODUCT_TRANSFORM as TRANSFORM
from helpers import make_product

T = datetime(2022, 6, 1, 5, 30, tzinfo=UTC)


def _speeds(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).uniform(0, 300, SHAPE).astype(np.float32)
    v[0, seed % SHAPE[1]] = np.nan  # a hole per pair
    return v


@pytest.fixture
def products():
    # Given out of date order, with a fractional baseline and a pair in another direction.
    return [
        make_product(_speeds(1), reference_datetime=T + timedelta(days=20), dt_days=10.5, name="c"),
        make_product(_speeds(2), reference_datetime=T, dt_days=10.0, name="a", direction_deg=30.0),
        make_product(_speeds(3), reference_datetime=T + timedelta(days=5), dt_days=20.0, name="b"),
    ]


def test_datacube_holds_every_pair_with_exact_values(tmp_path, products):
    cogs = [write_velocity_cog(p, tmp_path / f"pair_{i}.tif") for i, p in enumerate(products)]
    info = write_datacube(cogs, tmp_path / DATACUBE_FILE_NAME)
    assert info.pair_count == 3 and info.shape == SHAPE
    with xr.open_dataset(info.path) as cube:
        assert dict(cube.sizes) == {"mid_date": 3, "y": 4, "x": 5}
        # Sorted by mid date: a (mid 06-06 05:30), b (mid 06-16 05:30), c (mid 06-26 11:30: 10.5 days).
        expected = [products[1], products[2], products[0]]
        mids = [p.reference_datetime + (p.secondary_datetime - p.reference_datetime) / 2 for p in expected]
        assert list(cube.mid_date.values) == [np.datetime64(m.replace(tzinfo=None), "ns") for m in mids]
        assert str(cube.mid_date.values[2]) == "2022-06-26T11:30:00.000000000"
        for i, product in enumerate(expected):
            for name in ("vx", "vy", "v"):
                assert_array_equal(cube[name].values[i], getattr(product, name))  # NaN where NaN
            assert cube.dt_days.values[i] == product.dt_days
            assert cube.reference_id.values[i] == product.reference_id
            assert cube.secondary_id.values[i] == product.secondary_id
            assert cube.reference_datetime.values[i] == np.datetime64(
                product.reference_datetime.replace(tzinfo=None), "ns"
            )
            assert cube.secondary_datetime.values[i] == np.datetime64(
                product.secondary_datetime.replace(tzinfo=None), "ns"
            )
        # Cell centres of the 100 m grid whose corner is (500000, 7000000).
        assert_array_equal(cube.x.values, 500_050.0 + 100.0 * np.arange(5))
        assert_array_equal(cube.y.values, 6_999_950.0 - 100.0 * np.arange(4))
        # CF-1.8 metadata.
        assert cube.attrs["Conventions"] == "CF-1.8"
        assert cube.vx.attrs["standard_name"] == "land_ice_surface_x_velocity"
        assert cube.vy.attrs["standard_name"] == "land_ice_surface_y_velocity"
        assert cube.v.attrs["standard_name"] == "land_ice_surface_speed"
        assert cube.v.attrs["units"] == "m/yr" and cube.v.attrs["grid_mapping"] == "mapping"
        assert cube.mapping.attrs["grid_mapping_name"] == "transverse_mercator"
        assert cube.mapping.attrs["longitude_of_central_meridian"] == 15.0
        assert "UTM zone 33N" in cube.mapping.attrs["crs_wkt"]
        assert cube.mapping.attrs["GeoTransform"] == "500000.0 100.0 0.0 7000000.0 0.0 -100.0"
        assert cube.x.attrs["standard_name"] == "projection_x_coordinate" and cube.x.attrs["units"] == "m"
    # On disk: the fill value, and CF time units.
    with xr.open_dataset(info.path, mask_and_scale=False, decode_times=False) as raw:
        assert raw.v.attrs["_FillValue"] == np.float32(FILL_VALUE)
        assert raw.v.values[0][0, 2] == np.float32(FILL_VALUE)  # the hole of pair "a" (seed 2)
        assert raw.mid_date.attrs["units"] == "microseconds since 1970-01-01"


def test_rasterio_reads_the_cube_georeferenced(tmp_path, products):
    import rasterio

    path = write_datacube(products, tmp_path / "cube.nc").path
    with rasterio.open(f"netcdf:{path}:v") as src:
        assert src.count == 3 and src.crs.to_epsg() == 32633
        assert src.transform.almost_equals(TRANSFORM)


def test_products_on_another_grid_are_resampled_onto_the_first(products):
    # The third product on a grid shifted by exactly one cell east: its values move one column.
    shifted = make_product(
        _speeds(4), transform=TRANSFORM @ Affine.translation(1, 0), reference_datetime=T + timedelta(days=40)
    )
    cube = build_datacube([*products, shifted])
    last = cube.v.values[3]
    assert_array_equal(last[:, 1:], shifted.v[:, :-1])
    assert np.isnan(last[:, 0]).all()


def test_datacube_refuses_what_it_cannot_index(products):
    with pytest.raises(InvalidParameter, match="^products: no velocity products"):
        build_datacube([])
    undated = replace(products[0], reference_datetime=None)
    with pytest.raises(InputError, match="has no acquisition dates"):
        build_datacube([products[1], undated])
    assert CRS == "EPSG:32633"


def test_datacube_carries_the_error_bands_and_shifts_of_corrected_pairs(tmp_path):
    """Pairs tracked on synthetic misregistered images and put through the real correction stage."""
    from glacier_velocity.correction import correct_product
    from glacier_velocity.demo.synthetic import Misregistered, Translation, make_pair
    from glacier_velocity.domain.velocity import offsets_to_velocity
    from glacier_velocity.tracking import TrackingParams, track_offsets

    transform = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0)
    cogs, corrected = [], []
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
            reference_id=f"ref{index}",
            secondary_id=f"sec{index}",
            reference_datetime=start,
            secondary_datetime=start + timedelta(days=10),
        )
        product = correct_product(product, offsets, transform, glacier_outlines=[])
        corrected.append(product)
        cogs.append(write_velocity_cog(product, tmp_path / f"pair_{index}.tif"))
    info = write_datacube(cogs, tmp_path / DATACUBE_FILE_NAME)
    assert {"vx_error", "vy_error", "v_error", "stable_shift_dx_px", "stable_count"} <= set(info.variables)
    with xr.open_dataset(info.path) as cube:
        for i, product in enumerate(corrected):
            # Real NMAD errors: positive, finite where the pair has a speed, exactly the product's.
            assert_array_equal(cube.vx_error.values[i], product.vx_error)
            assert_array_equal(cube.v_error.values[i], product.v_error)
            assert np.nanmin(cube.vx_error.values[i]) > 0
            assert cube.stable_shift_dx_px.values[i] == pytest.approx(product.correction["stable_shift_dx_px"])
        np.testing.assert_allclose(cube.stable_shift_dx_px.values, [0.4, -0.6], atol=0.05)
        np.testing.assert_allclose(cube.stable_shift_dy_px.values, [-0.3, 0.8], atol=0.05)
        assert cube.vx_error.attrs["units"] == "m/yr"
