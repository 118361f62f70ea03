"""Per-pair overhead of the correlation step: ``cwl/correlate.cwl`` against the tracking alone.

On the first demo pair (480 x 480 px, 10 June - 5 July 2022, item files of
``glacier_velocity.demo.generate_demo_data``) each round runs, one after the other:

1. ``cwltool --no-container cwl/correlate.cwl pair.yml``: the whole step, timed from start to
   exit (what a Workflow pays per pair);
2. ``papermill`` with the arguments the step gives it (same notebook, same parameters): the
   step without cwltool;
3. ``glacier-velocity track REF.tif SEC.tif``: the issue's yardstick, a whole process;
4. a worker process that runs the notebook's own call, ``attempt_pair``, with the functions it
   composes wrapped in timers: reads, tracking, correction, writes of the COG, the quicklook
   and the item. Nothing else is changed in the call.

**Overhead** = step wall time - tracking time, where the tracking time is that of the
``track_offsets`` call in the worker (the strict reading), and, for comparison, the wall time
of the ``glacier-velocity track`` process (the issue's reading). The breakdown of the step:
cwltool (step - papermill), papermill and kernel start (papermill - its notebook's cells,
from the executed notebook's ``papermill`` metadata), each cell's duration, and the split of
the correlation cell from the worker. ``python -X importtime`` of the notebook's import cell
lists the heaviest top-level imports once. ``cwltool --validate`` of the tool is timed too: that
load (imports, schemas, JavaScript checks) is paid once by a Workflow run, not once per pair,
so step - load - tracking is the overhead of each further pair of a scatter.

``--root`` names the checkout whose CWL, notebook and ``src`` are run (default: this one), so
two checkouts can be measured on the same machine state. The machine may be shared: the load
average is printed with every round.

Run from a checkout with the project's virtualenv first on PATH::

    PATH=$PWD/.venv/bin:$PATH PYTHONPATH=$PWD/src python benchmarks/bench_pair_overhead.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: The worker: ``attempt_pair`` as the notebook calls it, the functions it composes timed.
WORKER = r"""
import dataclasses, json, sys, time
import glacier_velocity.workflow.correlate as correlate
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair

job = json.loads(sys.argv[1])
stages = {
    "read_window": "reads", "track_offsets": "tracking", "offsets_to_velocity": "velocity",
    "correct_product": "correction", "write_velocity_cog": "write COG",
    "write_quicklook": "write quicklook", "make_product_item": "write item",
    "save_product_item": "write item", "load_scene": "load items",
}
seconds = {}
def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[stages[name]] = seconds.get(stages[name], 0.0) + time.perf_counter() - start
    return wrapper
for name in stages:
    if hasattr(correlate, name):
        setattr(correlate, name, timed(name, getattr(correlate, name)))
# The notebook's own parameters cell and CorrelationParams, fed the job's values.
fields = {f.name for f in dataclasses.fields(CorrelationParams)}
settings = {k: v for k, v in job.items() if k in fields}
if "aoi" in job:
    from glacier_velocity.io.aoi import parse_aoi
    settings["aoi"] = parse_aoi(job["aoi"])
elif "bbox" in job:
    settings["bbox"] = tuple(job["bbox"])
params = CorrelationParams(**settings)
start = time.perf_counter()
attempt = attempt_pair(job["reference_href"], job["secondary_href"], job["out_dir"], params, pair_id=job["pair_id"])
seconds["attempt_pair"] = time.perf_counter() - start
assert attempt.succeeded, attempt.status.describe()
print(json.dumps(seconds))
"""


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def run_timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall time (s) of a command from start to exit; its stdout. A failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def notebook_times(path: Path) -> dict[str, float]:
    """Papermill's run time of an executed notebook and each code cell's duration (s)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    times = {"papermill notebook": float(notebook["metadata"]["papermill"]["duration"])}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        label = cell_label(source)
        times[label] = times.get(label, 0.0) + float(cell["metadata"]["papermill"]["duration"] or 0.0)
    return times


