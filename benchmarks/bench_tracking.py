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

CASES = ("clean", "noisy", "steep", "strain", "strain-uniform", "real", "yahtse")
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
ROOT = Path(__file__).resolve().parents[1]
#: The real Sentinel-2 pair (stable ground, 10 days), next to the project; see
#: ../shared/data/README.md. Tracked in time order: reference 2016-05-29, secondary 2016-06-08.
REAL_PAIR_DIR = ROOT.parent / "shared" / "data" / "real-s2-t33uuu"
REAL_FILES = ("tgt_S2A_20160529T153631_T33UUU_sub.jp2", "ref_S2A_20160608T153121_T33UUU_sub.jp2")
#: Search range of the real pair (px): issue 20's setting (its misregistration is about 2 px).
REAL_SEARCH_PX = 25.0
#: AROSICS' tie points of the real pair (made by benchmarks/make_arosics_tie_points.py).
REAL_TIE_POINTS = ROOT / "tests" / "data" / "arosics-tie-points-t33uuu.csv"
#: The real Landsat-8 pair of Yahtse Glacier (15 m, 16 days) and two tools' maps of it; see
#: ../shared/data/real-l8-yahtse/README.md.
YAHTSE_DIR = ROOT.parent / "shared" / "data" / "real-l8-yahtse"
YAHTSE_FILES = ("LC80630182016200LGN00_B8_yahtse.TIF", "LC80630182016216LGN00_B8_yahtse.TIF")
YAHTSE_AUTORIFT = YAHTSE_DIR / "reference" / "autorift-2.1.1_vx_vy_m_per_yr.tif"
YAHTSE_CARST = YAHTSE_DIR / "reference" / "carst_vx_vy_m_per_yr.tif"
#: Issue 20's command for Yahtse: a 120 m grid, a 16-day baseline, 7300 m/yr at most.
YAHTSE_OPTIONS = ("--dt-days", "16", "--grid-spacing-px", "8", "--max-velocity-m-per-yr", "7300")
#: The lower trunk (left, bottom, right, top; m, EPSG:32607), where the ice moves 4,000-4,700 m/yr.
YAHTSE_BOX = (479000.0, 6669000.0, 481500.0, 6671000.0)
#: autoRIFT runs live with the settings of the product shipped with the pair (chips 24-96 px,
#: high-pass width 5 px): with 32 px chips its 32-128 px nested search finds nothing there.
YAHTSE_ENGINE_OPTIONS = {"ncc": (), "autorift": ("--chip-px", "24", "--filter-width-px", "5")}
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


def read_real_pair(directory: Path = REAL_PAIR_DIR):
    """The real pair's reference and secondary, both cropped to their common extent, and the
    crop's affine transform.

    The two scenes lie on aligned 10 m grids with different origins, so the overlap is a
    whole number of pixels in both.
    """
    import rasterio
    from rasterio.windows import from_bounds

    with rasterio.open(directory / REAL_FILES[0]) as ref, rasterio.open(directory / REAL_FILES[1]) as sec:
        left, right = max(ref.bounds.left, sec.bounds.left), min(ref.bounds.right, sec.bounds.right)
        bottom, top = max(ref.bounds.bottom, sec.bounds.bottom), min(ref.bounds.top, sec.bounds.top)
        windows = [
            from_bounds(left, bottom, right, top, src.transform).round_offsets().round_lengths() for src in (ref, sec)
        ]
        images = [src.read(1, window=w) for src, w in zip((ref, sec), windows, strict=True)]
        transform = ref.window_transform(windows[0])
    if images[0].shape != images[1].shape:
        raise ValueError(f"the overlaps differ in shape: {images[0].shape} vs {images[1].shape}")
    return images[0], images[1], transform


