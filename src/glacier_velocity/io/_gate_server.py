"""The HTTP server of :class:`~glacier_velocity.io.gdal_http.Gate`: GDAL's requests in, the
outbound policy's session out, the answer relayed as it came (loaded with the first gate)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ..errors import OutboundRefused
from .gdal_http import failure_reason

if TYPE_CHECKING:
    from .gdal_http import Gate

log = logging.getLogger("glacier_velocity.io.gdal_http")

# Connection-level headers (RFC 9110, 7.6.1), not passed on in either direction.
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding")
    + ("upgrade", "host", "content-length")
)
_CHUNK = 1 << 16


class GateServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # GDAL hanging up mid-answer is routine; anything else was logged by the handler.
        log.debug("gate: connection from %s ended with an error", client_address, exc_info=True)


class GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gate: Gate

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("gate: " + format, *args)

    def do_HEAD(self) -> None:
        self._relay("HEAD")

    def do_GET(self) -> None:
        self._relay("GET")

    def _answer(self, status: int) -> None:
        self.send_response_only(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _relay(self, method: str) -> None:
        import requests

        route = self.gate._route(self.path)
        if route is None:
            self._answer(404)
            return
        url, policy = route
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        session = self.gate._session(policy)
        try:
            answer = session.request(
                method,
                url,
                headers=headers,
                stream=True,
                allow_redirects=True,
                timeout=(policy.connect_timeout_s, policy.read_timeout_s),
            )
        except OutboundRefused as exc:
            self.gate._note(url, refused=exc)
            self._answer(403)
            return
        except requests.RequestException as exc:
            self.gate._note(url, failed=failure_reason(exc))
            self._answer(504 if isinstance(exc, requests.Timeout) else 502)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer GDAL, not hang it
            log.exception("gate: request for %s failed", url)
            self.gate._note(url, failed=f"{type(exc).__name__}: {exc}")
            self._answer(502)
            return
        with answer:
            self.send_response_only(answer.status_code)
            for key, value in answer.raw.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            length = answer.headers.get("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
            elif method == "GET":
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", "0")
            self.end_headers()
            if method == "HEAD":
                return
            try:
                for chunk in answer.raw.stream(_CHUNK, decode_content=False):
                    self.wfile.write(chunk)
            except Exception as exc:  # noqa: BLE001 - whatever ended the body (upstream or GDAL hanging up)
                # The status is sent: cut the connection, so that GDAL sees a short answer and retries.
                self.gate._note(url, failed=failure_reason(exc))
                self.close_connection = True


__all__ = ["GateHandler", "GateServer"]
