#!/usr/bin/env python3
"""Benchmark the tracking engines on synthetic Sentinel-2-like pairs with known motion.

Every (engine, case, size, repeat) runs in a fresh Python process, so its peak memory is that
process's ``ru_maxrss`` and no run inherits caches or heap growth from another. Pairs are
generated once per (case, size, seed), in their own process, and cached as ``.npy`` files.

Run ``python benchmarks/bench_tracking.py --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASES = ("clean", "noisy", "steep", "strain", "strain-uniform", "real")
ENGINES = ("ncc", "autorift")
DEFAULT_SIZES = (2000, 5490, 10980)
ENGINE_MODULES = {"ncc": "glacier_velocity.tracking.ncc", "autorift": "glacier_velocity.tracking.autorift_adapter"}

#: Plug-flow displacement (px) where the glacier enters the image; it slows to 3 px where the
#: terminal zone starts: the 3-5 px glacier motion of the issue's reference.
TONGUE_MAX_PX = 5.0
#: Steep case: shear margins 10 % of the half-width (22 px on a 1000 px pair), gradients up to
#: ~0.34 px/px, so the motion jumps within two grid cells.
STEEP_MARGIN_FRAC = 0.1
#: Stable-ground distance bins (px from the nearest moving-ice pixel) of the margin metric.
NEAR_ICE_PX = 24.0
FAR_FROM_ICE_PX = 48.0
#: The real Sentinel-2 pair (stable ground, 10 days), relative to the project root; see
#: /work/shared/data/README.md. Search range: its misregistration is about 2 px.
REAL_PAIR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-s2-t33uuu"
REAL_FILES = ("ref_S2A_20160608T153121_T33UUU_sub.jp2", "tgt_S2A_20160529T153631_T33UUU_sub.jp2")
REAL_SEARCH_PX = 5.0
#: Sensor noise (DN, standard deviation) of the clean and the noisy case.
CLEAN_NOISE_DN = 20.0
NOISY_NOISE_DN = 100.0
#: Strain case: displacement gradient (px/px) and the largest displacement (px).
STRAIN = 0.04
STRAIN_AMPLITUDE_PX = 20.0


def _strain_field_class():
    """The strain case's flow field, built on :class:`glacier_velocity.demo.synthetic.FlowField`."""
    from glacier_velocity.demo.synthetic import FlowField

    @dataclass(frozen=True)
    class ZigzagStrain(FlowField):
        """Alternating extension and compression of ``strain`` along columns.

        ``dx`` is a triangle wave of the column: it rises with slope ``strain`` (px/px) from 0
        at ``center_col`` to ``amplitude_px``, falls with slope ``-strain`` to
        ``-amplitude_px``, and so on (kinks every ``2 * amplitude_px / strain`` px, 1000 px
        for 20 px at 4 %). Unlike a uniform strain its displacement stays within any search
        range above ``amplitude_px`` whatever the image size. ``dy`` is 0. Everything moves.
        """

        strain: float = STRAIN
        amplitude_px: float = STRAIN_AMPLITUDE_PX
        center_col: float = 0.0

        def displacement(self, rows, cols):
            r, c = np.broadcast_arrays(np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64))
            quarter = self.amplitude_px / abs(self.strain)
            phase = np.mod((c - self.center_col) + quarter, 4.0 * quarter)  # 0 .. 4 quarters
            # phase q is center_col (dx = 0), phase 2q the crest (dx = amplitude)
            dx = self.amplitude_px * (1.0 - np.abs(phase - 2.0 * quarter) / quarter) * math.copysign(1.0, self.strain)
            return dx, np.zeros_like(r)

        def is_moving(self, rows, cols):
            r, c = np.broadcast_arrays(np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64))
            return np.ones(r.shape, dtype=bool)

        def scaled(self, factor: float):
            return dataclasses.replace(self, amplitude_px=self.amplitude_px * factor, strain=self.strain * factor)

    return ZigzagStrain


