"""Workflow throughput: pairs per minute of the whole CWL Workflow under each runner.

A synthetic stack (the demo's scene generator at ``--size`` px, default 1000) of 12 scenes -
one a month from May to October in 2022 and 2023, the Yazghil season - gives 18 pairs with
the demo's pairing (2 pairs per image, baselines up to 70 days). The local STAC API serves
it (``rustac serve``, as in the demo) and the same job runs under each runner:

- ``cwltool``: one step at a time (``make run`` before issue 12);
- ``cwltool-parallel``: ``cwltool --parallel`` (steps run as the tools' ResourceRequirement fit
  the machine's cores and memory);
- ``toil``: ``toil-cwl-runner --batchSystem single_machine --maxCores <cores>``;
- ``toil-slurm``: ``toil-cwl-runner --batchSystem slurm`` (needs a cluster: ``make slurm-up``).

Each run is timed from the runner's start to its exit (discovery, every pair, aggregation,
catalog). Every run must give the 18 expected pairs, all succeeded, and its median speed is
compared with the truth, so a fast wrong run cannot pass unnoticed. The load average before
and after each run is recorded: the benchmark machine may be shared.

The extrapolation to a study (``--study-glaciers`` x ``--study-summers``, default 3 x 10,
with this stack's 9 pairs per summer: 270 pairs) splits each run into a serial part (the
discovery and aggregation steps, from cwltool's timestamped log of the sequential run) and a
per-pair part that spreads over the cores; see benchmarks/README.md.

Run from the repository root with the project's virtualenv first on PATH, e.g.::

    PATH=$PWD/.venv/bin:$PATH python benchmarks/bench_workflow.py --json benchmarks/workflow.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from glacier_velocity.demo.run import DEMO_PARAMS, median_speed_map
from glacier_velocity.demo.scenes import DemoScene, DemoStack, expected_pairs, generate_demo_data
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.demo.truth import compare_with_truth
from glacier_velocity.domain.aoi import AOI
from glacier_velocity.products.runcatalog import read_run_catalog
from glacier_velocity.products.runreport import read_run_report
from glacier_velocity.workflow.runner import WORKFLOW, WorkflowFailed, find_project_root, run_workflow, write_job

log = logging.getLogger("bench_workflow")


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 5, 52, 31, tzinfo=UTC)


#: One cloud-free scene a month, May to October, in each year the demo has a velocity field
#: for; within 2.5 months of 1 August (the demo field's anchor), as the demo's own scenes.
BENCH_SCENES: tuple[DemoScene, ...] = tuple(
    DemoScene(_utc(year, month, day), platform, cloud, "used")
    for year in (2022, 2023)
    for month, day, platform, cloud in (
        (5, 28, "S2A", 1.2),
        (6, 22, "S2B", 3.0),
        (7, 17, "S2A", 0.4),
        (8, 11, "S2B", 2.2),
        (9, 5, "S2A", 4.1),
        (10, 1, "S2B", 0.9),
    )
)
#: The Workflow's season for this stack (the demo job's other values stay).
BENCH_SEASON = {"start_month": 5, "end_month": 10}


@dataclass
class Measurement:
    """One runner's run on the benchmark stack (times in s, rates in pairs/min)."""

    runner: str
    cores: int
    wall_s: float
    pairs: int
    pairs_per_min: float
    serial_s: float | None
    load_before: float
    load_after: float
    truth: str
    error: str | None = None


