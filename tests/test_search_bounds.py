"""The search range is bounded (issue 11, finding 12): capped at the image size, and refused
before anything is allocated when the engine would need more memory than there is.

``--max-velocity-m-per-yr 1e6`` allocated 24 GB and was OOM-killed. These tests run the real
command in a child process whose address space is limited (``ulimit -v``, a real limit the
kernel enforces), so that the code before the fix fails with a MemoryError instead of taking
the machine's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity.demo.synthetic import Translation, make_pair
from helpers import REF_TIME, SEC_TIME, X0, Y0, write_scene_cog, write_scene_item

TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
#: Address space of the child process (bytes): room for Python, NumPy, GDAL and OpenCV and a
#: small pair, far less than the 10.8 GB a 4380 px search with 128 px chips would take.
ADDRESS_SPACE = 4 * 2**30
DT_DAYS = 16.0
SHIFT = Translation(2.5, -1.5)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, preexec_fn=_limited, check=False
    )


def _images(tmp_path: Path, size: int) -> tuple[str, str]:
    synthetic = make_pair((size, size), SHIFT, seed=3)
    write_scene_cog(tmp_path / "ref.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp_path / "sec.tif", synthetic.secondary, TRANSFORM)
    return str(tmp_path / "ref.tif"), str(tmp_path / "sec.tif")


def _track(tmp_path: Path, size: int, chip: int, max_velocity: str) -> subprocess.CompletedProcess[str]:
    ref, sec = _images(tmp_path, size)
    return _run(
        "-m",
        "glacier_velocity",
        "track",
        ref,
        sec,
        "--dt-days",
        str(DT_DAYS),
        "--out",
        str(tmp_path / "v.tif"),
        "--max-velocity-m-per-yr",
        max_velocity,
        "--chip-px",
        str(chip),
        "--no-stable-correction",
    )


def test_a_search_wider_than_the_image_is_capped_and_still_tracks(tmp_path):
    # 1e6 m/yr over 16 days at 10 m: 4380 px, on a 256 px image. Uncapped, the coarse level's
    # exhaustive search alone would hold 5 GB per array.
    done = _track(tmp_path, 256, 32, "1e6")
    assert done.returncode == 0, done.stderr
    with rasterio.open(tmp_path / "v.tif") as src:
        params = json.loads(src.tags()["engine_params"])
        speed = src.read(src.descriptions.index("v") + 1)
    assert params["search_px"] == 256.0
    truth = np.hypot(SHIFT.dx, SHIFT.dy) * 10.0 * 365.25 / DT_DAYS
    assert np.nanmedian(speed) == pytest.approx(truth, rel=0.01)


def test_a_search_too_large_for_memory_fails_before_allocating_naming_max_velocity(tmp_path):
    # 1000 px image, 128 px chips: the search is capped at 1000 px, whose coarse-level
    # correlations the engine estimates at 10.8 GB; 4 GB may be allocated.
    done = _track(tmp_path, 1000, 128, "1e6")
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    prefix = "glacier-velocity track: error: "
    assert message.startswith(prefix + "--max-velocity-m-per-yr: 1e+06 m/yr over 16.00 days at 10 m pixels"), message
    assert "would need 10.8 GB of memory, and 4.3 GB is available" in message
    assert_documented(message.removeprefix(prefix), "1e+06", "16.00", "10", "1000", "128", "10.8", "4.3")
    assert not (tmp_path / "v.tif").exists()


def test_the_notebook_records_the_pair_as_failed_with_the_memory_it_would_need(tmp_path):
    """The correlation notebook's call (attempt_pair), in a limited child process."""
    ref_img, sec_img = _images(tmp_path, 1000)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, Path(ref_img).name, TRANSFORM, (1000, 1000))
    sec = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, Path(sec_img).name, TRANSFORM, (1000, 1000))
    script = (
        "import json, sys\n"
        "from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair\n"
        "params = CorrelationParams(max_velocity_m_per_yr=1e6, chip_px=128, stable_correction=False)\n"
        "attempt = attempt_pair(sys.argv[1], sys.argv[2], sys.argv[3], params, pair_id='p1')\n"
        "print(json.dumps(attempt.status.to_dict()))\n"
    )
    done = _run("-c", script, str(ref), str(sec), str(tmp_path / "p1"))
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout.strip().splitlines()[-1])
    assert (status["status"], status["error_type"]) == ("failed", "InvalidParameter")
    assert status["reason"].startswith("max_velocity_m_per_yr: 1e+06 m/yr over 16.25 days at 10 m pixels")
    assert "a search range of 1000 px on a 1000 x 1000 px image with chip_px = 128 would need" in status["reason"]
    assert not (tmp_path / "p1").exists()
