"""Windowed reading: AOI snapping, secondary onto the reference grid, nodata, hrefs, HTTP."""

from __future__ import annotations

import functools
import http.server
import os
import threading

import numpy as np
import pytest
from affine import Affine
from numpy.testing import assert_allclose, assert_array_equal
from rasterio.warp import transform as transform_coords
from rasterio.warp import transform_bounds

from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.raster import gdal_path, normalize_aoi, read_window
from helpers import write_scene_cog

# A 10 m UTM 43N grid near the Karakoram (about 74.8 E, 36.1 N).
X0, Y0 = 430_000.0, 4_000_000.0
UTM = "EPSG:32643"


def _texture(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 10_000, size=shape, dtype=np.uint16)


@pytest.fixture
def scene(tmp_path):
    array = _texture((200, 300))
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    return write_scene_cog(tmp_path / "ref.tif", array, transform), array, transform


def _lonlat_box(left, bottom, right, top):
    return transform_bounds(UTM, "EPSG:4326", left, bottom, right, top, densify_pts=21)


def test_aoi_window_is_an_exact_subset_of_the_native_grid(scene):
    href, array, transform = scene
    # An AOI whose UTM box does not fall on pixel edges.
    box = (X0 + 503.0, Y0 - 1497.0, X0 + 1496.0, Y0 - 404.0)
    raster = read_window(href, _lonlat_box(*box))
    col0 = (raster.transform.c - X0) / 10.0
    row0 = (Y0 - raster.transform.f) / 10.0
    assert col0 == int(col0) and row0 == int(row0), "window origin must be on the native pixel grid"
    col0, row0 = int(col0), int(row0)
    rows, cols = raster.shape
    assert (raster.transform.a, raster.transform.e) == (10.0, -10.0)
    assert_array_equal(raster.array, array[row0 : row0 + rows, col0 : col0 + cols])
    # The window covers the AOI, with less than one pixel to spare beyond the lon/lat envelope.
    left, bottom, right, top = raster.bounds
    assert left <= box[0] and right >= box[2] and bottom <= box[1] and top >= box[3]
    assert rows < (box[3] - box[1]) / 10 + 6 and cols < (box[2] - box[0]) / 10 + 6
    assert raster.crs == UTM and raster.nodata == 0 and raster.href == href
    assert raster.pixel_size == 10.0


def test_aoi_on_pixel_edges_gives_exactly_those_pixels(scene):
    href, array, transform = scene
    # A UTM-aligned box read through its own lon/lat envelope covers at least that box.
    raster = read_window(href, _lonlat_box(X0 + 1000, Y0 - 1000, X0 + 1500, Y0 - 500))
    assert raster.transform.c <= X0 + 1000 and raster.transform.f >= Y0 - 500
    whole = read_window(href)
    assert whole.shape == (200, 300) and whole.transform == transform
    assert_array_equal(whole.array, array)


def test_aoi_partly_outside_is_clipped_and_fully_outside_is_an_error(scene):
    href, array, _ = scene
    raster = read_window(href, _lonlat_box(X0 - 5000, Y0 - 500, X0 + 500, Y0 + 5000))
    assert raster.transform.c == X0 and raster.transform.f == Y0
    assert_array_equal(raster.array, array[: raster.shape[0], : raster.shape[1]])
    with pytest.raises(InputError, match="lies outside the raster"):
        read_window(href, (10.0, 46.0, 10.1, 46.1))


def test_declared_nodata_becomes_zero(tmp_path):
    array = _texture((64, 64))
    array[:10, :10] = 65535
    href = write_scene_cog(tmp_path / "nd.tif", array, Affine(10, 0, X0, 0, -10, Y0), nodata=65535)
    raster = read_window(href)
    assert raster.nodata == 0
    assert (raster.array[:10, :10] == 0).all()
    assert_array_equal(raster.array[10:], array[10:])
    assert raster.valid.sum() == 64 * 64 - 100


