"""An overall deadline on HTTP (issue 11, finding 13): a server dripping one byte a second
cannot hold a request past ``GLACIER_VELOCITY_HTTP_DEADLINE_S``, and the attempt count in the
message is the number of requests really made.

The server is a socket server on 127.0.0.1 that answers every request one byte per second,
either from the status line on (``"headers"``) or after complete headers (``"body"``), and
stops after :data:`DRIP_BYTES` bytes (a bounded loop): a per-read timeout never fires for it.
"""

from __future__ import annotations

import socketserver
import threading
import time

import pytest

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.errors import InputError
from glacier_velocity.io.retry import RetryPolicy, gdal_http_options

# Every server here is on 127.0.0.1 and stands for a remote one: the operator allows it.
pytestmark = pytest.mark.usefixtures("loopback_allowed")

#: Bytes sent before the server gives up on a connection (one per second).
DRIP_BYTES = 20
DEADLINE_S = 3.0
#: Time allowed past the deadline (s): the current read returns or is cut within it.
SLACK_S = 1.5

BODY = b'{"type": "Catalog", "id": "slow", "description": "x", "stac_version": "1.0.0", "links": []}'
ANSWER_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)


class DripServer:
    def __init__(self, mode: str):
        self.mode = mode
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self) -> DripServer:
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                with server._lock:
                    server.requests.append(head.split(b"\r\n", 1)[0].decode())
                data = ANSWER_HEAD + BODY
                if server.mode == "body":
                    self.request.sendall(ANSWER_HEAD)
                    data = BODY
                for byte in data[:DRIP_BYTES]:
                    try:
                        self.request.sendall(bytes([byte]))
                    except OSError:
                        return
                    time.sleep(1.0)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def _numbers_as_in_the_doc(message: str) -> str:
    # The doc writes the deadline and the count as <seconds> and <n>.
    return message.replace("deadline of 3 s", "deadline of <seconds> s").replace("after 1 attempt", "after <n> attempt")


@pytest.fixture(autouse=True)
def policy(monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_DEADLINE_S", f"{DEADLINE_S:g}")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_ATTEMPTS", "4")
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.05")
    # Longer than the gap between bytes: a per-read timeout alone never fires.
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_TIMEOUT_S", "5")


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_discover_stops_at_the_deadline_with_the_true_attempt_count(mode, capsys, tmp_path):
    with DripServer(mode) as server:
        started = time.monotonic()
        code = main(
            ["discover", "--stac-url", server.url, "--aoi", "74.4,35.4,74.6,35.6"]
            + ["--start-year", "2020", "--end-year", "2020", "--out", str(tmp_path / "pairs.json")]
        )
        elapsed = time.monotonic() - started
        assert len(server.requests) == 1
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < DEADLINE_S + SLACK_S
    message = err.strip().split("error: ", 1)[1]
    assert message == (
        f"cannot reach the STAC API at {server.url} within the deadline of 3 s (GLACIER_VELOCITY_HTTP_DEADLINE_S): "
        "no complete answer after 1 attempt(s); check --stac-url (the root of a STAC API, e.g. "
        "https://earth-search.aws.element84.com/v1) and the network"
    )
    assert_documented(_numbers_as_in_the_doc(message), server.url)


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_item_fetch_stops_at_the_deadline_with_the_true_attempt_count(mode):
    from glacier_velocity.stac.scene import read_item

    with DripServer(mode) as server:
        started = time.monotonic()
        with pytest.raises(InputError) as caught:
            read_item(f"{server.url}/items/a.json", "reference")
        elapsed = time.monotonic() - started
        assert len(server.requests) == 1
    assert elapsed < DEADLINE_S + SLACK_S
    message = str(caught.value)
    # The error type depends on where the deadline cut: in the headers or in the body.
    error = "ReadTimeout" if mode == "headers" else "ConnectionError"
    assert message == (
        f"reference: cannot fetch the STAC item '{server.url}/items/a.json' within the deadline of 3 s "
        f"(GLACIER_VELOCITY_HTTP_DEADLINE_S): no complete answer after 1 attempt(s) ({error}); check the URL and "
        "the network, or try again later"
    )
    assert_documented(_numbers_as_in_the_doc(message), repr(f"{server.url}/items/a.json"), error)


def test_gdal_reads_follow_the_deadline():
    # GDAL_HTTP_TIMEOUT is curl's bound on a whole transfer (connect, headers, body).
    options = gdal_http_options(RetryPolicy(read_timeout_s=60.0, deadline_s=10.0))
    assert options["GDAL_HTTP_TIMEOUT"] == 10
    assert gdal_http_options(RetryPolicy(read_timeout_s=30.0, deadline_s=300.0))["GDAL_HTTP_TIMEOUT"] == 30


def test_a_connection_close_answer_is_read_whole_through_the_deadline_socket():
    """A server that closes after its answer (HTTP/1.0, ``Connection: close``): http.client
    closes the socket as soon as the headers are in, before the body is read, so the deadline
    socket must keep the connection open for the body (it raised EBADF half the time)."""
    import requests

    from glacier_velocity.io.retry import http_adapter

    body = b"x" * 200_000

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.2)  # the client has the headers, and has closed its socket, before the body
            self.request.sendall(body)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            session = requests.Session()
            session.mount("http://", http_adapter(RetryPolicy(deadline_s=10.0)))
            for _ in range(3):
                answer = session.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5)
                assert answer.status_code == 200 and answer.content == body
        finally:
            server.shutdown()
