"""Glacier outlines input (``glacier_outlines``): reading, CRS, reprojection, the ice mask."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon, box, mapping

from flaky_http import FlakyServer
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.io.retry import RetryPolicy

# A 10 x 10 grid of 10 m cells in UTM 33N whose upper-left corner is (500000, 4000100).
GRID = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000100.0)
UTM33 = "EPSG:32633"
UTM43 = "EPSG:32643"


def _utm_collection(geometry, crs: str = "urn:ogc:def:crs:EPSG::32633") -> dict:
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs}},
        "features": [
            {"type": "Feature", "properties": {"rgi_id": "RGI2000-v7.0-G-14-00001"}, "geometry": mapping(geometry)}
        ],
    }


def _meridian_arc_m(lat_deg: float) -> float:
    """Distance (m) from the equator along the WGS84 meridian (series to e^6, mm accurate)."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e4, e6 = e2 * e2, e2 * e2 * e2
    phi = math.radians(lat_deg)
    return a * (
        (1 - e2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * phi
        - (3 * e2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * math.sin(2 * phi)
        + (15 * e4 / 256 + 45 * e6 / 1024) * math.sin(4 * phi)
        - (35 * e6 / 3072) * math.sin(6 * phi)
    )


def test_mask_of_a_known_box_on_a_known_grid(tmp_path):
    # The box x 500020..500070, y 4000030..4000080 holds the cell centres of columns 2..6 and
    # rows 2..6 (centres at x = 500005 + 10 col, y = 4000095 - 10 row): exactly 25 cells.
    path = tmp_path / "outlines.geojson"
    path.write_text(json.dumps(_utm_collection(box(500020, 4000030, 500070, 4000080))))
    outlines = read_glacier_outlines(path)
    assert outlines.crs == UTM33 and outlines.count == 1 and outlines.source == str(path)
    mask = outlines.ice_mask(GRID, (10, 10), UTM33)
    expected = np.zeros((10, 10), dtype=bool)
    expected[2:7, 2:7] = True
    np.testing.assert_array_equal(mask, expected)
    # Grown by 10 m, the box reaches the centres of columns/rows 1..7; the corner cells' centres
    # are 7.07 m from the box corners, so inside the rounded buffer too: 7 x 7 cells.
    grown = outlines.ice_mask(GRID, (10, 10), UTM33, buffer_m=10.0)
    expected[1:8, 1:8] = True
    np.testing.assert_array_equal(grown, expected)
    # The next cell centres are 5 m beyond the edges: a 4.9 m buffer reaches none, 5.1 m the edge rows.
    assert outlines.ice_mask(GRID, (10, 10), UTM33, buffer_m=4.9).sum() == 25
    assert outlines.ice_mask(GRID, (10, 10), UTM33, buffer_m=5.1).sum() == 49 - 4  # corners 7.07 m away stay out


def test_lon_lat_outline_masks_the_same_cells_on_a_utm_grid():
    # The same box, given in lon/lat (RFC 7946, no crs member): its reprojected vertices land
    # back on the UTM corners, so the mask is the same 25 cells.
    utm = GlacierOutlines(box(500020, 4000030, 500070, 4000080), UTM33)
    lonlat = mapping(utm.in_crs("EPSG:4326"))
    outlines = read_glacier_outlines(json.dumps(lonlat))
    assert outlines.crs == "EPSG:4326" and outlines.source == "inline GeoJSON"
    assert outlines.ice_mask(GRID, (10, 10), UTM33).sum() == 25
    np.testing.assert_allclose(outlines.in_crs(UTM33).bounds, (500020, 4000030, 500070, 4000080), atol=1e-6)


def test_reprojection_of_a_utm_polygon_to_lon_lat():
    # On the central meridian of zone 43 (75 E) UTM x is 500000 m and y is 0.9996 times the
    # meridian arc: the vertex (500000, 0.9996 M(36 deg)) is exactly (75 E, 36 N).
    y36 = 0.9996 * _meridian_arc_m(36.0)
    square = Polygon([(500000, y36), (501000, y36), (501000, y36 + 1000), (500000, y36 + 1000)])
    outlines = read_glacier_outlines(_utm_collection(square, "EPSG:32643"))
    lonlat = outlines.in_crs("EPSG:4326")
    corners = np.array(lonlat.exterior.coords)
    np.testing.assert_allclose(corners[0], (75.0, 36.0), atol=1e-8)
    # 1 km north on the central meridian: ~ 1000 / 0.9996 m of meridian, 111 km per degree at 36 N
    assert corners[3][0] == pytest.approx(75.0, abs=1e-9)
    assert corners[3][1] - 36.0 == pytest.approx(1000 / 0.9996 / 110_959.0, rel=2e-4)
    # East of the meridian, the 1 km edge spans 1000 / (0.9996 * 111320 cos 36) deg of longitude.
    assert corners[1][0] - 75.0 == pytest.approx(1000 / (0.9996 * 111_320 * math.cos(math.radians(36))), rel=2e-3)
    back = GlacierOutlines(lonlat, "EPSG:4326").in_crs(UTM43)
    np.testing.assert_allclose(np.array(back.exterior.coords), np.array(square.exterior.coords), atol=1e-5)
    # The round trip through the GeoJSON writer keeps the CRS member.
    again = read_glacier_outlines(outlines.to_geojson(UTM43))
    assert again.crs == UTM43 and again.geometry.equals_exact(square, 1e-6)
    assert read_glacier_outlines(outlines.to_geojson()).crs == "EPSG:4326"


def test_several_features_are_united_and_counted():
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": mapping(box(75.0, 36.0, 75.1, 36.1))},
            {"type": "Feature", "properties": {}, "geometry": mapping(box(75.2, 36.0, 75.3, 36.1))},
            {"type": "Feature", "properties": {}, "geometry": None},
        ],
    }
    outlines = read_glacier_outlines(document)
    assert outlines.count == 2 and outlines.geometry.geom_type == "MultiPolygon"
    assert outlines.geometry.area == pytest.approx(0.02)


