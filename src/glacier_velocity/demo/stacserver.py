"""A local STAC API on 127.0.0.1 for tests and the demo, served by ``rustac serve``.

``rustac serve`` (from the ``rustac`` Python package, installed with the ``workflow`` extra) holds
the items in memory and answers the STAC API item search with ``bbox``, ``intersects``,
``datetime`` and ``collections``. It does **not** apply ``query`` or ``filter``, which is one
reason discovery filters cloud cover on the client side as well.

>>> with serve_stac(["tests/data/stac/items.json"]) as url:  # doctest: +SKIP
...     scenes = search_scenes(DiscoveryParams(stac_url=url, ...))
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac

from ..errors import CatalogError

log = logging.getLogger(__name__)

#: Anything :func:`serve_stac` can load: JSON files (items, item collections, collections),
#: pystac objects, or their dicts.
StacSource = str | os.PathLike[str] | pystac.Item | pystac.Collection | dict[str, Any]


def find_rustac() -> str:
    """Path of the ``rustac`` executable: next to ``sys.executable`` first, then on PATH.

    Raises
    ------
    CatalogError
        rustac is not installed.
    """
    # A venv's console scripts sit next to its python even when the venv is not activated.
    candidate = Path(sys.executable).parent / ("rustac.exe" if os.name == "nt" else "rustac")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("rustac")
    if found:
        return found
    raise CatalogError(
        "cannot start a local STAC API: the 'rustac' executable was found neither next to "
        f"{sys.executable} nor on PATH; install the workflow extra: pip install 'glacier-velocity[workflow]'"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class StacServer:
    """A running ``rustac serve`` process; :meth:`stop` ends it."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    log_path: Path | None = None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (kill it if it does not stop within ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stac_server(
    sources: Iterable[StacSource],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    collection: str | None = None,
    startup_timeout: float = 20.0,
) -> StacServer:
    """Start ``rustac serve`` on a free port with the given items and collections.

    Parameters
    ----------
    sources : iterable
        JSON files (items, item collections or collections), or pystac Items / Collections, or
        their dicts. Objects are written to a temporary directory that lives as long as the
        server. Items without a collection are put in ``collection`` (if given) or in a
        collection rustac creates.
    host : str
        Address to listen on; keep the default 127.0.0.1 (the server is unauthenticated).
    port : int, optional
        TCP port; a free one is picked when None.
    collection : str, optional
        Collection id for items that do not name one.
    startup_timeout : float
        Seconds to wait for ``/collections`` to answer.

    Returns
    -------
    StacServer
        Its ``url`` is the API root, e.g. ``http://127.0.0.1:40123``.

    Raises
    ------
    CatalogError
        rustac is missing, a source file does not exist, or the server did not come up.
    """
    executable = find_rustac()
    workdir = tempfile.TemporaryDirectory(prefix="gv-stac-")
    try:
        hrefs = _materialise(list(sources), Path(workdir.name), collection)
        attempts = 1 if port is not None else 3
        last_error = ""
        for _ in range(attempts):
            # The port can be taken between free_port() and rustac's bind: retry with another.
            chosen = port if port is not None else free_port(host)
            url = f"http://{host}:{chosen}"
            log_path = Path(workdir.name) / f"rustac-{chosen}.log"
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    [executable, "serve", "--create-collections", "--addr", f"{host}:{chosen}", *hrefs],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            server = StacServer(url=url, process=process, workdir=workdir, log_path=log_path)
            if _wait_ready(url, process, startup_timeout):
                log.info("local STAC API at %s serving %d source(s)", url, len(hrefs))
                return server
            server.workdir = None  # keep the directory for the next attempt
            server.stop()
            last_error = log_path.read_text(errors="replace").strip()[-2000:]
        raise CatalogError(f"the local STAC API (rustac serve) did not start on {host}: {last_error or 'no output'}")
    except BaseException:
        workdir.cleanup()
        raise


@contextlib.contextmanager
def serve_stac(
    items_or_paths: Iterable[StacSource],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    collection: str | None = None,
) -> Iterator[str]:
    """Context manager running a local STAC API; yields its root URL and stops it on exit.

    See :func:`start_stac_server` for the parameters.

    >>> with serve_stac(["items.json"]) as url:  # doctest: +SKIP
    ...     Client.open(url).search(collections=["sentinel-2-l2a"]).item_collection()
    """
    server = start_stac_server(items_or_paths, host=host, port=port, collection=collection)
    try:
        yield server.url
    finally:
        server.stop()


def _materialise(sources: list[StacSource], workdir: Path, collection: str | None) -> list[str]:
    hrefs: list[str] = []
    loose: list[dict[str, Any]] = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise CatalogError(f"cannot serve {str(path)!r}: no such file")
            if collection is None:
                hrefs.append(str(path.resolve()))
                continue
            loose.extend(_features(json.loads(path.read_text(encoding="utf-8"))))
        elif isinstance(source, (pystac.Item, pystac.Collection)):
            loose.append(source.to_dict(include_self_link=False, transform_hrefs=False))
        elif isinstance(source, dict):
            loose.extend(_features(source))
        else:
            raise TypeError(f"cannot serve {type(source).__name__}; give JSON file paths, pystac objects or dicts")
    collections = [obj for obj in loose if obj.get("type") == "Collection"]
    items = [obj for obj in loose if obj.get("type") == "Feature"]
    for i, obj in enumerate(collections):
        path = workdir / f"collection-{i}.json"
        path.write_text(json.dumps(obj), encoding="utf-8")
        hrefs.append(str(path))
    if items:
        for item in items:
            if collection is not None and not item.get("collection"):
                item["collection"] = collection
        path = workdir / "items.json"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": items}), encoding="utf-8")
        hrefs.append(str(path))
    return hrefs


def _features(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("type") == "FeatureCollection":
        return [dict(feature) for feature in document.get("features", [])]
    return [dict(document)]


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/collections", timeout=1.0) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False