def worker_real(args: argparse.Namespace) -> dict:
    """Track the real pair with one engine: scatter about a smooth fit, and agreement with
    AROSICS' tie points at the nearest grid point."""
    from glacier_velocity.tracking import TrackingParams, track_offsets
    from glacier_velocity.tracking.precision import read_tie_points, stable_scatter, tie_point_agreement

    params = TrackingParams(grid_spacing_px=args.grid_spacing, chip_px=args.chip, search_px=REAL_SEARCH_PX)
    importlib.import_module(ENGINE_MODULES[args.engine])
    if args.engine == "autorift" and importlib.util.find_spec("autoRIFT") is not None:
        importlib.import_module("autoRIFT")
    reference, secondary, transform = read_real_pair()
    gc.collect()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    field = track_offsets(reference, secondary, params, engine=args.engine, progress=False)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    scatter = stable_scatter(field)
    ties = tie_point_agreement(field, transform, read_tie_points(REAL_TIE_POINTS))
    return {
        "grid_points": int(field.dx.size),
        "time_s": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3),
        "valid_pct": round(100.0 * scatter.valid_fraction, 2),
        "real_nmad_px": round(scatter.nmad_px, 4),
        "real_p90_px": round(scatter.p90_px, 4),
        "tie_rms_px": round(ties.rms_px, 4),
        "tie_median_px": round(ties.median_px, 4),
        "tie_p90_px": round(ties.p90_px, 4),
        "tie_covered_pct": round(100.0 * ties.covered, 2),
        "tie_points": ties.points,
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
    """The real pair's figures: agreement with AROSICS' tie points, scatter about a smooth fit
    and the valid fraction."""
    lines = [
        "| engine | grid points | time (s) | CPU (s) | vs AROSICS: RMS / median / p90 (px) | tie points covered % "
        "| residual NMAD (px) | residual p90 (px) | valid % |",
        "|" + "---|" * 9,
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['engine']} | - | - | - | - | - | - | - | {r['error']} |")
            continue
        lines.append(
            f"| {r['engine']} | {r['grid_points']:,} | {r['time_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['tie_rms_px']:.3f} / {r['tie_median_px']:.3f} / {r['tie_p90_px']:.3f} | {r['tie_covered_pct']:.1f} "
            f"| {r['real_nmad_px']:.4f} | {r['real_p90_px']:.4f} | {r['valid_pct']:.1f} |"
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


def _timed_process(cmd: list[str]) -> dict:
    """Run ``cmd`` to its end: wall time, CPU time (user + system) and peak memory of the
    finished child from the operating system's accounting (``os.wait4``, like ``/usr/bin/time -v``),
    or the error."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
    if returncode != 0:
        return {"error": f"exit {returncode}: {(err or ['no output'])[-1]}"}
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_gb": round(usage.ru_maxrss * 1024 / 1e9, 3),
    }


def _track_command(reference: Path, secondary: Path, out: Path, engine: str, *options: str) -> list[str]:
    """``python -m glacier_velocity track`` with the given options, as a user would type it."""
    return [sys.executable, "-m", "glacier_velocity", "track", str(reference), str(secondary), "--out", str(out)] + [
        *options,
        "--engine",
        engine,
    ]


def whole_process_runs(args: argparse.Namespace, cache: Path, size: int) -> list[dict]:
    """Time `python -m glacier_velocity track` on the clean pair as whole processes.

    The engines alternate (ncc, autorift, ncc, ...) so that a change of the machine's load
    affects both alike. The search range is ``--search`` px: the 30-day baseline with the
    matching ``--max-velocity-m-per-yr``.
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
    options = ("--dt-days", str(days), "--max-velocity-m-per-yr", str(max_velocity))
    options += ("--grid-spacing-px", str(args.grid_spacing), "--chip-px", str(args.chip))
    out = []
    for i in range(args.repeat):
        for engine in args.engines:
            print(f"{engine} whole process {size} px run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            cmd = _track_command(tifs[0], tifs[1], cache / f"whole_{engine}_{size}.tif", engine, *options)
            out.append(
                {"engine": engine, "case": "whole process", "size": size, "repeat": i + 1, **_timed_process(cmd)}
            )
    return out


def yahtse_figures(path: Path) -> dict:
    """Issue 20's figures of a Yahtse velocity map (a GeoTIFF with bands vx, vy) against CARST's."""
    import rasterio

    from glacier_velocity.tracking.precision import compare_with_reference

    with rasterio.open(path) as product, rasterio.open(YAHTSE_CARST) as carst:
        found = compare_with_reference(
            product.read(1),
            product.read(2),
            product.transform,
            carst.read(1),
            carst.read(2),
            carst.transform,
            box=YAHTSE_BOX,
        )
    return {
        "box_points": found.box_points,
        "fast_pct": round(100.0 * found.fast_share, 1),
        "fast_median_m_per_yr": None if math.isnan(found.fast_median_m_per_yr) else round(found.fast_median_m_per_yr),
        "slow_points": found.slow_points,
        "nmad_vx_m_per_yr": round(found.nmad_vx_m_per_yr, 1),
        "nmad_vy_m_per_yr": round(found.nmad_vy_m_per_yr, 1),
        "p90_speed_slow_m_per_yr": round(found.p90_speed_slow_m_per_yr),
        "valid_carst_pct": round(100.0 * found.valid_share, 1),
    }


def yahtse_runs(args: argparse.Namespace, cache: Path) -> list[dict]:
    """Issue 20's command on Yahtse Glacier as whole processes, engines alternating; and the
    autoRIFT 2.1.1 product that comes with the pair, scored the same way."""
    out = [{"engine": "autorift (shipped product)", "case": "yahtse", "repeat": 1, **yahtse_figures(YAHTSE_AUTORIFT)}]
    pair = [YAHTSE_DIR / name for name in YAHTSE_FILES]
    for i in range(args.repeat):
        for engine in args.engines:
            print(f"{engine} Yahtse run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            product = cache / f"yahtse_{engine}.tif"
            row = {"engine": engine, "case": "yahtse", "repeat": i + 1}
            options = YAHTSE_OPTIONS + YAHTSE_ENGINE_OPTIONS[engine]
            row.update(_timed_process(_track_command(pair[0], pair[1], product, engine, *options)))
            if "error" not in row:
                row.update(yahtse_figures(product))
            out.append(row)
    return out


def yahtse_table(results: list[dict]) -> str:
    """Issue 20's figures on Yahtse, one row per run."""
    lines = [
        "| engine | run | wall (s) | CPU (s) | peak memory (GB) | lower trunk: points > 3,000 m/yr (%) | their median "
        "(m/yr) | CARST-slow ground: NMAD vx / vy (m/yr) | p90 speed there (m/yr) | valid over CARST's area (%) |",
        "|" + "---|" * 10,
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['repeat']} | - | - | - | - | - | - | - | {r['error']} |")
            continue
        timing = f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_gb']:.2f}" if "wall_s" in r else "- | - | -"
        median = "-" if r["fast_median_m_per_yr"] is None else f"{r['fast_median_m_per_yr']:,}"
        lines.append(
            f"| {r['engine']} | {r['repeat']} | {timing} | {r['fast_pct']:.1f} | {median} "
            f"| {r['nmad_vx_m_per_yr']:.1f} / {r['nmad_vy_m_per_yr']:.1f} | {r['p90_speed_slow_m_per_yr']} "
            f"| {r['valid_carst_pct']:.1f} |"
        )
    return "\n".join(lines)


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
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=list(DEFAULT_SIZES),
        help="square pair sizes (px); none: only real pairs",
    )
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
    if "yahtse" in args.cases:
        if not all((YAHTSE_DIR / name).is_file() for name in YAHTSE_FILES):
            print(f"Yahtse pair not found in {YAHTSE_DIR}; skipping it", file=sys.stderr)
        else:
            results += yahtse_runs(args, cache)
    for size in args.sizes:
        for case in (c for c in args.cases if c not in ("real", "yahtse")):
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
    print(markdown_table([r for r in results if r["case"] not in ("real", "yahtse", "whole process")]))
    if any(r["case"] == "real" for r in results):
        print()
        print(real_table([r for r in results if r["case"] == "real"]))
    if any(r["case"] == "yahtse" for r in results):
        print()
        print(yahtse_table([r for r in results if r["case"] == "yahtse"]))
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
