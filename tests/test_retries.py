"""Flaky networks: STAC requests and asset reads retry, boundedly, then fail with a clear message.

Every server here is a :class:`flaky_http.FlakyServer` on 127.0.0.1 that fails its first
requests (503, 429 or a dropped connection) or all of them. Backoff is shortened through the
environment (``GLACIER_VELOCITY_HTTP_BACKOFF_S``) so that each test takes about a second.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from flaky_http import FlakyServer
from glacier_velocity.errors import CatalogError, InputError, InvalidParameter
from glacier_velocity.io.raster import read_window
from glacier_velocity.io.retry import RetryPolicy, call_with_retries, gdal_http_options, is_transient
from glacier_velocity.stac.discovery import DiscoveryParams, open_catalog, search_scenes

# Every server here is on 127.0.0.1 and stands for a remote one: the operator allows it.
pytestmark = pytest.mark.usefixtures("loopback_allowed")

AOI = (74.40, 35.40, 74.60, 35.60)
#: Every test finishes well within this (s); the retries themselves take < 1 s.
TIME_LIMIT_S = 10.0


@pytest.fixture(autouse=True)
def fast_policy(monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_ATTEMPTS", "3")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.05")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S", "0.2")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_TIMEOUT_S", "5")


@pytest.fixture(scope="module")
def cog_bytes():
    """A 64 x 64 uint16 COG (10 m UTM 43N) and its pixel values."""
    array = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 997 + 1
    with MemoryFile() as memory:
        with memory.open(
            driver="COG",
            width=64,
            height=64,
            count=1,
            dtype="uint16",
            crs="EPSG:32643",
            transform=Affine(10.0, 0.0, 430_000.0, 0.0, -10.0, 4_000_000.0),
            nodata=0,
        ) as dst:
            dst.write(array, 1)
        return memory.read(), array


def _params(url: str) -> DiscoveryParams:
    return DiscoveryParams(stac_url=url, aoi=AOI, start_year=2020, end_year=2020, start_month=6, end_month=9)


# --- Policy ------------------------------------------------------------------------------------


def test_policy_delays_double_and_are_capped():
    policy = RetryPolicy(attempts=5, backoff_s=0.5, max_backoff_s=1.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]


def test_policy_from_environment_and_bad_values_name_the_variable():
    policy = RetryPolicy.from_env({"GLACIER_VELOCITY_HTTP_ATTEMPTS": "2", "GLACIER_VELOCITY_HTTP_TIMEOUT_S": "3"})
    assert (policy.attempts, policy.read_timeout_s, policy.connect_timeout_s) == (2, 3.0, 3.0)
    assert gdal_http_options(policy)["GDAL_HTTP_MAX_RETRY"] == 1 and gdal_http_options(policy)["GDAL_HTTP_TIMEOUT"] == 3
    with pytest.raises(InvalidParameter, match="GLACIER_VELOCITY_HTTP_ATTEMPTS: must be a int"):
        RetryPolicy.from_env({"GLACIER_VELOCITY_HTTP_ATTEMPTS": "many"})
    with pytest.raises(InvalidParameter, match="GLACIER_VELOCITY_HTTP_ATTEMPTS") as caught:
        RetryPolicy.from_env({"GLACIER_VELOCITY_HTTP_ATTEMPTS": "0"})
    assert "1-20" in str(caught.value)
    with pytest.raises(InvalidParameter, match="GLACIER_VELOCITY_HTTP_TIMEOUT_S"):
        RetryPolicy.from_env({"GLACIER_VELOCITY_HTTP_TIMEOUT_S": "-1"})


def test_call_with_retries_stops_at_the_attempts_and_skips_permanent_errors():
    waits: list[float] = []
    calls: list[int] = []

    def flaky(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise OSError("CURL error: Connection reset by peer")
        return "ok"

    policy = RetryPolicy(attempts=3, backoff_s=0.25, max_backoff_s=1.0)
    assert call_with_retries(flaky, what="x", policy=policy, sleep=waits.append) == "ok"
    assert calls == [1, 2, 3] and waits == [0.25, 0.5]

    calls.clear()
    with pytest.raises(OSError) as caught:
        call_with_retries(
            lambda n: calls.append(n) or (_ for _ in ()).throw(OSError("timed out")),
            what="x",
            policy=RetryPolicy(attempts=4, backoff_s=0.0),
            sleep=waits.append,
        )
    assert calls == [1, 2, 3, 4] and caught.value.attempts == 4

    calls.clear()
    with pytest.raises(OSError, match="not recognized"):
        call_with_retries(
            lambda n: calls.append(n) or (_ for _ in ()).throw(OSError("not recognized as a TIFF")),
            what="x",
            policy=policy,
            sleep=waits.append,
        )
    assert calls == [1]


def test_call_with_retries_respects_the_deadline():
    calls: list[int] = []

    def always(attempt: int) -> None:
        calls.append(attempt)
        raise OSError("HTTP response code: 503")

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(OSError):
        call_with_retries(
            always,
            what="x",
            policy=RetryPolicy(attempts=10, backoff_s=5.0, max_backoff_s=5.0, deadline_s=7.0),
            sleep=sleep,
            clock=lambda: now[0],
        )
    # 5 s before the second try fits in 7 s; another 5 s would not.
    assert calls == [1, 2]


@pytest.mark.parametrize(
    "message, expected",
    [
        ("HTTP response code: 503", True),
        ("HTTP response code: 429", True),
        ("CURL error: Recv failure: Connection reset by peer", True),
        ("CURL error: Failed to connect to 127.0.0.1 port 9: Connection refused", True),
        ("CURL error: Operation timed out after 5000 milliseconds", True),
        ("HTTP response code: 404", False),
        ("'/vsicurl/http://x/a.tif' not recognized as being in a supported file format.", False),
        ("TIFFReadDirectory:Failed to read directory at offset 192", False),
    ],
)
def test_transient_errors_are_told_apart(message, expected):
    assert is_transient(OSError(message)) is expected


# --- STAC API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "429", "drop"])
def test_stac_search_survives_failing_first_requests(stac_api, mode):
    expected = [scene.id for scene in search_scenes(_params(stac_api))]
    with FlakyServer(upstream=stac_api, fail_first=2, mode=mode) as server:
        started = time.monotonic()
        scenes = search_scenes(_params(server.url))
        elapsed = time.monotonic() - started
    assert [scene.id for scene in scenes] == expected and len(expected) == 13
    assert server.failures == 2
    assert elapsed < TIME_LIMIT_S


def test_retry_after_is_honoured_but_capped(stac_api):
    # The server asks for an hour; the policy caps a wait at GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S.
    with FlakyServer(upstream=stac_api, fail_first=1, mode="503", retry_after="3600") as server:
        started = time.monotonic()
        open_catalog(server.url)
        elapsed = time.monotonic() - started
    assert server.failures == 1
    assert 0.15 < elapsed < 2.0


@pytest.mark.parametrize("mode, reason", [("503", "HTTP 503"), ("429", "HTTP 429"), ("drop", "connection")])
def test_stac_api_that_keeps_failing_gives_a_clear_message_in_bounded_time(mode, reason):
    with FlakyServer(always_fail=True, mode=mode) as server:
        started = time.monotonic()
        with pytest.raises(CatalogError) as caught:
            open_catalog(server.url)
        elapsed = time.monotonic() - started
        count = len(server.requests)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the STAC API at {server.url} (")
    assert reason in message and "after 3 attempt(s)" in message and "check --stac-url" in message
    assert count == 3
    assert elapsed < TIME_LIMIT_S


def test_not_a_stac_api_is_not_retried():
    with FlakyServer(files={"/index.html": b"<html></html>"}) as server:
        with pytest.raises(CatalogError, match=r"did not answer as a STAC API \(HTTP 404\)"):
            open_catalog(server.url + "/nothing")
        assert len(server.requests) == 1


# --- Asset reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "drop"])
@pytest.mark.parametrize("fail_first", [2, 5])
def test_cog_read_survives_failing_first_requests(cog_bytes, mode, fail_first):
    """2 failures are absorbed by GDAL's own retry; 5 need our re-open (3 attempts x 3 GDAL tries)."""
    data, array = cog_bytes
    with FlakyServer(files={"/B08.tif": data}, fail_first=fail_first, mode=mode) as server:
        started = time.monotonic()
        raster = read_window(f"{server.url}/B08.tif")
        elapsed = time.monotonic() - started
    np.testing.assert_array_equal(raster.array, array)
    assert raster.crs == "EPSG:32643"
    assert server.failures == fail_first
    assert elapsed < TIME_LIMIT_S