def make_case(case: str, size: int, seed: int):
    """``(field, make_pair kwargs)`` of a benchmark case on a ``size`` x ``size`` px pair."""
    from glacier_velocity.demo.synthetic import GlacierTongue

    shape = (size, size)
    if case == "clean":
        return GlacierTongue(shape, max_px=TONGUE_MAX_PX), {"noise_dn": CLEAN_NOISE_DN}
    if case == "noisy":
        return GlacierTongue(shape, max_px=TONGUE_MAX_PX), {"noise_dn": NOISY_NOISE_DN}
    if case == "steep":
        return GlacierTongue(shape, max_px=TONGUE_MAX_PX, margin_frac=STEEP_MARGIN_FRAC), {"noise_dn": CLEAN_NOISE_DN}
    if case == "strain":
        return _strain_field_class()(center_col=size / 2.0), {"noise_dn": CLEAN_NOISE_DN}
    if case == "strain-uniform":
        # Uniform 4 % extension about the centre: beyond +-search/strain px of it features
        # move out of the search range, so "measurable %" is the fair valid fraction here.
        from glacier_velocity.demo.synthetic import UniformStrain

        return UniformStrain(strain=STRAIN, center=(size / 2.0, size / 2.0)), {"noise_dn": CLEAN_NOISE_DN}
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def _generator_digest() -> str:
    """Short hash of the pair generator and of this script, so a changed generator or case
    definition never reuses stale cached pairs."""
    spec = importlib.util.find_spec("glacier_velocity.demo.synthetic")
    digest = hashlib.sha1()
    for path in (spec.origin, __file__):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:10]


def _pair_paths(cache_dir: Path, case: str, size: int, seed: int) -> tuple[Path, Path]:
    stem = f"{case}_{size}_seed{seed}_{_generator_digest()}"
    return cache_dir / f"{stem}_reference.npy", cache_dir / f"{stem}_secondary.npy"


def worker_generate(args: argparse.Namespace) -> dict:
    """Generate one pair and write it to the cache (runs in its own process)."""
    from glacier_velocity.demo.synthetic import make_pair

    field, kwargs = make_case(args.case, args.size, args.seed)
    t0 = time.perf_counter()
    pair = make_pair((args.size, args.size), field, seed=args.seed, **kwargs)
    ref_path, sec_path = _pair_paths(Path(args.cache_dir), args.case, args.size, args.seed)
    # Write under a temporary name first so an interrupted run never leaves half a pair.
    for path, image in ((ref_path, pair.reference), (sec_path, pair.secondary)):
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, image)
        os.replace(tmp, path)
    return {"generate_s": round(time.perf_counter() - t0, 2)}


