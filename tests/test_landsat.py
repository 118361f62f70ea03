"""Landsat 8/9 panchromatic scenes through the STAC path: the band table's second row.

A Landsat Collection 2 Level-1 item (the USGS STAC server's ``landsat-c2l1``) has its band 8
(15 m, uint16 DN, no nodata value) as ``pan`` and its CFMask flags as ``qa_pixel``. The band
table (``domain.sensors``) says so; everything after it is the Sentinel-2 pipeline. The real
pair (Yahtse Glacier) through ``correlate`` is in ``test_real_pair_yahtse.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from affine import Affine

from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.domain.sensors import LANDSAT_OLI, SENTINEL_2, sensor_of
from glacier_velocity.errors import InputError, MalformedItem
from glacier_velocity.io.cog import read_velocity_cog
from glacier_velocity.products.items import footprint_lonlat
from glacier_velocity.stac.discovery import scl_cloud_cover
from glacier_velocity.stac.pairing import Pair
from glacier_velocity.stac.scene import Scene, read_item
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair
from helpers import REF_TIME, SEC_TIME, X0, Y0, write_landsat_item, write_scene_cog, write_scene_item

#: UTM 7N (Yahtse Glacier, Alaska) and a Landsat grid origin there (m).
LANDSAT_EPSG = 32607
LX0, LY0 = 465_067.5, 6_681_577.5
SHAPE = (256, 256)


def test_qa_pixel_flags_are_read_as_scene_classes():
    # Real Landsat 8 QA_PIXEL values (bits set): clear land (6, 8, 10, 12, 14), clear water (+7),
    # high-confidence cloud (3, 8, 9, ...), cloud over cirrus (2, 3, ...), dilated cloud (1, ...),
    # snow (5, 6, ...), cirrus alone (2, 6, ...), cloud shadow (4, 6, ...), fill (0), and 0 read
    # from outside the raster.
    qa = np.array([21824, 21952, 22280, 55052, 21762, 30048, 54596, 23888, 1, 0], np.uint16)
    assert LANDSAT_OLI.scl_classes(qa).tolist() == [7, 6, 9, 9, 8, 11, 10, 3, 0, 0]
    scl = np.array([0, 3, 4, 5, 6, 9, 11], np.uint8)
    assert SENTINEL_2.scl_classes(scl).tolist() == scl.tolist()


@pytest.mark.parametrize(
    ("item_id", "platform", "expected"),
    [
        ("LC08_L1TP_063018_20160718_20200906_02_T1", "LANDSAT_8", LANDSAT_OLI),
        ("LC09_L1TP_063018_20220718_20220718_02_T1", "landsat-9", LANDSAT_OLI),
        ("LC80630182016200LGN00", None, LANDSAT_OLI),
        ("S2A_43SEA_20200601_0_L2A", "sentinel-2a", SENTINEL_2),
        ("S2A_43SEA_20200601_0_L2A", None, SENTINEL_2),
    ],
)
def test_the_band_table_row_comes_from_the_platform_or_the_id(item_id, platform, expected):
    assert sensor_of(item_id, {"platform": platform} if platform else {}) is expected


@pytest.mark.parametrize(
    ("item_id", "platform"), [("LE07_L1TP_063018_20020718_20200906_02_T1", "landsat-7"), ("LT05_x", None)]
)
def test_other_landsat_missions_are_refused_by_name(item_id, platform):
    with pytest.raises(MalformedItem, match=r"platform: is Landsat [57]; the workflow tracks Sentinel-2 \(B08\) and"):
        sensor_of(item_id, {"platform": platform} if platform else {})


def _landsat_items(directory, reference, secondary, *, qa=None, pan=True):
    transform = Affine(15.0, 0.0, LX0, 0.0, -15.0, LY0)
    # Landsat Collection 2 GeoTIFFs declare no nodata value; fill is DN 0.
    for name, image in (("ref_B8.TIF", reference), ("sec_B8.TIF", secondary)):
        write_scene_cog(directory / name, image, transform, crs=f"EPSG:{LANDSAT_EPSG}", nodata=None)
    qa_names = {}
    if qa is not None:
        qa_transform = Affine(30.0, 0.0, LX0, 0.0, -30.0, LY0)
        for name, flags in zip(("ref_QA_PIXEL.TIF", "sec_QA_PIXEL.TIF"), qa, strict=True):
            write_scene_cog(directory / name, flags, qa_transform, crs=f"EPSG:{LANDSAT_EPSG}", nodata=None)
            qa_names[name[:3]] = name
    return tuple(
        write_landsat_item(
            directory,
            item_id,
            when,
            f"{role}_B8.TIF",
            transform,
            SHAPE,
            epsg=LANDSAT_EPSG,
            qa_name=qa_names.get(role),
            pan=pan,
        )
        for item_id, when, role in (
            ("LC08_L1TP_063018_20200601_20200608_02_T1", REF_TIME, "ref"),
            ("LC08_L1TP_063018_20200617_20200624_02_T1", SEC_TIME, "sec"),
        )
    )


def test_a_level1_item_is_read_through_its_pan_and_qa_pixel_assets(tmp_path):
    pair = make_pair(SHAPE, Translation(1.0, 0.0), seed=3)
    flags = np.full((128, 128), 21824, np.uint16)
    ref, sec = _landsat_items(tmp_path, pair.reference, pair.secondary, qa=(flags, flags))
    scene = Scene.from_item(read_item(ref))
    assert scene.sensor is LANDSAT_OLI and scene.sensor_key == "landsat-oli"
    assert scene.band_href == str(tmp_path / "ref_B8.TIF")
    assert scene.classification_href == str(tmp_path / "ref_QA_PIXEL.TIF")
    assert (scene.tile, scene.epsg) == ("063018", LANDSAT_EPSG)
    assert Scene.from_dict(scene.to_dict()) == scene
    # An older catalogue's band key.
    item = read_item(ref)
    item.assets["B8"] = item.assets.pop("pan")
    assert Scene.from_item(item).band_href == scene.band_href


def test_a_level2_item_without_the_panchromatic_band_is_refused_saying_which_to_use(tmp_path):
    pair = make_pair(SHAPE, Translation(1.0, 0.0), seed=3)
    ref, _ = _landsat_items(tmp_path, pair.reference, pair.secondary, pan=False)
    with pytest.raises(MalformedItem) as info:
        Scene.from_item(read_item(ref))
    assert str(info.value) == (
        "item 'LC08_L1TP_063018_20200601_20200608_02_T1': assets: no 'pan' or 'B8' asset (it has: nir08, "
        "thumbnail); the workflow tracks features in the panchromatic band B8 (15 m), which Landsat Collection 2 "
        "Level-2 items (surface reflectance, e.g. Earth Search landsat-c2-l2) do not carry - use Level-1 items "
        "(USGS collection landsat-c2l1), whose 'pan' asset is band 8"
    )


def test_a_pair_of_two_missions_is_refused(tmp_path):
    pair = make_pair(SHAPE, Translation(1.0, 0.0), seed=3)
    landsat, _ = _landsat_items(tmp_path, pair.reference, pair.secondary)
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    write_scene_cog(tmp_path / "sec_B08.tif", pair.secondary, transform)
    sentinel = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", transform, SHAPE)
    with pytest.raises(
        InputError, match="is Landsat 8/9 OLI and secondary 'S2A_43SEA_20200617_0_L2A' is Sentinel-2 MSI"
    ):
        Pair(Scene.from_item(read_item(landsat)), Scene.from_item(read_item(sentinel)))


def test_landsat_items_are_measured_and_cloud_masked_as_sentinel_2_items_are(tmp_path):
    """The same images as Sentinel-2 items (10 m, SCL) and as Landsat items (15 m, QA_PIXEL with
    the same cloud): the same offsets (px), point for point, and velocities 1.5 times larger."""
    synthetic = make_pair(SHAPE, Translation(2.5, -1.5), seed=7)
    secondary = synthetic.secondary.copy()
    rng = np.random.default_rng(3)
    secondary[96:192, 96:192] = (9000 + rng.normal(0, 20, (96, 96))).astype(np.uint16)
    # The cloud in the classification of each mission, at 2 px of the tracked band.
    scl_clear, scl_cloud = np.full((128, 128), 11, np.uint8), np.full((128, 128), 11, np.uint8)
    scl_cloud[48:96, 48:96] = 9
    qa_clear = np.full((128, 128), 30048, np.uint16)  # snow, as SCL 11
    qa_cloud = qa_clear.copy()
    qa_cloud[48:96, 48:96] = 22280

    s2 = tmp_path / "s2"
    s2.mkdir()
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    scl_transform = Affine(20.0, 0.0, X0, 0.0, -20.0, Y0)
    write_scene_cog(s2 / "ref_B08.tif", synthetic.reference, transform)
    write_scene_cog(s2 / "sec_B08.tif", secondary, transform)
    write_scene_cog(s2 / "ref_SCL.tif", scl_clear, scl_transform)
    write_scene_cog(s2 / "sec_SCL.tif", scl_cloud, scl_transform)
    s2_items = [
        write_scene_item(s2, item_id, when, f"{role}_B08.tif", transform, SHAPE, scl_name=f"{role}_SCL.tif")
        for item_id, when, role in (
            ("S2B_43SEA_20200601_0_L2A", REF_TIME, "ref"),
            ("S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec"),
        )
    ]
    landsat = tmp_path / "landsat"
    landsat.mkdir()
    landsat_items = _landsat_items(landsat, synthetic.reference, secondary, qa=(qa_clear, qa_cloud))

    # The same search range in pixels: the speed 1.5 times larger over pixels 1.5 times larger.
    params = CorrelationParams(stable_correction=False, grid_spacing_px=16, mask_clouds=True)
    s2_out = correlate_pair(*s2_items, tmp_path / "out", params)
    landsat_params = replace(params, max_velocity_m_per_yr=1.5 * params.max_velocity_m_per_yr)
    landsat_out = correlate_pair(*landsat_items, tmp_path / "out", landsat_params)
    assert landsat_out.search_px == pytest.approx(s2_out.search_px)
    assert landsat_out.basename == "LC_063018_20200601_20200617"
    s2_product, landsat_product = read_velocity_cog(s2_out.cog), read_velocity_cog(landsat_out.cog)
    assert landsat_product.crs == f"EPSG:{LANDSAT_EPSG}"
    np.testing.assert_array_equal(landsat_product.dx, s2_product.dx)
    np.testing.assert_array_equal(landsat_product.dy, s2_product.dy)
    clouded = np.isnan(landsat_product.v).sum()
    assert clouded >= 25  # the cloud's points, masked by QA_PIXEL as by SCL
    np.testing.assert_allclose(landsat_product.vx, 1.5 * s2_product.vx, rtol=1e-5)
    per_year = 365.25 / 16.25
    assert np.nanmedian(landsat_product.vx) == pytest.approx(2.5 * 15.0 * per_year, rel=0.02)
    assert np.nanmedian(landsat_product.vy) == pytest.approx(1.5 * 15.0 * per_year, rel=0.02)


def test_discovery_judges_cloud_over_the_aoi_from_qa_pixel(tmp_path):
    transform = Affine(30.0, 0.0, LX0, 0.0, -30.0, LY0)
    rows, cols = np.indices((64, 64))
    # Clear land and cloud alternate; the western half is fill.
    flags = np.where((rows + cols) % 2 == 0, 21824, 22280).astype(np.uint16)
    flags[:, :32] = 1
    path = write_scene_cog(tmp_path / "QA_PIXEL.TIF", flags, transform, crs=f"EPSG:{LANDSAT_EPSG}", nodata=None)
    inner = Affine(30.0, 0.0, LX0 + 300.0, 0.0, -30.0, LY0 - 300.0)
    aoi = footprint_lonlat(inner, (44, 44), f"EPSG:{LANDSAT_EPSG}", densify=1)
    assert scl_cloud_cover(path, aoi, sensor=LANDSAT_OLI) == pytest.approx(50.0, abs=2.0)
