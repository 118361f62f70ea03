"""A pair's products are one set (issue 11, findings 9 and 10): a re-run replaces the old set
only once the new one is complete, a failure or a kill leaves the old set as it was, SIGTERM
removes the temporary files, and a second writer of the same pair waits.

Every failure here is real: a full file system (a 1 MB tmpfs mounted in a user namespace), a
real ``glacier-velocity correlate`` process killed with SIGTERM or SIGKILL while its files
are being written, and two real processes on one pair.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import rasterio
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity.demo.synthetic import Translation, make_pair
from helpers import (
    FILL_DISK_SOURCE,
    REF_TIME,
    SEC_TIME,
    X0,
    Y0,
    run_on_small_disk,
    unshare_works,
    write_scene_cog,
    write_scene_item,
)

TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
BASENAME = "S2_43SEA_20200601_20200617"
SET = [f"{BASENAME}.json", f"{BASENAME}.tif", f"{BASENAME}_quicklook.png"]


def _scenes(tmp_path: Path, size: int) -> tuple[str, str]:
    synthetic = make_pair((size, size), Translation(2.5, -1.5), seed=7)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp_path / "sec_B08.tif", synthetic.secondary, TRANSFORM)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", TRANSFORM, (size, size))
    sec = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", TRANSFORM, (size, size))
    return str(ref), str(sec)


def _correlate_args(ref: str, sec: str, out: Path, max_velocity: float, spacing: int = 16) -> list[str]:
    return [
        sys.executable,
        "-m",
        "glacier_velocity",
        "correlate",
        ref,
        sec,
        "--out-dir",
        str(out),
        "--grid-spacing-px",
        str(spacing),
        "--max-velocity-m-per-yr",
        str(max_velocity),
    ]


def _digests(directory: Path) -> dict[str, str]:
    """Every entry of ``directory`` (hidden ones included) with the digest of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(directory.iterdir())
    }


def _recorded_max_velocity(out: Path) -> tuple[float, float]:
    """The maximum speed the item records and the one the COG's tags record."""
    item = json.loads((out / f"{BASENAME}.json").read_text())
    with rasterio.open(out / f"{BASENAME}.tif") as src:
        tagged = float(src.tags()["max_velocity_m_per_yr"])
    return item["properties"]["gv:correlation_params"]["max_velocity_m_per_yr"], tagged


# --- finding 9: a full disk ----------------------------------------------------------------------

_FULL_DISK_SCRIPT = FILL_DISK_SOURCE + textwrap.dedent(
    """
    import hashlib, json, subprocess, sys
    from pathlib import Path

    disk, ref, sec = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = disk / "out"

    def correlate(max_velocity):
        args = [sys.executable, "-m", "glacier_velocity", "correlate", ref, sec, "--out-dir", str(out),
                "--grid-spacing-px", "16", "--max-velocity-m-per-yr", str(max_velocity)]
        return subprocess.run(args, capture_output=True, text=True, timeout=300)

    def digests():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    first = correlate(1000)
    before = digests()
    # Full to the last byte, then two pages free: the re-run's lock and first blocks fit, its COG does not.
    full = fill_disk(disk, 8192)
    second = correlate(2000)
    print(json.dumps({
        "first": first.returncode, "first_err": first.stderr, "full": full,
        "code": second.returncode, "stderr": second.stderr, "before": before, "after": digests(),
        "disk": sorted(p.name for p in disk.iterdir()),
    }))
    """
)


