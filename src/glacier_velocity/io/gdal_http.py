"""GDAL's HTTP reads, made through this package's HTTP stack and its outbound-address policy.

GDAL reads remote COGs with its own curl, which cannot be told where it may connect: curl
resolves names itself, follows redirects silently, probes with HEAD, and ``no_proxy`` sends it
around any proxy. So GDAL never gets an asset's URL. :meth:`Gate.path_for` gives it a URL on a
gate on 127.0.0.1 instead, and :data:`NO_CURL_PROXY` keeps curl off any proxy, so that it only
ever talks to the gate. The gate makes GDAL's request - the same method, ``Range`` and other
end-to-end headers - with a ``requests`` session under the
:class:`~glacier_velocity.io.outbound.OutboundPolicy` (every address checked after DNS
resolution and after each redirect, the connection made to a checked address) and the
timeouts and deadline of the :class:`~glacier_velocity.io.retry.RetryPolicy`, and hands the
answer back as it came: status, headers, body. GDAL's retries and range logic are unchanged,
and nothing is retried twice (the gate's session tries once; GDAL and
:func:`~glacier_velocity.io.retry.call_with_retries` retry).

What the gate could not do is recorded per URL: a refused address (:meth:`Gate.refusal`, a
403 to GDAL) and a failed connection (:meth:`Gate.failure`, e.g. ``Connection reset by peer``,
a 502 or 504 to GDAL); :func:`~glacier_velocity.io.raster.read_window` turns them into its
messages. The gate fetches only the URLs registered with :meth:`Gate.path_for` (anything else
is a 404), so no other process can use it as a proxy. There is one gate per outbound policy,
started on first use and serving until the process ends.

``s3://`` assets are read by GDAL's ``/vsis3/`` directly: it signs its requests and goes to
AWS (or the operator's ``AWS_S3_ENDPOINT``), never to a host a catalogue names.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import OutboundRefused
from .outbound import OutboundPolicy
from .retry import RetryPolicy, http_session

log = logging.getLogger(__name__)

#: GDAL options keeping curl off any proxy (an empty proxy string disables the environment's
#: ``http_proxy``/``https_proxy`` too): GDAL talks to the gate on 127.0.0.1 only, and the gate's
#: session uses the environment's proxies.
NO_CURL_PROXY = {"GDAL_HTTP_PROXY": "", "GDAL_HTTPS_PROXY": ""}


def failure_reason(error: BaseException) -> str:
    """The innermost cause of a ``requests`` failure, in words (``Connection reset by peer``).

    requests and urllib3 wrap the socket's error in two or three layers whose messages name
    the connection pool; the socket's own words are what a reader needs.
    """
    import requests

    if isinstance(error, requests.Timeout):
        return "timed out"
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, requests.RequestException):
            return str(current.strerror or current)[:200]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [cause for cause in (current.__cause__, current.__context__) if cause is not None]
    return " ".join(str(error).split())[:200]


class Gate:
    """A local HTTP server that makes GDAL's requests under an outbound policy.

    Parameters
    ----------
    outbound : OutboundPolicy
        Where the gate's requests may go.
    """

    def __init__(self, outbound: OutboundPolicy):
        self.outbound = outbound
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[str, RetryPolicy]] = {}
        self._tokens: dict[tuple[str, RetryPolicy], str] = {}
        self._sessions: dict[RetryPolicy, Any] = {}
        self._refused: dict[str, OutboundRefused] = {}
        self._failed: dict[str, str] = {}
        # The HTTP server is loaded with the first gate: a run that reads only local files never
        # imports http.server and http.client (0.03-0.05 s of CPU in every process).
        from ._gate_server import GateHandler, GateServer

        handler = type("GateHandler", (GateHandler,), {"gate": self})
        self._server = GateServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="gdal-http-gate", daemon=True).start()

    def path_for(self, url: str, policy: RetryPolicy) -> str:
        """The ``/vsicurl/`` path GDAL opens to read ``url`` through the gate.

        The same URL and policy always get the same path, so GDAL's cache serves repeated reads.
        """
        with self._lock:
            token = self._tokens.get((url, policy))
            if token is None:
                token = secrets.token_hex(12)
                self._tokens[(url, policy)] = token
                self._routes[token] = (url, policy)
            self._refused.pop(url, None)
            self._failed.pop(url, None)
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "asset"
        return f"/vsicurl/{self.base}/{token}/{quote(name)}"

    def refusal(self, url: str) -> OutboundRefused | None:
        """The refusal of the last request for ``url`` (or a redirect of it), if it was refused."""
        with self._lock:
            return self._refused.get(url)

    def failure(self, url: str) -> str | None:
        """Why the last request for ``url`` got no answer (a connection error), if it got none."""
        with self._lock:
            return self._failed.get(url)

    def _route(self, path: str) -> tuple[str, RetryPolicy] | None:
        token = path.lstrip("/").split("/", 1)[0]
        with self._lock:
            return self._routes.get(token)

    def _session(self, policy: RetryPolicy) -> Any:
        with self._lock:
            session = self._sessions.get(policy)
            if session is None:
                session = http_session(replace(policy, attempts=1), outbound=self.outbound)
                self._sessions[policy] = session
            return session

    def _note(self, url: str, refused: OutboundRefused | None = None, failed: str | None = None) -> None:
        with self._lock:
            if refused is not None:
                self._refused[url] = refused
            if failed is not None:
                self._failed[url] = failed


_GATES: dict[OutboundPolicy, Gate] = {}
_GATES_LOCK = threading.Lock()


def gate(outbound: OutboundPolicy) -> Gate:
    """The gate of ``outbound`` (started on first use)."""
    with _GATES_LOCK:
        found = _GATES.get(outbound)
        if found is None:
            found = _GATES[outbound] = Gate(outbound)
        return found


__all__ = ["NO_CURL_PROXY", "Gate", "failure_reason", "gate"]
