"""A local OGC API - Processes endpoint for the application package, built on pygeoapi.

:class:`GlacierVelocityProcessor` is a pygeoapi process plugin: its description is derived from
the application package (:func:`glacier_velocity.deploy.package.process_description`), and
``execute`` writes the request's inputs as a CWL job and runs the package with cwltool (in
containers, or with ``--no-container`` when configured so). The result document names every
workflow output by URL, the STAC catalog first; the server started by :func:`create_app`
serves the job directories under ``/outputs/`` so that those URLs resolve, as the object store
behind an ADES would.

``glacier-velocity ogc-serve --config deploy/ogc/pygeoapi-config.yml`` (or ``make ogc-serve``)
starts it; then, as any OGC API - Processes client::

    curl -X POST -H 'Content-Type: application/json' -H 'Prefer: respond-async' \\
         -d @deploy/ogc/execute-demo.json http://127.0.0.1:5000/processes/glacier-velocity/execution
    curl http://127.0.0.1:5000/jobs/<id>            # status
    curl http://127.0.0.1:5000/jobs/<id>/results    # outputs, with the STAC catalog URL
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidParameter

try:  # pygeoapi is a deployment dependency (extra "deploy"); the helpers below work without it
    from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
except ImportError:  # pragma: no cover - exercised only without the extra

    class _ProcessorExecuteError(Exception):
        """Stand-in so that this module imports without pygeoapi."""

    BaseProcessor = object
    ProcessorExecuteError = _ProcessorExecuteError


log = logging.getLogger(__name__)

#: Route under which the server publishes job directories (the workflow outputs).
OUTPUTS_ROUTE = "/outputs"
#: The committed configuration: the package `make package` writes, run in containers.
DEFAULT_CONFIG = "deploy/ogc/pygeoapi-config.yml"
#: Longest a single job may run, s (real-data runs of many pairs take long).
DEFAULT_TIMEOUT_S = 6 * 3600
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def cwl_job(inputs: Mapping[str, Any], workflow_inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """CWL job object from the inputs of an OGC API - Processes execute request.

    Parameters
    ----------
    inputs : mapping
        ``inputs`` of the request: literal values, or ``{"href": URL}`` for a File input
        (OGC qualified value by reference); a File-or-string input takes either.
    workflow_inputs : mapping
        The process description's inputs (name -> description with ``metadata`` naming the
        CWL type, as cwl2ogc writes it).

    Returns
    -------
    dict
        Input name -> CWL value; File inputs become ``{"class": "File", "location": URL}``.

    Raises
    ------
    InvalidParameter
        An input the process does not have, or a File input without an href.
    """
    job: dict[str, Any] = {}
    for name, value in inputs.items():
        if name not in workflow_inputs:
            raise InvalidParameter(
                name, f"glacier-velocity has no input {name!r}; its inputs are {', '.join(workflow_inputs)}"
            )
        cwl_type = next(
            (m.get("value", "") for m in workflow_inputs[name].get("metadata", []) if m.get("title") == "cwl:type"), ""
        )
        kinds = set(re.findall(r"\w+", cwl_type))
        # A File-or-string input (the AOI, the outlines, the points) takes text by value and a
        # file by reference; a File-only input takes a reference alone (or its bare URL).
        by_reference = isinstance(value, Mapping) and "href" in value
        if "File" in kinds and value is not None and (by_reference or "string" not in kinds):
            href = value.get("href") if isinstance(value, Mapping) else value
            if not isinstance(href, str) or not href:
                raise InvalidParameter(name, 'a File input is given by reference: {"href": "https://.../aoi.geojson"}')
            job[name] = {"class": "File", "location": href}
        elif isinstance(value, Mapping) and "value" in value:
            job[name] = value["value"]  # qualified literal {"value": ..., "mediaType": ...}
        else:
            job[name] = value
    return job


def _publish(value: Any, job_dir: Path, base_url: str) -> Any:
    """Replace File/Directory objects of a CWL output by OGC links under ``base_url``."""
    if isinstance(value, list):
        return [_publish(v, job_dir, base_url) for v in value]
    if isinstance(value, Mapping) and value.get("class") in ("File", "Directory"):
        relative = Path(value["path"]).resolve().relative_to(job_dir.resolve()).as_posix()
        if value["class"] == "Directory":
            return {"href": f"{base_url}/{relative}/", "type": "inode/directory", "title": value["basename"]}
        return {"href": f"{base_url}/{relative}", "type": _media_type(value["basename"]), "title": value["basename"]}
    return value


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {
        ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
        ".png": "image/png",
        ".json": "application/json",
        ".ipynb": "application/x-ipynb+json",
    }.get(suffix, "application/octet-stream")


def results_document(
    cwl_outputs: Mapping[str, Any], job_dir: Path, base_url: str, requested: Sequence[str] | None = None
) -> dict[str, Any]:
    """OGC results from the CWL output object: every output as a link, the STAC catalog first.

    Parameters
    ----------
    cwl_outputs : mapping
        cwltool's output object; its files lie under ``job_dir``.
    job_dir : Path
        The job's directory, published at ``base_url``.
    base_url : str
        URL of ``job_dir``, e.g. ``http://127.0.0.1:5000/outputs/<job id>``.
    requested : sequence of str, optional
        Outputs to return (default all).

    Returns
    -------
    dict
        ``stac_catalog`` (link to ``catalog.json``) and one entry per requested output.
    """
    results: dict[str, Any] = {}
    catalog = cwl_outputs.get("catalog")
    if catalog:
        catalog_path = Path(catalog["path"]) / "catalog.json"
        relative = catalog_path.resolve().relative_to(job_dir.resolve()).as_posix()
        results["stac_catalog"] = {
            "href": f"{base_url}/{relative}",
            "type": "application/json",
            "rel": "root",
            "title": "STAC catalog",
        }
    for name, value in cwl_outputs.items():
        if requested and name not in requested:
            continue
        results[name] = _publish(value, job_dir, base_url)
    return results


class GlacierVelocityProcessor(BaseProcessor):
    """pygeoapi process running the glacier-velocity application package with cwltool.

    Processor definition keys (``resources.glacier-velocity.processor`` in the config):

    ``name``
        ``glacier_velocity.deploy.ogc.GlacierVelocityProcessor``.
    ``package``
        Path of the packed application package (``make package``).
    ``workdir``
        Where job directories are written (``<workdir>/<job id>/``).
    ``public_url``
        URL at which the server publishes ``workdir`` (``http://host:port/outputs``).
    ``containers``
        ``true`` (default): cwltool runs each tool in the package's image; ``false``:
        ``--no-container`` (the package must then name notebooks reachable on the host).
    ``cwltool_args``
        Extra cwltool options (list of strings), e.g. ``["--parallel"]``.
    ``timeout_s``
        Longest run, seconds.
    """

    def __init__(self, processor_def: dict[str, Any]):
        from .package import PROCESS_ID, process_description

        self.package = Path(processor_def["package"]).resolve()
        self.workdir = Path(processor_def.get("workdir", "build/ogc/jobs")).resolve()
        self.public_url = str(processor_def["public_url"]).rstrip("/")
        self.containers = bool(processor_def.get("containers", True))
        self.cwltool_args = [str(a) for a in processor_def.get("cwltool_args", [])]
        self.timeout_s = float(processor_def.get("timeout_s", DEFAULT_TIMEOUT_S))
        package = yaml.safe_load(self.package.read_text(encoding="utf-8"))
        description = process_description(self.package, str(package.get("s:softwareVersion", "0.0.0")))
        description["outputs"] = {
            "stac_catalog": {
                "title": "STAC catalog",
                "description": "Link to catalog.json of the self-contained STAC catalog of the run (the `catalog` output).",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            },
            **description["outputs"],
        }
        description["keywords"] = list(package.get("s:keywords", []))
        super().__init__(processor_def, description)
        self.process_id = PROCESS_ID
        self.supports_outputs = True
        self.job_id: str | None = None

    def set_job_id(self, job_id: str) -> None:
        """Remember the job id the manager assigned (names the job directory)."""
        if not _JOB_ID_RE.match(job_id):
            raise ProcessorExecuteError(f"unexpected job id {job_id!r}")
        self.job_id = job_id

    def command(self, job_file: Path, outdir: Path) -> list[str]:
        """cwltool command for one job (a list: no shell is involved)."""
        from ..workflow.runner import cwltool_command

        # In containers: local images only, host network (a STAC API on 127.0.0.1 is reachable).
        return cwltool_command(
            f"{self.package}#{self.process_id}",
            job_file,
            outdir,
            containers=self.containers,
            extra_args=self.cwltool_args,
        )

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Run the package on the request's inputs; return the results document (JSON).

        Raises
        ------
        ProcessorExecuteError
            Bad inputs, or cwltool failed (the message holds the end of its log, which is also
            kept as ``cwltool.log`` in the job directory).
        """
        from ..workflow.runner import workflow_env

        job_id = self.job_id or time.strftime("%Y%m%dT%H%M%S")
        job_dir = self.workdir / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            job = cwl_job(data, self.metadata["inputs"])
        except InvalidParameter as exc:
            raise ProcessorExecuteError(str(exc)) from exc
        job_file = job_dir / "job.json"
        job_file.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
        command = self.command(job_file, job_dir / "outputs")
        log.info("job %s: %s", job_id, " ".join(command))
        try:
            completed = subprocess.run(
                command, env=workflow_env(), capture_output=True, text=True, timeout=self.timeout_s, cwd=job_dir
            )
        except subprocess.TimeoutExpired as exc:
            raise ProcessorExecuteError(f"job {job_id}: cwltool did not finish within {self.timeout_s:.0f} s") from exc
        (job_dir / "cwltool.log").write_text(completed.stderr, encoding="utf-8")
        if completed.returncode != 0:
            tail = "\n".join(completed.stderr.strip().splitlines()[-20:])
            raise ProcessorExecuteError(f"job {job_id}: cwltool failed (exit {completed.returncode}):\n{tail}")
        cwl_outputs = json.loads(completed.stdout)
        (job_dir / "outputs.json").write_text(json.dumps(cwl_outputs, indent=2) + "\n", encoding="utf-8")
        requested = list(outputs) if outputs else None
        return "application/json", results_document(cwl_outputs, job_dir, f"{self.public_url}/{job_id}", requested)

    def __repr__(self) -> str:
        return f"<GlacierVelocityProcessor> {self.package.name}"


# --- server -----------------------------------------------------------------------------------


def pygeoapi_config(
    *,
    package: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    workdir: str = "build/ogc",
    containers: bool = True,
    cwltool_args: Sequence[str] = (),
) -> dict[str, Any]:
    """pygeoapi configuration with the glacier-velocity process and a TinyDB job manager.

    Parameters
    ----------
    package : str
        Application package path.
    host, port
        Where the server listens (and its public URL).
    workdir : str
        Directory of the job database and the job directories.
    containers : bool
        Run tools in containers (else ``--no-container``).
    cwltool_args : sequence of str
        Extra cwltool options.
    """
    url = f"http://{host}:{port}"
    return {
        "server": {
            "bind": {"host": host, "port": port},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 20, "max_items": 100},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OpenStreetMap"},
            "manager": {"name": "TinyDB", "connection": f"{workdir}/jobs.db", "output_dir": f"{workdir}/results/"},
        },
        "logging": {"level": "INFO"},
        "metadata": {
            "identification": {
                "title": {"en": "glacier-velocity OGC API - Processes"},
                "description": {
                    "en": "Glacier surface velocity from Sentinel-2 pairs, as an OGC API - Processes process."
                },
                "keywords": {"en": ["glacier", "velocity", "sentinel-2", "ogc api processes"]},
                "keywords_type": "theme",
                "terms_of_service": "https://www.apache.org/licenses/LICENSE-2.0",
                "url": url,
            },
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
            "provider": {"name": "glacier-velocity", "url": url},
            "contact": {"name": "glacier-velocity developers"},
        },
        "resources": {
            "glacier-velocity": {
                "type": "process",
                "processor": {
                    "name": "glacier_velocity.deploy.ogc.GlacierVelocityProcessor",
                    "package": package,
                    "workdir": f"{workdir}/jobs",
                    "public_url": f"{url}{OUTPUTS_ROUTE}",
                    "containers": containers,
                    "cwltool_args": list(cwltool_args),
                },
            }
        },
    }


