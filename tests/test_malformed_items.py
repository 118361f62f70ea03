"""One malformed item never sinks a search (issue 11, finding 15): it is skipped with a warning
naming the item and the field; a search answering HTML is a clear CatalogError. The catalogue
is the local STAC API behind a server on 127.0.0.1 that answers /search with a fixed page."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from conftest import STAC_FIXTURES
from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import CatalogError
from glacier_velocity.stac.discovery import DiscoveryParams, search_scenes

AOI = (74.4, 36.1, 74.6, 36.3)
FEATURES = json.loads((STAC_FIXTURES / "sentinel-2-l2a-items.json").read_text())["features"]

BAD = [
    ("datetime", None),
    ("datetime", "yesterday"),
    ("datetime", "2020-13-01T00:00:00Z"),
    ("proj:epsg", "utm43"),
    ("eo:cloud_cover", "n/a"),
    ("mgrs:utm_zone", "forty-three"),
]


def _params(url: str) -> DiscoveryParams:
    return DiscoveryParams(stac_url=url, aoi=AOI, start_year=2020, end_year=2020, start_month=6, end_month=9)


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_malformed_item_is_skipped_with_a_warning_naming_it_and_the_field(stac_api, field, value, caplog):
    good = FEATURES[:3]
    bad = copy.deepcopy(FEATURES[3])
    bad["properties"][field] = value
    if field == "mgrs:utm_zone":
        bad["properties"].pop("grid:code")  # the zone is read only without grid:code
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = json.dumps(
            {"type": "FeatureCollection", "features": [good[0], bad, *good[1:]], "links": []}
        ).encode()
        with caplog.at_level(logging.WARNING, logger="glacier_velocity"):
            scenes = search_scenes(_params(server.url))
    assert [s.id for s in scenes] == [f["id"] for f in good]
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"item {bad['id']!r} skipped: {field}: {value!r} is not ")
    assert_documented(
        warnings[0], repr(bad["id"]), field, repr(value), warnings[0].split(" is not ", 1)[1].split(";")[0]
    )


def test_a_search_answering_html_is_a_clear_error(stac_api):
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = b"<html><body>Sign in</body></html>"
        with pytest.raises(CatalogError) as caught:
            search_scenes(_params(server.url))
    message = str(caught.value)
    assert message == (
        f"the search at {server.url} did not answer JSON (it is not a STAC API search, or a login page "
        "answered instead); check --stac-url and, for a private catalogue, GLACIER_VELOCITY_STAC_TOKEN"
    )
    assert_documented(message, server.url)