def read_real_pair(directory: Path = REAL_PAIR_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The real pair's reference and secondary, both cropped to their common extent.

    The two scenes lie on aligned 10 m grids with different origins, so the overlap is a
    whole number of pixels in both.
    """
    import rasterio
    from rasterio.windows import from_bounds

    with rasterio.open(directory / REAL_FILES[0]) as ref, rasterio.open(directory / REAL_FILES[1]) as sec:
        left, right = max(ref.bounds.left, sec.bounds.left), min(ref.bounds.right, sec.bounds.right)
        bottom, top = max(ref.bounds.bottom, sec.bounds.bottom), min(ref.bounds.top, sec.bounds.top)
        images = [
            src.read(1, window=from_bounds(left, bottom, right, top, src.transform).round_offsets().round_lengths())
            for src in (ref, sec)
        ]
    if images[0].shape != images[1].shape:
        raise ValueError(f"the overlaps differ in shape: {images[0].shape} vs {images[1].shape}")
    return images[0], images[1]


def worker_real(args: argparse.Namespace) -> dict:
    """Track the real pair with one engine; scatter about a smooth fit (no truth needed)."""
    from glacier_velocity.tracking import TrackingParams, track_offsets
    from glacier_velocity.tracking.precision import stable_scatter

    params = TrackingParams(grid_spacing_px=args.grid_spacing, chip_px=args.chip, search_px=REAL_SEARCH_PX)
    importlib.import_module(ENGINE_MODULES[args.engine])
    if args.engine == "autorift" and importlib.util.find_spec("autoRIFT") is not None:
        importlib.import_module("autoRIFT")
    reference, secondary = read_real_pair()
    gc.collect()
    t0 = time.perf_counter()
    field = track_offsets(reference, secondary, params, engine=args.engine, progress=False)
    seconds = time.perf_counter() - t0
    scatter = stable_scatter(field)
    return {
        "grid_points": int(field.dx.size),
        "time_s": round(seconds, 3),
        "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3),
        "valid_pct": round(100.0 * scatter.valid_fraction, 2),
        "real_nmad_px": round(scatter.nmad_px, 4),
        "real_p90_px": round(scatter.p90_px, 4),
    }


def _margin_rmse(truth, field, err2: np.ndarray, moving: np.ndarray, size: int) -> dict:
    """Stable-ground RMSE (px) by distance to the nearest moving-ice pixel."""
    from scipy import ndimage

    if not hasattr(truth, "ice_mask"):
        return {}
    # Distance on a 4x coarser raster is exact to a few px, and cheap at 10980 px.
    step = 4 if size > 2000 else 1
    coarse = np.arange(0, size, step, dtype=np.float64)
    ice = truth.is_moving(coarse[:, None], coarse[None, :])
    distance = ndimage.distance_transform_edt(~ice) * step
    gi = np.clip(np.rint(np.asarray(field.rows) / step).astype(int), 0, len(coarse) - 1)
    gj = np.clip(np.rint(np.asarray(field.cols) / step).astype(int), 0, len(coarse) - 1)
    d = distance[np.ix_(gi, gj)]
    ok = field.valid & ~moving

    def rmse(mask: np.ndarray) -> float | None:
        return float(np.sqrt(err2[mask].mean())) if mask.any() else None

    return {
        "rmse_stable_near_px": rmse(ok & (d <= NEAR_ICE_PX)),
        "rmse_stable_far_px": rmse(ok & (d > FAR_FROM_ICE_PX)),
    }


def worker_track(args: argparse.Namespace) -> dict:
    """Track one cached pair with one engine and score it against the truth."""
    from glacier_velocity.tracking import TrackingParams, track_offsets

    params = TrackingParams(grid_spacing_px=args.grid_spacing, chip_px=args.chip, search_px=args.search)
    # Import the engine before the clock starts: import (and autoRIFT's numba compilation at
    # import) is a one-off per process, not a cost of tracking a pair.
    importlib.import_module(ENGINE_MODULES[args.engine])
    if args.engine == "autorift" and importlib.util.find_spec("autoRIFT") is not None:
        importlib.import_module("autoRIFT")
    ref_path, sec_path = _pair_paths(Path(args.cache_dir), args.case, args.size, args.seed)
    reference = np.load(ref_path)
    secondary = np.load(sec_path)
    gc.collect()

    t0 = time.perf_counter()
    field = track_offsets(reference, secondary, params, engine=args.engine, progress=False)
    seconds = time.perf_counter() - t0
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    truth, _ = make_case(args.case, args.size, args.seed)
    rows = np.asarray(field.rows, dtype=np.float64)[:, None]
    cols = np.asarray(field.cols, dtype=np.float64)[None, :]
    true_dx, true_dy = truth.displacement(rows, cols)
    moving = np.broadcast_to(truth.is_moving(rows, cols), field.shape)
    valid = field.valid
    err2 = (field.dx - true_dx) ** 2 + (field.dy - true_dy) ** 2
    # Points an engine can measure at all: motion within the search range, and the chip,
    # moved by the true motion, still inside the secondary image.
    half = args.chip / 2.0 - 0.5
    measurable = (
        (np.abs(true_dx) <= args.search - 1)
        & (np.abs(true_dy) <= args.search - 1)
        & (cols - half + true_dx >= 0)
        & (cols + half + true_dx <= args.size - 1)
        & (rows - half + true_dy >= 0)
        & (rows + half + true_dy <= args.size - 1)
    )

    def rmse(mask: np.ndarray) -> float | None:
        return float(np.sqrt(err2[mask].mean())) if mask.any() else None

    engine_version = field.params.get("autorift_version") if args.engine == "autorift" else None
    return {
        "grid_points": int(field.dx.size),
        "time_s": round(seconds, 3),
        "peak_gb": round(peak_bytes / 1e9, 3),
        "valid_pct": round(100.0 * float(valid.mean()), 2),
        "valid_measurable_pct": round(100.0 * float(valid[measurable].mean()), 2) if measurable.any() else None,
        "valid_moving_pct": round(100.0 * float(valid[moving].mean()), 2) if moving.any() else None,
        "rmse_moving_px": rmse(valid & moving),
        "rmse_stable_px": rmse(valid & ~moving),
        **_margin_rmse(truth, field, err2, moving, args.size),
        "engine_version": engine_version,
    }


def _run_worker(kind: str, args: argparse.Namespace, **over) -> dict:
    """Run this script as a worker in a fresh process; return its JSON answer."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind]
    settings = {**vars(args), **over}
    for key in ("case", "size", "seed", "cache_dir", "engine", "grid_spacing", "chip", "search"):
        if settings.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(settings[key])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _fmt(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(results: list[dict]) -> str:
    """The results as a markdown table, one row per run."""
    head = (
        "| engine | case | size (px) | grid points | time (s) | peak memory (GB) | valid % "
        "| valid measurable % | RMSE moving ice (px) | RMSE stable (px) "
        f"| RMSE stable <= {NEAR_ICE_PX:g} px from ice | RMSE stable > {FAR_FROM_ICE_PX:g} px from ice |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['engine']} | {r['case']} | {r['size']} | - | - | - | - | - | - | - | - | {r['error']} |"
            )
            continue
        lines.append(
            f"| {r['engine']} | {r['case']} | {r['size']} | {r['grid_points']:,} | {r['time_s']:.2f} "
            f"| {r['peak_gb']:.2f} | {r['valid_pct']:.1f} | {_fmt(r.get('valid_measurable_pct'), 1)} "
            f"| {_fmt(r['rmse_moving_px'], 3)} "
            f"| {_fmt(r['rmse_stable_px'], 3)} | {_fmt(r.get('rmse_stable_near_px'), 3)} "
            f"| {_fmt(r.get('rmse_stable_far_px'), 4)} |"
        )
    return "\n".join(lines)


def real_table(results: list[dict]) -> str:
    """The real pair's figures: scatter about a smooth fit and the valid fraction."""
    lines = ["| engine | grid points | time (s) | residual NMAD (px) | residual p90 (px) | valid % |", "|" + "---|" * 6]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['engine']} | - | - | - | - | {r['error']} |")
            continue
        lines.append(
            f"| {r['engine']} | {r['grid_points']:,} | {r['time_s']:.2f} | {r['real_nmad_px']:.4f} "
            f"| {r['real_p90_px']:.4f} | {r['valid_pct']:.1f} |"
        )
    return "\n".join(lines)


def whole_process_table(results: list[dict]) -> str:
    """Whole-process runs of `glacier-velocity track`: wall time and peak memory per run."""
    lines = ["| engine | size (px) | run | wall (s) | user + sys (s) | peak memory (GB) |", "|" + "---|" * 6]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['size']} | {r['repeat']} | - | - | {r['error']} |")
            continue
        lines.append(
            f"| {r['engine']} | {r['size']} | {r['repeat']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['peak_gb']:.2f} |"
        )
    return "\n".join(lines)