@pytest.mark.parametrize("mode, detail", [("503", "HTTP response code: 503"), ("drop", "Connection reset")])
def test_cog_server_that_keeps_failing_gives_a_clear_message_in_bounded_time(cog_bytes, mode, detail):
    data, _ = cog_bytes
    with FlakyServer(files={"/B08.tif": data}, always_fail=True, mode=mode) as server:
        href = f"{server.url}/B08.tif"
        started = time.monotonic()
        with pytest.raises(InputError) as caught:
            read_window(href, label="reference 'S2A_43SEA_20200601_0_L2A' nir")
        elapsed = time.monotonic() - started
        count = len(server.requests)
    message = str(caught.value)
    assert message.startswith(
        f"cannot read raster reference 'S2A_43SEA_20200601_0_L2A' nir ('{href}'): the server kept failing"
    )
    assert detail in message and "after 3 attempt(s)" in message
    # 3 attempts of ours; in each GDAL tries its size probe 1 + 2 times, then one GET: <= 12.
    assert 3 <= count <= 12
    assert elapsed < TIME_LIMIT_S


def test_missing_cog_is_not_retried(cog_bytes):
    with FlakyServer(files={}) as server:
        with pytest.raises(InputError, match="not found or not readable at that URL"):
            read_window(f"{server.url}/missing.tif")
        assert len(server.requests) <= 3  # GDAL's HEAD/GET probes, no retry round


