"""What needs no pixel is checked before the first pixel is read (issue 23, findings 10 and 14).

- Finding 10: a 150000 px square sparse COG (1 MB on disk) whose footprint covers the whole
  tile allocated 41.9 GiB in the reference read and died with a MemoryError traceback. The
  window is planned from the header, and the two images and the engine are weighed against
  the memory before reading; any read refuses a window larger than the memory. The pair runs
  in a child process whose address space is limited (``ulimit -v``), so the code before the
  fix fails with its MemoryError instead of taking the machine's memory.
- Finding 14: ``--max-velocity-m-per-yr 0.5`` (a search range of 0.002 px) read the whole pair,
  then failed as "nothing trackable"; it is refused before any read, saying the search range
  is below a pixel and which speed would do.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.errors import InputError
from glacier_velocity.io import raster as raster_module
from glacier_velocity.io.raster import plan_window, read_window
from glacier_velocity.workflow import correlate as correlate_module
from helpers import EPSG, REF_TIME, SEC_TIME, X0, Y0, write_pair_items, write_scene_cog, write_scene_item

TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
REF_ID, SEC_ID = "S2B_43SEA_20200601_0_L2A", "S2A_43SEA_20200617_0_L2A"
#: Address space of the child process (bytes): Python, NumPy, GDAL and a small pair fit;
#: the 41.9 GiB of one whole-tile window do not.
ADDRESS_SPACE = 4 * 2**30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _sparse_cog(path: Path, size: int, transform: Affine) -> None:
    """A ``size`` px square uint16 GeoTIFF with one written tile (the rest absent: sparse)."""
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="uint16",
        crs=f"EPSG:{EPSG}",
        transform=transform,
        nodata=0,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        sparse_ok=True,
        BIGTIFF="YES",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((512, 512), 1000, "uint16"), 1, window=Window(0, 0, 512, 512))


def test_a_whole_tile_window_is_refused_before_reading_with_the_figures(tmp_path):
    size = 150_000
    transform = Affine(10.0, 0.0, 300_000.0, 0.0, -10.0, 5_000_000.0)
    for name in ("ref.tif", "sec.tif"):
        _sparse_cog(tmp_path / name, size, transform)
    assert (tmp_path / "ref.tif").stat().st_size < 2e6
    ref = write_scene_item(tmp_path, REF_ID, REF_TIME, "ref.tif", transform, (size, size))
    sec = write_scene_item(tmp_path, SEC_ID, SEC_TIME, "sec.tif", transform, (size, size))
    done = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "correlate", ref, sec, "--out-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    message = done.stderr.strip().splitlines()[-1]
    prefix = "glacier-velocity correlate: error: "
    # 2 x 150000^2 px of uint16; at most the child's address space is available.
    match = re.fullmatch(
        re.escape(
            prefix + "the two images of 150000 x 150000 px would need 90.0 GB of memory before any tracking, and "
        )
        + r"(\d+\.\d) GB"
        + re.escape(
            " is available; choose a smaller area (--aoi: a glacier's outline or bounding box, not a whole tile)"
        ),
        message,
    )
    assert match and float(match.group(1)) <= round(ADDRESS_SPACE / 1e9, 1), message
    assert "Traceback" not in done.stderr
    assert_documented(message.removeprefix(prefix), "150000", "90.0", match.group(1))
    assert not (tmp_path / "out").exists()


def test_any_read_refuses_a_window_larger_than_the_memory(tmp_path, monkeypatch):
    write_scene_cog(tmp_path / "b08.tif", np.ones((300, 200), "uint16"), TRANSFORM)
    plan = plan_window(str(tmp_path / "b08.tif"), label="scl asset")
    assert (plan.shape, plan.dtype, plan.pixel_size, plan.nbytes) == ((300, 200), "uint16", 10.0, 120_000)
    # Reading 300 x 200 px of uint16 takes 6 bytes a pixel at its peak: 360 kB.
    monkeypatch.setattr(raster_module, "available_memory_bytes", lambda: 300_000)
    with pytest.raises(InputError) as caught:
        read_window(str(tmp_path / "b08.tif"), label="scl asset")
    message = str(caught.value)
    what = f"scl asset ({str(tmp_path / 'b08.tif')!r})"
    assert message == (
        f"cannot read raster {what}: its window of 300 x 200 px (uint16) would need 0.0 GB of memory to read, and "
        "0.0 GB is available; choose a smaller area (--aoi)"
    )
    assert_documented(message, what, "300", "200", "uint16", "0.0")
    monkeypatch.setattr(raster_module, "available_memory_bytes", lambda: 360_000)
    assert read_window(str(tmp_path / "b08.tif")).shape == (300, 200)


@pytest.fixture
def pair_items(tmp_path):
    return (*write_pair_items(tmp_path), tmp_path)


def test_a_search_range_below_a_pixel_is_refused_before_any_read(pair_items, monkeypatch, capsys):
    ref, sec, tmp_path = pair_items
    reads: list[str] = []

    def reading(href, *args, **kwargs):
        reads.append(href)
        raise AssertionError("a pixel was read")

    monkeypatch.setattr(correlate_module, "read_window", reading)
    code = main(["correlate", ref, sec, "--out-dir", str(tmp_path / "out"), "--max-velocity-m-per-yr", "0.5"])
    assert code == 2 and reads == []
    message = capsys.readouterr().err.strip().splitlines()[-1]
    prefix = "glacier-velocity correlate: error: "
    # 0.5 m/yr over 16.25 days at 10 m: 0.00222 px; one pixel needs 10 m x 365.25 / 16.25 days.
    assert message == prefix + (
        "--max-velocity-m-per-yr: 0.5 m/yr over 16.25 days at 10 m pixels is a search range of 0.00222 px, below "
        "one pixel: no displacement could be found (the engines match whole pixels, then refine them); give the "
        "fastest speed really expected in the area, at least 225 m/yr for this pair, or pair acquisitions further apart"
    )
    assert_documented(message.removeprefix(prefix), "0.5", "16.25", "10", "0.00222", "225")
    assert not (tmp_path / "out").exists()


def test_the_track_command_refuses_it_too(pair_items, capsys):
    _, _, tmp_path = pair_items
    argv = ["track", str(tmp_path / "ref_B08.tif"), str(tmp_path / "sec_B08.tif"), "--dt-days", "16"]
    code = main([*argv, "--out", str(tmp_path / "v.tif"), "--max-velocity-m-per-yr", "200"])
    assert code == 2
    assert "a search range of 0.876 px, below one pixel" in capsys.readouterr().err
    assert not (tmp_path / "v.tif").exists()
