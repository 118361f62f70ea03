"""Discovery against a real local STAC API (rustac serve) with hand-made Earth-Search-like items.

The items are in tests/data/stac (see make_items.py there for what each one is for). The AOI is
bbox 74.40 35.40 74.60 35.60: tile 43SEA covers it fully (one data-strip scene only partly),
43SDA covers it fully with fewer scenes, 43SEB covers the northern half.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.warp import transform_bounds

from glacier_velocity.demo.stacserver import free_port, serve_stac
from glacier_velocity.errors import CatalogError, InputError, InvalidParameter, NoPairsFound, NoScenesFound
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.stac.discovery import (
    DiscoveryParams,
    choose_tile,
    discover_pairs,
    scl_cloud_cover,
    search_scenes,
)
from glacier_velocity.stac.scene import Scene

AOI = (74.40, 35.40, 74.60, 35.60)
SUMMER_2020_2021 = [
    "20200603",  # first of June (0618 is the second)
    "20200713",  # 0708 is cloudy
    "20200802",
    "20200921",  # 0906 covers only part of the AOI
    "20210627",  # 0612 is cloudy
    "20210722",
    "20210816",
]


def params(url: str, **kwargs) -> DiscoveryParams:
    base = dict(
        stac_url=url,
        aoi=AOI,
        start_year=2020,
        end_year=2021,
        start_month=6,
        end_month=9,
        max_cloud_cover=20,
        pairs_per_image=1,
    )
    base.update(kwargs)
    return DiscoveryParams(**base)


def pair_ids(result) -> list[str]:
    return [p.id for p in result.pairs]


def expected_pairs(dates: list[str], n: int, tile: str = "43SEA") -> list[str]:
    return [
        f"{tile}_{dates[i]}_{dates[j]}" for i in range(len(dates)) for j in range(i + 1, min(i + n, len(dates) - 1) + 1)
    ]


# --- Search and filters ----------------------------------------------------------------------


def test_search_returns_every_item_of_the_seasons_including_cloudy(stac_api):
    # rustac ignores `query`, so the cloudy items come back: the client-side filter matters.
    scenes = search_scenes(params(stac_api))
    assert len(scenes) == 18
    assert [s.datetime for s in scenes] == sorted(s.datetime for s in scenes)
    cloudy = {s.id for s in scenes if s.cloud_cover > 20}
    assert cloudy == {"S2B_43SEA_20200708_0_L2A", "S2B_43SEA_20210612_0_L2A"}
    sda = next(s for s in scenes if s.tile == "43SDA")
    assert sda.epsg == 32643 and sda.self_href.startswith(f"{stac_api}/collections/sentinel-2-l2a/items/")
    assert sda.band_href.endswith(f"/{sda.id}/B08.tif") and sda.classification_href.endswith("/SCL.tif")


def test_filter_account_names_what_each_filter_removed(stac_api):
    result = discover_pairs(params(stac_api))
    assert result.tile == "43SEA"
    assert len(result.scenes_found) == 18
    assert [s.datetime.strftime("%Y%m%d") for s in result.scenes_selected] == SUMMER_2020_2021
    assert [(f.name, f.before, f.removed) for f in result.filters] == [
        ("search", 18, 0),
        ("cloud_cover", 18, 2),
        ("tile", 16, 7),  # 3 x 43SDA, 4 x 43SEB
        ("footprint", 9, 1),
        ("month", 8, 1),
        ("baseline", 6, 0),
    ]
    assert result.removed_by("tile") == 7
    assert "kept MGRS tile 43SEA" in result.summary()


@pytest.mark.parametrize("n, count", [(1, 6), (2, 11), (3, 15)])
def test_exact_pair_lists_for_n_1_2_3(stac_api, n, count):
    result = discover_pairs(params(stac_api, pairs_per_image=n))
    assert pair_ids(result) == expected_pairs(SUMMER_2020_2021, n)
    assert len(result.pairs) == count


def test_exact_pair_list_n2_written_out(stac_api):
    # The same list as above, spelled out, so a mistake in expected_pairs cannot hide one.
    result = discover_pairs(params(stac_api, pairs_per_image=2))
    assert pair_ids(result) == [
        "43SEA_20200603_20200713",
        "43SEA_20200603_20200802",
        "43SEA_20200713_20200802",
        "43SEA_20200713_20200921",
        "43SEA_20200802_20200921",
        "43SEA_20200802_20210627",
        "43SEA_20200921_20210627",
        "43SEA_20200921_20210722",
        "43SEA_20210627_20210722",
        "43SEA_20210627_20210816",
        "43SEA_20210722_20210816",
    ]
    last = result.pairs[-1]
    # 2021-07-22T05:56:29Z -> 2021-08-16T05:56:21Z: 25 days less 8 seconds.
    assert last.dt_days == pytest.approx(25 - 8 / 86400, abs=1e-9)
    assert last.reference.id == "S2B_43SEA_20210722_0_L2A" and last.secondary.id == "S2A_43SEA_20210816_0_L2A"


def test_baseline_filter(stac_api):
    result = discover_pairs(params(stac_api, pairs_per_image=3, min_baseline_days=30, max_baseline_days=100))
    assert pair_ids(result) == [
        "43SEA_20200603_20200713",  # 40 days
        "43SEA_20200603_20200802",  # 60
        "43SEA_20200713_20200921",  # 70
        "43SEA_20200802_20200921",  # 50
        "43SEA_20210627_20210816",  # 50
    ]
    assert [round(p.dt_days, 6) for p in result.pairs] == [40, 60, 70, 50, 50]
    assert result.removed_by("baseline") == 10


def test_season_wrapping_the_year_end(stac_api):
    result = discover_pairs(params(stac_api, start_month=11, end_month=2, end_year=2020))
    # Season year 2020 = Nov 2020 .. Feb 2021: 2020-12-19 is a second December scene and
    # 2021-02-12 is cloudy; October and March are outside.
    dates = ["20201104", "20201209", "20210108", "20210222"]
    assert [s.datetime.strftime("%Y%m%d") for s in result.scenes_selected] == dates
    assert pair_ids(result) == expected_pairs(dates, 1)
    both = discover_pairs(params(stac_api, start_month=11, end_month=2, end_year=2021))
    assert [s.datetime.strftime("%Y%m%d") for s in both.scenes_selected] == dates + ["20211103"]
    assert pair_ids(both)[-1] == "43SEA_20210222_20211103"


def test_tile_named_by_the_user(stac_api):
    result = discover_pairs(params(stac_api, tile="T43SDA"))  # a leading T is accepted
    assert result.tile == "43SDA"
    assert pair_ids(result) == ["43SDA_20200605_20200710", "43SDA_20200710_20200804"]
    assert result.removed_by("tile") == 13
    assert "asked for" in result.summary()


def test_aoi_geometry_gives_the_same_pairs_as_the_bbox(stac_api, tmp_path):
    west, south, east, north = AOI
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    aoi_file = tmp_path / "aoi.geojson"
    aoi_file.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
                ],
            }
        )
    )
    by_geometry = discover_pairs(params(stac_api, aoi=str(aoi_file), pairs_per_image=2))
    assert pair_ids(by_geometry) == pair_ids(discover_pairs(params(stac_api, pairs_per_image=2)))


def test_choose_tile_prefers_coverage_over_scene_count():
    def s(tile: str, west: float, day: int) -> Scene:
        ring = [[west, 35.0], [west + 1.2, 35.0], [west + 1.2, 36.0], [west, 36.0], [west, 35.0]]
        return Scene(
            f"S2A_{tile}_202006{day:02d}_0_L2A",
            datetime(2020, 6, day, tzinfo=UTC),
            None,
            "b08.tif",
            None,
            1.0,
            tile,
            32643,
            {"type": "Polygon", "coordinates": [ring]},
        )

    from shapely.geometry import box

    aoi = box(*AOI)
    partial_many = [s("43SEB", 74.5, d) for d in range(1, 9)]  # covers half of the AOI, 8 scenes
    full_few = [s("43SEA", 73.9, d) for d in range(1, 3)]
    full_fewer = [s("43SDA", 73.5, 3)]
    assert choose_tile(partial_many + full_few + full_fewer, aoi) == "43SEA"
    assert choose_tile(partial_many, aoi) == "43SEB"
    assert choose_tile([], aoi) is None
    # A tie in coverage and count goes to the first name.
    assert choose_tile([s("43SEA", 73.9, 1), s("43SDA", 73.5, 2)], aoi) == "43SDA"


# --- Empty results name the filter -------------------------------------------------------------


def test_no_items_in_the_years(stac_api):
    with pytest.raises(NoScenesFound, match=r"search found no items.*2018-06-01 to 2019-09-30"):
        discover_pairs(params(stac_api, start_year=2018, end_year=2019))


def test_cloud_filter_removes_everything(stac_api):
    with pytest.raises(NoScenesFound) as info:
        discover_pairs(params(stac_api, start_month=7, end_month=7, end_year=2020, max_cloud_cover=0.5))
    message = str(info.value)
    assert "after the cloud_cover filter: it removed all 4" in message
    assert "--max-cloud-cover" in message
    assert [(f.name, f.removed) for f in info.value.filters] == [("search", 0), ("cloud_cover", 4)]


def test_footprint_filter_removes_everything_on_a_partial_tile(stac_api):
    with pytest.raises(NoScenesFound, match=r"after the footprint filter: it removed all 4.*tile removed 12 of 16"):
        discover_pairs(params(stac_api, tile="43SEB"))


def test_unknown_tile_is_named(stac_api):
    with pytest.raises(NoScenesFound, match=r"after the tile filter.*43SDA, 43SEA, 43SEB.*--tile"):
        discover_pairs(params(stac_api, tile="44SEA"))


def test_single_scene_gives_no_pairs(stac_api):
    with pytest.raises(NoPairsFound, match=r"only 1 scene passed the filters \(S2A_43SEA_20200921_0_L2A\)"):
        discover_pairs(params(stac_api, start_month=9, end_month=9, end_year=2020))


def test_baseline_filter_removes_every_pair(stac_api):
    with pytest.raises(
        NoPairsFound, match=r"baseline >= 400 days\) removed all 6 pairs \(baselines 20.0 to 279.0 days\)"
    ):
        discover_pairs(params(stac_api, min_baseline_days=400))


# --- Bad parameters and catalogs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, parameter, fragment",
    [
        ({"aoi": (74.6, 35.4, 74.4, 35.6)}, "aoi", "west 74.6 is not less than east 74.4"),
        ({"aoi": "74.4,35.6,74.6,35.4"}, "aoi", "south 35.6 is not less than north 35.4"),
        ({"aoi": "190,35.4,191,35.6"}, "aoi", "outside -180..180"),
        ({"aoi": (35.4, 74.4, 35.6, 94.6)}, "aoi", "outside -90..90"),
        ({"aoi": "1,2,3"}, "aoi", "4 finite numbers"),
        ({"aoi": "74.4,35.4,74.6,35.6,"}, "aoi", "must be 4 numbers W,S,E,N"),
        ({"aoi": None}, "aoi", "must be W,S,E,N (lon/lat degrees), GeoJSON text"),
        ({"aoi": '{"type": "Point", "coordinates": [74.5, 35.5]}'}, "aoi", "Polygon or MultiPolygon"),
        ({"aoi": "ftp://example.org/aoi.geojson"}, "aoi", "unsupported URL scheme 'ftp'"),
        ({"start_month": 0}, "start_month", "1-12"),
        ({"end_month": 13}, "end_month", "1-12"),
        ({"max_cloud_cover": -1}, "max_cloud_cover", "between 0 and 100"),
        ({"max_cloud_cover": 100.5}, "max_cloud_cover", "between 0 and 100"),
        ({"pairs_per_image": 0}, "pairs_per_image", ">= 1"),
        ({"start_year": 2022}, "start_year", "after the end year 2021"),
        ({"min_baseline_days": 0}, "min_baseline_days", "positive"),
        ({"max_baseline_days": -3}, "max_baseline_days", "positive"),
        ({"min_baseline_days": 90, "max_baseline_days": 30}, "min_baseline_days", "larger than max_baseline_days"),
        ({"stac_url": "ftp://example.com/stac"}, "stac_url", "http(s) URL"),
        ({"collection": " "}, "collection", "collection id"),
        ({"tile": "43-SEA"}, "tile", "MGRS tile"),
        ({"max_items": 0}, "max_items", ">= 1"),
    ],
)
def test_bad_parameters_fail_at_construction_naming_the_parameter(kwargs, parameter, fragment):
    started = time.monotonic()
    with pytest.raises(InvalidParameter) as info:
        params("http://127.0.0.1:9", **kwargs)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")
    assert fragment in str(info.value)
    assert time.monotonic() - started < 1.0


def test_unreadable_aoi_file_names_the_parameter(tmp_path):
    with pytest.raises(InvalidParameter, match=r"^aoi: no file '.*missing.geojson'"):
        parse_aoi(str(tmp_path / "missing.geojson"))
    (tmp_path / "bad.geojson").write_text("<html>")
    with pytest.raises(InvalidParameter, match=r"^aoi: .*bad.geojson is not JSON"):
        parse_aoi(tmp_path / "bad.geojson")
    projected = {"type": "Polygon", "coordinates": [[[430000, 4e6], [431000, 4e6], [431000, 3.999e6], [430000, 4e6]]]}
    projected["crs"] = {"type": "name", "properties": {"name": "EPSG:32643"}}
    with pytest.raises(
        InvalidParameter, match=r"^aoi: inline GeoJSON is in EPSG:32643; give the area of interest in lon/lat"
    ):
        parse_aoi(json.dumps(projected))


def test_unknown_collection_lists_the_available_ones(stac_api):
    with pytest.raises(
        InvalidParameter, match=r"^collection: 'landsat-c2-l2' is not a collection of .*available: sentinel-2-l2a"
    ):
        search_scenes(params(stac_api, collection="landsat-c2-l2"))


def test_unreachable_url_fails_fast():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(CatalogError, match=r"cannot reach the STAC API at http://127\.0\.0\.1:\d+ .*check --stac-url"):
        search_scenes(params(url))
    assert time.monotonic() - started < 10.0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("body", ["<html><body>hello</body></html>", '{"hello": "world"}'])
def test_non_stac_answer_is_a_catalog_error(tmp_path, body):
    (tmp_path / "index.html").write_text(body)

    def handler(*args, **kwargs):
        return _Quiet(*args, directory=str(tmp_path), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(CatalogError, match=r"did not answer as a STAC API.*check --stac-url"):
            search_scenes(params(url))
    finally:
        server.shutdown()
        server.server_close()


# --- Cloud over the AOI from the SCL asset -----------------------------------------------------

SMALL_AOI = (74.50, 35.50, 74.52, 35.52)  # about 1.8 km x 2.2 km


def write_scl(path: Path, pattern: str) -> str:
    """A 20 m SCL COG around SMALL_AOI (with a margin); returns its path."""
    west, south, east, north = transform_bounds("EPSG:4326", "EPSG:32643", *SMALL_AOI)
    x0, y0 = np.floor(west / 20) * 20 - 200, np.ceil(north / 20) * 20 + 200
    width, height = int((east - x0) / 20) + 10, int((y0 - south) / 20) + 10
    rows, cols = np.indices((height, width))
    if pattern == "clear":
        data = np.full((height, width), 11, np.uint8)  # snow and ice
    elif pattern == "half-cloud-half-nodata":
        # Classes 3, 8, 9, 10 (cloud) and 4, 5, 6, 11 (not cloud) alternate, so half of the
        # valid pixels are cloud; the western half of the raster is no data.
        data = np.array([3, 4, 8, 5, 9, 6, 10, 11], np.uint8)[(rows + cols) % 8]
        data[:, : width // 2] = 0
    elif pattern == "cloud":
        data = np.full((height, width), 9, np.uint8)
    elif pattern == "nodata":
        data = np.zeros((height, width), np.uint8)
    else:
        raise ValueError(pattern)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs="EPSG:32643",
        transform=Affine(20.0, 0.0, float(x0), 0.0, -20.0, float(y0)),
        nodata=0,
    ) as dst:
        dst.write(data, 1)
    return str(path)


def small_aoi_geometry() -> dict:
    w, s, e, n = SMALL_AOI
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def test_scl_cloud_cover_exact_cases(tmp_path):
    geometry = small_aoi_geometry()
    assert scl_cloud_cover(write_scl(tmp_path / "clear.tif", "clear"), geometry) == 0.0
    assert scl_cloud_cover(write_scl(tmp_path / "cloud.tif", "cloud"), geometry) == 100.0
    assert scl_cloud_cover(write_scl(tmp_path / "nodata.tif", "nodata"), geometry) is None
    half = scl_cloud_cover(write_scl(tmp_path / "half.tif", "half-cloud-half-nodata"), geometry)
    assert half == pytest.approx(50.0, abs=1.5)
    with pytest.raises(InputError, match="missing.tif.* does not exist"):
        scl_cloud_cover(str(tmp_path / "missing.tif"), geometry)


def test_aoi_cloud_cover_judges_the_aoi_not_the_tile(tmp_path):
    ring = [[74.0, 35.0], [75.0, 35.0], [75.0, 36.0], [74.0, 36.0], [74.0, 35.0]]

    def item(month: int, tile_cloud: float, scl: str | None) -> dict:
        item_id = f"S2A_43SEA_2020{month:02d}10_0_L2A"
        assets = {"nir": {"href": f"/data/{item_id}/B08.tif"}}
        if scl is not None:
            assets["scl"] = {"href": write_scl(tmp_path / f"{item_id}_SCL.tif", scl)}
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "bbox": [74.0, 35.0, 75.0, 36.0],
            "properties": {
                "datetime": f"2020-{month:02d}-10T05:56:21Z",
                "eo:cloud_cover": tile_cloud,
                "grid:code": "MGRS-43SEA",
                "proj:epsg": 32643,
            },
            "links": [],
            "assets": assets,
        }

    # One scene per month, so the month step keeps every scene that passes the cloud step.
    items = [
        item(1, 80.0, "clear"),  # cloudy tile, clear AOI: kept only when judging the AOI
        item(2, 5.0, "cloud"),  # clear tile, cloudy AOI: removed when judging the AOI
        item(3, 10.0, None),  # no scl: falls back to the tile's cloud cover
        item(4, 1.0, "nodata"),  # no data over the AOI: removed when judging the AOI
        item(5, 2.0, "half-cloud-half-nodata"),  # half of the AOI's valid pixels cloudy: removed
    ]
    kwargs = dict(aoi=SMALL_AOI, start_year=2020, end_year=2020, start_month=1, end_month=5, max_cloud_cover=20)
    # Items without a collection are put into the one named here.
    with serve_stac(items, collection="sentinel-2-l2a") as url:
        by_aoi = discover_pairs(DiscoveryParams(stac_url=url, aoi_cloud_cover=True, **kwargs))
        by_tile = discover_pairs(DiscoveryParams(stac_url=url, **kwargs))
    assert [s.datetime.month for s in by_aoi.scenes_selected] == [1, 3]
    assert [s.aoi_cloud_cover for s in by_aoi.scenes_selected] == [0.0, None]
    assert by_aoi.removed_by("aoi_cloud_cover") == 3
    assert [f.name for f in by_aoi.filters] == ["search", "tile", "footprint", "aoi_cloud_cover", "month", "baseline"]
    assert [s.datetime.month for s in by_tile.scenes_selected] == [2, 3, 4, 5]
    assert by_tile.removed_by("cloud_cover") == 1


def test_max_items_bounds_the_search(stac_api):
    scenes = search_scenes(params(stac_api, max_items=5))
    assert [s.datetime.strftime("%Y%m%d") for s in scenes] == sorted(s.datetime.strftime("%Y%m%d") for s in scenes)
    assert len(scenes) == 5


# --- The local STAC server itself ------------------------------------------------------------


def test_serve_stac_serves_pystac_items_on_the_given_port_and_stops():
    import urllib.error
    import urllib.request

    import pystac

    item = pystac.Item(
        "S2A_43SEA_20200603_0_L2A",
        {"type": "Point", "coordinates": [74.5, 35.5]},
        [74.5, 35.5, 74.5, 35.5],
        datetime(2020, 6, 3, 5, 56, 21, tzinfo=UTC),
        {},
    )
    item.add_asset("nir", pystac.Asset("/data/B08.tif"))
    port = free_port()
    with serve_stac([item], port=port, collection="demo") as url:
        assert url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/collections/demo/items", timeout=5) as response:
            features = json.load(response)["features"]
        assert [f["id"] for f in features] == ["S2A_43SEA_20200603_0_L2A"]
        assert features[0]["assets"]["nir"]["href"] == "/data/B08.tif"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/collections", timeout=2)
    with pytest.raises(CatalogError, match="no such file"):
        with serve_stac(["does/not/exist.json"]):
            pass


# --- Properties of the parameter checks ------------------------------------------------------

lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(w=lons, e=lons, s=lats, n=lats)
def test_bbox_accepted_exactly_when_ordered(w, e, s, n):
    ordered = w < e and s < n
    try:
        p = params("http://127.0.0.1:9", aoi=f"{w!r},{s!r},{e!r},{n!r}")
    except InvalidParameter as exc:
        assert not ordered and exc.parameter == "aoi"
    else:
        assert ordered and p.aoi.bbox == (w, s, e, n)


@settings(max_examples=80, deadline=None)
@given(
    start=st.integers(-3, 15), end=st.integers(-3, 15), cloud=st.floats(-50, 150, allow_nan=False), n=st.integers(-2, 5)
)
def test_months_cloud_and_n_checked(start, end, cloud, n):
    valid = 1 <= start <= 12 and 1 <= end <= 12 and 0 <= cloud <= 100 and n >= 1
    try:
        p = params("http://127.0.0.1:9", start_month=start, end_month=end, max_cloud_cover=cloud, pairs_per_image=n)
    except InvalidParameter as exc:
        assert not valid and exc.parameter in {"start_month", "end_month", "max_cloud_cover", "pairs_per_image"}
    else:
        assert valid
        first, last = p.season_interval(2020)
        assert first < last and len(p.months) == (end - start) % 12 + 1
