"""Run the offline demo: serve the demo stack with a local STAC API, push it through the CWL
Workflow (:mod:`glacier_velocity.workflow.runner`), and compare the result with the truth.

:func:`run_demo` serves the items with ``rustac serve`` on a free port, writes the job file,
runs the Workflow without containers, stops the server, and compares the recovered median
speed with the truth (:func:`~glacier_velocity.demo.truth.compare_with_truth`);
:func:`run_demo_in_containers` does the same with every tool in the container image. The demo
works in a directory of its own, marked as such (:func:`prepare_demo_directory`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..deploy.containers import LOCAL_IMAGE, container_engine, image_exists, serve_files
from ..domain.aoi import AOI
from ..errors import ContainerEngineUnavailable, InputError
from ..products.runcatalog import RunCatalog, read_run_catalog
from ..products.runreport import RunReport, read_run_report
from ..workflow.extract_pairs import read_scraps
from ..workflow.runner import (
    WORKFLOW,
    ProgressCallback,
    cwl_file,
    find_project_root,
    run_cwltool,
    run_workflow,
    write_job,
)
from .scenes import DEFAULT_DEMO_DIR, DEMO_OUTLINES_FILE, DEMO_TILE, DemoData, expected_pairs, generate_demo_data
from .stacserver import serve_stac
from .truth import TruthComparison, compare_with_truth

log = logging.getLogger(__name__)


DEMO_PARAMS = Path("params/demo.yml")


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
        "glacier_outlines": cwl_file(data.root / DEMO_OUTLINES_FILE),
        **overrides,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


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
    parallel: bool = True,
    log_file: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> DemoResult:
    """Generate the demo stack, serve it, run the Workflow and check the result.

    ``runner`` is the workflow runner, one of :data:`RUNNERS` (default ``"cwltool"``, with
    ``--parallel`` unless ``parallel`` is False); with Toil, ``demo_dir`` also holds its
    ``jobstore/``, ``work/`` and ``toil.log``.

    Parameters
    ----------
    demo_dir : path-like
        Working directory of the demo: ``data/`` (stack, STAC JSON, truth), ``job.yml`` (the
        Workflow's job), ``pair.yml`` (a job for ``cwl/correlate.cwl`` alone on the first pair)
        and ``results/`` (the Workflow outputs). It must be new, empty or one the demo made
        (:func:`prepare_demo_directory`): the demo replaces only its own files.
    project_root : path-like, optional
        Repository holding ``cwl/`` and ``params/``; found automatically by default.
    job_template : path-like, optional
        Job file to start from; default ``params/demo.yml``.
    overrides : dict, optional
        Inputs to change besides ``stac_url`` (e.g. a shorter season for tests).
    extra_args : sequence of str
        More cwltool options.
    quiet : bool
        Capture cwltool's log (when there is no ``log_file``).
    data : DemoData, optional
        An already generated stack to serve instead of generating one into ``demo_dir/data``
        (e.g. a copy with a deliberately corrupted scene).
    log_file, on_progress
        The runner's whole log to that file, and the pairs' progress while it runs (see
        :func:`run_workflow`).

    Returns
    -------
    DemoResult

    Raises
    ------
    InputError
        ``demo_dir`` holds files the demo did not make (nothing is removed).
    """
    root = find_project_root(project_root)
    demo_dir = Path(demo_dir).resolve()
    results = prepare_demo_directory(demo_dir)
    if data is None:
        data = generate_demo_data(demo_dir / "data")
    write_pair_job(data, demo_dir / "pair.yml")
    try:
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
                root / WORKFLOW,
                job,
                results,
                runner=runner,
                parallel=parallel,
                work_dir=demo_dir,
                extra_args=extra_args,
                quiet=quiet,
                log_file=log_file,
                on_progress=on_progress,
            )
    finally:
        # Whatever the outcome, what is in results/ now is the demo's: the next run may remove it.
        record_demo_results(demo_dir)
    return demo_result(outputs, results, data.truth, cwl_log)


#: Marker file of a directory the demo made; it lists the files of the demo's last results.
DEMO_MARKER = ".glacier-velocity-demo"


#: The demo's Workflow outputs, inside its working directory.
DEMO_RESULTS = "results"


def _files_under(directory: Path) -> list[str]:
    """Paths (relative, sorted, ``/``-separated) of the files and links under ``directory``."""
    if not directory.is_dir():
        return []
    return sorted(
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file() or path.is_symlink()
    )


def prepare_demo_directory(demo_dir: str | os.PathLike[str]) -> Path:
    """Make ``demo_dir`` ready for a demo run; return its ``results/`` (removed, to be re-made).

    A new or empty directory is made and marked (:data:`DEMO_MARKER`). A marked directory has
    its ``results/`` removed, but only when every file in it is one the last demo run wrote.

    Raises
    ------
    InputError
        ``demo_dir`` is not empty and the demo did not make it, or its ``results/`` holds files
        the demo did not write (they are listed); nothing is removed then.
    """
    demo_dir = Path(demo_dir)
    marker = demo_dir / DEMO_MARKER
    results = demo_dir / DEMO_RESULTS
    if demo_dir.exists() and not demo_dir.is_dir():
        raise InputError(f"--dir {demo_dir} is a file; give the demo a new or empty directory")
    if not marker.is_file():
        if demo_dir.is_dir() and any(demo_dir.iterdir()):
            raise InputError(
                f"--dir {demo_dir} is not empty and the demo did not make it (no {DEMO_MARKER} in it); "
                "the demo replaces its own files there, so give it a new or empty directory"
            )
        demo_dir.mkdir(parents=True, exist_ok=True)
        _write_marker(marker, [])
        return results
    try:
        made = set(json.loads(marker.read_text(encoding="utf-8"))["results"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{marker} is not the demo's marker ({exc}); remove {demo_dir} or give another --dir") from exc
    foreign = [name for name in _files_under(results) if name not in made]
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise InputError(
            f"{results} holds files the demo did not make: {shown}; "
            "the demo replaces results/ on every run, so move them elsewhere or give another --dir"
        )
    if results.is_symlink() or results.is_file():
        results.unlink()
    elif results.exists():
        shutil.rmtree(results)
    return results


def record_demo_results(demo_dir: str | os.PathLike[str]) -> None:
    """List the files now in ``demo_dir/results`` in its marker: what the next run may remove."""
    demo_dir = Path(demo_dir)
    _write_marker(demo_dir / DEMO_MARKER, _files_under(demo_dir / DEMO_RESULTS))


def _write_marker(marker: Path, results: list[str]) -> None:
    doc = {"made_by": "glacier-velocity demo", "results": results}
    marker.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def items_with_http_assets(items_path: Path, data_root: Path, base_url: str, out_path: Path) -> Path:
    """Copy an ItemCollection, rewriting asset hrefs under ``data_root`` to ``base_url``.

    Parameters
    ----------
    items_path : Path
        GeoJSON FeatureCollection of STAC items whose asset hrefs are absolute local paths.
    data_root : Path
        Directory the file server serves.
    base_url : str
        The file server's URL.
    out_path : Path
        Where to write the rewritten collection.

    Raises
    ------
    InputError
        An asset href lies outside ``data_root`` (the server could not serve it).
    """
    collection = json.loads(items_path.read_text(encoding="utf-8"))
    rewritten = copy.deepcopy(collection)
    for item in rewritten["features"]:
        for asset in item.get("assets", {}).values():
            href = Path(asset["href"])
            if not href.is_absolute():
                continue
            try:
                relative = href.resolve().relative_to(data_root.resolve())
            except ValueError as exc:
                raise InputError(
                    f"item {item['id']}: asset {href} is outside {data_root}, which the file server serves"
                ) from exc
            asset["href"] = f"{base_url}/{relative.as_posix()}"
    out_path.write_text(json.dumps(rewritten, indent=2) + "\n", encoding="utf-8")
    return out_path


def run_demo_in_containers(
    demo_dir: str | os.PathLike[str],
    *,
    process: str | os.PathLike[str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    image: str = LOCAL_IMAGE,
    extra_args: Sequence[str] = (),
) -> DemoResult:
    """The demo with every tool in the container image.

    Generates the demo stack, serves its files over HTTP and its items (pointing there) with
    the STAC API, runs ``process`` with cwltool in docker mode and compares the recovered
    median speed with the truth.

    Parameters
    ----------
    demo_dir : path-like
        Working directory (``data/``, ``job.yml``, ``results/``).
    process : path-like, optional
        CWL to run: the application package or ``cwl/glacier-velocity.cwl`` (the default; its
        tools name ``glacier-velocity:latest`` in a DockerRequirement hint).
    project_root : path-like, optional
        Repository holding ``cwl/`` and ``params/``.
    overrides : dict, optional
        Job inputs to change besides ``stac_url`` (e.g. a shorter season).
    image : str
        Image that must exist locally before the run (checked, not pulled).
    extra_args : sequence of str
        More cwltool options.

    Raises
    ------
    ContainerEngineUnavailable
        No docker CLI with a daemon (podman's API socket counts).
    InputError
        The image is not built, or cwltool failed (the message holds the end of its log).
    """
    engine = container_engine()
    if engine != "docker":
        # cwltool's default container mode drives the docker CLI; podman serves it through
        # its Docker-compatible API socket.
        raise ContainerEngineUnavailable(
            "cwltool needs the docker CLI talking to a daemon; with podman, start its Docker-compatible "
            "API (`podman system service`) and export DOCKER_HOST=unix://<its socket>"
        )
    if not image_exists(image, engine):
        raise InputError(f"image {image} is not in the local {engine} image store; build it with `make image`")
    root = find_project_root(project_root)
    demo_dir = Path(demo_dir).resolve()
    # Refuses a directory holding files the demo did not make, before anything is written.
    results = prepare_demo_directory(demo_dir)
    data = generate_demo_data(demo_dir / "data")
    try:
        with serve_files(data.root) as files_url:
            items = items_with_http_assets(data.items, data.root, files_url, data.items.with_name("items-http.json"))
            with serve_stac([data.collection, items]) as stac_url:
                log.info("demo STAC API at %s, scene files at %s", stac_url, files_url)
                # The containers see the scenes through the file server; the outlines are a File,
                # which cwltool stages into each container that reads them.
                job = write_job(
                    root / DEMO_PARAMS,
                    demo_dir / "job.yml",
                    data_location=data.root,
                    stac_url=stac_url,
                    **(overrides or {}),
                )
                outputs, cwl_log = run_cwltool(
                    process or root / WORKFLOW, job, results, containers=True, extra_args=extra_args, quiet=True
                )
    finally:
        # What results/ holds now is the demo's own: the next run may replace it.
        record_demo_results(demo_dir)
    return demo_result(outputs, results, data.truth, cwl_log)
