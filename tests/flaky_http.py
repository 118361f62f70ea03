"""A small HTTP server on 127.0.0.1 that fails on purpose, for the retry and credential tests.

It serves in-memory files (with ``Range`` support, as GDAL's ``/vsicurl/`` needs) and/or
forwards other paths to an upstream server (the local ``rustac serve`` STAC API), rewriting the
upstream root in answers so that links point back here. The first ``fail_first`` requests (or
every request, with ``always_fail``) fail in the way ``mode`` says:

- ``"503"``: answer 503 Service Unavailable (with ``Retry-After`` when ``retry_after`` is set);
- ``"429"``: answer 429 Too Many Requests;
- ``"drop"``: close the connection without answering (the client sees a reset / empty reply).

``redirects`` maps a path (or absolute URL, as a proxy sees it) to a ``Location`` answered with
302 Found. With ``token`` set, requests lacking ``Authorization: Bearer <token>`` get 401 and a body
echoing the header they sent. Every request is recorded in ``requests`` (method, path, headers).
"""

from __future__ import annotations

import http.server
import re
import socket
import struct
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    failed: bool


@dataclass
class FlakyServer:
    files: dict[str, bytes] = field(default_factory=dict)
    upstream: str | None = None
    fail_first: int = 0
    always_fail: bool = False
    mode: str = "503"
    retry_after: str | None = None
    token: str | None = None
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> FlakyServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_HEAD(self) -> None:
                server._handle(self, "HEAD")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def failures(self) -> int:
        return sum(1 for r in self.requests if r.failed)

    # -- handling ---------------------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            fail = self.always_fail or self.failures < self.fail_first
            self.requests.append(Seen(method, handler.path, dict(handler.headers.items()), fail))
        if fail:
            self._fail(handler)
            return
        if self.token is not None and handler.headers.get("Authorization") != f"Bearer {self.token}":
            sent = handler.headers.get("Authorization", "(none)")
            self._send(
                handler,
                401,
                f'{{"code": "Unauthorized", "description": "bad Authorization: {sent}"}}'.encode(),
                "application/json",
                method,
            )
            return
        path = handler.path.split("?", 1)[0]
        if path in self.redirects:
            self._send(handler, 302, b"", "text/plain", method, {"Location": self.redirects[path]})
        elif path in self.files:
            self._send_file(handler, self.files[path], method)
        elif self.upstream is not None:
            self._forward(handler, method, body)
        else:
            self._send(handler, 404, b"not found", "text/plain", method)

    def _fail(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if self.mode == "drop":
            # RST instead of FIN: the client sees "connection reset by peer".
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
            return
        status = int(self.mode)
        extra = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        self._send(handler, status, b'{"code": "unavailable"}', "application/json", "GET", extra)

    def _send(self, handler, status, data, content_type, method, extra=None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(data)

    def _send_file(self, handler, data: bytes, method: str) -> None:
        match = re.match(r"bytes=(\d+)-(\d*)$", handler.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            chunk = data[start : end + 1]
            extra = {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"}
            self._send(handler, 206, chunk, "image/tiff", method, extra)
        else:
            self._send(handler, 200, data, "image/tiff", method, {"Accept-Ranges": "bytes"})

    def _forward(self, handler, method: str, body: bytes) -> None:
        assert self.upstream is not None
        request = urllib.request.Request(self.upstream + handler.path, data=body or None, method=method)
        if handler.headers.get("Content-Type"):
            request.add_header("Content-Type", handler.headers["Content-Type"])
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1 only
                status, data, kind = (
                    answer.status,
                    answer.read(),
                    answer.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as exc:
            status, data, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")
        data = data.replace(self.upstream.encode(), self.url.encode())
        self._send(handler, status, data, kind, method)