def test_projected_crs_given_by_the_caller():
    bare = {
        "type": "Polygon",
        "coordinates": [
            [[500020, 4000030], [500070, 4000030], [500070, 4000080], [500020, 4000080], [500020, 4000030]]
        ],
    }
    outlines = read_glacier_outlines(bare, crs="EPSG:32633")
    assert outlines.ice_mask(GRID, (10, 10), UTM33).sum() == 25
    with pytest.raises(InvalidParameter, match=r"^glacier_outlines: .*not longitude/latitude.*crs"):
        read_glacier_outlines(bare)
    with pytest.raises(InvalidParameter, match=r"^glacier_outlines: .*declares its CRS as EPSG:32633 but EPSG:32643"):
        read_glacier_outlines(_utm_collection(box(500020, 4000030, 500070, 4000080)), crs="EPSG:32643")


def test_self_intersecting_outline_is_repaired():
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[75.0, 36.0], [75.1, 36.1], [75.1, 36.0], [75.0, 36.1], [75.0, 36.0]]],
    }
    outlines = read_glacier_outlines(bowtie)
    assert outlines.geometry.is_valid and outlines.geometry.area == pytest.approx(0.005)
    # The area of interest goes through the same check: the same two triangles.
    aoi = parse_aoi(json.dumps(bowtie))
    assert aoi.shape.equals(outlines.geometry) and aoi.bbox == pytest.approx((75.0, 36.0, 75.1, 36.1))


@pytest.mark.parametrize(("reader", "parameter"), [(parse_aoi, "aoi"), (read_glacier_outlines, "glacier_outlines")])
def test_the_aoi_and_the_outlines_refuse_a_line_alike(reader, parameter):
    line = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": None},  # nothing to read: skipped
            {"type": "Feature", "properties": {"name": "moraine"}, "geometry": mapping(box(75, 36, 75.1, 36.1))},
            {
                "type": "Feature",
                "properties": {"name": "flow line"},
                "geometry": {"type": "LineString", "coordinates": [[75, 36], [75.1, 36.1]]},
            },
        ],
    }
    with pytest.raises(InvalidParameter, match=f"^{parameter}: inline GeoJSON: flow line is a LineString; "):
        reader(json.dumps(line))