def write_pygeoapi_config(
    path: str | os.PathLike[str],
    *,
    package: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    workdir: str = "build/ogc",
    containers: bool = True,
) -> Path:
    """Write the :func:`pygeoapi_config` of these arguments as YAML to ``path``.

    Returns
    -------
    Path
        The file written.
    """
    from ..io.atomic import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = pygeoapi_config(package=package, host=host, port=port, workdir=workdir, containers=containers)
    write_text_atomic(path, yaml.safe_dump(config, sort_keys=False))
    return path


def create_app(config_path: str | os.PathLike[str], openapi_path: str | os.PathLike[str]) -> Any:
    """The pygeoapi Flask app for a config, plus ``/outputs/<job>/<path>`` serving job files.

    Sets ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` (pygeoapi reads them at import) and
    writes the OpenAPI document first.
    """
    from pygeoapi.openapi import OAPIFormat, generate_openapi_document

    config_path, openapi_path = Path(config_path).resolve(), Path(openapi_path).resolve()
    openapi_path.parent.mkdir(parents=True, exist_ok=True)
    openapi_path.write_text(generate_openapi_document(config_path, OAPIFormat(root="yaml")), encoding="utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
    from flask import abort, send_from_directory
    from pygeoapi.flask_app import APP  # reads the environment above

    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    jobs_dir = Path(config["resources"]["glacier-velocity"]["processor"]["workdir"]).resolve()

    def outputs(path: str) -> Any:
        # send_from_directory refuses paths that leave jobs_dir.
        if not (jobs_dir / path).is_file():
            abort(404)
        return send_from_directory(jobs_dir, path)

    APP.add_url_rule(f"{OUTPUTS_ROUTE}/<path:path>", "glacier_velocity_outputs", outputs, methods=["GET"])
    return APP


def serve(
    config_path: str | os.PathLike[str] | None = None,
    host: str | None = None,
    port: int | None = None,
    on_start: Callable[[str], object] | None = None,
) -> None:
    """Run the server (werkzeug, threaded) until interrupted.

    ``host``/``port`` override the config's bind address and public URLs; the effective
    configuration is written next to the job database. ``config_path`` defaults to
    :data:`DEFAULT_CONFIG` (relative to the working directory, as the package path in it is). ``on_start`` receives the process URL
    (``.../processes/glacier-velocity``) just before the server starts listening.
    """
    from werkzeug.serving import run_simple

    config = yaml.safe_load(Path(config_path or DEFAULT_CONFIG).read_text(encoding="utf-8"))
    bind = config["server"]["bind"]
    host, port = host or bind["host"], int(port or bind["port"])
    old_url = config["server"]["url"]
    url = f"http://{host}:{port}"
    bind.update(host=host, port=port)
    config["server"]["url"] = url
    processor = config["resources"]["glacier-velocity"]["processor"]
    processor["public_url"] = processor["public_url"].replace(old_url, url)
    workdir = Path(config["server"]["manager"]["connection"]).parent
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "results").mkdir(exist_ok=True)
    effective = workdir / "pygeoapi-config.yml"
    effective.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    app = create_app(effective, workdir / "openapi.yml")
    process_url = f"{url}/processes/glacier-velocity"
    log.info("OGC API - Processes at %s", process_url)
    if on_start is not None:
        on_start(process_url)
    run_simple(host, port, app, threaded=True, use_reloader=False)