def _serial_seconds(cwl_log: str) -> float | None:
    """Seconds spent in the steps that run once per Workflow (everything but ``node_correlate``),
    from cwltool's ``--timestamps`` log of a sequential run."""
    stamp = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\]"
    starts, ends = {}, {}
    for line in cwl_log.splitlines():
        match = re.search(stamp + r".*\[step (\w+)\] (start|completed)", line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        step, what = match.group(2), match.group(3)
        if step == "node_correlate":
            continue
        if what == "start":
            starts.setdefault(step, when)
        else:
            ends[step] = when
    if not starts or set(starts) != set(ends):
        return None
    return sum(ends[s] - starts[s] for s in starts)


def run_runner(
    runner: str, job: Path, work: Path, cores: int, expected: list[tuple[str, str]], truth: Path
) -> Measurement:
    """Run the Workflow once with ``runner`` and check it gave every expected pair."""
    runner, extra = {
        "cwltool": ("cwltool", ["--timestamps"]),
        "cwltool-parallel": ("cwltool", []),  # run_workflow adds --parallel
        "toil": ("toil", []),
        "toil-slurm": ("toil-slurm", []),
    }[runner]
    used_cores = 1 if runner == "cwltool" else cores
    outdir = work / runner
    if outdir.exists():
        shutil.rmtree(outdir)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        outputs, cwl_log = run_workflow(
            find_project_root() / WORKFLOW,
            job,
            outdir / "results",
            runner=runner,
            parallel=runner != "cwltool",
            work_dir=outdir,
            max_cores=cores,
            extra_args=extra,
            # The whole log, kept beside the results: a failed run's reason is rarely in its tail.
            log_file=outdir / "runner.log",
        )
    except WorkflowFailed as failure:
        return Measurement(
            runner,
            used_cores,
            time.monotonic() - started,
            0,
            0.0,
            None,
            load_before,
            os.getloadavg()[0],
            "",
            str(failure)[-500:],
        )
    wall = time.monotonic() - started
    load_after = os.getloadavg()[0]
    run = read_run_catalog(outputs["catalog"]["path"])
    if run.run_report is None:
        raise SystemExit(f"{runner}: the run catalog {run.catalog} has no run report")
    report = read_run_report(run.run_report)
    done = sorted((p.reference_id, p.secondary_id) for p in report.pairs if p.status == "succeeded")
    error = None if done == sorted(expected) else f"pairs {report.summary_line()}, expected {len(expected)} succeeded"
    comparison = compare_with_truth(median_speed_map(outputs), truth)
    return Measurement(
        runner=runner,
        cores=used_cores,
        wall_s=wall,
        pairs=len(done),
        pairs_per_min=60.0 * len(done) / wall,
        serial_s=_serial_seconds(cwl_log) if runner == "cwltool" else None,
        load_before=load_before,
        load_after=load_after,
        truth=f"{comparison.recovered_m_per_yr:.1f} vs {comparison.true_m_per_yr:.1f} m/yr ({100 * comparison.relative_error:+.1f} %)",
        error=error,
    )


def study_hours(m: Measurement, serial_s: float, study_pairs: int, runs: int, cores: int) -> float:
    """Hours for ``study_pairs`` pairs in ``runs`` Workflow runs (one per glacier) on ``cores``.

    The per-pair cost is what the run spent beyond the serial steps, times the cores it had
    (core-seconds per pair); the serial steps (discovery, aggregation) run once per glacier.
    Sequential cwltool uses one core whatever the machine has.
    """
    per_pair_core_s = max(m.wall_s - serial_s, 0.0) * m.cores / m.pairs
    usable = 1 if m.runner == "cwltool" else cores
    return (runs * serial_s + study_pairs * per_pair_core_s / usable) / 3600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--runners",
        nargs="+",
        choices=("cwltool", "cwltool-parallel", "toil", "toil-slurm"),
        default=["cwltool", "cwltool-parallel", "toil", "toil-slurm"],
    )
    parser.add_argument("--size", type=int, default=1000, help="scene size (px, square; default 1000)")
    parser.add_argument("--cores", type=int, default=2, help="cores the parallel runners may use (default 2)")
    parser.add_argument("--work", type=Path, default=Path("build/bench-workflow"), help="working directory")
    parser.add_argument("--study-glaciers", type=int, default=3)
    parser.add_argument("--study-summers", type=int, default=10)
    parser.add_argument("--study-cores", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--json", type=Path, help="write the measurements and machine info here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if "cwltool" not in args.runners:
        parser.error("the sequential cwltool run is needed: it measures the serial steps for the extrapolation")

    work = args.work.resolve()
    stack = DemoStack(scenes=BENCH_SCENES, shape=(args.size, args.size))
    log.info("generating %d scenes of %d px", len(stack.scenes), args.size)
    data = generate_demo_data(work / "data", stack)
    expected = expected_pairs(stack)
    years = sorted({s.datetime.year for s in stack.scenes})
    measurements: list[Measurement] = []
    with serve_stac([data.collection, data.items]) as stac_url:
        job = write_job(
            find_project_root() / DEMO_PARAMS,
            work / "job.yml",
            # The demo's glacier outlines are a bare file name in params/demo.yml: name them
            # where the data are, as the demo runner does, or every correlation step misses them.
            data_location=data.root,
            stac_url=stac_url,
            aoi=AOI.from_bbox(data.bbox).text(),
            start_year=years[0],
            end_year=years[-1],
            **BENCH_SEASON,
        )
        for runner in args.runners:
            log.info("%s ...", runner)
            m = run_runner(runner, job, work, args.cores, expected, data.truth)
            log.info(
                "%s: %.0f s, %d pairs, %.2f pairs/min, load %.2f -> %.2f %s",
                runner,
                m.wall_s,
                m.pairs,
                m.pairs_per_min,
                m.load_before,
                m.load_after,
                m.error or "",
            )
            measurements.append(m)

    serial_s = next(m.serial_s for m in measurements if m.runner == "cwltool")
    if serial_s is None:
        log.warning("no step times in cwltool's log: extrapolating with no serial part")
        serial_s = 0.0
    pairs_per_summer = len(expected) / len(years)
    study_pairs = round(args.study_glaciers * args.study_summers * pairs_per_summer)
    print(
        f"stack: {len(stack.scenes)} scenes of {args.size} px, {len(expected)} pairs; {platform.node()} "
        f"{os.cpu_count()} CPUs; serial steps {serial_s:.0f} s per run\n"
    )
    print("| runner | cores | wall (s) | pairs | pairs/min | load avg before -> after | median speed vs truth |")
    print("|---|---|---|---|---|---|---|")
    for m in measurements:
        rate = f"{m.pairs_per_min:.2f}" if not m.error else f"failed: {m.error}"
        print(
            f"| {m.runner} | {m.cores} | {m.wall_s:.0f} | {m.pairs} | {rate} | {m.load_before:.2f} -> {m.load_after:.2f} | {m.truth} |"
        )
    print(
        f"\nstudy: {args.study_glaciers} glaciers x {args.study_summers} summers x {pairs_per_summer:g} pairs = {study_pairs} pairs, hours on"
    )
    print("| runner | " + " | ".join(f"{c} cores" for c in args.study_cores) + " |")
    print("|---|" + "---|" * len(args.study_cores))
    for m in measurements:
        if m.error or not m.pairs:
            continue
        hours = [study_hours(m, serial_s, study_pairs, args.study_glaciers, c) for c in args.study_cores]
        print(f"| {m.runner} | " + " | ".join(f"{h:.1f}" for h in hours) + " |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "host": platform.node(),
                    "cpus": os.cpu_count(),
                    "size_px": args.size,
                    "scenes": len(stack.scenes),
                    "pairs": len(expected),
                    "serial_s": serial_s,
                    "study_pairs": study_pairs,
                    "measurements": [asdict(m) for m in measurements],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if all(m.error is None for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