def test_secondary_on_a_shifted_identical_grid_is_read_without_resampling(tmp_path, scene):
    ref_href, _, ref_transform = scene
    reference = read_window(ref_href, _lonlat_box(X0 + 1000, Y0 - 1500, X0 + 2500, Y0 - 300))
    # The secondary's grid starts 7 px east and 3 px south of the reference file's.
    sec_array = _texture((150, 250), seed=1)
    sec_transform = Affine(10.0, 0.0, X0 + 70.0, 0.0, -10.0, Y0 - 30.0)
    sec_href = write_scene_cog(tmp_path / "sec.tif", sec_array, sec_transform)
    secondary = read_window(
        sec_href, dst_crs=reference.crs, dst_transform=reference.transform, dst_shape=reference.shape
    )
    assert secondary.transform == reference.transform and secondary.shape == reference.shape
    col0 = int((reference.transform.c - sec_transform.c) / 10)
    row0 = int((sec_transform.f - reference.transform.f) / 10)
    rows, cols = reference.shape
    expected = np.zeros(reference.shape, np.uint16)
    part = sec_array[max(row0, 0) : row0 + rows, max(col0, 0) : col0 + cols]
    expected[max(-row0, 0) : max(-row0, 0) + part.shape[0], max(-col0, 0) : max(-col0, 0) + part.shape[1]] = part
    assert_array_equal(secondary.array, expected)


def _plane(x, y):
    """A smooth field of map position (m), exactly representable by cubic interpolation."""
    return 2000.0 + 0.3 * (x - X0) - 0.2 * (y - Y0)


def test_secondary_on_a_different_grid_is_resampled_onto_the_reference_grid(tmp_path):
    ref_transform = Affine(10.0, 0.0, X0 + 1000, 0.0, -10.0, Y0 - 1000)
    # Secondary half a pixel off the reference grid: must be resampled, not read as is.
    sec_transform = Affine(10.0, 0.0, X0 + 5.0, 0.0, -10.0, Y0 - 5.0)
    rows, cols = np.mgrid[0:400, 0:400]
    x, y = sec_transform @ (cols + 0.5, rows + 0.5)
    sec_href = write_scene_cog(tmp_path / "sec.tif", _plane(x, y).astype(np.float32), sec_transform, nodata=None)
    out = read_window(sec_href, dst_crs=UTM, dst_transform=ref_transform, dst_shape=(50, 60))
    assert out.transform == ref_transform and out.shape == (50, 60) and out.crs == UTM
    r, c = np.mgrid[0:50, 0:60]
    xr, yr = ref_transform @ (c + 0.5, r + 0.5)
    assert_allclose(out.array, _plane(xr, yr), atol=1e-2)


def test_secondary_in_another_utm_zone_lands_on_the_reference_grid(tmp_path):
    ref_transform = Affine(10.0, 0.0, X0 + 1000, 0.0, -10.0, Y0 - 1000)
    # The same area in the neighbouring zone 44N; the values are the plane in zone-43 metres.
    west, south, east, north = transform_bounds(UTM, "EPSG:32644", X0, Y0 - 3000, X0 + 3000, Y0)
    sec_transform = Affine(10.0, 0.0, np.floor(west / 10) * 10, 0.0, -10.0, np.ceil(north / 10) * 10)
    shape = (int((north - south) / 10) + 2, int((east - west) / 10) + 2)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x44, y44 = sec_transform @ (cols + 0.5, rows + 0.5)
    x43, y43 = transform_coords("EPSG:32644", UTM, x44.ravel(), y44.ravel())
    values = _plane(np.asarray(x43), np.asarray(y43)).reshape(shape).astype(np.float32)
    sec_href = write_scene_cog(tmp_path / "sec44.tif", values, sec_transform, crs="EPSG:32644", nodata=None)
    out = read_window(sec_href, dst_crs=UTM, dst_transform=ref_transform, dst_shape=(80, 90))
    assert out.transform == ref_transform and out.shape == (80, 90) and out.crs == UTM
    r, c = np.mgrid[0:80, 0:90]
    xr, yr = ref_transform @ (c + 0.5, r + 0.5)
    # One pixel of misalignment would be an error of 3 (east) or 2 (north) here; 0.003 is
    # 0.001 px.
    assert_allclose(out.array, _plane(xr, yr), atol=3e-3)


