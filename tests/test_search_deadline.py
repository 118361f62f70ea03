"""A search has one deadline over all its pages and a bound on the pages (issue 23, finding 8).

The catalogue is the local STAC API behind a server on 127.0.0.1 whose /search pages never end:
one item a page, each page linking to the next, each answered after a delay. Without the
bounds a server answering every 1.5 s would be paged for about two hours (max_items = 5000)."""

from __future__ import annotations

import copy
import json
import time

import pytest

from conftest import STAC_FIXTURES
from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import CatalogError
from glacier_velocity.io.retry import RetryPolicy
from glacier_velocity.stac.discovery import MIN_ITEMS_PER_PAGE, DiscoveryParams, search_scenes

AOI = (74.4, 36.1, 74.6, 36.3)
ITEM = json.loads((STAC_FIXTURES / "sentinel-2-l2a-items.json").read_text())["features"][0]


class EndlessPages(dict):
    """/search and /search/page/N: one item a page, page N after ``delay(N)`` seconds."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.url = ""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.startswith("/search")

    def __getitem__(self, path: str) -> bytes:
        number = int(path.rsplit("/", 1)[1]) if path.startswith("/search/page/") else 0
        time.sleep(self.delay(number))
        item = copy.deepcopy(ITEM)
        item["id"] = f"{ITEM['id']}_{number}"
        link = {"rel": "next", "href": f"{self.url}/search/page/{number + 1}", "method": "GET"}
        return json.dumps({"type": "FeatureCollection", "features": [item], "links": [link]}).encode()


def _searches(server: FlakyServer) -> int:
    return sum(1 for r in server.requests if r.path.startswith("/search"))


def _params(url: str, **kwargs) -> DiscoveryParams:
    return DiscoveryParams(stac_url=url, aoi=AOI, start_year=2020, end_year=2020, **kwargs)


@pytest.fixture
def quick_policy(monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S", "1.5")


def test_a_slow_endless_search_stops_at_the_search_deadline(stac_api, quick_policy):
    pages = EndlessPages(delay=lambda n: 0.25)
    with FlakyServer(upstream=stac_api, files=pages) as server:
        pages.url = server.url
        started = time.monotonic()
        with pytest.raises(CatalogError) as caught:
            search_scenes(_params(server.url))
        elapsed = time.monotonic() - started
    asked = _searches(server)
    assert 1.5 <= elapsed < 2.5
    assert 3 <= asked <= 7  # pages of 0.25 s within 1.5 s, not the 5000 of max_items
    message = str(caught.value)
    read = int(message.split("): ", 1)[1].split(" ", 1)[0])
    assert read in (asked - 1, asked)  # the last page asked for may have been cut in flight
    assert message == (
        f"the search at {server.url} did not finish within the deadline of 1.5 s for a whole search "
        f"(GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S): {read} page(s) with {read} item(s) read; the catalogue answers "
        "too slowly - try again later, narrow the search (--aoi, years, months) or raise "
        "GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S"
    )
    assert_documented(message, server.url, "1.5", str(read))


def test_a_page_in_flight_is_cut_at_the_search_deadline(stac_api, quick_policy):
    """The per-request deadline (300 s) would let page 2 take 20 s; the search's ends first."""
    pages = EndlessPages(delay=lambda n: 20.0 if n == 1 else 0.0)
    with FlakyServer(upstream=stac_api, files=pages) as server:
        pages.url = server.url
        started = time.monotonic()
        with pytest.raises(CatalogError, match=r"within the deadline of 1.5 s for a whole search .*: 1 page\(s\)"):
            search_scenes(_params(server.url))
        assert time.monotonic() - started < 2.5


def test_a_search_paged_too_finely_stops_at_the_page_bound(stac_api, monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    pages = EndlessPages(delay=lambda n: 0.0)
    with FlakyServer(upstream=stac_api, files=pages) as server:
        pages.url = server.url
        with pytest.raises(CatalogError) as caught:
            search_scenes(_params(server.url, max_items=30))
    bound = 1 + 30 // MIN_ITEMS_PER_PAGE  # one season year, 30 items
    assert _searches(server) == bound
    message = str(caught.value)
    assert message == (
        f"the search at {server.url} was still sending pages after {bound} page(s) holding {bound} item(s), the most "
        "a search may read (one per season year and one per 10 items of max_items 30); the catalogue pages far more "
        "finely than asked - narrow the search (--aoi, years, months), or report it to its operator"
    )
    assert_documented(message, server.url, str(bound), "30")


def test_the_search_deadline_is_a_setting_of_the_policy(monkeypatch):
    assert RetryPolicy().search_deadline_s == 600.0
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S", "90")
    assert RetryPolicy.from_env().search_deadline_s == 90.0
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S", "soon")
    with pytest.raises(ValueError, match="GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S: must be a float, got 'soon'"):
        RetryPolicy.from_env()