def _write_geotiff(path: Path, image: np.ndarray) -> None:
    import rasterio
    from affine import Affine

    profile = {
        "driver": "GTiff",
        "height": image.shape[0],
        "width": image.shape[1],
        "count": 1,
        "dtype": image.dtype,
        "crs": "EPSG:32643",
        "nodata": 0,
        "tiled": True,
        "transform": Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4010000.0),
    }
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(image, 1)
    os.replace(tmp, path)


def whole_process_runs(args: argparse.Namespace, cache: Path, size: int) -> list[dict]:
    """Time `python -m glacier_velocity track` on the clean pair as whole processes.

    The engines alternate (ncc, autorift, ncc, ...) so that a change of the machine's load
    affects both alike. Wall time from start to exit, CPU time and peak memory from the
    operating system's accounting of the finished child (``os.wait4``), like
    ``/usr/bin/time -v``. The search range is ``--search`` px: the 30-day baseline with the
    matching ``--max-velocity``.
    """
    ref_npy, sec_npy = _pair_paths(cache, "clean", size, args.seed)
    if not ref_npy.exists():
        made = _run_worker("generate", args, case="clean", size=size)
        if "error" in made:
            return [
                {"engine": e, "case": "whole process", "size": size, "repeat": 1, "error": made["error"]}
                for e in args.engines
            ]
    tifs = [p.with_suffix(".tif") for p in (ref_npy, sec_npy)]
    for npy, tif in zip((ref_npy, sec_npy), tifs, strict=True):
        if not tif.exists():
            _write_geotiff(tif, np.load(npy))
    days = 30.0
    max_velocity = args.search * 10.0 * 365.25 / days  # m/yr at 10 m pixels
    out = []
    for i in range(args.repeat):
        for engine in args.engines:
            cmd = [
                sys.executable,
                "-m",
                "glacier_velocity",
                "track",
                str(tifs[0]),
                str(tifs[1]),
                "--days",
                str(days),
                "--out",
                str(cache / f"whole_{engine}_{size}.tif"),
                "--max-velocity",
                str(max_velocity),
                "--engine",
                engine,
                "--grid-spacing",
                str(args.grid_spacing),
                "--chip-size",
                str(args.chip),
            ]
            print(f"{engine} whole process {size} px run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
            row = {"engine": engine, "case": "whole process", "size": size, "repeat": i + 1}
            if proc.returncode != 0:
                row["error"] = f"exit {proc.returncode}: {(err or ['no output'])[-1]}"
            else:
                row.update(
                    wall_s=round(wall, 3),
                    cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
                    peak_gb=round(usage.ru_maxrss * 1024 / 1e9, 3),
                )
            out.append(row)
    return out


def machine_info() -> dict:
    """Where and when the benchmark ran (timings depend on it)."""
    info = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    try:
        from glacier_velocity import __version__

        info["glacier_velocity"] = __version__
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time and score tracking engines on synthetic pairs with known motion.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="square pair sizes (px)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="motion/noise cases")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="engines to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per (engine, case, size)")
    parser.add_argument("--grid-spacing", type=int, default=12, help="grid spacing (px)")
    parser.add_argument("--chip", type=int, default=32, help="chip size (px)")
    parser.add_argument("--search", type=float, default=25.0, help="search range (px)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the pairs")
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "glacier-velocity-bench"),
        help="where generated pairs are kept (a 10980 px pair takes 0.5 GB)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="limit per run (s)")
    parser.add_argument("--json", help="also write the results (and machine info) to this JSON file")
    parser.add_argument(
        "--whole-process",
        type=int,
        nargs="*",
        default=[],
        metavar="SIZE",
        help="also time `glacier-velocity track` as a whole process (read two GeoTIFFs, "
        "track, write the COG) on the clean pair of these sizes",
    )
    parser.add_argument("--worker", choices=("generate", "track", "real"), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        workers = {"generate": worker_generate, "track": worker_track, "real": worker_real}
        answer = workers[args.worker](args)
        print(json.dumps(answer))
        return 0

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    if "real" in args.cases:
        if not all((REAL_PAIR_DIR / name).is_file() for name in REAL_FILES):
            print(f"real pair not found in {REAL_PAIR_DIR}; skipping it", file=sys.stderr)
        else:
            for engine in args.engines:
                for i in range(args.repeat):
                    print(f"{engine} real pair run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                    run = _run_worker("real", args, engine=engine)
                    results.append({"engine": engine, "case": "real", "size": None, "repeat": i + 1, **run})
    for size in args.sizes:
        for case in (c for c in args.cases if c != "real"):
            ref_path, sec_path = _pair_paths(cache, case, size, args.seed)
            if not (ref_path.exists() and sec_path.exists()):
                print(f"generating {case} {size} px pair ...", file=sys.stderr, flush=True)
                made = _run_worker("generate", args, case=case, size=size)
                if "error" in made:
                    error = f"pair: {made['error']}"
                    results += [{"engine": e, "case": case, "size": size, "error": error} for e in args.engines]
                    continue
            for engine in args.engines:
                for i in range(args.repeat):
                    print(f"{engine} {case} {size} px run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                    run = _run_worker("track", args, case=case, size=size, engine=engine)
                    results.append({"engine": engine, "case": case, "size": size, "repeat": i + 1, **run})

    for size in args.whole_process:
        results += whole_process_runs(args, cache, size)
    print(markdown_table([r for r in results if r["case"] not in ("real", "whole process")]))
    if any(r["case"] == "real" for r in results):
        print()
        print(real_table([r for r in results if r["case"] == "real"]))
    if any(r["case"] == "whole process" for r in results):
        print()
        print(whole_process_table([r for r in results if r["case"] == "whole process"]))
    if args.json:
        settings = {
            "grid_spacing_px": args.grid_spacing,
            "chip_px": args.chip,
            "search_px": args.search,
            "seed": args.seed,
        }
        Path(args.json).write_text(
            json.dumps({"machine": machine_info(), "settings": settings, "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
