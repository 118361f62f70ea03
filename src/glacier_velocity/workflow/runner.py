"""Run the CWL Workflow on a job file: cwltool or Toil (single machine or Slurm), with progress.

:func:`run_workflow` runs a CWL process under one of :data:`RUNNERS` and follows the pairs'
progress in the runner's log (:mod:`.progress`); :func:`run_params` gives a job file
(``params/*.yml``) a fresh run directory (:mod:`.rundirs`) and runs the Workflow into it
(``glacier-velocity run``, ``make run``). The offline demo (:mod:`glacier_velocity.demo.run`)
and the local OGC API - Processes (:mod:`glacier_velocity.deploy.ogc`) run through here too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, InvalidParameter, WorkflowFailed
from ..products.runcatalog import RunCatalog, read_run_catalog
from ..products.runreport import RunReport, read_run_report
from .extract_pairs import read_scraps
from .jobfile import prepare_job, write_run_job
from .progress import LogFollower, PairProgress, read_new_lines
from .rundirs import mark_complete, new_run_directory

log = logging.getLogger(__name__)

#: Called with the pairs' progress while a Workflow runs (see :func:`run_workflow`).
ProgressCallback = Callable[[PairProgress], None]


# --- Running the Workflow ----------------------------------------------------------------------

#: The Workflow file, relative to the project root.
WORKFLOW = Path("cwl/glacier-velocity.cwl")


#: Where an installed wheel holds ``cwl/``, ``notebooks/`` and ``params/`` (setup.py copies them).
INSTALLED_SHARE = Path(__file__).resolve().parents[1] / "share"


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``cwl/glacier-velocity.cwl`` (with ``notebooks/`` and ``params/``).

    In order: ``start`` (default the working directory) or one of its parents; the source
    checkout this module runs from (an editable install); the copy an installed wheel carries
    (:data:`INSTALLED_SHARE`), so that ``glacier-velocity demo`` and ``run`` work from any
    directory after ``pip install 'glacier-velocity[workflow]'``.

    Raises
    ------
    InputError
        None of them holds the Workflow (``start`` given and wrong, or a broken install).
    """
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    if start is None:
        candidates += [Path(__file__).resolve().parents[3], INSTALLED_SHARE]
    for candidate in candidates:
        if (candidate / WORKFLOW).is_file():
            return candidate
    if start is not None:
        raise InputError(
            f"cannot find {WORKFLOW} in {candidates[0]} or its parents; give --project a clone of the repository"
        )
    raise InputError(
        f"cannot find {WORKFLOW} in {candidates[0]} or its parents, nor in the installed package ({INSTALLED_SHARE}); "
        "reinstall with pip install 'glacier-velocity[workflow]' or run from a clone of the repository"
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
    data_location : path-like, optional
        The directory of the demo data. A bare file name as ``glacier_outlines`` in the
        template (the demo's ``glacier_outlines.geojson``) becomes the CWL File of that name
        there, which the runner stages into every step that reads it (a container too).
    **overrides
        Inputs to set, e.g. ``stac_url="http://127.0.0.1:40123"``.
    """
    import yaml

    job = yaml.safe_load(Path(template).read_text(encoding="utf-8")) or {}
    outlines = job.get("glacier_outlines")
    if data_location is not None and isinstance(outlines, str) and outlines == Path(outlines).name:
        job["glacier_outlines"] = cwl_file(Path(data_location) / outlines)
    job.update(overrides)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def cwl_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """A job file's value for a File input: ``{"class": "File", "path": <absolute path>}``.

    The runner stages it into the step (a container sees it too) and the tool receives the
    staged path; a string would be passed as it is and name a path only the host has.
    """
    return {"class": "File", "path": str(Path(path).resolve())}


def workflow_env() -> dict[str, str]:
    """Environment for cwltool: this interpreter's ``bin`` first on ``PATH``.

    cwltool hands each job only ``HOME``, ``TMPDIR`` and ``PATH``; with the virtualenv's
    ``bin`` first, ``papermill``, ``python`` and the ``python3`` kernel are this environment's.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir])
    return env


#: cwltool options of every containerized run: a missing image is an error, not a pull (images
#: are built locally with ``make image``, no registry is involved), and tools that declare
#: ``NetworkAccess`` share the host network, where the local STAC API and file server listen on
#: 127.0.0.1 (Docker's default bridge would not reach them); tools without it still get none.
CONTAINER_ARGS = ("--disable-pull", "--custom-net", "host")


#: Workflow runners of :func:`run_workflow`: ``cwltool``; ``toil``, ``toil-cwl-runner`` with
#: its single-machine batch system; ``toil-slurm``, ``toil-cwl-runner --batchSystem slurm``
#: (every step an ``sbatch`` job; the Slurm client commands must be on ``PATH``).
RUNNERS: tuple[str, ...] = ("cwltool", "toil", "toil-slurm")
_TOIL_BATCH_SYSTEMS = {"toil": "single_machine", "toil-slurm": "slurm"}
#: Toil's log and job store, relative to the work directory of a Toil run.
TOIL_LOG = Path("toil.log")
TOIL_JOBSTORE = Path("jobstore")


#: Environment variables the steps need, by prefix: this package's settings (every
#: ``GLACIER_VELOCITY_*``: the STAC token, the ``GLACIER_VELOCITY_HTTP_*`` retries and
#: deadlines, the outbound allow-list) and GDAL's ``AWS_*`` settings for ``s3://`` assets.
STEP_ENV_PREFIXES = ("GLACIER_VELOCITY_", "AWS_")
#: ... and by name: the proxies and certificate bundles of ``requests`` (STAC searches, items,
#: the assets' gate). A ``PYTHONPATH`` (a source tree run without installing it) is kept too
#: without containers, or the steps would import another copy.
STEP_ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
#: What Toil itself needs besides (its leader, workers and batch systems), by name and prefix.
TOIL_ENGINE_ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR", "XDG_RUNTIME_DIR")
TOIL_ENGINE_ENV_PREFIXES = ("TOIL_", "SLURM_", "LC_")


#: Variables naming files of this machine: a container has its own (its CA store, its install).
HOST_PATH_ENV_NAMES = (
    "PYTHONPATH",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def step_environment(environ: Mapping[str, str] | None = None, *, containers: bool = False) -> list[str]:
    """Names of the variables of ``environ`` (default ``os.environ``) the steps get, and only those.

    cwltool and Toil hand a job only ``HOME``, ``TMPDIR`` and ``PATH``: without these, the STAC
    token, the HTTP settings and the proxies set for ``glacier-velocity run`` never reached the
    steps (a private catalogue answered the discovery step 401). With ``containers``, the
    variables naming files of this machine (:data:`HOST_PATH_ENV_NAMES`) are left out.
    """
    env = os.environ if environ is None else environ
    names = sorted(k for k in env if k in STEP_ENV_NAMES or k.startswith(STEP_ENV_PREFIXES))
    if env.get("PYTHONPATH"):
        names.append("PYTHONPATH")
    return [name for name in names if not (containers and name in HOST_PATH_ENV_NAMES)]


def _preserve(names: Sequence[str]) -> list[str]:
    """cwltool's options passing the variables ``names`` on to the jobs."""
    return [arg for name in names for arg in ("--preserve-environment", name)]


def toil_env() -> dict[str, str]:
    """Environment for ``toil-cwl-runner``: what Toil needs and what the steps need, nothing else.

    Toil's CWL runner ignores ``--preserve-environment`` (a job gets only ``HOME``, ``TMPDIR``,
    ``PATH`` and its ``EnvVarRequirement``); it is run with ``--preserve-entire-environment``
    in this filtered environment instead, so the steps get :func:`step_environment` and Toil's
    own variables, not the rest of the caller's environment.
    """
    env = workflow_env()
    keep = set(step_environment(env))
    return {
        k: v
        for k, v in env.items()
        if k in keep or k in TOIL_ENGINE_ENV_NAMES or k.startswith(TOIL_ENGINE_ENV_PREFIXES)
    }


def _runner_executable(name: str, extra: str = "workflow") -> str:
    """A workflow runner's executable: next to this interpreter (its virtualenv), else on PATH.

    Raises
    ------
    InputError
        Neither: the runner comes with the package's ``extra``.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    if shutil.which(name):
        return name
    raise InputError(
        f"{name} is not installed (neither next to {sys.executable} nor on PATH); "
        f"install the {extra} extra: pip install 'glacier-velocity[{extra}]'"
    )


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
    command = [
        _runner_executable("toil-cwl-runner", extra="deploy"),
        "--no-container",
        "--batchSystem",
        _TOIL_BATCH_SYSTEMS[runner],
    ]
    if runner == "toil":
        command += ["--maxCores", str(max_cores or os.cpu_count() or 1)]
    return command + [
        # Run in toil_env(), which holds only what Toil and the steps need.
        "--preserve-entire-environment",
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
    environment: Sequence[str] | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The cwltool command line for one run (a list: no shell is involved).

    ``containers`` runs every tool in its container (cwltool's docker mode with
    :data:`CONTAINER_ARGS`); otherwise ``--no-container`` runs them in this environment.
    ``process`` may name one process of a packed file (``package.cwl#id``). ``environment``
    names the variables the jobs get besides ``HOME``, ``TMPDIR`` and ``PATH``: the user's own
    runs pass :func:`step_environment` (:func:`run_cwltool`); by default only a ``PYTHONPATH``
    is kept without containers, so that a server running jobs for others (the OGC API) passes
    none of its operator's settings - the STAC token above all, which goes to whatever
    ``stac_url`` a job names.
    """
    mode = [*CONTAINER_ARGS] if containers else ["--no-container"]
    if environment is None:
        environment = ["PYTHONPATH"] if not containers and os.environ.get("PYTHONPATH") else []
    mode += _preserve(environment)
    return [
        _runner_executable("cwltool"),
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
    log_file: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], str]:
    """Run a CWL process with cwltool; return its output object and log.

    The jobs get the variables of :func:`step_environment` (the STAC token, the
    ``GLACIER_VELOCITY_*`` settings, proxies, ``AWS_*``) and no other of the caller's.

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
    log_file : path-like, optional
        Write cwltool's whole log there instead (``quiet`` is then implied).
    on_progress : callable, optional
        With ``log_file``: called with the pairs' :class:`~.progress.PairProgress` while
        cwltool runs (about every :data:`PROGRESS_INTERVAL_S`) and once when it has ended.

    Returns
    -------
    outputs : dict
        The CWL output object (output id -> File/Directory objects or values).
    log : str
        cwltool's log (stderr) when ``quiet`` or written to ``log_file``, else ``""`` (it went
        to the terminal).

    Raises
    ------
    WorkflowFailed
        cwltool exited with an error.
    """
    command = cwltool_command(
        process,
        job,
        outdir,
        containers=containers,
        environment=step_environment(containers=containers),
        extra_args=extra_args,
    )
    runner = "cwltool (containers)" if containers else "cwltool"
    log_path = Path(log_file) if log_file is not None else None
    return _run_runner(command, runner, f"on {process} with {job}", quiet, log_path, on_progress)


def _run_runner(
    command: list[str],
    runner: str,
    what: str,
    quiet: bool,
    log_file: Path | None = None,
    on_progress: ProgressCallback | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run a workflow runner's command; its output object (stdout, JSON) and its log if ``quiet``.

    With ``log_file`` the runner's log (stderr) goes to that file, and ``on_progress`` is
    called with the pairs' progress (:class:`~.progress.PairProgress`) every
    :data:`PROGRESS_INTERVAL_S` while it runs and once at the end; the log is returned then too.
    """
    log.info("running %s", " ".join(command))
    env = workflow_env() if env is None else env
    if log_file is None:
        completed = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None, text=True
        )
        returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr or ""
    else:
        returncode, stdout = _follow_runner(command, log_file, on_progress, env)
        stderr = log_file.read_text(encoding="utf-8", errors="replace")
    if returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-40:])
        where = f" (full log: {log_file})" if log_file is not None else ""
        raise WorkflowFailed(f"{runner} failed (exit {returncode}) {what}{where}" + (f":\n{tail}" if tail else ""))
    return json.loads(stdout), stderr


#: Seconds between two looks at the log of a running runner (s).
PROGRESS_INTERVAL_S = 0.5


def _follow_runner(
    command: list[str], log_file: Path, on_progress: ProgressCallback | None, env: dict[str, str]
) -> tuple[int, str]:
    """Run ``command`` with its stderr into ``log_file``, following the log; its exit code and stdout."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    follower, offset = LogFollower(), 0
    start = time.monotonic()
    # stdout (the output object) goes to a file, not a pipe: a pipe nobody reads while the
    # runner runs would block it once full.
    with open(log_file, "wb") as err, tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        try:
            while True:
                try:
                    returncode = process.wait(timeout=PROGRESS_INTERVAL_S)
                    finished = True
                except subprocess.TimeoutExpired:
                    finished = False
                text, offset = read_new_lines(log_file, offset)
                follower.feed(text)
                if on_progress is not None:
                    on_progress(follower.progress(time.monotonic() - start))
                if finished:
                    break
        finally:
            if process.poll() is None:  # interrupted (Ctrl-C): do not leave the runner running
                process.terminate()
                process.wait()
        out.seek(0)
        return returncode, out.read()


def run_workflow(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    runner: str = "cwltool",
    parallel: bool = True,
    work_dir: str | os.PathLike[str] | None = None,
    max_cores: int | None = None,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
    log_file: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], str]:
    """Run a CWL process without containers under ``runner`` (one of :data:`RUNNERS`).

    ``cwltool`` is :func:`run_cwltool`, with ``--parallel`` unless ``parallel`` is False: it
    then runs as many jobs at once as their ``ResourceRequirement`` minimums fit in this
    machine's cores and memory (``cwl/correlate.cwl`` asks for 1 core and 1 GiB per pair). The
    Toil runners always run jobs in parallel and need ``work_dir`` (see :func:`toil_command`;
    an old job store there is removed first, so that a new run never resumes a finished one).
    ``max_cores`` bounds Toil's single-machine batch system. ``log_file`` and ``on_progress``
    are those of :func:`run_cwltool` (with Toil, only the elapsed time is known before the
    end). Returns the output object and the runner's log (when ``quiet`` or written to
    ``log_file``); raises :class:`WorkflowFailed`.
    """
    log_path = Path(log_file) if log_file is not None else None
    if runner == "cwltool":
        return run_cwltool(
            process,
            job,
            outdir,
            extra_args=[*(["--parallel"] if parallel else []), *extra_args],
            quiet=quiet,
            log_file=log_path,
            on_progress=on_progress,
        )
    if work_dir is None:
        raise InvalidParameter("work_dir", f"the {runner} runner needs a directory for Toil's job store and work files")
    command = toil_command(
        process, job, outdir, runner=runner, work_dir=work_dir, max_cores=max_cores, extra_args=extra_args
    )
    work = Path(work_dir).resolve()
    if (work / TOIL_JOBSTORE).exists():
        shutil.rmtree(work / TOIL_JOBSTORE)
    (work / "work").mkdir(parents=True, exist_ok=True)
    return _run_runner(
        command, runner, f"on {process} with {job} (log: {work / TOIL_LOG})", quiet, log_path, on_progress, toil_env()
    )


#: The runner's whole log, in the directory of a run (:func:`run_params`) or of the demo (CLI).
WORKFLOW_LOG = "workflow.log"


@dataclass(frozen=True)
class WorkflowRun:
    """Outcome of :func:`run_params`.

    Attributes
    ----------
    run_dir : Path
        This run's own directory (``<base>/<UTC time>``): its outputs and :data:`WORKFLOW_LOG`.
    outputs : dict
        The CWL output object.
    log_file : Path
        The runner's whole log.
    report : RunReport or None
        The run report (every pair, succeeded or failed with its reason); None when the run
        catalog holds none.
    run : RunCatalog or None
        The run's files, found through its catalog; None without a catalog.
    message : str
        The aggregation notebook's one line: the pairs aggregated and the headline, or why
        there is no summary.
    """

    run_dir: Path
    outputs: dict[str, Any] = field(hash=False)
    log_file: Path
    report: RunReport | None = field(default=None, hash=False)
    run: RunCatalog | None = field(default=None, hash=False)
    message: str = ""


def run_params(
    params: str | os.PathLike[str],
    base: str | os.PathLike[str],
    *,
    project_root: str | os.PathLike[str] | None = None,
    runner: str = "cwltool",
    parallel: bool = True,
    extra_args: Sequence[str] = (),
    on_progress: ProgressCallback | None = None,
) -> WorkflowRun:
    """Run the Workflow on a job file (``params/*.yml``) into a fresh directory under ``base``.

    The run gets ``base/<UTC time>/`` (:func:`~.rundirs.new_run_directory`), with the
    Workflow's outputs and the runner's whole log (:data:`WORKFLOW_LOG`); Toil's job store and
    work files go to its ``toil/``. ``base/latest`` points to it once the Workflow has
    completed (:func:`~.rundirs.mark_complete`): a run killed or failed part-way never becomes
    ``latest``. Earlier runs under ``base`` are left as they are. ``runner``, ``parallel``, ``extra_args`` and
    ``on_progress`` are those of :func:`run_workflow`.

    Raises
    ------
    InputError
        ``params`` is not a file, or a value in it is refused by the library's own checks
        (:func:`~.jobfile.prepare_job`: one line naming the job file and the parameter); the
        run then has no directory. Relative paths in it are read from its directory, and the
        job the runner runs is ``job.yml`` in the run's directory.
    WorkflowFailed
        The runner failed (the message ends with its log's last lines and names the log).
    """
    root = find_project_root(project_root)
    # A bad value fails here, in one line, before a run directory exists or a runner starts.
    job = prepare_job(params, root / WORKFLOW)
    run_dir = new_run_directory(base).resolve()
    log_file = run_dir / WORKFLOW_LOG
    outputs, _ = run_workflow(
        root / WORKFLOW,
        write_run_job(job, run_dir),
        run_dir,
        runner=runner,
        parallel=parallel,
        work_dir=run_dir / "toil",
        extra_args=extra_args,
        log_file=log_file,
        on_progress=on_progress,
    )
    # Only now, the Workflow having completed: a run killed or failed part-way never becomes latest.
    mark_complete(run_dir)
    catalog = outputs.get("catalog")
    run = read_run_catalog(catalog["path"]) if catalog else None
    report = read_run_report(run.run_report) if run is not None and run.run_report is not None else None
    notebook = run.aggregation_notebook if run is not None else None
    message = str(read_scraps(notebook).get("message", "")) if notebook is not None else ""
    return WorkflowRun(run_dir=run_dir, outputs=outputs, log_file=log_file, report=report, run=run, message=message)
