"""Running the workflow in containers: the container engine, a local file server, the
containerized demo.

In the demo the scene COGs are files on this machine, and the items' ``nir`` hrefs are their
absolute paths. A container sees none of them: cwltool stages only CWL ``File``/``Directory``
inputs, and the tools receive item URLs as strings. So for a containerized run the demo's
files are served over HTTP on 127.0.0.1 (with byte ranges, as GDAL reads COGs) and the items
served by the STAC API point there. Containers share the host network here, so both servers
are reachable from inside them, and the run then reads its scenes exactly as it reads Earth
Search's: over HTTP through GDAL's ``/vsicurl/``.

``glacier-velocity demo-container`` runs it (``make demo-container``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContainerEngineUnavailable, InputError

if TYPE_CHECKING:
    from ..demo.runner import DemoResult

log = logging.getLogger(__name__)

#: Image the CWL sources' DockerRequirement hint names (``cwl/*.cwl``).
LOCAL_IMAGE = "glacier-velocity:latest"
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def container_engine() -> str:
    """Name of a container CLI that answers: ``docker`` (also podman's Docker-compatible API
    through ``DOCKER_HOST``) or ``podman``.

    Raises
    ------
    ContainerEngineUnavailable
        Neither answers.
    """
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        try:
            probe = subprocess.run([engine, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return engine
    raise ContainerEngineUnavailable(
        "no container engine answers: start Docker, or start podman's Docker-compatible API "
        "(`podman system service`) and export DOCKER_HOST=unix://<its socket>"
    )


def image_exists(image: str, engine: str | None = None) -> bool:
    """Whether ``image`` is in the local image store (no pull is attempted)."""
    engine = engine or container_engine()
    return subprocess.run([engine, "image", "inspect", image], capture_output=True, timeout=60).returncode == 0


class _RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges (RFC 9110), which GDAL's ``/vsicurl/`` requires."""

    #: Bytes of the requested range still to send; None for a whole-file answer.
    _remaining: int | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("file server: " + format, *args)

    def send_head(self) -> Any:
        header = self.headers.get("Range")
        if header is None:
            return super().send_head()
        path = Path(self.translate_path(self.path))
        match = _RANGE_RE.match(header.strip())
        if not path.is_file() or match is None or match.groups() == ("", ""):
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = self._remaining
        if remaining is None:
            super().copyfile(source, outputfile)
            return
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


@contextlib.contextmanager
def serve_files(root: str | os.PathLike[str], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a directory over HTTP (byte ranges supported) on a free port while in the block.

    Parameters
    ----------
    root : path-like
        Directory to serve (read only).
    host : str
        Address to bind; loopback by default.

    Yields
    ------
    str
        Base URL, e.g. ``http://127.0.0.1:41234``.
    """
    handler = lambda *args, **kwargs: _RangeRequestHandler(*args, directory=str(root), **kwargs)  # noqa: E731
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="file-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


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
    from .. import demo
    from ..demo.rundirs import prepare_demo_directory, record_demo_results
    from ..demo.scenes import DEMO_OUTLINES_FILE
    from ..demo.stacserver import serve_stac

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
    root = demo.find_project_root(project_root)
    demo_dir = Path(demo_dir).resolve()
    # Refuses a directory holding files the demo did not make, before anything is written.
    results = prepare_demo_directory(demo_dir)
    data = demo.generate_demo_data(demo_dir / "data")
    try:
        with serve_files(data.root) as files_url:
            items = items_with_http_assets(data.items, data.root, files_url, data.items.with_name("items-http.json"))
            with serve_stac([data.collection, items]) as stac_url:
                log.info("demo STAC API at %s, scene files at %s", stac_url, files_url)
                # The containers see the demo files only through the file server; the outlines go
                # inline, as an ADES would pass them, so no step depends on that server for them.
                outlines = (data.root / DEMO_OUTLINES_FILE).read_text(encoding="utf-8")
                job = demo.write_job(
                    root / demo.DEMO_PARAMS,
                    demo_dir / "job.yml",
                    data_location=files_url,
                    stac_url=stac_url,
                    **{"glacier_outlines": outlines, **(overrides or {})},
                )
                outputs, cwl_log = demo.run_cwltool(
                    process or root / demo.WORKFLOW, job, results, containers=True, extra_args=extra_args, quiet=True
                )
    finally:
        # What results/ holds now is the demo's own: the next run may replace it.
        record_demo_results(demo_dir)
    return demo.demo_result(outputs, results, data.truth, cwl_log)