@pytest.mark.skipif(not unshare_works(), reason="needs unprivileged user namespaces (unshare -r -m) to mount a tmpfs")
def test_a_full_disk_keeps_the_earlier_products_byte_for_byte_and_says_so(tmp_path):
    ref, sec = _scenes(tmp_path, 128)
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK_SCRIPT)
    result = run_on_small_disk(disk, "1m", script, str(disk), ref, sec, timeout=600)
    assert result["first"] == 0, result["first_err"]
    assert result["full"] == 28  # ENOSPC: the file system really is full
    assert sorted(result["before"]) == SET
    # The re-run failed cleanly, and the earlier set is there, byte for byte, and nothing else.
    assert result["code"] == 2, result["stderr"]
    assert result["after"] == result["before"]
    assert result["disk"] == ["filler", "out"]  # no staging directory, lock or journal left
    message = result["stderr"].strip().splitlines()[-1]
    out = str(disk / "out")
    prefix = "glacier-velocity correlate: error: "
    assert message.startswith(f"{prefix}could not write the products of pair 43SEA_20200601_20200617 into {out!r} (")
    assert message.endswith(
        f"0.0 MB free there); the products {BASENAME}.* of an earlier run in {out!r} were kept unchanged - "
        "free some space (or choose another directory) and run the pair again"
    )
    reason = message.removeprefix(prefix).split(" (", 1)[1].split("; 0.0 MB", 1)[0]
    assert_documented(message.removeprefix(prefix), "43SEA_20200601_20200617", repr(out), reason, "0.0", BASENAME)


# --- finding 10: killed mid-write, and two writers -----------------------------------------------


