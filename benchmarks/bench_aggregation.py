"""Aggregation of many pair products on a whole-tile grid: peak memory and time against their number.

Issue 23, finding 12: on a whole Sentinel-2 tile at 120 m (915 x 915 cells) the aggregation
step's memory grew by about 53 MB per product (all pairs stacked at once), so a few summers of
one tile (270 pairs) needed about 14 GB. This measures the step as the Workflow runs it
(``workflow.aggregate.aggregate_run``: summary COGs, figures, datacube, catalog) on N synthetic
velocity COGs, each N in a fresh process: its peak resident memory (``ru_maxrss``), CPU and wall
time, and, for the summary alone (``aggregate_products``, which writes the datacube as it goes),
the same.

The products: 915 x 915 grids of 120 m in UTM 43N, a smooth glacier-like speed field (up to
400 m/yr, slower in some years), 1-sigma errors of 15-45 m/yr, 20-40 % of the cells without a
match (clouds, shadow), 60 pairs a year over 5 years, each with its stable-ground record. They
are written once into ``--work`` (about 19 MB each) and reused by later runs.

Run from a checkout with the project's virtualenv first on PATH::

    PATH=$PWD/.venv/bin:$PATH python benchmarks/bench_aggregation.py --counts 25 50 100 200 300 \\
        --json benchmarks/results-aggregation-DATE.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: One measurement in a fresh interpreter: the step (or the summary alone) on the first N products.
WORKER = r"""
import json, sys, time
from pathlib import Path
job = json.loads(sys.argv[1])
cogs = job["cogs"]
start = time.perf_counter()
if job["what"] == "step":
    from glacier_velocity.workflow.aggregate import aggregate_run
    result = aggregate_run(cogs, job["out"])
    line = result.message
else:
    from glacier_velocity.aggregation.summary import aggregate_products
    summary = aggregate_products(cogs, datacube=Path(job["out"]) / "cube.nc")
    line = summary.headline()
print(json.dumps({"seconds_in_call": time.perf_counter() - start, "line": line}))
"""


def make_products(work: Path, count: int, size: int, seed: int = 3) -> list[Path]:
    """``count`` synthetic velocity COGs in ``work`` (made once; existing files are reused)."""
    import numpy as np
    from affine import Affine

    from glacier_velocity.domain.velocity import VelocityProduct
    from glacier_velocity.io.cog import write_velocity_cog

    work.mkdir(parents=True, exist_ok=True)
    transform = Affine(120.0, 0.0, 399_960.0, 0.0, -120.0, 4_100_040.0)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    # A glacier: fast along a band across the tile, slow at its edges, zero outside.
    across = np.abs(rows - size * 0.5 - 0.15 * size * np.sin(cols / size * 3.0)) / (0.12 * size)
    glacier = np.clip(1.0 - across**2, 0.0, None) * (0.4 + 0.6 * cols / size)
    start = datetime(2019, 5, 1, 5, 30, tzinfo=UTC)
    paths = []
    for k in range(count):
        path = work / f"pair_{k:04d}.tif"
        paths.append(path)
        if path.exists():
            continue
        rng = np.random.default_rng(seed + k)
        year, within = divmod(k, 60)
        reference = start + timedelta(days=365 * year + 2.5 * within)
        dt_days = float(5 + 5 * (k % 4))
        error = float(15 + 10 * (k % 4))
        speed = (300.0 + 100.0 * (year % 2)) * glacier
        heading = 0.3 * np.sin(rows / size * 4.0)
        vx = speed * np.cos(heading) + rng.normal(0, error, (size, size))
        vy = speed * np.sin(heading) + rng.normal(0, error, (size, size))
        # Clouds and shadows: a few large blobs without a match.
        holes = np.zeros((size, size), dtype=bool)
        for _ in range(6):
            r, c, radius = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 20, size // 6))]
            holes |= (rows - r) ** 2 + (cols - c) ** 2 < radius**2
        vx[holes], vy[holes] = np.nan, np.nan
        vx, vy = np.round(vx, 1).astype(np.float32), np.round(vy, 1).astype(np.float32)
        v = np.hypot(vx, vy).astype(np.float32)
        err = np.where(np.isfinite(v), np.float32(error), np.nan).astype(np.float32)
        product = VelocityProduct(
            vx=vx,
            vy=vy,
            v=v,
            dx=(vx / 365.25 * dt_days / 10).astype(np.float32),
            dy=(-vy / 365.25 * dt_days / 10).astype(np.float32),
            peak=np.where(np.isfinite(v), np.float32(0.6), np.nan).astype(np.float32),
            snr=np.where(np.isfinite(v), np.float32(4.0), np.nan).astype(np.float32),
            transform=transform,
            crs="EPSG:32643",
            dt_days=dt_days,
            reference_id=f"S2A_43SEA_{reference:%Y%m%d}_{k}_L2A",
            secondary_id=f"S2B_43SEA_{reference + timedelta(days=dt_days):%Y%m%d}_{k}_L2A",
            reference_datetime=reference,
            secondary_datetime=reference + timedelta(days=dt_days),
            engine="ncc",
            engine_params={"max_velocity_m_per_yr": 1000.0},
            vx_error=err,
            vy_error=err,
            v_error=err,
            correction={
                "stable_shift_method": "outlines",
                "stable_shift_applied": True,
                "stable_shift_vx_m_per_yr": 3.0,
                "stable_shift_vy_m_per_yr": -2.0,
                "stable_count": 5000,
            },
        )
        write_velocity_cog(product, path)
    return paths


def measure(what: str, cogs: list[Path], out: Path, timeout: float) -> dict[str, Any]:
    """One run in a fresh process: peak RSS (MB), CPU and wall time (s)."""
    job = json.dumps({"what": what, "cogs": [str(c) for c in cogs], "out": str(out)})
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", WORKER, job], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stdout = process.stdout.read().decode() if process.stdout else ""
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{what} with {len(cogs)} products failed: {stderr[-2000:]}")
    inner = json.loads(stdout.strip().splitlines()[-1])
    return {
        "what": what,
        "products": len(cogs),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "call_s": inner["seconds_in_call"],
        "line": inner["line"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[25, 50, 100, 200, 300])
    parser.add_argument("--size", type=int, default=915, help="grid side, cells (default: a tile at 120 m)")
    parser.add_argument("--what", nargs="+", choices=["step", "summary"], default=["step", "summary"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gv-bench-aggregation")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--json", type=Path, help="write the results (and machine info) here")
    args = parser.parse_args(argv)

    print(f"making {max(args.counts)} products of {args.size} x {args.size} in {args.work}", file=sys.stderr)
    cogs = make_products(args.work / f"products-{args.size}", max(args.counts), args.size)
    rows = []
    print("what     products  peak RSS (MB)  CPU (s)  wall (s)  MB/product  CPU s/product")
    for count in args.counts:
        for what in args.what:
            with tempfile.TemporaryDirectory(dir=args.work) as out:
                row = measure(what, cogs[:count], Path(out), args.timeout)
            row["load_average"] = os.getloadavg()
            rows.append(row)
            print(
                f"{what:8} {count:8d}  {row['peak_rss_mb']:13.0f}  {row['cpu_s']:7.1f}  {row['wall_s']:8.1f}  "
                f"{row['peak_rss_mb'] / count:10.1f}  {row['cpu_s'] / count:13.2f}",
                flush=True,
            )
    if args.json:
        info = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "size": args.size,
        }
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
