"""Correlation of one pair end to end: generated COGs + Earth-Search-like items with known motion."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pystac
import pytest
from affine import Affine
from rasterio.warp import transform_geom
from shapely.affinity import translate
from shapely.geometry import Point, Polygon, mapping, shape

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.correction import StableGroundWarning
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.cog import read_velocity_cog
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair
from helpers import EPSG, REF_TIME, SEC_TIME, X0, Y0, write_scene_cog, write_scene_item

DT_DAYS = 16.25
DX_PX, DY_PX = 2.5, -1.5  # east and north: rows go south, so dy < 0 is northward motion
SHAPE = (256, 256)


# The synthetic pair moves as a whole by 2.9 px, more than any documented Sentinel-2
# misregistration: the tests of reading, alignment and conversion turn the stable-ground
# correction off, and test_a_scene_moving_as_a_whole_keeps_its_motion_and_says_why checks what
# it does with it.


@pytest.fixture(scope="module")
def synthetic():
    return make_pair(SHAPE, Translation(DX_PX, DY_PX), seed=7)


@pytest.fixture
def items(tmp_path, synthetic):
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, transform)
    write_scene_cog(tmp_path / "sec_B08.tif", synthetic.secondary, transform)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", transform, SHAPE)
    sec = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", transform, SHAPE)
    return ref, sec, tmp_path


def _expected_velocity(dx_px=DX_PX, dy_px=DY_PX):
    per_year = 365.25 / DT_DAYS
    return dx_px * 10.0 * per_year, -dy_px * 10.0 * per_year  # vx east, vy north (m/yr)


def test_known_translation_is_recovered_in_m_per_yr(items, synthetic):
    ref, sec, tmp_path = items
    out = correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(stable_correction=False, grid_spacing_px=16))
    assert out.basename == "S2_43SEA_20200601_20200617"
    assert out.dt_days == DT_DAYS
    assert out.search_px == pytest.approx(1000.0 * DT_DAYS / 365.25 / 10.0)
    for path in (out.cog, out.quicklook, out.item):
        assert path.is_file() and path.parent == tmp_path / "out"
    product = read_velocity_cog(out.cog)
    vx_true, vy_true = _expected_velocity()  # 561.9 and 337.2 m/yr
    valid = np.isfinite(product.v)
    assert valid.mean() >= 0.9
    assert out.valid_fraction == pytest.approx(valid.mean())
    assert np.nanmedian(product.vx) == pytest.approx(vx_true, rel=0.02)
    assert np.nanmedian(product.vy) == pytest.approx(vy_true, rel=0.02)
    assert out.median_v_m_per_yr == pytest.approx(np.hypot(vx_true, vy_true), rel=0.02)
    # Point by point: RMSE within 2 % of the speed, and no point off by more than 0.2 px.
    speed_true = np.hypot(vx_true, vy_true)
    error = np.hypot(product.vx[valid] - vx_true, product.vy[valid] - vy_true)
    assert np.sqrt(np.mean(error**2)) < 0.02 * speed_true
    px_per_m_per_yr = DT_DAYS / 365.25 / 10.0
    assert error.max() * px_per_m_per_yr < 0.2
    assert product.dt_days == DT_DAYS
    assert product.reference_id == "S2B_43SEA_20200601_0_L2A"
    assert product.secondary_datetime == SEC_TIME
    assert product.sources["reference"].endswith("S2B_43SEA_20200601_0_L2A.json")
    # Pixel centres are the grid points, on the reference grid (10 m pixels, 16 px spacing).
    assert product.transform.a == 160.0 and product.transform.e == -160.0
    # The first grid point in reference pixel-centre coordinates: the centre of the first chip
    # (a whole or half pixel), inside the image.
    col0 = (product.transform.c - X0) / 10.0 + 8.0 - 0.5
    row0 = (Y0 - product.transform.f) / 10.0 + 8.0 - 0.5
    assert 2 * col0 == round(2 * col0) and 2 * row0 == round(2 * row0)
    assert 0 < col0 < 32 and 0 < row0 < 32

    item = pystac.Item.from_file(str(out.item))
    assert item.id == out.basename
    assert item.properties["gv:dt_days"] == DT_DAYS
    assert item.properties["gv:tile"] == "43SEA"
    assert item.properties["proj:code"] == f"EPSG:{EPSG}"
    assert item.assets["velocity"].get_absolute_href() == str(out.cog.resolve())
    # The images tracked are handed back (the notebook shows them without a second read):
    # the whole 256 px scenes here, both on the reference grid, pixel for pixel the COGs.
    reference, secondary = out.images
    assert reference.shape == secondary.shape == SHAPE
    assert reference.transform == secondary.transform == Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    assert np.array_equal(reference.array, synthetic.reference) and np.array_equal(secondary.array, synthetic.secondary)


def test_a_scene_moving_as_a_whole_keeps_its_motion_and_says_why(items):
    """Issue 21: the automatic mode removed a uniform 2.9 px motion as if it were a
    misregistration, in silence. Beyond the largest documented one (2.5 px), nothing is removed,
    and the COG tags and the STAC item say why and what to give."""
    ref, sec, tmp_path = items
    with pytest.warns(StableGroundWarning, match="exceeds 2.5 px, more than a Sentinel-2 misregistration"):
        out = correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(grid_spacing_px=16))
    product = read_velocity_cog(out.cog)
    vx_true, vy_true = _expected_velocity()
    assert np.nanmedian(product.vx) == pytest.approx(vx_true, rel=0.02)
    assert np.nanmedian(product.vy) == pytest.approx(vy_true, rel=0.02)
    assert np.isnan(product.vx_error).all() and np.isnan(product.v_error).all()
    properties = pystac.Item.from_file(str(out.item)).properties
    assert properties["gv:stable_shift_applied"] is False and properties["gv:stable_shift_method"] == "none"
    assert properties["gv:stable_shift_dx_px"] == 0.0
    warning = properties["gv:stable_shift_warning"]
    assert warning.startswith("the stable-ground shift (+2.50, -1.50) px, 2.92 px, exceeds 2.5 px")
    assert warning.endswith(
        "give glacier outlines (glacier_outlines) or a larger area of interest with stable ground around the glacier"
    )
    assert product.correction["stable_shift_warning"] == warning  # the COG's tags
    assert out.correction["stable_shift_applied"] is False
    assert properties["gv:correlation_params"]["stable_correction"] is True


def test_secondary_on_a_different_grid_is_aligned_before_tracking(tmp_path, synthetic):
    """The secondary file covers a different window, and one is half a pixel off the grid."""
    ref_transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, ref_transform)
    # Cropped by 5 rows and 3 cols: its grid starts 3 px east and 5 px south, same geography.
    sec_transform = Affine(10.0, 0.0, X0 + 30.0, 0.0, -10.0, Y0 - 50.0)
    write_scene_cog(tmp_path / "sec_B08.tif", synthetic.secondary[5:, 3:], sec_transform)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", ref_transform, SHAPE)
    sec = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", sec_transform, (251, 253))
    out = correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(stable_correction=False, grid_spacing_px=16))
    product = read_velocity_cog(out.cog)
    vx_true, vy_true = _expected_velocity()
    assert np.nanmedian(product.vx) == pytest.approx(vx_true, rel=0.02)
    assert np.nanmedian(product.vy) == pytest.approx(vy_true, rel=0.02)

    # Half a pixel east: the secondary's features lie 5 m further east, so they "moved" 0.5 px
    # more; the resampled secondary must show exactly that, not a silently snapped grid.
    half = Affine(10.0, 0.0, X0 + 5.0, 0.0, -10.0, Y0)
    write_scene_cog(tmp_path / "half_B08.tif", synthetic.secondary, half)
    sec_half = write_scene_item(tmp_path, "S2A_43SEA_20200617_1_L2A", SEC_TIME, "half_B08.tif", half, SHAPE)
    out = correlate_pair(
        ref, sec_half, tmp_path / "out_half", CorrelationParams(stable_correction=False, grid_spacing_px=16)
    )
    product = read_velocity_cog(out.cog)
    vx_true, vy_true = _expected_velocity(DX_PX + 0.5)
    assert np.nanmedian(product.vx) == pytest.approx(vx_true, rel=0.02)
    assert np.nanmedian(product.vy) == pytest.approx(vy_true, rel=0.02)


def test_scl_cloud_mask_removes_clouded_points(tmp_path, synthetic):
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    # A featureless bright cloud over rows/cols 96..192 of the secondary; SCL (20 m) flags it
    # as cloud (9) and everything else as snow/ice (11), which must stay unmasked.
    secondary = synthetic.secondary.copy()
    rng = np.random.default_rng(3)
    secondary[96:192, 96:192] = (9000 + rng.normal(0, 20, (96, 96))).astype(np.uint16)
    scl = np.full((128, 128), 11, np.uint8)
    scl[48:96, 48:96] = 9
    scl_transform = Affine(20.0, 0.0, X0, 0.0, -20.0, Y0)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, transform)
    write_scene_cog(tmp_path / "sec_B08.tif", secondary, transform)
    write_scene_cog(tmp_path / "ref_SCL.tif", np.full((128, 128), 11, np.uint8), scl_transform)
    write_scene_cog(tmp_path / "sec_SCL.tif", scl, scl_transform)
    ref = write_scene_item(
        tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", transform, SHAPE, scl_name="ref_SCL.tif"
    )
    sec = write_scene_item(
        tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", transform, SHAPE, scl_name="sec_SCL.tif"
    )
    out = correlate_pair(
        ref, sec, tmp_path / "out", CorrelationParams(stable_correction=False, grid_spacing_px=16, mask_clouds=True)
    )
    product = read_velocity_cog(out.cog)
    # Grid point centres in reference pixel coordinates, from the product's transform.
    rows = (Y0 - product.transform.f) / 10.0 - 0.5 + 16.0 * (np.arange(product.shape[0]) + 0.5)
    cols = (product.transform.c - X0) / 10.0 - 0.5 + 16.0 * (np.arange(product.shape[1]) + 0.5)
    in_cloud = ((rows >= 96) & (rows < 192))[:, None] & ((cols >= 96) & (cols < 192))[None, :]
    clear = ((rows + 16 + 5 < 96) | (rows - 16 - 5 >= 192))[:, None] | ((cols + 16 + 5 < 96) | (cols - 16 - 5 >= 192))[
        None, :
    ]
    assert in_cloud.sum() >= 25 and np.isnan(product.v[in_cloud]).all()
    assert np.isfinite(product.v[clear]).mean() >= 0.9
    vx_true, vy_true = _expected_velocity()
    assert np.nanmedian(product.vx[clear]) == pytest.approx(vx_true, rel=0.02)
    assert np.nanmedian(product.vy[clear]) == pytest.approx(vy_true, rel=0.02)


def test_bbox_limits_the_area(items):
    ref, sec, tmp_path = items
    item = json.loads(open(ref).read())
    west, south, east, north = item["bbox"]
    bbox = (
        west + 0.3 * (east - west),
        south + 0.3 * (north - south),
        west + 0.8 * (east - west),
        north - 0.1 * (north - south),
    )
    out = correlate_pair(
        ref, sec, tmp_path / "out", CorrelationParams(aoi=bbox, grid_spacing_px=16, stable_correction=False)
    )
    full_rows = SHAPE[0] // 16
    assert out.grid_shape[0] < full_rows and out.grid_shape[1] < full_rows
    product = read_velocity_cog(out.cog)
    assert np.nanmedian(product.vx) == pytest.approx(_expected_velocity()[0], rel=0.02)
    stored = pystac.Item.from_file(str(out.item))
    assert stored.properties["gv:aoi_bbox"] == pytest.approx(list(bbox))


def _triangle_lonlat() -> tuple[dict, Polygon]:
    """A triangle about half the scene wide (UTM corners), as lon/lat GeoJSON and in UTM."""
    utm = Polygon([(X0 + 600.0, Y0 - 600.0), (X0 + 1800.0, Y0 - 700.0), (X0 + 1100.0, Y0 - 1900.0)])
    lonlat = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", mapping(utm))
    return {"type": "Feature", "properties": {"name": "tongue"}, "geometry": lonlat}, utm


@pytest.mark.parametrize("form", ["file", "inline", "cli"])
def test_polygon_aoi_bounds_the_grid_and_masks_outside(items, form, capsys):
    """A glacier-outline AOI: the product covers the polygon's bounding box on the reference grid,
    and only points inside the polygon hold a velocity (issue 11, finding 3: it used to be ignored)."""
    ref, sec, tmp_path = items
    feature, utm = _triangle_lonlat()
    aoi_file = tmp_path / "tongue.geojson"
    aoi_file.write_text(json.dumps(feature))
    aoi = json.dumps(feature) if form == "inline" else str(aoi_file)
    if form == "cli":
        argv = ["correlate", ref, sec, "--out-dir", str(tmp_path / "out"), "--aoi", aoi, "--grid-spacing-px", "16"]
        assert main([*argv, "--no-stable-correction"]) == 0
        capsys.readouterr()
        cog = tmp_path / "out" / "S2_43SEA_20200601_20200617.tif"
        item_path = tmp_path / "out" / "S2_43SEA_20200601_20200617.json"
    else:
        params = CorrelationParams(aoi=aoi, grid_spacing_px=16, stable_correction=False)
        out = correlate_pair(ref, sec, tmp_path / "out", params)
        cog, item_path = out.cog, out.item
    product = read_velocity_cog(cog)
    rows, cols = product.shape
    # The grid: the polygon's bounding box (1200 x 1300 m) on 160 m cells, not the 2560 m scene.
    left, top = product.transform.c, product.transform.f
    right, bottom = left + cols * 160.0, top - rows * 160.0
    west, south, east, north = utm.bounds
    assert (rows, cols) != (SHAPE[0] // 16, SHAPE[1] // 16)
    assert west - 160.0 <= left and right <= east + 160.0
    assert south - 160.0 <= bottom and top <= north + 160.0
    assert cols <= 1200.0 / 160.0 + 1 and rows <= 1300.0 / 160.0 + 1
    # Points by where their cell centre lies.
    centres = [[Point(left + (c + 0.5) * 160.0, top - (r + 0.5) * 160.0) for c in range(cols)] for r in range(rows)]
    inside = np.array([[utm.buffer(-20.0).contains(p) for p in row] for row in centres])
    outside = np.array([[not utm.buffer(20.0).contains(p) for p in row] for row in centres])
    assert inside.sum() >= 15 and outside.sum() >= 10
    for band in (product.vx, product.vy, product.v, product.peak, product.dx):
        assert not np.isfinite(band[outside]).any()
    assert np.isfinite(product.v[inside]).mean() >= 0.9
    assert np.nanmedian(product.vx[inside]) == pytest.approx(_expected_velocity()[0], rel=0.02)
    stored = pystac.Item.from_file(str(item_path))
    lonlat_bounds = shape(feature["geometry"]).bounds
    assert stored.properties["gv:aoi_bbox"] == pytest.approx(list(lonlat_bounds))
    # The polygon is recorded by its source and digest, not copied (issue 23, finding 13).
    assert stored.properties["gv:correlation_params"]["aoi"] == ("inline GeoJSON" if form == "inline" else aoi)
    assert stored.properties["gv:aoi"]["sha256"] == parse_aoi(json.dumps(feature)).sha256
    # Its geometry is the triangle cut to the grid, not the grid's box: inside the triangle
    # (give or take half a 160 m cell) and most of it.
    triangle, footprint = shape(feature["geometry"]), shape(stored.geometry)
    assert triangle.buffer(80.0 / 111_320.0).contains(footprint) and footprint.area > 0.7 * triangle.area


def test_a_polygon_aoi_beside_the_scenes_is_refused_with_the_documented_message(items):
    ref, sec, tmp_path = items
    feature, _ = _triangle_lonlat()
    far = json.dumps(mapping(translate(shape(feature["geometry"]), xoff=10.0)))  # 10 degrees east
    with pytest.raises(InputError) as caught:
        correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(aoi=far))
    message = str(caught.value)
    described = message.split("(", 1)[1].split(", W S E N")[0]
    footprint = message.split("spans ", 1)[1].split(";")[0]
    assert described.startswith("the polygon of inline GeoJSON (bbox [8")
    assert_documented(message, described, "'S2B_43SEA_20200601_0_L2A'", footprint)
    assert not (tmp_path / "out").exists()


def test_bad_pairs_fail_with_clear_messages(items):
    ref, sec, tmp_path = items
    with pytest.raises(InputError, match="same scene"):
        correlate_pair(ref, ref, tmp_path / "out")
    with pytest.raises(InputError, match="swap them"):
        correlate_pair(sec, ref, tmp_path / "out")
    with pytest.raises(InputError, match="does not overlap scene"):
        correlate_pair(ref, sec, tmp_path / "out", CorrelationParams(aoi="10.0,46.0,10.1,46.1"))
    with pytest.raises(InputError, match="neither an existing item JSON file nor a URL"):
        correlate_pair(str(tmp_path / "missing.json"), sec, tmp_path / "out")
    no_nir = write_scene_item(
        tmp_path,
        "S2A_43SEA_20200701_0_L2A",
        datetime(2020, 7, 1, tzinfo=UTC),
        "sec_B08.tif",
        Affine(10.0, 0.0, X0, 0.0, -10.0, Y0),
        SHAPE,
        with_nir=False,
    )
    with pytest.raises(InputError, match="no 'nir' asset"):
        correlate_pair(ref, no_nir, tmp_path / "out")
    far = Affine(10.0, 0.0, X0 + 200_000.0, 0.0, -10.0, Y0)
    far_item = write_scene_item(
        tmp_path, "S2A_43SEB_20200701_0_L2A", datetime(2020, 7, 1, tzinfo=UTC), "sec_B08.tif", far, SHAPE
    )
    with pytest.raises(InputError, match="do not overlap"):
        correlate_pair(ref, far_item, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parameters_are_checked_before_any_reading():
    with pytest.raises(InvalidParameter, match="max_velocity_m_per_yr"):
        CorrelationParams(max_velocity_m_per_yr=0)
    with pytest.raises(InvalidParameter, match="engine"):
        CorrelationParams(engine="magic")
    with pytest.raises(InvalidParameter, match="filter"):
        CorrelationParams(filter="sharpen")
    with pytest.raises(InvalidParameter, match="chip_px"):
        CorrelationParams(chip_px=31)
    with pytest.raises(InvalidParameter, match="grid_spacing_px"):
        CorrelationParams(grid_spacing_px=0)
    with pytest.raises(InvalidParameter, match="^aoi: west 74.3 is not less than east 74.1"):
        CorrelationParams(aoi="74.3,36.0,74.1,36.2")


def test_cli_end_to_end(items, capsys):
    ref, sec, tmp_path = items
    code = main(
        [
            "correlate",
            ref,
            sec,
            "--out-dir",
            str(tmp_path / "cli"),
            "--grid-spacing-px",
            "16",
            "--chip-px",
            "32",
            "--max-velocity-m-per-yr",
            "800",
            "--filter",
            "wallis",
            "--engine",
            "ncc",
            "--no-stable-correction",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "S2_43SEA_20200601_20200617.tif" in printed and "quicklook.png" in printed
    assert "% valid" in printed and "m/yr" in printed
    product = read_velocity_cog(tmp_path / "cli" / "S2_43SEA_20200601_20200617.tif")
    assert np.nanmedian(product.vx) == pytest.approx(_expected_velocity()[0], rel=0.02)


def test_cli_errors_exit_2(items, capsys):
    ref, _, tmp_path = items
    assert main(["correlate", ref, ref, "--out-dir", str(tmp_path / "cli")]) == 2
    assert "same scene" in capsys.readouterr().err
    assert main(["correlate", ref, ref, "--out-dir", str(tmp_path / "cli"), "--aoi", "74.3,36,74.1,36.2"]) == 2
    assert "--aoi: west 74.3 is not less than east 74.1" in capsys.readouterr().err
