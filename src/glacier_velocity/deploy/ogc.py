"""An OGC API - Processes server for the application package, on pygeoapi, that can face a network.

:class:`GlacierVelocityProcessor` is a pygeoapi process plugin: its description is derived from
the application package (:func:`glacier_velocity.deploy.package.process_description`), and it
runs a job (:meth:`~GlacierVelocityProcessor.run`) by writing the request's checked inputs as a
CWL job and running the package with cwltool (in containers, or with ``--no-container`` when
configured so) in a process group of its own. pygeoapi serves the landing page, conformance,
OpenAPI and process description; :mod:`.ogc_api` puts API keys (:mod:`.ogc_access`) and limits
in front of everything and serves the jobs as OGC API - Processes Part 1: Core says
(:mod:`.ogc_jobs`: owners, queue, dismissal; :mod:`.ogc_inputs`: what a client may give). The
results name every workflow output by URL, the STAC catalog first; the job's output files are
served under ``/outputs/`` to the key that made the job, as the object store behind an ADES would.

``glacier-velocity ogc-serve --keys-file keys.txt`` (or ``make ogc-serve``) starts it; then, as
any OGC API - Processes client::

    curl -X POST -H 'Authorization: Bearer <key>' -H 'Content-Type: application/json' \\
         -H 'Prefer: respond-async' -d @deploy/ogc/execute-demo.json \\
         http://127.0.0.1:5000/processes/glacier-velocity/execution
    curl -H 'Authorization: Bearer <key>' http://127.0.0.1:5000/jobs/<id>            # status
    curl -H 'Authorization: Bearer <key>' http://127.0.0.1:5000/jobs/<id>/results    # outputs

``docs/deployment.md`` says how to run it behind a reverse proxy with TLS, and its limits.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import GlacierVelocityError, InvalidParameter
from ..io.outbound import ALLOW_ENV, TRUST_ENV
from .ogc_access import ApiKeys
from .ogc_api import clean_message, install
from .ogc_jobs import Job, JobFailed, JobLimits, Jobs, stop_process_group

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
#: Largest execute request accepted (bytes): inline GeoJSON of a glacier's outlines is well below.
DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024


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
            # A directory has no document of its own: its link is its STAC catalog's, which
            # resolves (a catalog directory is what the Workflow outputs).
            if (Path(value["path"]) / "catalog.json").is_file():
                return {
                    "href": f"{base_url}/{relative}/catalog.json",
                    "type": "application/json",
                    "title": value["basename"],
                }
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
        from .package import PROCESS_ID, STAC_CATALOG_SCHEMA, process_description

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
                "schema": dict(STAC_CATALOG_SCHEMA),
            },
            **description["outputs"],
        }
        description["keywords"] = list(package.get("s:keywords", []))
        super().__init__(processor_def, description)
        self.process_id = PROCESS_ID
        self.supports_outputs = True

    def command(self, job_file: Path, outdir: Path) -> list[str]:
        """cwltool command for one job (a list: no shell is involved).

        The job's steps get :data:`~glacier_velocity.io.outbound.TRUST_ENV` ``=0`` (a client's
        ``stac_url`` is no more trusted than anything else) and the operator's allow-list and
        HTTP settings (:data:`_PASSED_ON`), in containers too - never the operator's STAC token
        or AWS credentials, which would go wherever a client's job points.
        """
        from ..workflow.runner import cwltool_command

        environment = [TRUST_ENV, *(name for name in _PASSED_ON if name in os.environ)]
        if not self.containers and os.environ.get("PYTHONPATH"):
            environment.append("PYTHONPATH")  # a source tree run without installing it
        # In containers: local images only, host network (a STAC API on 127.0.0.1 is reachable).
        return cwltool_command(
            f"{self.package}#{self.process_id}",
            job_file,
            outdir,
            containers=self.containers,
            environment=environment,
            extra_args=self.cwltool_args,
        )

    def prepare(self, job_dir: Path, values: Mapping[str, Any]) -> None:
        """Write the CWL job of checked input ``values`` into ``job_dir`` (``job.json``)."""
        job = cwl_job(values, self.metadata["inputs"])
        (job_dir / "job.json").write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")

    def run(self, job: Job) -> dict[str, Any]:
        """Run one job with cwltool, in a process group of its own; return its results document.

        cwltool's log stays in the job directory (``cwltool.log``) and the server log; the
        client gets one line (:func:`failure_message`).

        Raises
        ------
        JobFailed
            cwltool failed or ran longer than ``timeout_s``.
        """
        from ..workflow.runner import workflow_env

        command = self.command(job.directory / "job.json", job.directory / "outputs")
        log.info("job %s: %s", job.id, " ".join(command))
        env = {**workflow_env(), TRUST_ENV: "0"}
        log_file, outputs_file = job.directory / "cwltool.log", job.directory / "outputs.json"
        with log_file.open("wb") as stderr, outputs_file.open("wb") as stdout:
            process = subprocess.Popen(
                command, env=env, stdout=stdout, stderr=stderr, cwd=job.directory, start_new_session=True
            )
            job.attach(process)
            try:
                code = process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                stop_process_group(process, grace_s=10.0)
                raise JobFailed(
                    f"the run took longer than {self.timeout_s:.0f} s, this server's limit; ask for less (fewer years, "
                    "a smaller aoi) or ask the server's operator"
                ) from None
        if code != 0:
            text = log_file.read_text(encoding="utf-8", errors="replace")
            log.warning("job %s: cwltool failed (exit %d); its log: %s", job.id, code, log_file)
            raise JobFailed(failure_message(text))
        cwl_outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
        requested = job.request.get("outputs") or None
        return results_document(cwl_outputs, job.directory, f"{self.public_url}/{job.id}", requested)

    def __repr__(self) -> str:
        return f"<GlacierVelocityProcessor> {self.package.name}"


#: Environment variables the jobs' steps get from the server (when it has them).
_PASSED_ON = (
    ALLOW_ENV,
    "GLACIER_VELOCITY_HTTP_ATTEMPTS",
    "GLACIER_VELOCITY_HTTP_BACKOFF_S",
    "GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S",
    "GLACIER_VELOCITY_HTTP_TIMEOUT_S",
    "GLACIER_VELOCITY_HTTP_DEADLINE_S",
)


def _error_names() -> list[str]:
    names, pending = [], [GlacierVelocityError]
    while pending:
        cls = pending.pop()
        names.append(cls.__name__)
        pending += cls.__subclasses__()
    return names


def failure_message(log_text: str) -> str:
    """The one line a client gets for a failed run: the last error of this package in cwltool's
    log (a step's notebook raised it), without colour codes or paths; else a neutral sentence."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", log_text)
    pattern = re.compile(rf"^\s*(?:[\w.]+\.)?(?:{'|'.join(_error_names())}): (.+)$", re.MULTILINE)
    found = pattern.findall(text)
    if found:
        return clean_message(found[-1])
    return "the workflow failed; the server's operator has its log"


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


@dataclass(frozen=True)
class ServerSettings:
    """Who may use the server and how much.

    Attributes
    ----------
    keys : ApiKeys
        The API keys (or ``--insecure-local``).
    limits : JobLimits
        Jobs running at once, in all and per key.
    max_request_bytes : int
        Largest request body (bytes); a larger one is a 413.
    """

    keys: ApiKeys
    limits: JobLimits = JobLimits()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


def create_app(
    config_path: str | os.PathLike[str], openapi_path: str | os.PathLike[str], settings: ServerSettings
) -> Any:
    """The pygeoapi Flask app for a config, with keys, limits, the job routes and ``/outputs``.

    Sets ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` (pygeoapi reads them at import) and
    writes the OpenAPI document first.
    """
    from pygeoapi.openapi import OAPIFormat, generate_openapi_document

    config_path, openapi_path = Path(config_path).resolve(), Path(openapi_path).resolve()
    openapi_path.parent.mkdir(parents=True, exist_ok=True)
    openapi_path.write_text(generate_openapi_document(config_path, OAPIFormat(root="yaml")), encoding="utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
    from pygeoapi.flask_app import APP  # reads the environment above

    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    processor = GlacierVelocityProcessor(config["resources"]["glacier-velocity"]["processor"])
    jobs = Jobs(processor.workdir, processor.run, settings.limits)
    install(
        APP,
        served_process=processor.process_id,
        process_inputs=processor.metadata["inputs"],
        process_outputs=processor.metadata["outputs"],
        jobs=jobs,
        keys=settings.keys,
        base_url=str(config["server"]["url"]).rstrip("/"),
        prepare_job=processor.prepare,
        outputs_route=OUTPUTS_ROUTE,
        max_request_bytes=settings.max_request_bytes,
    )
    return APP


def serve(
    settings: ServerSettings,
    config_path: str | os.PathLike[str] | None = None,
    host: str | None = None,
    port: int | None = None,
    public_url: str | None = None,
    on_start: Callable[[str], object] | None = None,
) -> None:
    """Run the server (werkzeug, threaded) until interrupted.

    ``host``/``port`` override the config's bind address; ``public_url`` is where clients reach
    it (behind a reverse proxy: ``https://ogc.example.org``; default ``http://host:port``), in
    every link and ``Location`` it gives. The effective configuration is written next to the
    job database. ``config_path`` defaults to :data:`DEFAULT_CONFIG` (relative to the working
    directory, as the package path in it is). ``on_start`` receives the process URL
    (``.../processes/glacier-velocity``) just before the server starts listening.

    Raises
    ------
    InvalidParameter
        ``--insecure-local`` (no keys) on an address other than a loopback one.
    """
    from werkzeug.serving import run_simple

    config = yaml.safe_load(Path(config_path or DEFAULT_CONFIG).read_text(encoding="utf-8"))
    bind = config["server"]["bind"]
    host, port = host or bind["host"], int(port or bind["port"])
    if settings.keys.insecure_local and host not in LOOPBACK_HOSTS:
        raise InvalidParameter(
            "insecure_local",
            f"a server without keys listens on this machine only (127.0.0.1, ::1 or localhost), not {host!r}; "
            "give API keys to serve a network",
        )
    old_url = config["server"]["url"]
    url = (public_url or f"http://{host}:{port}").rstrip("/")
    bind.update(host=host, port=port)
    config["server"]["url"] = url
    processor = config["resources"]["glacier-velocity"]["processor"]
    processor["public_url"] = processor["public_url"].replace(old_url, url)
    workdir = Path(config["server"]["manager"]["connection"]).parent
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "results").mkdir(exist_ok=True)
    effective = workdir / "pygeoapi-config.yml"
    effective.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    app = create_app(effective, workdir / "openapi.yml", settings)
    process_url = f"{url}/processes/glacier-velocity"
    log.info("OGC API - Processes at %s", process_url)
    if on_start is not None:
        on_start(process_url)
    run_simple(host, port, app, threaded=True, use_reloader=False)


#: Addresses a server without keys may listen on.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
