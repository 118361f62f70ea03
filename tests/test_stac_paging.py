"""A search whose ``next`` link repeats a page ends with an error instead of looping (issue 11,
finding 14). The catalogue is the local STAC API behind a server on 127.0.0.1 whose /search
answers one page that links to itself; the loop is bounded by max_items in any case."""

from __future__ import annotations

import json

import pytest

from conftest import STAC_FIXTURES
from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import CatalogError
from glacier_velocity.stac.discovery import DiscoveryParams, search_scenes

AOI = (74.4, 36.1, 74.6, 36.3)


def _page(server_url: str, features: list[dict]) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": features,
            "links": [{"rel": "next", "href": f"{server_url}/search", "type": "application/geo+json", "method": "GET"}],
        }
    ).encode()


@pytest.fixture
def looping_api(stac_api):
    features = json.loads((STAC_FIXTURES / "sentinel-2-l2a-items.json").read_text())["features"][:2]
    files: dict[str, bytes] = {}
    with FlakyServer(upstream=stac_api, files=files) as server:
        files["/search"] = _page(server.url, features)
        yield server


def test_a_next_link_to_the_same_page_stops_with_an_error(looping_api):
    params = DiscoveryParams(stac_url=looping_api.url, aoi=AOI, start_year=2020, end_year=2020, max_items=200)
    with pytest.raises(CatalogError) as caught:
        search_scenes(params)
    searches = [r for r in looping_api.requests if r.path.startswith("/search")]
    assert len(searches) == 2  # the first page and its repeat, nothing more
    message = str(caught.value)
    assert message == (
        f"the STAC API at {looping_api.url} sent the same page of search results twice (its 'next' link "
        f"{looping_api.url}/search leads back to a page already read, after 2 page(s)); the catalogue's paging is "
        "broken - report it to its operator, or narrow the search (--aoi, years) to fit one page"
    )
    assert_documented(message, looping_api.url + "/search", looping_api.url, "2")