def test_secondary_not_overlapping_the_grid_is_an_error(scene):
    href, _, _ = scene
    far = Affine(10.0, 0.0, X0 + 100_000, 0.0, -10.0, Y0)
    with pytest.raises(InputError, match="does not overlap"):
        read_window(href, dst_crs=UTM, dst_transform=far, dst_shape=(10, 10))
    with pytest.raises(InvalidParameter, match="dst_grid"):
        read_window(href, dst_crs=UTM, dst_transform=far)


def test_hrefs_are_mapped_to_gdal_paths_and_bad_ones_rejected(tmp_path, scene):
    href, _, _ = scene
    assert gdal_path("https://example.org/a/B08.tif") == "/vsicurl/https://example.org/a/B08.tif"
    assert gdal_path("s3://sentinel-cogs/tiles/43/S/EA/B08.tif") == "/vsis3/sentinel-cogs/tiles/43/S/EA/B08.tif"
    assert gdal_path(f"file://{href}") == href
    assert gdal_path(href) == href
    with pytest.raises(InputError, match="unsupported URL scheme 'ftp'"):
        gdal_path("ftp://example.org/B08.tif")
    with pytest.raises(InputError, match="does not exist"):
        read_window(str(tmp_path / "missing.tif"))
    not_a_raster = tmp_path / "junk.tif"
    not_a_raster.write_text("not a tiff")
    with pytest.raises(InputError, match="cannot read raster"):
        read_window(str(not_a_raster))


def test_aoi_normalization():
    assert normalize_aoi([74.1, 36.0, 74.3, 36.2]) == (74.1, 36.0, 74.3, 36.2)
    polygon = {"type": "Polygon", "coordinates": [[[74.1, 36.0], [74.3, 36.0], [74.3, 36.2], [74.1, 36.0]]]}
    assert normalize_aoi(polygon) == (74.1, 36.0, 74.3, 36.2)
    assert normalize_aoi({"type": "Feature", "properties": {}, "geometry": polygon}) == (74.1, 36.0, 74.3, 36.2)
    with pytest.raises(InvalidParameter, match="bbox"):
        normalize_aoi((74.3, 36.0, 74.1, 36.2))
    with pytest.raises(InvalidParameter, match="bbox"):
        normalize_aoi((74.1, 95.0, 74.3, 96.0))
    with pytest.raises(InvalidParameter, match="aoi"):
        normalize_aoi("somewhere")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP range requests (what GDAL's /vsicurl/ relies on)."""

    bytes_sent: list[int]

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            first, _, last = header[6:].split(",")[0].partition("-")
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        self.wfile.write(data)
        self.server.bytes_sent += len(data)  # type: ignore[attr-defined]


@pytest.fixture
def http_dir(tmp_path):
    handler = functools.partial(_RangeHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.bytes_sent = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("loopback_allowed")
def test_http_window_read_fetches_only_part_of_the_file(http_dir):
    root, base, server = http_dir
    array = _texture((1024, 1024), seed=3)  # noise does not compress: ~2 MB
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    write_scene_cog(root / "B08.tif", array, transform)
    size = os.path.getsize(root / "B08.tif")
    box = (X0 + 1000, Y0 - 2000, X0 + 2000, Y0 - 1000)
    raster = read_window(f"{base}/B08.tif", _lonlat_box(*box))
    local = read_window(str(root / "B08.tif"), _lonlat_box(*box))
    assert raster.transform == local.transform
    assert_array_equal(raster.array, local.array)
    assert 0 < server.bytes_sent < size / 3, f"{server.bytes_sent} of {size} bytes fetched"


@pytest.mark.usefixtures("loopback_allowed")
def test_unreachable_url_is_an_input_error(http_dir):
    _, base, _ = http_dir
    with pytest.raises(InputError, match="cannot read raster"):
        read_window(f"{base}/nothing-here.tif")
