"""Run the offline demo: serve the demo stack with a local STAC API, push it through the CWL
Workflow with cwltool, and compare the result with the truth.

:func:`run_demo` serves the items with ``rustac serve`` on a free port, writes the job file,
runs ``cwltool --no-container`` on ``cwl/glacier-velocity.cwl``, stops the server, and compares
the recovered median speed with the truth (:func:`~glacier_velocity.demo.truth.compare_with_truth`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, InvalidParameter, WorkflowFailed
from ..products.runcatalog import RunCatalog, read_run_catalog
from ..products.runreport import RunReport, read_run_report
from ..stac.aoi import AOI
from .scenes import DEFAULT_DEMO_DIR, DEMO_OUTLINES_FILE, DEMO_TILE, DemoData, expected_pairs, generate_demo_data
from .truth import TruthComparison, compare_with_truth

log = logging.getLogger(__name__)


# --- Running the Workflow ----------------------------------------------------------------------

#: The Workflow file and the demo job template, relative to the project root.
WORKFLOW = Path("cwl/glacier-velocity.cwl")
DEMO_PARAMS = Path("params/demo.yml")


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``cwl/glacier-velocity.cwl``: ``start`` (default the working
    directory) or one of its parents, else the source checkout this module was installed from.

    Raises
    ------
    InputError
        No such directory (e.g. a wheel install without the repository).
    """
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    candidates += [Path(__file__).resolve().parents[3]]
    for candidate in candidates:
        if (candidate / WORKFLOW).is_file():
            return candidate
    raise InputError(
        f"cannot find {WORKFLOW} in {candidates[0]} or its parents; run from a clone of the glacier-velocity repository"
    )