def test_gdal_settings_do_not_leak_out_of_the_read(cog_bytes, tmp_path):
    data, _ = cog_bytes
    path = tmp_path / "B08.tif"
    path.write_bytes(data)
    read_window(str(path))
    assert not rasterio.env.hasenv()  # the retry options were scoped to the read


# --- Item reads (the correlation step's reference and secondary) -------------------------------

ITEM = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "stac_extensions": [],
    "id": "S2B_43SEA_20200601_0_L2A",
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[74.2, 36.1], [74.3, 36.1], [74.3, 36.2], [74.2, 36.2], [74.2, 36.1]]],
    },
    "bbox": [74.2, 36.1, 74.3, 36.2],
    "properties": {"datetime": "2020-06-01T05:36:29Z", "eo:cloud_cover": 2.5, "grid:code": "MGRS-43SEA"},
    "assets": {"nir": {"href": "./B08.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized"}},
    "links": [],
}


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_item_fetch_survives_failing_first_requests(mode):
    from glacier_velocity.stac.scene import Scene, read_item

    with FlakyServer(files={"/items/a.json": json.dumps(ITEM).encode()}, fail_first=2, mode=mode) as server:
        item = read_item(f"{server.url}/items/a.json", "reference")
    assert server.failures == 2
    scene = Scene.from_item(item)
    assert scene.id == "S2B_43SEA_20200601_0_L2A"
    assert scene.band_href == f"{server.url}/items/B08.tif"  # relative asset resolved against the item URL


def test_item_server_that_keeps_failing_gives_a_clear_message_in_bounded_time():
    from glacier_velocity.stac.scene import read_item

    with FlakyServer(always_fail=True) as server:
        started = time.monotonic()
        with pytest.raises(
            InputError, match=r"reference: cannot fetch the STAC item .* \(HTTP 503\) after 3 attempt\(s\)"
        ):
            read_item(f"{server.url}/items/a.json", "reference")
        assert len(server.requests) == 3
    assert time.monotonic() - started < TIME_LIMIT_S
