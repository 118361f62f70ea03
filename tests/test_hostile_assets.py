"""A hostile catalogue cannot make the tool read this machine's files (issue 11, finding 1).

Assets open only with the GeoTIFF (COG) and JPEG 2000 drivers, so a GDAL VRT - whose sources
may be any local path - is refused whatever its name; an item fetched over http(s) may only
name http(s) or s3 assets, and the refusal reads the same whether the local file exists or not.
The items and assets are served by a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import InputError
from glacier_velocity.io.raster import read_window
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair, correlate_pair
from test_correlate import X0, Y0
from test_partial_failure import pair_items  # noqa: F401 - fixture

SHAPE = (128, 128)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
# The pairs are a uniform shift: no stable ground to correct on.
PARAMS = CorrelationParams(grid_spacing_px=16, stable_correction=False)
REF_ID, SEC_ID = "S2B_43SEA_20200601_0_L2A", "S2A_43SEA_20200617_0_L2A"


def _vrt_of(source: str, rows: int = SHAPE[0], cols: int = SHAPE[1]) -> str:
    """A VRT whose one band is the local file ``source`` (what an attacker would serve)."""
    geo = ", ".join(str(v) for v in (TRANSFORM.c, TRANSFORM.a, 0.0, TRANSFORM.f, 0.0, TRANSFORM.e))
    return (
        f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}"><SRS>EPSG:32643</SRS><GeoTransform>{geo}</GeoTransform>'
        f'<VRTRasterBand dataType="UInt16" band="1"><SimpleSource><SourceFilename relativeToVRT="0">{source}'
        f"</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )


@pytest.fixture
def local_pair(pair_items):  # noqa: F811 - the fixture imported above
    """Two real GeoTIFFs on this machine (the files an attacker wants read) and their items."""
    ref, sec, tmp_path = pair_items
    return Path(ref), Path(sec), tmp_path


@pytest.fixture
def via_proxy(monkeypatch):
    """Requests (and GDAL) to any host go to the 127.0.0.1 server, as an HTTP proxy."""

    def use(server: FlakyServer) -> None:
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", server.url)
        monkeypatch.setenv("http_proxy", server.url)

    return use


def _served_item(path: Path, nir_href: str) -> bytes:
    item = json.loads(path.read_text())
    item["assets"]["nir"]["href"] = nir_href
    return json.dumps(item).encode()


@pytest.mark.parametrize("name", ["B08.vrt", "B08.tif", "B08.jp2"])
def test_a_remote_vrt_of_local_files_is_refused_whatever_its_name(local_pair, name):
    ref, sec, tmp_path = local_pair
    files = {}
    with FlakyServer(files=files) as server:
        for role, item, cog in (("ref", ref, "ref_B08.tif"), ("sec", sec, "sec_B08.tif")):
            files[f"/{role}/{name}"] = _vrt_of(str(tmp_path / cog)).encode()
            files[f"/{role}/item.json"] = _served_item(item, f"{server.url}/{role}/{name}")
        with pytest.raises(InputError, match=r"only GeoTIFF \(COG\) and JPEG 2000 rasters are read") as caught:
            correlate_pair(
                f"{server.url}/ref/item.json",
                f"{server.url}/sec/item.json",
                tmp_path / "out",
                replace(PARAMS, stac_url=server.url),  # the catalogue the user named: its host is allowed
            )
    assert not (tmp_path / "out").exists()
    what = f"reference {REF_ID!r} nir ({server.url + '/ref/' + name!r})"
    assert str(caught.value).startswith(f"cannot read raster {what}: ")
    assert_documented(str(caught.value), what)


def test_a_local_vrt_is_refused_too(tmp_path):
    (tmp_path / "passwd.vrt").write_text(_vrt_of("/etc/passwd", 4, 4))
    (tmp_path / "disguised.tif").write_text(_vrt_of("/etc/passwd", 4, 4))
    for name in ("passwd.vrt", "disguised.tif"):
        with pytest.raises(InputError, match=r"only GeoTIFF \(COG\) and JPEG 2000"):
            read_window(str(tmp_path / name))


def test_a_geotiff_and_a_jpeg2000_still_open(tmp_path):
    import rasterio

    data = np.arange(64, dtype="uint16").reshape(8, 8) + 1
    for name, driver in (("a.tif", "GTiff"), ("a.jp2", "JP2OpenJPEG")):
        profile = dict(driver=driver, width=8, height=8, count=1, dtype="uint16", crs="EPSG:32643", transform=TRANSFORM)
        if driver == "JP2OpenJPEG":
            profile["QUALITY"] = "100"
            profile["REVERSIBLE"] = "YES"
        with rasterio.open(tmp_path / name, "w", **profile) as dst:
            dst.write(data, 1)
        assert np.array_equal(read_window(str(tmp_path / name)).array, data)


REMOTE = "http://catalogue.example"  # reached through the 127.0.0.1 server acting as an HTTP proxy


@pytest.mark.parametrize(
    "href",
    [
        "/etc/passwd",
        "/etc/shadow",
        "/no/such/file.tif",
        "file:///etc/passwd",
        "file:///no/such/file.tif",
        "/vsimem/x.tif",
        "./B08.tif",
    ],
)
def test_a_remote_item_cannot_name_local_files_and_the_message_does_not_tell_if_they_exist(local_pair, href, via_proxy):
    ref, sec, tmp_path = local_pair
    files = {}
    with FlakyServer(files=files) as server:
        via_proxy(server)  # a catalogue on another host: requests sends the absolute URL to the proxy
        files[f"{REMOTE}/ref/item.json"] = _served_item(ref, href)
        files[f"{REMOTE}/sec/item.json"] = _served_item(sec, href)
        attempt = attempt_pair(
            f"{REMOTE}/ref/item.json", f"{REMOTE}/sec/item.json", tmp_path / "out", PARAMS, pair_id="p"
        )
        seen = [r.path for r in server.requests]
    assert not attempt.succeeded
    shown = href if href != "./B08.tif" else f"{REMOTE}/ref/B08.tif"
    if href == "./B08.tif":
        # A relative href resolves against the item's URL: remote, so accepted here; the read then
        # goes to the catalogue host, never to a local file.
        assert "nir" in attempt.status.reason and "fetched over http(s)" not in attempt.status.reason
        assert seen[-1] == f"{REMOTE}/ref/B08.tif"
        return
    assert seen == [f"{REMOTE}/ref/item.json"]  # refused before anything is opened
    assert attempt.status.reason.replace(shown, "<href>") == (
        f"item {REF_ID!r} was fetched over http(s) ({REMOTE}/ref/item.json) and may only name http(s) "
        "or s3 assets, not the local location '<href>' for 'nir'; local paths are accepted only in items read "
        "from local files"
    )
    assert_documented(attempt.status.reason, repr(REF_ID), f"{REMOTE}/ref/item.json", repr(shown))
    assert not (tmp_path / "out").exists()


def test_a_remote_item_claiming_a_local_self_link_is_still_remote(local_pair, via_proxy):
    ref, sec, tmp_path = local_pair
    files = {}
    with FlakyServer(files=files) as server:
        via_proxy(server)
        for role, item in (("ref", ref), ("sec", sec)):
            data = json.loads(_served_item(item, str(tmp_path / f"{role}_B08.tif")))
            data["links"] = [{"rel": "self", "href": str(item)}]
            files[f"{REMOTE}/{role}/item.json"] = json.dumps(data).encode()
        attempt = attempt_pair(
            f"{REMOTE}/ref/item.json", f"{REMOTE}/sec/item.json", tmp_path / "out", PARAMS, pair_id="p"
        )
    assert not attempt.succeeded
    assert "was fetched over http(s)" in attempt.status.reason
