"""Velocity COG format: layout, metadata, exact round trip and atomic writing."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
from affine import Affine
from numpy.testing import assert_array_equal

from glacier_velocity import __version__
from glacier_velocity.domain.velocity import VELOCITY_BANDS, VelocityProduct
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.cog import (
    PIXEL_CONVENTION,
    read_velocity_cog,
    velocity_tags,
    write_cog,
    write_velocity_cog,
)

TRANSFORM = Affine(120.0, 0.0, 421_235.0, 0.0, -120.0, 4_012_345.0)


def _product(shape: tuple[int, int] = (37, 53), seed: int = 0) -> VelocityProduct:
    rng = np.random.default_rng(seed)
    dx = rng.normal(0.0, 2.0, shape).astype(np.float32)
    dy = rng.normal(0.0, 2.0, shape).astype(np.float32)
    dx[3:6, 10:20] = np.nan
    dy[3:6, 10:20] = np.nan
    dt = 10.527777777777779  # 10 days 12 h 40 min: fractional on purpose
    vx = (dx * 10.0 * 365.25 / dt).astype(np.float32)
    vy = (-dy * 10.0 * 365.25 / dt).astype(np.float32)
    return VelocityProduct(
        vx=vx,
        vy=vy,
        v=np.hypot(vx, vy).astype(np.float32),
        dx=dx,
        dy=dy,
        peak=rng.uniform(0.2, 1.0, shape).astype(np.float32),
        snr=rng.uniform(1.5, 9.0, shape).astype(np.float32),
        transform=TRANSFORM,
        crs="EPSG:32643",
        dt_days=dt,
        reference_id="S2B_43SEA_20200601_0_L2A",
        secondary_id="S2A_43SEA_20200611_0_L2A",
        reference_datetime=datetime(2020, 6, 1, 5, 36, 29, 24000, tzinfo=UTC),
        secondary_datetime=datetime(2020, 6, 11, 18, 16, 29, 24000, tzinfo=UTC),
        engine="ncc",
        engine_params={"grid_spacing_px": 12, "chip_px": 32, "search_px": 7.5, "filter": "wallis"},
        max_velocity_m_per_yr=1000.0,
        sources={"reference": "https://example.org/a.json", "secondary": "items/b.json"},
    )


def test_write_cog_is_a_tiled_compressed_cog_with_overviews(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(600, 700)).astype(np.float32)
    a[:5] = np.nan
    b = (a * 2).astype(np.float64)  # cast to float32 on write
    out = write_cog(
        tmp_path / "big.tif",
        {"alpha": a, "beta": b},
        TRANSFORM,
        "EPSG:32643",
        tags={"answer": 42},
        band_units={"alpha": "m/yr", "beta": "px"},
    )
    assert out == tmp_path / "big.tif"
    with rasterio.open(out) as src:
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG"
        assert structure["COMPRESSION"] == "DEFLATE"
        assert structure["PREDICTOR"] == "3"
        assert src.block_shapes == [(512, 512), (512, 512)]
        assert src.overviews(1) == [2]
        assert src.dtypes == ("float32", "float32")
        assert math.isnan(src.nodata)
        assert src.descriptions == ("alpha", "beta")
        assert src.units == ("m/yr", "px")
        assert src.tags(1)["units"] == "m/yr" and src.tags(2)["units"] == "px"
        assert src.tags()["answer"] == "42"
        assert src.transform == TRANSFORM
        assert src.crs.to_epsg() == 32643
        assert_array_equal(src.read(1), a)
        assert_array_equal(src.read(2), b.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


def test_small_cog_has_no_overviews_but_is_still_a_cog(tmp_path):
    out = write_cog(tmp_path / "small.tif", {"v": np.ones((40, 50))}, TRANSFORM, "EPSG:32643")
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) == []
        assert (src.height, src.width) == (40, 50)


def test_write_cog_rejects_bad_arrays(tmp_path):
    with pytest.raises(InvalidParameter, match="arrays"):
        write_cog(tmp_path / "x.tif", {}, TRANSFORM, "EPSG:32643")
    with pytest.raises(InvalidParameter, match="shape"):
        write_cog(tmp_path / "x.tif", {"a": np.ones((3, 4)), "b": np.ones((4, 3))}, TRANSFORM, "EPSG:32643")
    with pytest.raises(InvalidParameter, match="2-D"):
        write_cog(tmp_path / "x.tif", {"a": np.ones(5)}, TRANSFORM, "EPSG:32643")
    with pytest.raises(InputError, match="does not exist"):
        write_cog(tmp_path / "nodir" / "x.tif", {"a": np.ones((3, 3))}, TRANSFORM, "EPSG:32643")
    assert list(tmp_path.iterdir()) == []


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("boom while writing tags")


def test_failure_mid_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        write_cog(tmp_path / "v.tif", {"v": np.ones((64, 64))}, TRANSFORM, "EPSG:32643", tags={"bad": _Unprintable()})
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_the_previous_file(tmp_path):
    target = write_cog(tmp_path / "v.tif", {"v": np.full((8, 8), 3.0)}, TRANSFORM, "EPSG:32643")
    with pytest.raises(RuntimeError):
        write_cog(target, {"v": np.full((8, 8), 7.0)}, TRANSFORM, "EPSG:32643", tags={"bad": _Unprintable()})
    assert [p.name for p in tmp_path.iterdir()] == ["v.tif"]
    with rasterio.open(target) as src:
        assert_array_equal(src.read(1), np.full((8, 8), 3.0, np.float32))


def test_velocity_cog_bands_tags_and_round_trip(tmp_path):
    product = _product()
    out = write_velocity_cog(product, tmp_path / "vel.tif")
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.descriptions == tuple(name for name, _ in VELOCITY_BANDS)
        assert src.units == tuple(unit for _, unit in VELOCITY_BANDS)
        index = {name: i for i, (name, _) in enumerate(VELOCITY_BANDS, start=1)}
        assert src.tags(index["v"])["units"] == "m/yr" and src.tags(index["dx"])["units"] == "px"
        tags = src.tags()
        assert tags["reference_id"] == "S2B_43SEA_20200601_0_L2A"
        assert tags["secondary_id"] == "S2A_43SEA_20200611_0_L2A"
        assert tags["reference_datetime"] == "2020-06-01T05:36:29.024000Z"
        assert tags["reference_source"] == "https://example.org/a.json"
        assert tags["secondary_source"] == "items/b.json"
        assert float(tags["dt_days"]) == product.dt_days
        assert tags["engine"] == "ncc"
        assert json.loads(tags["engine_params"])["search_px"] == 7.5
        # The speed the pair was tracked for is a setting of its own, not the engine's.
        assert tags["max_velocity_m_per_yr"] == "1000.0" and "max_velocity_m_per_yr" not in tags["engine_params"]
        assert tags["software_version"] == __version__
        assert tags["pixel_convention"] == PIXEL_CONVENTION
        assert "vx: m/yr" in tags["units"] and "dx: px" in tags["units"]
        assert src.transform == TRANSFORM
    back = read_velocity_cog(out)
    for name, _ in VELOCITY_BANDS:
        assert_array_equal(back.band(name), product.band(name))
        assert back.band(name).dtype == np.float32
    assert back.transform == product.transform
    assert back.crs == product.crs
    assert back.dt_days == product.dt_days
    assert back.reference_id == product.reference_id and back.secondary_id == product.secondary_id
    assert back.reference_datetime == product.reference_datetime
    assert back.secondary_datetime == product.secondary_datetime
    assert back.engine == product.engine
    assert back.engine_params == product.engine_params
    assert back.max_velocity_m_per_yr == 1000.0
    assert (
        read_velocity_cog(
            write_velocity_cog(replace(product, max_velocity_m_per_yr=None), tmp_path / "n.tif")
        ).max_velocity_m_per_yr
        is None
    )
    assert back.sources == product.sources


def test_velocity_cog_records_errors_correction_and_cf_metadata(tmp_path):
    product = _product((6, 7))
    error = np.full((6, 7), 36.5, np.float32)
    correction = {
        "stable_shift_method": "outlines",
        "stable_shift_applied": True,
        "stable_shift_dx_px": -0.6475,
        "stable_shift_dy_px": 1.82,
        "stable_shift_vy_m_per_yr": -665.0,
        "stable_count": 2250,
        "stable_vx_nmad_m_per_yr": 36.5,
        "stable_vy_median_m_per_yr": float("nan"),
        "stable_shift_warning": "",
    }
    product = replace(product, vx_error=error, vy_error=error + 8, v_error=error + 4, correction=correction)
    out = write_velocity_cog(product, tmp_path / "corrected.tif")
    with rasterio.open(out) as src:
        index = {name: i for i, name in enumerate(src.descriptions, start=1)}
        assert list(index)[:6] == ["vx", "vy", "v", "vx_error", "vy_error", "v_error"]
        assert src.tags(index["vx"])["standard_name"] == "land_ice_surface_x_velocity"
        assert src.tags(index["vy"])["standard_name"] == "land_ice_surface_y_velocity"
        assert src.tags(index["vy_error"])["standard_name"] == "land_ice_surface_y_velocity standard_error"
        assert src.tags(index["vy_error"])["units"] == "m/yr"
        assert "NMAD" in src.tags(index["vx_error"])["long_name"]
        assert "standard_name" not in src.tags(index["peak"])
        tags = src.tags()
        assert tags["stable_shift_dx_px"] == "-0.6475" and tags["stable_shift_method"] == "outlines"
        assert tags["stable_count"] == "2250" and tags["year_length_days"] == "365.25"
        assert tags["chip_size_px"] == "32"
        assert tags["acquisition_date_img1"] == "2020-06-01T05:36:29.024000Z"
        assert tags["acquisition_date_img2"] == "2020-06-11T18:16:29.024000Z"
        assert tags["date_center"] == "2020-06-06T11:56:29.024000Z"
    back = read_velocity_cog(out)
    assert_array_equal(back.vy_error, error + 8)
    assert back.correction["stable_shift_dy_px"] == 1.82 and back.correction["stable_shift_applied"] is True
    assert back.correction["stable_count"] == 2250 and np.isnan(back.correction["stable_vy_median_m_per_yr"])
    assert back.correction["stable_shift_method"] == "outlines"


def test_velocity_cog_without_error_bands_reads_with_nan_errors(tmp_path):
    """Products written before the error bands existed still read."""
    product = _product((5, 6))
    old_bands = [name for name, _ in VELOCITY_BANDS if not name.endswith("_error")]
    out = write_cog(
        tmp_path / "old.tif",
        {name: product.band(name) for name in old_bands},
        TRANSFORM,
        "EPSG:32643",
        tags=velocity_tags(product),
    )
    back = read_velocity_cog(out)
    assert_array_equal(back.vx, product.vx)
    assert np.isnan(back.vx_error).all() and back.vx_error.shape == (5, 6) and back.correction == {}


def test_velocity_cog_without_datetimes_round_trips(tmp_path):
    product = replace(_product((5, 6)), reference_datetime=None, secondary_datetime=None, sources={})
    back = read_velocity_cog(write_velocity_cog(product, tmp_path / "v.tif"))
    assert back.reference_datetime is None and back.secondary_datetime is None
    assert back.sources == {}


def test_velocity_cog_datetimes_read_back_in_utc_whatever_offset_the_tags_carry(tmp_path):
    # Another tool may rewrite the tags with an offset: the product still holds UTC (domain.dates).
    out = write_velocity_cog(_product((5, 6)), tmp_path / "v.tif")
    with rasterio.open(out, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.update_tags(
            reference_datetime="2020-06-01T07:36:29.024+02:00", secondary_datetime="2020-06-11T18:16:29.024"
        )
    back = read_velocity_cog(out)
    assert back.reference_datetime == datetime(2020, 6, 1, 5, 36, 29, 24000, tzinfo=UTC)
    assert back.secondary_datetime == datetime(2020, 6, 11, 18, 16, 29, 24000, tzinfo=UTC)
    assert back.reference_datetime.tzinfo == UTC


def test_read_velocity_cog_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_velocity_cog(tmp_path / "missing.tif")
    other = write_cog(tmp_path / "other.tif", {"v": np.ones((4, 4))}, TRANSFORM, "EPSG:32643")
    with pytest.raises(InputError, match="not a velocity product"):
        read_velocity_cog(other)