def cell_label(source: str) -> str:
    """A short name for a notebook cell, from what it does."""
    if "attempt_pair(" in source:
        return "cell: correlation"
    if ".glue(" in source:
        return "cell: scrapbook glue"
    if re.search(r"^(from|import) ", source, re.MULTILINE) and "=" not in source.split("import", 1)[0]:
        return "cell: imports"
    if "imshow" in source or "subplots" in source or "display(" in source:
        return "cell: figures"
    return "cell: parameters"


def import_cell(notebook: Path) -> str:
    """Source of the notebook's import cell (the first code cell whose lines are all imports)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and cell_label(source) == "cell: imports":
            return source
    raise SystemExit(f"{notebook}: no import cell")


def heaviest_imports(source: str, env: dict[str, str], top: int) -> list[tuple[str, float]]:
    """Top-level modules of ``python -X importtime -c source``, by cumulative time (s)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", source], env=env, capture_output=True, text=True, check=True
    )
    modules: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and not match.group(2):  # depth 0: imported by the cell itself
            name = match.group(3).split(".")[0]
            modules[name] = modules.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(modules.items(), key=lambda item: -item[1])[:top]


def spread(values: list[float]) -> str:
    """Median (min-max) of a list of seconds."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE.parent, help="checkout to run (default: this one)")
    parser.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gv-bench-pair-overhead"), help="work directory")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--label", default="", help="name of this measurement in the output")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    sys.path.insert(0, str(root / "src"))
    import yaml

    from glacier_velocity import demo  # the checkout's demo makes the data

    work = args.work.resolve()
    data = demo.generate_demo_data(work / "data")
    job_path = demo.write_pair_job(data, work / "pair.yml")
    job = {**yaml.safe_load(job_path.read_text(encoding="utf-8")), "out_dir": str(work / "worker-out")}
    scenes = work / "data" / "scenes"
    reference_tif = scenes / f"{Path(job['reference_href']).stem}_B08.tif"
    secondary_tif = scenes / f"{Path(job['secondary_href']).stem}_B08.tif"
    notebook = root / "notebooks" / "02-correlation.ipynb"
    bin_dir = Path(sys.executable).parent
    defaults = cwl_defaults(root / "cwl" / "correlate.cwl")
    engine = cwl_engine(root / "cwl" / "correlate.cwl")
    params = json.dumps(defaults | {k: v for k, v in job.items() if k != "out_dir"})

    rounds: list[dict[str, Any]] = []
    for index in range(args.runs):
        figures: dict[str, Any] = {"load before": load()}
        out = work / f"cwl-{index}"
        shutil.rmtree(out, ignore_errors=True)
        cwltool = [str(bin_dir / "cwltool"), "--quiet", "--no-container", "--preserve-environment", "PYTHONPATH"]
        figures["step (cwltool)"], _ = run_timed(
            [*cwltool, "--outdir", str(out), str(root / "cwl" / "correlate.cwl"), str(job_path)], env, work
        )
        # What cwltool pays before it runs anything (imports, schemas, validation, JS checks):
        # a Workflow pays it once, not per pair.
        figures["cwltool load (--validate)"], _ = run_timed(
            [*cwltool[:2], "--validate", str(root / "cwl" / "correlate.cwl")], env, work
        )
        pm_dir = work / f"papermill-{index}"
        shutil.rmtree(pm_dir, ignore_errors=True)
        pm_dir.mkdir()
        figures["papermill"], _ = run_timed(
            [
                str(bin_dir / "papermill"),
                str(notebook),
                "out.ipynb",
                "--kernel",
                "python3",
                "--no-progress-bar",
                *(["--engine", engine] if engine else []),
                "-y",
                params,
            ],
            env,
            pm_dir,
        )
        # The cells' durations from this run, so that papermill's own start is its wall time
        # minus these (the step's notebook has its own, under another moment's load).
        figures.update(notebook_times(pm_dir / "out.ipynb"))
        figures["glacier-velocity track"], _ = run_timed(
            [
                str(bin_dir / "glacier-velocity"),
                "track",
                str(reference_tif),
                str(secondary_tif),
                "--dt-days",
                "25",
                "--out",
                str(work / "track.tif"),
            ],
            env,
            work,
        )
        shutil.rmtree(job["out_dir"], ignore_errors=True)
        _, stdout = run_timed([sys.executable, "-c", WORKER, json.dumps(job)], env, work)
        figures.update({f"  {k}": v for k, v in json.loads(stdout.strip().splitlines()[-1]).items()})
        figures["load after"] = load()
        rounds.append(figures)
        print(
            f"round {index + 1}: step {figures['step (cwltool)']:.2f} s, tracking {figures['  tracking']:.2f} s, "
            f"load {figures['load before']:.2f} -> {figures['load after']:.2f}",
            file=sys.stderr,
        )

    derived = []
    for figures in rounds:
        cells = sum(v for k, v in figures.items() if k.startswith("cell: "))
        figures["cwltool itself (step - papermill)"] = figures["step (cwltool)"] - figures["papermill"]
        figures["papermill + kernel start, notebook save"] = figures["papermill"] - cells
        figures["overhead (step - tracking)"] = figures["step (cwltool)"] - figures["  tracking"]
        figures["overhead (step - track process)"] = figures["step (cwltool)"] - figures["glacier-velocity track"]
        figures["overhead in a Workflow (step - load - tracking)"] = (
            figures["overhead (step - tracking)"] - figures["cwltool load (--validate)"]
        )
        derived.append(figures)

    order = [
        "step (cwltool)",
        "overhead (step - tracking)",
        "overhead (step - track process)",
        "overhead in a Workflow (step - load - tracking)",
        "glacier-velocity track",
        "cwltool itself (step - papermill)",
        "cwltool load (--validate)",
        "papermill",
        "papermill + kernel start, notebook save",
        "cell: parameters",
        "cell: imports",
        "cell: correlation",
        "  load items",
        "  reads",
        "  tracking",
        "  velocity",
        "  correction",
        "  write COG",
        "  write quicklook",
        "  write item",
        "cell: figures",
        "cell: scrapbook glue",
        "load before",
        "load after",
    ]
    print(f"\n{args.label or root}: {args.runs} rounds, median (min-max), seconds\n")
    print("| part | s |\n|---|---|")
    for key in order:
        values = [r[key] for r in derived if key in r]
        if values:
            print(f"| {key.replace('  ', '- ')} | {spread(values)} |")
    imports = heaviest_imports(import_cell(notebook), env, top=8)
    print("\nheaviest imports of the notebook's import cell (python -X importtime, cumulative s):")
    print(", ".join(f"{name} {sec:.2f}" for name, sec in imports))
    if args.json:
        args.json.write_text(
            json.dumps({"root": str(root), "label": args.label, "rounds": derived, "imports": imports}, indent=1)
        )


def cwl_defaults(tool: Path) -> dict[str, Any]:
    """The defaults of a CWL tool's inputs, as it passes them to its notebook (not File ones)."""
    import yaml

    inputs = yaml.safe_load(tool.read_text(encoding="utf-8"))["inputs"]
    return {
        name: spec["default"]
        for name, spec in inputs.items()
        if "default" in spec and not isinstance(spec["default"], dict)
    }


def cwl_engine(tool: Path) -> str | None:
    """The papermill engine a CWL tool names (``--engine``), None for papermill's default."""
    import yaml

    arguments = yaml.safe_load(tool.read_text(encoding="utf-8")).get("arguments", [])
    return next((a["valueFrom"] for a in arguments if isinstance(a, dict) and a.get("prefix") == "--engine"), None)


if __name__ == "__main__":
    main()