def write_job(
    template: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    data_location: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path:
    """Copy a CWL job file (YAML), replacing some of its values.

    Parameters
    ----------
    template : path-like
        Job file to start from, e.g. ``params/demo.yml``.
    path : path-like
        Job file to write (its directory is created).
    data_location : path-like or str, optional
        Where the demo data are, as the Workflow's steps will see them: a directory or a
        base URL. A bare file name as ``glacier_outlines`` in the template (the demo's
        ``glacier_outlines.geojson``) is taken as a file there.
    **overrides
        Inputs to set, e.g. ``stac_url="http://127.0.0.1:40123"``.
    """
    import yaml

    job = yaml.safe_load(Path(template).read_text(encoding="utf-8")) or {}
    outlines = job.get("glacier_outlines")
    if data_location is not None and isinstance(outlines, str) and outlines == Path(outlines).name:
        base = os.fspath(data_location)
        job["glacier_outlines"] = (
            f"{base.rstrip('/')}/{outlines}" if "://" in base else str(Path(base).resolve() / outlines)
        )
    job.update(overrides)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def workflow_env() -> dict[str, str]:
    """Environment for cwltool: this interpreter's ``bin`` first on ``PATH``.

    cwltool hands each job only ``HOME``, ``TMPDIR`` and ``PATH``; with the virtualenv's
    ``bin`` first, ``papermill``, ``python`` and the ``python3`` kernel are this environment's.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir])
    return env


def write_pair_job(data: DemoData, path: str | os.PathLike[str], pair_index: int = 0, **overrides: Any) -> Path:
    """Job file for the correlation tool alone on one expected demo pair, from item files.

    Parameters
    ----------
    data : DemoData
        The generated demo stack.
    path : path-like
        Job file to write.
    pair_index : int
        Which of :func:`expected_pairs` (0 = the first).
    **overrides
        More inputs of ``cwl/correlate.cwl`` (e.g. ``grid_spacing_px=16``).
    """
    import yaml

    reference_id, secondary_id = expected_pairs()[pair_index]
    items = data.items.parent / "items"
    job = {
        "pair_id": f"{DEMO_TILE}_{reference_id.split('_')[2]}_{secondary_id.split('_')[2]}",
        "reference_href": str(items / f"{reference_id}.json"),
        "secondary_href": str(items / f"{secondary_id}.json"),
        "aoi": AOI.from_bbox(data.bbox).text(),
        "max_velocity_m_per_yr": 1000.0,
        "glacier_outlines": str((data.root / DEMO_OUTLINES_FILE).resolve()),
        **overrides,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


#: cwltool options of every containerized run: a missing image is an error, not a pull (images
#: are built locally with ``make image``, no registry is involved), and tools that declare
#: ``NetworkAccess`` share the host network, where the local STAC API and file server listen on
#: 127.0.0.1 (Docker's default bridge would not reach them); tools without it still get none.
CONTAINER_ARGS = ("--disable-pull", "--custom-net", "host")


#: Workflow engines of :func:`run_workflow`: ``cwltool``; ``toil``, ``toil-cwl-runner`` with
#: its single-machine batch system; ``toil-slurm``, ``toil-cwl-runner --batchSystem slurm``
#: (every step an ``sbatch`` job; the Slurm client commands must be on ``PATH``).
RUNNERS: tuple[str, ...] = ("cwltool", "toil", "toil-slurm")
_TOIL_BATCH_SYSTEMS = {"toil": "single_machine", "toil-slurm": "slurm"}
#: Toil's log and job store, relative to the work directory of a Toil run.
TOIL_LOG = Path("toil.log")
TOIL_JOBSTORE = Path("jobstore")


def _preserved_environment() -> list[str]:
    # cwltool (and Toil's CWL runner) hand a job only HOME, TMPDIR and PATH: a PYTHONPATH (a
    # source tree run without installing it) must be kept, or the steps would import another copy.
    return ["--preserve-environment", "PYTHONPATH"] if os.environ.get("PYTHONPATH") else []


def toil_command(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    runner: str,
    work_dir: str | os.PathLike[str],
    max_cores: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``toil-cwl-runner`` command line (no containers) of a Toil ``runner`` (see :data:`RUNNERS`).

    Toil's job store (``work_dir/jobstore``), the jobs' temporary files (``work_dir/work``)
    and its log (``work_dir/toil.log``) go to ``work_dir``; with Slurm it must be on a file
    system every compute node sees (on one node any directory is). ``max_cores`` bounds the
    single-machine batch system (default all of this machine's cores).
    """
    if runner not in _TOIL_BATCH_SYSTEMS:
        raise InvalidParameter("runner", f"must be one of {', '.join(RUNNERS)}, not {runner!r}")
    if max_cores is not None and max_cores < 1:
        raise InvalidParameter("max_cores", f"must be at least 1, not {max_cores}")
    work = Path(work_dir).resolve()
    executable = Path(sys.executable).parent / "toil-cwl-runner"
    command = [
        str(executable) if executable.exists() else "toil-cwl-runner",
        "--no-container",
        "--batchSystem",
        _TOIL_BATCH_SYSTEMS[runner],
    ]
    if runner == "toil":
        command += ["--maxCores", str(max_cores or os.cpu_count() or 1)]
    return command + [
        *_preserved_environment(),
        "--jobStore",
        f"file:{work / TOIL_JOBSTORE}",
        "--workDir",
        str(work / "work"),
        "--logFile",
        str(work / TOIL_LOG),
        "--outdir",
        str(outdir),
        *extra_args,
        str(process),
        str(job),
    ]


def cwltool_command(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    containers: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The cwltool command line for one run (a list: no shell is involved).

    ``containers`` runs every tool in its container (cwltool's docker mode with
    :data:`CONTAINER_ARGS`); otherwise ``--no-container`` runs them in this environment.
    ``process`` may name one process of a packed file (``package.cwl#id``).
    """
    cwltool = Path(sys.executable).parent / "cwltool"
    mode = list(CONTAINER_ARGS) if containers else ["--no-container", *_preserved_environment()]
    return [
        str(cwltool) if cwltool.exists() else "cwltool",
        *mode,
        "--outdir",
        str(outdir),
        *extra_args,
        str(process),
        str(job),
    ]


def run_cwltool(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    containers: bool = False,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
) -> tuple[dict[str, Any], str]:
    """Run a CWL process with cwltool; return its output object and log.

    Parameters
    ----------
    process : path-like
        CWL file (Workflow or CommandLineTool).
    job : path-like
        Job (input) file.
    outdir : path-like
        Where cwltool moves the outputs.
    extra_args : sequence of str
        More cwltool options (e.g. ``["--parallel"]``).
    containers : bool
        Every tool in its container (see :func:`cwltool_command`) instead of ``--no-container``.
    quiet : bool
        Capture cwltool's log instead of showing it; it is part of the error when the run fails.

    Returns
    -------
    outputs : dict
        The CWL output object (output id -> File/Directory objects or values).
    log : str
        cwltool's log (stderr) when ``quiet``, else ``""`` (it went to the terminal).

    Raises
    ------
    WorkflowFailed
        cwltool exited with an error.
    """
    command = cwltool_command(process, job, outdir, containers=containers, extra_args=extra_args)
    return _run_engine(command, "cwltool (containers)" if containers else "cwltool", f"on {process} with {job}", quiet)


def _run_engine(command: list[str], engine: str, what: str, quiet: bool) -> tuple[dict[str, Any], str]:
    """Run a workflow engine's command; its output object (stdout, JSON) and its log if ``quiet``."""
    log.info("running %s", " ".join(command))
    completed = subprocess.run(
        command, env=workflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None, text=True
    )
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or "").strip().splitlines()[-40:])
        raise WorkflowFailed(f"{engine} failed (exit {completed.returncode}) {what}" + (f":\n{tail}" if tail else ""))
    return json.loads(completed.stdout), completed.stderr or ""


def run_workflow(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    runner: str = "cwltool",
    work_dir: str | os.PathLike[str] | None = None,
    max_cores: int | None = None,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
) -> tuple[dict[str, Any], str]:
    """Run a CWL process without containers under ``runner`` (one of :data:`RUNNERS`).

    ``cwltool`` is :func:`run_cwltool`; the Toil runners need ``work_dir`` (see
    :func:`toil_command`; an old job store there is removed first, so that a new run never
    resumes a finished one). ``max_cores`` bounds Toil's single-machine batch system. Returns
    the output object and the engine's log (when ``quiet``); raises :class:`WorkflowFailed`.
    """
    if runner == "cwltool":
        return run_cwltool(process, job, outdir, extra_args=extra_args, quiet=quiet)
    if work_dir is None:
        raise InvalidParameter("work_dir", f"the {runner} runner needs a directory for Toil's job store and work files")
    command = toil_command(
        process, job, outdir, runner=runner, work_dir=work_dir, max_cores=max_cores, extra_args=extra_args
    )
    work = Path(work_dir).resolve()
    if (work / TOIL_JOBSTORE).exists():
        shutil.rmtree(work / TOIL_JOBSTORE)
    (work / "work").mkdir(parents=True, exist_ok=True)
    return _run_engine(command, runner, f"on {process} with {job} (log: {work / TOIL_LOG})", quiet)


@dataclass(frozen=True)
class DemoResult:
    """Outcome of :func:`run_demo`.

    Attributes
    ----------
    outdir : Path
        Directory holding the Workflow's outputs.
    outputs : dict
        The CWL output object.
    message : str
        The aggregation notebook's one-line summary.
    stats : dict
        Statistics glued by the aggregation notebook (pair count, median speed in m/yr, ...).
    comparison : TruthComparison or None
        Recovered against true median speed; None when no summary map was produced.
    truth : Path
        The demo's ``truth.json``.
    log : str
        cwltool's log when the run was quiet, else ``""``.
    report : RunReport or None
        The run report (every pair attempted, succeeded or failed with its reason).
    run : RunCatalog or None
        The files of the run, found through its catalog (the Workflow's only output).
    """

    outdir: Path
    outputs: dict[str, Any] = field(hash=False)
    message: str
    stats: dict[str, Any] = field(hash=False)
    comparison: TruthComparison | None
    truth: Path
    log: str = ""
    report: RunReport | None = field(default=None, hash=False)
    run: RunCatalog | None = field(default=None, hash=False)

    def report_lines(self) -> list[str]:
        """What a person wants to read after a demo run: where, what, and how right."""
        lines = [f"results: {self.outdir}"]
        catalog = self.outputs.get("catalog")
        if catalog:
            lines.append(f"STAC catalog: {Path(catalog['path']) / 'catalog.json'}")
        figure = self.run.summary_figure if self.run is not None else None
        if figure:
            lines.append(f"summary figure: {figure}")
        lines.append(f"summary: {self.message}")
        if self.comparison is None:
            lines.append("truth: no median speed map was produced, nothing to compare")
        else:
            lines.append(f"truth: {self.comparison.describe()}")
        return lines


def demo_result(outputs: dict[str, Any], outdir: Path, truth: Path, log: str = "") -> DemoResult:
    """Read a finished demo Workflow's output catalog: scraps, run report and the truth comparison."""
    from ..workflow.extract_pairs import read_scraps

    run = read_run_catalog(outputs["catalog"]["path"])
    if run.aggregation_notebook is None:
        raise InputError(f"the run catalog {run.catalog} has no executed aggregation notebook (item run-provenance)")
    scraps = read_scraps(run.aggregation_notebook)
    median_map = run.summary_cogs.get("median_v")
    return DemoResult(
        outdir=outdir,
        outputs=outputs,
        message=str(scraps.get("message", "")),
        stats=dict(scraps.get("stats") or {}),
        comparison=compare_with_truth(median_map, truth) if median_map is not None else None,
        truth=truth,
        log=log,
        report=read_run_report(run.run_report) if run.run_report is not None else None,
        run=run,
    )


def median_speed_map(outputs: dict[str, Any]) -> Path | None:
    """Path of the median speed COG in the Workflow's output catalog (None when there is none)."""
    return read_run_catalog(outputs["catalog"]["path"]).summary_cogs.get("median_v")


def run_demo(
    demo_dir: str | os.PathLike[str] = DEFAULT_DEMO_DIR,
    *,
    project_root: str | os.PathLike[str] | None = None,
    job_template: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
    data: DemoData | None = None,
    runner: str = "cwltool",
) -> DemoResult:
    """Generate the demo stack, serve it, run the Workflow and check the result.

    ``runner`` is the workflow engine, one of :data:`RUNNERS` (default ``"cwltool"``); with
    Toil, ``demo_dir`` also holds its ``jobstore/``, ``work/`` and ``toil.log``.

    Parameters
    ----------
    demo_dir : path-like
        Working directory of the demo: ``data/`` (stack, STAC JSON, truth), ``job.yml`` (the
        Workflow's job), ``pair.yml`` (a job for ``cwl/correlate.cwl`` alone on the first pair)
        and ``results/`` (the Workflow outputs; emptied first).
    project_root : path-like, optional
        Repository holding ``cwl/`` and ``params/``; found automatically by default.
    job_template : path-like, optional
        Job file to start from; default ``params/demo.yml``.
    overrides : dict, optional
        Inputs to change besides ``stac_url`` (e.g. a shorter season for tests).
    extra_args : sequence of str
        More cwltool options.
    quiet : bool
        Capture cwltool's log.
    data : DemoData, optional
        An already generated stack to serve instead of generating one into ``demo_dir/data``
        (e.g. a copy with a deliberately corrupted scene).

    Returns
    -------
    DemoResult
    """
    from .stacserver import serve_stac

    root = find_project_root(project_root)
    demo_dir = Path(demo_dir).resolve()
    if data is None:
        data = generate_demo_data(demo_dir / "data")
    write_pair_job(data, demo_dir / "pair.yml")
    results = demo_dir / "results"
    if results.exists():
        shutil.rmtree(results)
    with serve_stac([data.collection, data.items]) as stac_url:
        log.info("demo STAC API at %s", stac_url)
        job = write_job(
            root / (job_template or DEMO_PARAMS),
            demo_dir / "job.yml",
            data_location=data.root,
            stac_url=stac_url,
            **(overrides or {}),
        )
        outputs, cwl_log = run_workflow(
            root / WORKFLOW, job, results, runner=runner, work_dir=demo_dir, extra_args=extra_args, quiet=quiet
        )
    return demo_result(outputs, results, data.truth, cwl_log)
