"""The job routes of the OGC API - Processes server, as Part 1: Core says, behind API keys.

pygeoapi serves the landing page, the conformance classes, the OpenAPI document and the process
description; :func:`install` puts these in front of every route and takes over the job routes,
where pygeoapi 0.21 departs from the standard:

- every request needs a key (:mod:`.ogc_access`): 401 without one; a job and its files answer
  only to the key that created it (any other key gets the 404 of an unknown job);
- ``POST /processes/{id}/execution`` checks the inputs (:mod:`.ogc_inputs`; 400 naming the input)
  and queues a job (:mod:`.ogc_jobs`). With ``Prefer: respond-async``: 201, the job's
  ``statusInfo`` document and ``Location: /jobs/{id}``; otherwise it waits and answers the results
  document (200), or the job's failure (500);
- ``GET /jobs``, ``GET /jobs/{id}`` (``accepted`` -> ``running`` -> ``successful``/``failed``),
  ``DELETE /jobs/{id}`` (stops a running job's processes and removes its files);
- ``GET /jobs/{id}/results``: the results document ``{output id: value or link}`` (JSON whatever
  the ``Accept``), 404 ``result-not-ready`` before the end, 500 with the failure's message after
  a failure;
- ``GET /outputs/{id}/outputs/...``: the job's output files, the links of the results document;
- a request body larger than the limit is a 413; errors are JSON documents with a ``type`` URI, a
  ``title``, the ``status`` and one ``detail`` line - no path, colour code or traceback (those
  go to the server log).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from .ogc_access import ApiKeys
from .ogc_inputs import check_inputs
from .ogc_jobs import ACCEPTED, FAILED, RUNNING, SUCCESSFUL, Job, Jobs, NoSuchJob

log = logging.getLogger(__name__)

_OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
#: Exception types: the three OGC API - Processes 1.0 defines, and the usual ones for the rest.
NO_SUCH_PROCESS = _OGC + "no-such-process"
NO_SUCH_JOB = _OGC + "no-such-job"
RESULT_NOT_READY = _OGC + "result-not-ready"
INVALID_PARAMETER = _OGC + "invalid-parameter"
JOB_FAILED = _OGC + "failed"
#: RFC 9457: no more meaning than the HTTP status (401, 413, 405, 500).
ABOUT_BLANK = "about:blank"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# An absolute path (not the path part of a URL): shown as its last component.
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)+([\w.@+~-]+)")


def clean_message(text: str, limit: int = 1000) -> str:
    """``text`` as one line for a client: no colour codes, absolute paths reduced to their file name."""
    text = _ANSI.sub("", text)
    text = _PATH.sub(lambda m: m.group(1), text)
    return " ".join(text.split())[:limit]


def problem(status: int, type_: str, title: str, detail: str, headers: Mapping[str, str] | None = None) -> Any:
    """A JSON exception answer (OGC API exception schema, RFC 9457 members)."""
    from flask import Response

    body = {"type": type_, "title": title, "status": status, "detail": clean_message(detail)}
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=dict(headers or {}))


def _json(document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Any:
    from flask import Response

    return Response(
        json.dumps(document, indent=2), status=status, mimetype="application/json", headers=dict(headers or {})
    )


def install(
    app: Any,
    *,
    served_process: str,
    process_inputs: Mapping[str, Any],
    process_outputs: Mapping[str, Any],
    jobs: Jobs,
    keys: ApiKeys,
    base_url: str,
    prepare_job: Callable[[Path, Mapping[str, Any]], None],
    outputs_route: str,
    max_request_bytes: int,
) -> None:
    """Install authentication, limits and the job routes on the pygeoapi Flask ``app``.

    Parameters
    ----------
    served_process : str
        Id of the one process served.
    process_inputs, process_outputs : mapping
        Its description's inputs and outputs.
    jobs : Jobs
        The job manager.
    keys : ApiKeys
        Who may use the server.
    base_url : str
        The server's public URL (``server.url`` of the configuration).
    prepare_job : callable
        Writes a job's files into its directory from the checked input values.
    outputs_route : str
        Route of the job files (``/outputs``).
    max_request_bytes : int
        Largest request body accepted.
    """
    from flask import g, request, send_from_directory
    from werkzeug.exceptions import HTTPException

    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.before_request
    def authenticate() -> Any:
        owner = keys.owner(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
        if owner is None:
            return problem(
                401,
                ABOUT_BLANK,
                "Unauthorized",
                "this server needs an API key: send it as 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')",
                {"WWW-Authenticate": 'Bearer realm="glacier-velocity"'},
            )
        g.owner = owner
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if error.code == 413:
            detail = f"the request body is larger than {max_request_bytes} bytes, this server's limit"
        else:
            detail = error.description or error.name
        return problem(error.code or 500, ABOUT_BLANK, error.name, detail)

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Any:
        log.exception("request %s %s failed", request.method, request.path)
        return problem(
            500, ABOUT_BLANK, "Internal Server Error", "the server failed; its operator has the details in its log"
        )

    def execute(process_id: str) -> Any:
        if process_id != served_process:
            return problem(404, NO_SUCH_PROCESS, "No such process", f"there is no process {process_id!r}")
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return problem(
                400, INVALID_PARAMETER, "Bad request", 'the body must be a JSON execute request {"inputs": {...}}'
            )
        try:
            values = check_inputs(body.get("inputs") or {}, process_inputs)
            wanted = _requested_outputs(body.get("outputs"), process_outputs)
            if body.get("response", "raw") not in ("raw", "document"):
                raise InvalidParameter("response", "must be 'raw' or 'document'")
            job = jobs.submit(
                g.owner, served_process, {"outputs": wanted}, lambda directory: prepare_job(directory, values)
            )
        except InvalidParameter as exc:
            return problem(400, INVALID_PARAMETER, "Invalid input", str(exc))
        headers = {"Location": f"{base_url}/jobs/{job.id}"}
        if "respond-async" in request.headers.get("Prefer", ""):
            headers["Preference-Applied"] = "respond-async"
            return _json(job.status_info(base_url), 201, headers)
        job.done.wait()
        return _results(job, headers)

    def jobs_route(job_id: str | None = None) -> Any:
        if job_id is None:
            listed = [j.status_info(base_url) for j in jobs.list(g.owner)]
            return _json(
                {"jobs": listed, "links": [{"href": f"{base_url}/jobs", "rel": "self", "type": "application/json"}]}
            )
        try:
            if request.method == "DELETE":
                return _json(jobs.dismiss(g.owner, job_id).status_info(base_url))
            return _json(jobs.get(g.owner, job_id).status_info(base_url))
        except NoSuchJob:
            return _no_such_job(job_id)

    def results_route(job_id: str) -> Any:
        try:
            job = jobs.get(g.owner, job_id)
        except NoSuchJob:
            return _no_such_job(job_id)
        return _results(job)

    def outputs(job_id: str, path: str) -> Any:
        try:
            job = jobs.get(g.owner, job_id)
        except NoSuchJob:
            return _no_such_job(job_id)
        folder = (job.directory / "outputs").resolve()
        relative = path.removeprefix("outputs/")
        target = (folder / relative).resolve()
        # Only the workflow's outputs (not job.json or the log), and nothing a link takes elsewhere.
        if not path.startswith("outputs/") or folder not in target.parents or not target.is_file():
            return problem(404, ABOUT_BLANK, "Not Found", f"job {job_id} has no output {path!r}")
        return send_from_directory(folder, relative)

    def _results(job: Job, headers: Mapping[str, str] | None = None) -> Any:
        if job.status in (ACCEPTED, RUNNING):
            return problem(404, RESULT_NOT_READY, "Result not ready", f"job {job.id} is {job.status}", headers)
        if job.status == FAILED:
            return problem(500, JOB_FAILED, "Job failed", job.message, headers)
        if job.status != SUCCESSFUL or job.results is None:
            return _no_such_job(job.id)
        return _json(job.results, 200, headers)

    def _no_such_job(job_id: str) -> Any:
        return problem(404, NO_SUCH_JOB, "No such job", f"there is no job {job_id!r}")

    app.view_functions["pygeoapi.execute_process_jobs"] = execute
    app.view_functions["pygeoapi.get_jobs"] = jobs_route
    app.view_functions["pygeoapi.get_job_result"] = results_route
    app.add_url_rule(f"{outputs_route}/<job_id>/<path:path>", "glacier_velocity_outputs", outputs, methods=["GET"])


def _requested_outputs(outputs: Any, described: Mapping[str, Any]) -> list[str]:
    """Names of the outputs an execute request asks for (empty: all)."""
    if outputs is None:
        return []
    if not isinstance(outputs, Mapping):
        raise InvalidParameter("outputs", 'must be a JSON object of output name -> {"transmissionMode": ...}')
    unknown = [name for name in outputs if name not in described]
    if unknown:
        raise InvalidParameter(
            "outputs", f"glacier-velocity has no output {unknown[0]!r}; its outputs are {', '.join(described)}"
        )
    return list(outputs)


__all__ = [
    "ABOUT_BLANK",
    "INVALID_PARAMETER",
    "JOB_FAILED",
    "NO_SUCH_JOB",
    "NO_SUCH_PROCESS",
    "RESULT_NOT_READY",
    "clean_message",
    "install",
    "problem",
]