def test_empty_outlines_say_no_glacier_here():
    none_here = GlacierOutlines.empty()
    assert none_here.is_empty and none_here.count == 0 and not GlacierOutlines(box(0, 0, 1, 1), "EPSG:4326").is_empty
    assert not none_here.ice_mask(GRID, (10, 10), UTM33, buffer_m=200.0).any()
    assert none_here.to_geojson() == {"type": "FeatureCollection", "features": []}
    with pytest.raises(InvalidParameter, match="^glacier_outlines: count 0 is for empty outlines only"):
        GlacierOutlines(box(0, 0, 1, 1), "EPSG:4326", count=0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", r"is empty"),
        ("/no/such/outlines.geojson", r"no file '/no/such/outlines.geojson'"),
        ("RGI2000-v7.0-G-14_south_asia_west.shp", r"is not GeoJSON; convert it first, e\.g\. ogr2ogr"),
        ("{not json", r"inline GeoJSON is not JSON"),
        ('{"features": []}', r"not a GeoJSON object"),
        ('{"type": "FeatureCollection", "features": []}', r"holds no polygon"),
        (
            '{"type": "Point", "coordinates": [75.2, 36.3]}',
            r"is a Point; glacier outlines must be polygons \(give single points as points_of_interest\)",
        ),
        ('{"type": "Polygon", "coordinates": [[75.2]]}', r"not a readable GeoJSON geometry"),
        ("ftp://example.org/outlines.geojson", r"unsupported URL scheme 'ftp'"),
        (
            '{"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:99999999"}}, "coordinates": []}',
            r"cannot read 'EPSG:99999999'",
        ),
    ],
)
def test_bad_outlines_name_the_parameter(value, message):
    with pytest.raises(InvalidParameter, match=r"^glacier_outlines: .*" + message):
        read_glacier_outlines(value)


def test_outlines_from_a_url_are_fetched_with_retries(monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    body = json.dumps(_utm_collection(box(500020, 4000030, 500070, 4000080))).encode()
    with FlakyServer(files={"/rgi/outlines.geojson": body}, fail_first=1, mode="503") as server:
        outlines = read_glacier_outlines(server.url + "/rgi/outlines.geojson")
        assert outlines.ice_mask(GRID, (10, 10), UTM33).sum() == 25
        assert [r.failed for r in server.requests] == [True, False]
        with pytest.raises(
            InvalidParameter, match=r"^glacier_outlines: cannot fetch .*missing.geojson' \(HTTP 404\); check the URL"
        ):
            read_glacier_outlines(server.url + "/missing.geojson")
    with FlakyServer(always_fail=True, mode="503") as server:
        policy = RetryPolicy(attempts=2, backoff_s=0.01, max_backoff_s=0.01)
        with pytest.raises(InvalidParameter, match=r"HTTP 503\) after 2 attempt\(s\)"):
            read_glacier_outlines(server.url + "/outlines.geojson", policy=policy)
        assert len(server.requests) == 2


def test_outlines_dataclass_is_frozen_and_checked():
    outlines = GlacierOutlines(box(0, 0, 1, 1), "EPSG:4326")
    with pytest.raises(AttributeError):
        outlines.crs = "EPSG:32633"  # type: ignore[misc]
    with pytest.raises(InvalidParameter, match="^glacier_outlines: the outlines are empty"):
        GlacierOutlines(Polygon(), "EPSG:4326")
    with pytest.raises(InvalidParameter, match="^buffer_m: "):
        outlines.ice_mask(GRID, (10, 10), UTM33, buffer_m=-1)
    with pytest.raises(InvalidParameter, match="^crs: a buffer in metres needs a projected grid CRS"):
        outlines.ice_mask(Affine(0.1, 0, 0, 0, -0.1, 1), (10, 10), "EPSG:4326", buffer_m=5)


def test_three_dimensional_rgi_polygons_are_read():
    # RGI 7.0 shapefiles store 3-D polygons (x, y, elevation); the elevation is carried along.
    ring = [
        [500020, 4000030, 4100.0],
        [500070, 4000030, 4100.0],
        [500070, 4000080, 4200.0],
        [500020, 4000080, 4200.0],
        [500020, 4000030, 4100.0],
    ]
    outlines = read_glacier_outlines({"type": "Polygon", "coordinates": [ring]}, crs=UTM33)
    assert outlines.geometry.has_z
    assert outlines.ice_mask(GRID, (10, 10), UTM33).sum() == 25