def _kill_while_writing(tmp_path: Path, sig: int) -> tuple[Path, dict[str, str], subprocess.Popen[bytes]]:
    """The old set (1000 m/yr), then a re-run (1500 m/yr) killed with ``sig`` once its first
    temporary file exists: (the product directory, the old set's digests, the killed process)."""
    ref, sec = _scenes(tmp_path, 1024)
    out = tmp_path / "out"
    subprocess.run(_correlate_args(ref, sec, out, 1000.0), check=True, capture_output=True, timeout=300)
    before = _digests(out)
    assert sorted(before) == SET
    rerun = subprocess.Popen(_correlate_args(ref, sec, out, 1500.0), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while rerun.poll() is None and time.monotonic() < deadline:
        # Its temporary files: hidden names beside or in the product directory.
        if any(p.name.startswith(".") for p in (*out.iterdir(), *tmp_path.iterdir())):
            break
        time.sleep(0.002)
    assert rerun.poll() is None, "the re-run ended before it wrote anything"
    rerun.send_signal(sig)
    rerun.wait(timeout=60)
    return out, before, rerun


def test_sigterm_while_writing_removes_temporary_files_and_keeps_the_old_set(tmp_path):
    out, before, rerun = _kill_while_writing(tmp_path, signal.SIGTERM)
    assert rerun.returncode == 143  # 128 + SIGTERM, through the cleanups
    assert _digests(out) == before  # the old set, byte for byte, and nothing else
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _recorded_max_velocity(out) == (1000.0, 1000.0)


def test_sigkill_while_writing_leaves_the_old_set_and_the_next_run_cleans_up(tmp_path):
    out, before, rerun = _kill_while_writing(tmp_path, signal.SIGKILL)
    assert rerun.returncode == -signal.SIGKILL
    # Nothing can clean up after SIGKILL: the staging directory may stay, hidden; the set that
    # readers see is the old one, whole.
    visible = {name: digest for name, digest in _digests(out).items() if not name.startswith(".")}
    assert visible == before
    assert _recorded_max_velocity(out) == (1000.0, 1000.0)
    ref, sec = str(tmp_path / "S2B_43SEA_20200601_0_L2A.json"), str(tmp_path / "S2A_43SEA_20200617_0_L2A.json")
    subprocess.run(_correlate_args(ref, sec, out, 1500.0), check=True, capture_output=True, timeout=300)
    assert sorted(_digests(out)) == SET
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _recorded_max_velocity(out) == (1500.0, 1500.0)


_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin
    """
)


def test_a_second_writer_of_the_pair_waits_for_the_first(tmp_path):
    ref, sec = _scenes(tmp_path, 128)
    out = tmp_path / "out"
    out.mkdir()
    # Another writer of the same pair, holding the set's lock (plain flock, as any process would).
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out / f".{BASENAME}.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        log = tmp_path / "second.log"
        with open(log, "w") as err:
            second = subprocess.Popen(_correlate_args(ref, sec, out, 1000.0), stderr=err)
            deadline = time.monotonic() + 120
            while second.poll() is None and time.monotonic() < deadline and "waiting for it" not in log.read_text():
                time.sleep(0.05)
            assert second.poll() is None, f"the second writer did not wait: {log.read_text()}"
            assert f"is being written by another process (pid {holder.pid}); waiting for it" in log.read_text(), (
                log.read_text()
            )
            time.sleep(1.0)
            assert second.poll() is None and not (out / f"{BASENAME}.tif").exists()
            holder.stdin.close()  # type: ignore[union-attr]
            holder.wait(timeout=30)
            assert second.wait(timeout=300) == 0, log.read_text()
    finally:
        if holder.poll() is None:
            holder.kill()
    assert sorted(_digests(out)) == SET  # the lock file is gone with its last holder
    assert _recorded_max_velocity(out) == (1000.0, 1000.0)


def test_two_concurrent_runs_of_one_pair_leave_one_whole_set(tmp_path):
    ref, sec = _scenes(tmp_path, 512)
    out = tmp_path / "out"
    runs = [
        subprocess.Popen(_correlate_args(ref, sec, out, speed, spacing=8), stderr=subprocess.PIPE)
        for speed in (800.0, 1200.0)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert sorted(_digests(out)) == SET
    item_speed, cog_speed = _recorded_max_velocity(out)
    assert item_speed == cog_speed and item_speed in (800.0, 1200.0)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _papermill_args(ref: str, sec: str, max_velocity: float) -> list[str]:
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "02-correlation.ipynb"
    return [
        *(str(Path(sys.executable).parent / "papermill"), str(notebook), "executed.ipynb", "-k", "python3"),
        *("--no-progress-bar", "-p", "reference_href", ref, "-p", "secondary_href", sec, "-p", "pair_id", "p1"),
        *("-p", "aoi", "None", "-p", "grid_spacing_px", "16", "-p", "max_velocity_m_per_yr", str(max_velocity)),
    ]


def test_sigterm_to_papermill_keeps_the_old_set_and_status(tmp_path):
    """The correlation step as CWL runs it: SIGTERM goes to papermill, the writer is its kernel.

    Papermill dies at once; its kernel gets SIGTERM in turn (PR_SET_PDEATHSIG) and usually
    removes its staging directory, but ipykernel's own parent poller may end it first
    (``os._exit``) while it is inside a long C call. What holds every time: the old set and
    its status are intact, and the next run leaves nothing hidden behind.
    """
    ref, sec = _scenes(tmp_path, 1024)
    run = tmp_path / "run"
    run.mkdir()
    subprocess.run(_papermill_args(ref, sec, 1000.0), cwd=run, check=True, capture_output=True, timeout=300)
    before = {**_digests(run / "p1"), "status": hashlib.sha256((run / "status_p1.json").read_bytes()).hexdigest()}
    rerun = subprocess.Popen(_papermill_args(ref, sec, 1500.0), cwd=run, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while rerun.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".") for p in run.iterdir()):
            break
        time.sleep(0.002)
    assert rerun.poll() is None, "the re-run ended before it wrote anything"
    rerun.send_signal(signal.SIGTERM)
    rerun.wait(timeout=60)
    time.sleep(3.0)  # the kernel's own exit: SIGTERM handling or its parent poller (1 s)
    after = {**_digests(run / "p1"), "status": hashlib.sha256((run / "status_p1.json").read_bytes()).hexdigest()}
    assert after == before
    assert _recorded_max_velocity(run / "p1") == (1000.0, 1000.0)
    subprocess.run(_papermill_args(ref, sec, 1500.0), cwd=run, check=True, capture_output=True, timeout=300)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert _recorded_max_velocity(run / "p1") == (1500.0, 1500.0)
    assert json.loads((run / "status_p1.json").read_text())["status"] == "succeeded"
