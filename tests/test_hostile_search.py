"""Hostile search answers never give a traceback (issue 23, finding 7): every item the workflow
cannot use is skipped the same way, with a warning naming it and the reason, and the search goes
on; a page that cannot be read at all, or a search whose every item was skipped, is a clear
CatalogError. The catalogue is the local STAC API behind a server on 127.0.0.1 whose /search
answers a fixed page."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable

import pytest

from conftest import STAC_FIXTURES
from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import CatalogError, InputError
from glacier_velocity.stac.discovery import DiscoveryParams, discover_pairs, search_scenes
from glacier_velocity.stac.scene import MAX_ITEM_DEPTH, read_item

AOI = (74.40, 35.40, 74.60, 35.60)  # inside the footprints of tile 43SEA
FEATURES = json.loads((STAC_FIXTURES / "sentinel-2-l2a-items.json").read_text())["features"]
GOOD = FEATURES[:3]
BAD_ID = FEATURES[3]["id"]
BOW_TIE = {"type": "Polygon", "coordinates": [[[74.0, 36.0], [75.0, 37.0], [75.0, 36.0], [74.0, 37.0], [74.0, 36.0]]]}


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(item: dict) -> None:
        *parents, last = path.split("/")
        for key in parents:
            item = item[key]
        item[last] = value

    return change


def _drop_nir(item: dict) -> None:
    del item["assets"]["nir"]


# (case, change to the item, the reason's start as the warning gives it)
HOSTILE = [
    ("assets a list", _set("assets", [1, 2]), "assets: [1, 2] is not a JSON object of assets"),
    ("assets a string", _set("assets", "B08.tif"), "assets: 'B08.tif' is not a JSON object of assets"),
    ("an asset a number", _set("assets/thumbnail", 7), "assets.thumbnail: 7 is not a location"),
    ("numeric href", _set("assets/nir/href", 12), "assets.nir: its href 12 is not a location"),
    ("no nir asset", _drop_nir, "assets: no 'nir' asset (it has: scl, thumbnail); the workflow tracks"),
    ("null geometry", _set("geometry", None), "geometry: null; cannot tell whether the scene covers"),
    ("bow-tie footprint", _set("geometry", BOW_TIE), "geometry: is not a valid polygon (Self-intersection"),
    ("point footprint", _set("geometry", {"type": "Point", "coordinates": [74.5, 36.2]}), "geometry: is Point"),
    ("text coordinates", _set("geometry", {"type": "Polygon", "coordinates": "x"}), "geometry: {'type'"),
    ("deep nesting", _set("properties/extra", _nested(500)), f"nesting: more than {MAX_ITEM_DEPTH} levels"),
    ("links not a list", _set("links", {"rel": "self"}), "links: {'rel': 'self'} is not a list of links"),
    ("bad proj:code", _set("properties/proj:code", "EPSG:utm"), "proj:epsg: 'utm' is not an EPSG code"),
    ("ftp asset", _set("assets/nir/href", "ftp://example.org/B08.tif"), "scene 'S2A_43SEA_20200713_0_L2A' asset"),
]


def _params(url: str, **kwargs) -> DiscoveryParams:
    return DiscoveryParams(stac_url=url, aoi=AOI, start_year=2020, end_year=2020, start_month=6, end_month=9, **kwargs)


def _search(stac_api: str, features: list, caplog) -> tuple[list, list[str]]:
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = json.dumps({"type": "FeatureCollection", "features": features, "links": []}).encode()
        with caplog.at_level(logging.WARNING, logger="glacier_velocity"):
            scenes = search_scenes(_params(server.url))
    return scenes, [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]


@pytest.mark.parametrize(("case", "change", "reason"), HOSTILE, ids=[case for case, _, _ in HOSTILE])
def test_a_hostile_item_is_skipped_with_a_warning_and_the_search_goes_on(stac_api, caplog, case, change, reason):
    bad = copy.deepcopy(FEATURES[3])
    change(bad)
    scenes, warnings = _search(stac_api, [GOOD[0], bad, *GOOD[1:]], caplog)
    assert [s.id for s in scenes] == [f["id"] for f in GOOD]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"item {BAD_ID!r} skipped: {reason}")
    assert warnings[0].endswith("; the rest of the search goes on")
    field, detail = warnings[0].removeprefix(f"item {BAD_ID!r} skipped: ").split(": ", 1)
    assert_documented(warnings[0], repr(BAD_ID), field, detail.removesuffix("; the rest of the search goes on"))


@pytest.mark.parametrize(
    ("entry", "reason"),
    [(42, "entry: 42 is not a JSON object"), ({"type": "Feature"}, "id: None is not an item id (a non-empty string)")],
)
def test_an_entry_without_a_usable_id_is_skipped_as_item_question_mark(stac_api, caplog, entry, reason):
    scenes, warnings = _search(stac_api, [entry, *GOOD], caplog)
    assert [s.id for s in scenes] == [f["id"] for f in GOOD]
    assert warnings == [f"item '?' skipped: {reason}; the rest of the search goes on"]


def test_the_bow_tie_no_longer_reaches_the_footprint_filter(stac_api, caplog):
    """Before, the bow-tie passed the search and GEOS failed in the footprint filter (a traceback)."""
    bad = copy.deepcopy(FEATURES[3])
    bad["geometry"] = BOW_TIE
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = json.dumps({"type": "FeatureCollection", "features": [*GOOD, bad], "links": []}).encode()
        result = discover_pairs(_params(server.url, max_cloud_cover=100.0))
    assert BAD_ID not in {s.id for s in result.scenes_found}
    assert [s.id for s in result.scenes_found] == [f["id"] for f in GOOD]


def test_a_search_whose_every_item_is_skipped_fails_clearly(stac_api, caplog):
    bad = [copy.deepcopy(f) for f in GOOD]
    for item in bad:
        item["geometry"] = None
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = json.dumps({"type": "FeatureCollection", "features": bad, "links": []}).encode()
        with pytest.raises(CatalogError) as caught:
            search_scenes(_params(server.url))
    message = str(caught.value)
    first = "geometry: null; cannot tell whether the scene covers the area of interest"
    assert message == (
        f"the search at {server.url} returned 3 item(s) and none is usable: every one was skipped (the first, "
        f"{GOOD[0]['id']!r}: {first}); the catalogue does not serve items the workflow can read - check --stac-url "
        "and --collection (Sentinel-2 L2A items as Earth Search v1 serves them)"
    )
    assert_documented(message, server.url, "3", repr(GOOD[0]["id"]), first)


@pytest.mark.parametrize(
    "body",
    [
        '{"type": "FeatureCollection", "features": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '["not", "a", "page"]',
        '{"type": "FeatureCollection", "features": "S2A_43SEA_20200603_0_L2A"}',
        '{"type": "FeatureCollection", "features": {"id": "S2A_43SEA_20200603_0_L2A"}}',
    ],
    ids=["nested 100000 deep", "a list", "features a string", "features an object"],
)
def test_a_page_that_cannot_be_read_is_a_catalog_error(stac_api, body):
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = body.encode()
        with pytest.raises(CatalogError) as caught:
            search_scenes(_params(server.url))
    message = str(caught.value)
    if body.count("[") > 1000:
        assert message.startswith(f"the STAC API at {server.url} answered JSON nested deeper than can be read")
        assert_documented(message, server.url, message.split("(about ", 1)[1].split(" levels")[0])
    else:
        assert message.startswith(f"the STAC API at {server.url} answered {server.url}/search with something that")
        assert_documented(message, server.url, f"{server.url}/search")


def test_a_malformed_next_link_is_a_catalog_error(stac_api):
    page = {"type": "FeatureCollection", "features": GOOD, "links": [{"rel": "next", "href": 5, "method": "GET"}]}
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = json.dumps(page).encode()
        with pytest.raises(CatalogError, match=r"sent a malformed 'next' link \(\{'rel': 'next', 'href': 5"):
            search_scenes(_params(server.url))


def test_an_item_read_by_the_correlation_step_is_checked_the_same_way(tmp_path):
    bad = copy.deepcopy(FEATURES[3])
    bad["assets"] = ["B08.tif"]
    (tmp_path / "item.json").write_text(json.dumps(bad))
    with pytest.raises(InputError) as caught:
        read_item(tmp_path / "item.json", "secondary")
    assert str(caught.value) == f"item {BAD_ID!r}: assets: ['B08.tif'] is not a JSON object of assets"
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="secondary: cannot read the STAC item .* \\(RecursionError: "):
        read_item(tmp_path / "deep.json", "secondary")
