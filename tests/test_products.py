"""Product file names, quicklook PNG and STAC item of a velocity product."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime

import numpy as np
import pystac
import pytest
from affine import Affine
from matplotlib.image import imread
from rasterio.warp import transform as transform_coords
from shapely.geometry import Point, shape

from glacier_velocity.domain.velocity import VelocityProduct
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.io.cog import COG_MEDIA_TYPE, write_velocity_cog
from glacier_velocity.io.raster import Raster
from glacier_velocity.products.figures import colour_limit
from glacier_velocity.products.items import make_product_item, save_product_item
from glacier_velocity.products.naming import product_basename, product_paths
from glacier_velocity.products.quicklook import write_quicklook
from glacier_velocity.stac.pairing import Pair
from glacier_velocity.stac.scene import Scene
from helpers import KARAKORAM_REF_TIME, KARAKORAM_SEC_TIME, karakoram_product

SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _scene(item_id: str, when: datetime, tile: str | None = "43SEA") -> Scene:
    return Scene(
        id=item_id,
        datetime=when,
        self_href=f"https://example.org/items/{item_id}",
        band_href=f"https://example.org/{item_id}/B08.tif",
        classification_href=None,
        cloud_cover=3.0,
        tile=tile,
        epsg=32643,
        geometry={"type": "Point", "coordinates": [74.2, 36.1]},
    )


def test_basename_from_a_pair_and_from_parts():
    pair = Pair(
        _scene("S2B_43SEA_20200601_0_L2A", KARAKORAM_REF_TIME), _scene("S2A_43SEA_20200721_0_L2A", KARAKORAM_SEC_TIME)
    )
    assert product_basename(pair) == "S2_43SEA_20200601_20200721"
    assert product_basename(("43SEA", KARAKORAM_REF_TIME, KARAKORAM_SEC_TIME)) == "S2_43SEA_20200601_20200721"
    assert product_basename(("43SEA", "2020-06-01", "2020-07-21T10:00:00Z")) == "S2_43SEA_20200601_20200721"
    # Two acquisitions on one day keep their times, so the names differ.
    same_day = product_basename(("43SEA", "2020-06-01T05:00:00Z", "2020-06-01T06:30:00Z"))
    assert same_day == "S2_43SEA_20200601T050000_20200601T063000"
    assert product_basename((None, KARAKORAM_REF_TIME, KARAKORAM_SEC_TIME)) == "S2_scene_20200601_20200721"


@pytest.mark.parametrize(
    "tile", ["../../etc/passwd", "a/b\\c", "..", "tile with spaces", "Tile:43*?<>|", "Gletscher-ü", "", ".hidden"]
)
def test_basename_is_safe_for_any_file_system(tile):
    name = product_basename((tile, "2020-06-01", "2020-07-21"))
    assert SAFE.match(name), name
    assert ".." not in name and "/" not in name and "\\" not in name
    assert name.endswith("_20200601_20200721")


def test_basename_rejects_bad_dates():
    with pytest.raises(InvalidParameter, match="date"):
        product_basename(("43SEA", "June first", "2020-07-21"))


def test_colour_limit_is_the_98th_percentile_of_valid_speeds():
    speed = np.arange(0, 101, dtype=np.float32)
    assert colour_limit(speed) == pytest.approx(98.0)
    with_outlier = np.append(speed, [np.nan, np.nan, 1e6]).astype(np.float32)
    assert colour_limit(with_outlier) < 100.0
    assert colour_limit(np.full(5, np.nan, np.float32)) == 1.0


def test_quicklook_png_with_and_without_background(tmp_path):
    product = karakoram_product()
    background = Raster(
        array=np.random.default_rng(0).integers(1, 5000, (360, 480), dtype=np.uint16),
        transform=Affine(10.0, 0.0, 430_000.0, 0.0, -10.0, 4_000_000.0),
        crs="EPSG:32643",
        nodata=0,
        href="ref.tif",
    )
    out = write_quicklook(product, tmp_path / "q.png", background)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 500
    plain = write_quicklook(product, tmp_path / "plain.png")
    assert imread(plain).shape == image.shape
    # Images differ: the background shows through.
    assert not np.array_equal(imread(plain), image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.png", "q.png"]


def test_quicklook_of_an_all_nan_product(tmp_path):
    product = karakoram_product()
    empty = VelocityProduct(
        **{**product.__dict__, **{k: np.full(product.shape, np.nan, np.float32) for k in ("vx", "vy", "v")}}
    )
    out = write_quicklook(empty, tmp_path / "empty.png")
    assert out.stat().st_size > 1000


def test_stac_item_describes_the_product(tmp_path):
    product = karakoram_product()
    cog, quicklook, item_json = product_paths(tmp_path, "S2_43SEA_20200601_20200721")
    write_velocity_cog(product, cog)
    write_quicklook(product, quicklook)
    item = make_product_item(product, cog, quicklook, extra_properties={"gv:tile": "43SEA"})
    assert item.id == "S2_43SEA_20200601_20200721"
    assert item.datetime is None
    assert item.common_metadata.start_datetime == KARAKORAM_REF_TIME
    assert item.common_metadata.end_datetime == KARAKORAM_SEC_TIME
    props = item.properties
    assert props["gv:reference_id"] == "S2B_43SEA_20200601_0_L2A"
    assert props["gv:secondary_id"] == "S2A_43SEA_20200721_0_L2A"
    assert props["gv:dt_days"] == product.dt_days
    assert props["gv:engine"] == "ncc" and props["gv:engine_params"]["chip_px"] == 32
    assert props["gv:tile"] == "43SEA"
    assert props["gv:valid_fraction"] == pytest.approx(1 - 20 / 1200)
    assert props["gv:median_v_m_per_yr"] == pytest.approx(float(np.nanmedian(product.v)))
    assert props["proj:code"] == "EPSG:32643"
    assert props["proj:transform"] == [120.0, 0.0, 430_000.0, 0.0, -120.0, 4_000_000.0]
    assert props["proj:shape"] == [30, 40]
    # Geometry: the grid outline in lon/lat; its corners and centre are inside it.
    footprint = shape(item.geometry)
    xs = [430_000.0, 430_000.0 + 4800.0, 430_000.0 + 2400.0]
    ys = [4_000_000.0, 4_000_000.0 - 3600.0, 4_000_000.0 - 1800.0]
    lons, lats = transform_coords("EPSG:32643", "EPSG:4326", xs, ys)
    for lon, lat in zip(lons, lats, strict=True):
        assert footprint.buffer(1e-6).contains(Point(lon, lat))
    assert item.bbox == pytest.approx(list(footprint.bounds))
    assert 74.2 < item.bbox[0] < 74.3 and 36.1 < item.bbox[1] < 36.2
    velocity = item.assets["velocity"]
    assert velocity.roles == ["data"] and velocity.media_type == COG_MEDIA_TYPE
    bands = velocity.extra_fields["bands"]
    assert [b["name"] for b in bands] == ["vx", "vy", "v", "vx_error", "vy_error", "v_error", "dx", "dy", "peak", "snr"]
    assert [b["unit"] for b in bands] == ["m/yr"] * 6 + ["px", "px", "1", "1"]
    raster_bands = velocity.extra_fields["raster:bands"]
    assert raster_bands[2]["unit"] == "m/yr" and raster_bands[2]["nodata"] == "nan"
    assert raster_bands[2]["statistics"]["maximum"] == pytest.approx(float(np.nanmax(product.v)))
    assert item.assets["quicklook"].roles == ["overview"]
    assert item.assets["quicklook"].media_type == "image/png"
    assert {link.title for link in item.links if link.rel == "derived_from"} == {"reference", "secondary"}

    saved = save_product_item(item, item_json)
    data = json.loads(saved.read_text())
    assert data["assets"]["velocity"]["href"] == "./S2_43SEA_20200601_20200721.tif"
    assert data["assets"]["quicklook"]["href"] == "./S2_43SEA_20200601_20200721_quicklook.png"
    assert data["properties"]["datetime"] is None
    assert not any(link["rel"] == "self" for link in data["links"])
    back = pystac.Item.from_file(str(saved))
    assert back.assets["velocity"].get_absolute_href() == str(cog.resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (cog, quicklook, item_json))


def test_item_records_the_stable_ground_correction(tmp_path):
    correction = {
        "stable_shift_method": "automatic-mode",
        "stable_shift_applied": True,
        "stable_shift_dx_px": -0.65,
        "stable_shift_dy_px": 1.82,
        "stable_shift_vx_m_per_yr": -236.6,
        "stable_count": 22507,
        "stable_vx_nmad_m_per_yr": 36.0,
        "stable_vy_median_m_per_yr": float("nan"),
        "stable_shift_warning": "",
    }
    product = replace(karakoram_product(), correction=correction)
    cog = write_velocity_cog(product, tmp_path / "v.tif")
    saved = save_product_item(make_product_item(product, cog), tmp_path / "v.json")
    props = json.loads(saved.read_text())["properties"]  # strict JSON: no NaN
    assert props["gv:stable_shift_dx_px"] == -0.65 and props["gv:stable_shift_dy_px"] == 1.82
    assert props["gv:stable_shift_vx_m_per_yr"] == -236.6 and props["gv:stable_count"] == 22507
    assert props["gv:stable_shift_method"] == "automatic-mode" and props["gv:stable_shift_applied"] is True
    assert props["gv:stable_vx_nmad_m_per_yr"] == 36.0 and props["gv:stable_vy_median_m_per_yr"] is None
    assert props["gv:date_center"] == "2020-06-26T05:36:30Z"  # half-way between the acquisitions


def test_item_needs_acquisition_times(tmp_path):
    product = replace(karakoram_product(), reference_datetime=None)
    with pytest.raises(InvalidParameter, match="datetimes"):
        make_product_item(product, tmp_path / "v.tif")
