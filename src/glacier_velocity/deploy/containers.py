"""Running the workflow in containers: the container engine, and a local file server with byte ranges.

A container sees none of this machine's files: cwltool stages only CWL ``File``/``Directory``
inputs, and the tools receive item URLs as strings. Files a run reads by URL (the demo's scene
COGs, :func:`glacier_velocity.demo.run.run_demo_in_containers`) are therefore served over HTTP
on 127.0.0.1 (:func:`serve_files`, with byte ranges, as GDAL reads COGs); containers share the
host network here, so the server is reachable from inside them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import ContainerEngineUnavailable

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
