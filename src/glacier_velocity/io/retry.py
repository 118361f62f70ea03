"""Network behaviour: bounded retries with backoff, timeouts and credentials from the environment.

Two kinds of requests leave the machine:

- **STAC API requests** (pystac-client, i.e. ``requests``): :func:`stac_api_io` builds a
  session whose adapter retries connection errors, read timeouts and 429/500/502/503/504
  answers with exponential backoff, honours ``Retry-After`` (capped at
  :attr:`RetryPolicy.max_backoff_s`) and gives up after :attr:`RetryPolicy.attempts` tries.
- **Asset reads** (GDAL ``/vsicurl/``, ``/vsis3/``): :func:`gdal_http_options` sets GDAL's own
  retry (``GDAL_HTTP_MAX_RETRY``, ``GDAL_HTTP_RETRY_DELAY``) and timeouts, and
  :func:`call_with_retries` retries a whole open-and-read when GDAL still reports a transient
  failure (connection reset or refused, timeout, 5xx/429).

Both connect only where the outbound-address policy allows (:mod:`.outbound`): every
connection of a session made here is checked after DNS resolution and made to a checked
address, and GDAL reads through the gate of :mod:`.gdal_http`, which uses such a session.

Both are bounded in count and time: at most ``attempts`` tries and, between them, waits of
``backoff_s``, ``2 * backoff_s``, ... each capped at ``max_backoff_s``; a retry is not started
once ``deadline_s`` seconds have passed.

The policy can be tuned without code through environment variables (read on every call, so a
notebook or CWL step inherits them): ``GLACIER_VELOCITY_HTTP_ATTEMPTS``,
``GLACIER_VELOCITY_HTTP_BACKOFF_S``, ``GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S``,
``GLACIER_VELOCITY_HTTP_TIMEOUT_S`` (read timeout), ``GLACIER_VELOCITY_HTTP_DEADLINE_S`` (one
request) and ``GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S`` (a whole search, every page).

Credentials
-----------
A private STAC API's token comes from the environment only: ``GLACIER_VELOCITY_STAC_TOKEN``
is sent as ``Authorization: Bearer <token>`` (or verbatim when it already holds a scheme such as
``Basic ...``), and only to the STAC API's own origin (scheme, host and port), never to a host
a link or redirect points to. It is added when the request is sent, after pystac-client has
logged it, so it never appears in logs; :func:`redact` removes it from any message. Private
S3 buckets use GDAL's own ``AWS_*`` environment variables, which this package never reads.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import CatalogError, InvalidParameter, OutboundRefused
from .outbound import OutboundPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable holding the STAC API token.
TOKEN_ENV = "GLACIER_VELOCITY_STAC_TOKEN"

#: HTTP answers worth retrying: too many requests and server-side failures.
RETRY_STATUS = (429, 500, 502, 503, 504)

# Substrings of GDAL/curl error messages that mark a transient network failure. A 404, a
# file that is not a TIFF or a permission error is not among them: retrying cannot help.
_TRANSIENT = re.compile(
    r"HTTP (?:response )?code[: ]*(?:429|5\d\d)|\b(?:429|50[0234])\b.*(?:error|code)|"
    r"timed? ?out|connection (?:was )?reset|reset by peer|connection refused|couldn't connect|"
    r"could not connect|failed to connect|empty reply|recv failure|send failure|transfer closed|"
    r"connection died|broken pipe|temporar(?:y|ily)|unexpected eof",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a network request is tried.

    Attributes
    ----------
    attempts : int
        Total tries, the first included (>= 1).
    backoff_s : float
        Wait before the second try (s); doubles for each further try.
    max_backoff_s : float
        Longest single wait (s), also the cap on a server's ``Retry-After``.
    connect_timeout_s : float
        Seconds to establish a connection.
    read_timeout_s : float
        Seconds to wait for the next bytes of an answer.
    deadline_s : float
        Seconds a whole request may take, from its first try: every try, the waits between
        them, connecting, sending, the headers and the body (``requests``); no retry is
        started that would pass it (GDAL reads, :func:`call_with_retries`).
    search_deadline_s : float
        Seconds a whole STAC search may take, every page and request of it (:class:`SearchBound`):
        a slow server paging one item at a time cannot hold a run for hours.
    """

    attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    deadline_s: float = 300.0
    # Earth Search answers a page of 100 items in 1-5 s: the 50 pages of max_items = 5000 fit
    # in a few minutes, 600 s leaves room for a slow day and its retries.
    search_deadline_s: float = 600.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or not 1 <= self.attempts <= 20:
            raise InvalidParameter("attempts", f"must be an integer 1-20 (tries per request), got {self.attempts!r}")
        for name in (
            "backoff_s",
            "max_backoff_s",
            "connect_timeout_s",
            "read_timeout_s",
            "deadline_s",
            "search_deadline_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
                raise InvalidParameter(name, f"must be a number of seconds >= 0, got {value!r}")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise InvalidParameter("timeout", "timeouts must be > 0 s")

    def delay(self, retry: int) -> float:
        """Wait (s) before retry number ``retry`` (1 = the second try)."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (retry - 1)))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RetryPolicy:
        """The default policy, with overrides from ``GLACIER_VELOCITY_HTTP_*`` variables.

        Raises
        ------
        InvalidParameter
            A variable is set but not a number in range; the message names the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        variables = {}
        for var, name, kind in _POLICY_ENV:
            text = env.get(var)
            if text is None or text.strip() == "":
                continue
            variables[name] = var
            try:
                values[name] = kind(text)
            except ValueError as exc:
                raise InvalidParameter(
                    var, f"must be a {kind.__name__}, got {text!r}; fix or unset the environment variable"
                ) from exc
        if "read_timeout_s" in values:
            values["connect_timeout_s"] = min(cls.connect_timeout_s, values["read_timeout_s"])
            variables["connect_timeout_s"] = variables["timeout"] = variables["read_timeout_s"]
        if "backoff_s" in values and "max_backoff_s" not in values:
            values["max_backoff_s"] = max(cls.max_backoff_s, values["backoff_s"])
            variables["max_backoff_s"] = variables["backoff_s"]
        try:
            return cls(**values)
        except InvalidParameter as exc:
            raise InvalidParameter(variables.get(exc.parameter, exc.parameter), str(exc)) from exc


#: Environment variables overriding the default :class:`RetryPolicy`: (name, field, type).
_POLICY_ENV = (
    ("GLACIER_VELOCITY_HTTP_ATTEMPTS", "attempts", int),
    ("GLACIER_VELOCITY_HTTP_BACKOFF_S", "backoff_s", float),
    ("GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S", "max_backoff_s", float),
    ("GLACIER_VELOCITY_HTTP_TIMEOUT_S", "read_timeout_s", float),
    ("GLACIER_VELOCITY_HTTP_DEADLINE_S", "deadline_s", float),
    ("GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S", "search_deadline_s", float),
)


# --- Credentials ---------------------------------------------------------------------------------


def stac_token() -> str | None:
    """The STAC API token from ``GLACIER_VELOCITY_STAC_TOKEN``, or None when unset or empty."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def authorization_value(token: str) -> str:
    """``Authorization`` header value: ``Bearer <token>`` unless the token names its scheme."""
    return token if re.match(r"^(Bearer|Basic|Token)\s", token, re.IGNORECASE) else f"Bearer {token}"


def redact(text: str) -> str:
    """``text`` with the STAC token (and its header value) replaced by ``***``."""
    token = stac_token()
    if not token:
        return text
    for secret in sorted({authorization_value(token), token}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


# --- STAC API requests ---------------------------------------------------------------------------


@dataclass
class HttpCall:
    """One HTTP call under a :class:`RetryPolicy`: its attempts so far and its deadline.

    Attributes
    ----------
    started : float
        ``time.monotonic()`` when the first attempt began (s).
    deadline : float
        ``started + policy.deadline_s``: no byte is waited for after it, whether connecting,
        sending, reading the headers or the body.
    attempts : int
        Requests really sent (or begun) so far, the first included.
    cut : bool
        True when the deadline stopped the call.
    """

    started: float
    deadline: float
    attempts: int = 0
    cut: bool = False

    @property
    def deadline_s(self) -> float:
        """The deadline, in seconds after the first attempt."""
        return self.deadline - self.started

    def remaining(self) -> float:
        """Seconds left before the deadline (<= 0 when passed)."""
        return self.deadline - time.monotonic()

    def describe(self) -> str:
        """``after N attempt(s)``, and the deadline when it cut the call (for messages)."""
        if self.cut:
            return (
                f"within the deadline of {self.deadline_s:g} s (GLACIER_VELOCITY_HTTP_DEADLINE_S): "
                f"no complete answer after {self.attempts} attempt(s)"
            )
        return f"after {self.attempts} attempt(s)"


# The call in progress (or last made) in this thread/context: the deadline socket reads it on
# every send and receive, so the deadline also bounds the body that requests reads after the
# adapter has returned the headers.
_CALL: ContextVar[HttpCall | None] = ContextVar("glacier_velocity_http_call", default=None)
# The end (time.monotonic()) of the search in progress, when a SearchBound applies.
_SEARCH_END: ContextVar[float | None] = ContextVar("glacier_velocity_search_end", default=None)


def last_call() -> HttpCall | None:
    """The HTTP call last made through :func:`http_adapter` in this context (None before any)."""
    return _CALL.get()


class _DeadlineSocket:
    """A connected socket whose every send and receive ends by the current call's deadline.

    A per-operation timeout (``requests``' read timeout) never fires for a server that drips
    one byte a second; here each operation waits at most the time left before the deadline of
    :data:`_CALL`, so a whole request (headers and body) cannot outlast it.
    """

    def __init__(self, sock: Any):
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _arm(self) -> None:
        call = _CALL.get()
        if call is None:
            return
        remaining = call.remaining()
        if remaining <= 0:
            call.cut = True
            raise TimeoutError(f"deadline of {call.deadline_s:g} s passed")
        self._sock.settimeout(remaining if self._timeout is None else min(self._timeout, remaining))

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        try:
            return int(self._sock.recv_into(buffer, nbytes, flags))
        except TimeoutError:
            self._mark_cut()
            raise

    def recv(self, size: int, flags: int = 0) -> bytes:
        self._arm()
        try:
            return bytes(self._sock.recv(size, flags))
        except TimeoutError:
            self._mark_cut()
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        self._sock.sendall(data, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return int(self._sock.send(data, flags))

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        # http.client reads the answer through this file: it must read through recv_into above.
        # Like socket.makefile, count the file as a user of the socket: http.client closes the
        # socket of a "Connection: close" answer before its body is read, and the socket may
        # only really close once the file is closed too (else: EBADF reading the body).
        self._sock._io_refs += 1
        raw = socket.SocketIO(self, "rb" if "r" in mode else "wb")  # type: ignore[arg-type]
        return io.BufferedReader(raw) if "r" in mode else io.BufferedWriter(raw)

    def _mark_cut(self) -> None:
        call = _CALL.get()
        if call is not None and call.remaining() <= 0:
            call.cut = True


def _checked_conn(connection: Any, outbound: OutboundPolicy, new_conn: Callable[[], Any]) -> Any:
    """``new_conn()`` of a urllib3 connection, made only to addresses ``outbound`` allows.

    The host is resolved once and checked (:meth:`OutboundPolicy.addresses`), then each
    allowed address is tried in turn by urllib3 itself (``_dns_host``): the address connected
    to is one that was checked. TLS still verifies the host name (``host``), not the address.
    A connection to a proxy is the proxy's (the adapter checked the URL before sending).
    """
    import socket as socket_module

    from urllib3.exceptions import NameResolutionError, NewConnectionError

    if connection.proxy is not None:
        return new_conn()
    host = connection._dns_host
    try:
        addresses = outbound.addresses(host, connection.port, f"{host}:{connection.port}")
    except socket_module.gaierror as exc:
        raise NameResolutionError(connection.host, connection, exc) from exc
    failed: NewConnectionError | None = None
    try:
        for address in addresses:
            connection._dns_host = address
            try:
                return new_conn()
            except NewConnectionError as exc:
                failed = exc
    finally:
        connection._dns_host = host
    assert failed is not None  # addresses() never returns an empty list
    raise failed


def _deadline_pools(outbound: OutboundPolicy) -> dict[str, type]:
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class DeadlineHTTPConnection(HTTPConnection):
        def _new_conn(self) -> Any:
            return _checked_conn(self, outbound, super()._new_conn)

        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock)

    class DeadlineHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> Any:
            return _checked_conn(self, outbound, super()._new_conn)

        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock)

    class Pool(HTTPConnectionPool):
        ConnectionCls = DeadlineHTTPConnection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = DeadlineHTTPSConnection

    return {"http": Pool, "https": TLSPool}


def _retry_after(response: Any, policy: RetryPolicy) -> float | None:
    """The server's ``Retry-After`` (s), capped at ``max_backoff_s`` so a server cannot stall us."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.util.retry import Retry

    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(min(Retry(0).parse_retry_after(value), policy.max_backoff_s))
    except InvalidHeader:
        return None


def http_adapter(
    policy: RetryPolicy,
    token: str | None = None,
    origin_url: str | None = None,
    outbound: OutboundPolicy | None = None,
) -> Any:
    """A ``requests`` adapter with the retry policy and its deadline, adding the token for ``origin_url`` only.

    Every connection, redirects included, goes only where ``outbound`` allows (default: the
    operator's allow-list and the host of ``origin_url``, :meth:`OutboundPolicy.from_env`); a
    refused request raises :class:`~glacier_velocity.errors.OutboundRefused` naming its URL,
    without being sent or retried.

    Each call (:meth:`send`) is tried at most ``policy.attempts`` times: connection errors,
    timeouts and 429/500/502/503/504 answers are retried after ``policy.delay`` (or the
    server's ``Retry-After``, capped at ``max_backoff_s``). The whole call - every attempt,
    the waits between them, connecting, sending, the headers and the body - ends by
    ``policy.deadline_s``; a retry is not started when its wait would pass it. The call's
    true attempt count and whether the deadline cut it are in :func:`last_call`.
    """
    import requests
    from requests.adapters import HTTPAdapter
    from requests.utils import select_proxy

    header = authorization_value(token) if token else None
    origin = _origin(origin_url) if origin_url else None
    allowed = outbound or OutboundPolicy.from_env(trusted=[origin_url])
    pools = _deadline_pools(allowed)

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def send(
            self,
            request: Any,
            stream: bool = False,
            timeout: Any = None,
            verify: Any = True,
            cert: Any = None,
            proxies: Any = None,
        ) -> Any:
            # Added here, after pystac-client logged the prepared request, and only for the
            # API's own origin: a link or redirect to another host never receives the token.
            if header and origin and _origin(request.url) == origin:
                request.headers["Authorization"] = header
            try:
                if proxies and select_proxy(request.url, proxies):
                    allowed.check_url(request.url)  # the proxy connects: check the URL's host here
                return self._send(request, stream, timeout, verify, cert, proxies)
            except OutboundRefused as refused:
                raise OutboundRefused(redact(str(request.url)), named_hosts=refused.named_hosts) from None

        def _send(self, request: Any, stream: bool, timeout: Any, verify: Any, cert: Any, proxies: Any) -> Any:
            started = time.monotonic()
            # Inside a search (SearchBound), no request outlasts the search's own deadline.
            outer = _SEARCH_END.get()
            call = HttpCall(started, min(started + policy.deadline_s, outer if outer is not None else math.inf))
            _CALL.set(call)
            while True:
                call.attempts += 1
                remaining = max(call.remaining(), 0.001)
                if isinstance(timeout, tuple):
                    bounded: Any = (min(timeout[0] or remaining, remaining), timeout[1])
                else:
                    bounded = (min(timeout or remaining, remaining), timeout)
                try:
                    response = super().send(request, stream, bounded, verify, cert, proxies)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    if isinstance(exc, requests.exceptions.SSLError) or not self._again(call, request.url, None, exc):
                        raise
                    continue
                if response.status_code in RETRY_STATUS and self._again(call, request.url, response, None):
                    response.close()
                    continue
                return response

        def _again(self, call: HttpCall, url: str, response: Any, error: BaseException | None) -> bool:
            """Whether to retry; waits first when so."""
            if call.cut or call.remaining() <= 0:
                call.cut = True
                return False
            if call.attempts >= policy.attempts:
                return False
            wait = policy.delay(call.attempts)
            if response is not None:
                wait = _retry_after(response, policy) or wait
            if wait >= call.remaining():
                return False
            what = f"HTTP {response.status_code}" if response is not None else type(error).__name__
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1f s",
                redact(str(url)),
                call.attempts,
                policy.attempts,
                what,
                wait,
            )
            time.sleep(wait)
            return True

    return Adapter(max_retries=0)


def http_session(
    policy: RetryPolicy | None = None, stac_url: str | None = None, outbound: OutboundPolicy | None = None
) -> Any:
    """A ``requests.Session`` retrying per ``policy``, connecting only where ``outbound`` allows.

    With ``stac_url``, the STAC token (if set) is added to requests for that API's origin
    only (STAC items of a private catalogue); without, no request carries it (plain file
    downloads). ``outbound`` defaults to the operator's allow-list and the host of
    ``stac_url`` (:meth:`OutboundPolicy.from_env`). The caller passes
    ``timeout=(policy.connect_timeout_s, policy.read_timeout_s)`` to each request; ``requests``
    has no session-wide timeout.
    """
    import requests

    adapter = http_adapter(policy or RetryPolicy.from_env(), stac_token() if stac_url else None, stac_url, outbound)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class SearchBound:
    """The bounds of one whole STAC search, over all its requests and pages.

    Attributes
    ----------
    deadline_s : float
        Seconds the search may take from ``started``: no request is begun after it, and a
        request in flight is cut at it (:func:`http_adapter`).
    max_pages : int
        Pages of results the search may read, all its item searches together.
    pages_rule : str
        How ``max_pages`` was reached, for the message (e.g. ``"one per season year and one
        per 10 items of max_items 5000"``).
    started : float
        ``time.monotonic()`` when the search began.
    pages, items : int
        Pages and items (features) read so far.
    """

    deadline_s: float
    max_pages: int
    pages_rule: str = ""
    started: float = field(default_factory=time.monotonic)
    pages: int = 0
    items: int = 0

    @property
    def end(self) -> float:
        """``time.monotonic()`` at the deadline."""
        return self.started + self.deadline_s

    def remaining(self) -> float:
        """Seconds left before the deadline (<= 0 when passed)."""
        return self.end - time.monotonic()

    def expired(self, url: str) -> CatalogError:
        """The error of a search stopped by its deadline."""
        return CatalogError(
            f"the search at {redact(url)} did not finish within the deadline of {self.deadline_s:g} s for a whole "
            f"search (GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S): {self.pages} page(s) with {self.items} item(s) read; "
            "the catalogue answers too slowly - try again later, narrow the search (--aoi, years, months) or raise "
            "GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S"
        )

    def too_many_pages(self, url: str) -> CatalogError:
        """The error of a search stopped by its page bound."""
        return CatalogError(
            f"the search at {redact(url)} was still sending pages after {self.pages} page(s) holding {self.items} "
            f"item(s), the most a search may read ({self.pages_rule}); the catalogue pages far more finely than asked "
            "- narrow the search (--aoi, years, months), or report it to its operator"
        )


def stac_api_io(stac_url: str, policy: RetryPolicy | None = None, bound: SearchBound | None = None) -> Any:
    """A pystac-client ``StacApiIO`` with timeouts, bounded retries and the token, if any.

    Its pages are checked as they come (:func:`_paging_stac_api_io_class`): a page that is not
    a page of results, JSON nested past what Python reads, a ``next`` link back to a page
    already read, and a search past ``bound`` end in a :class:`~glacier_velocity.errors.CatalogError`.

    Parameters
    ----------
    stac_url : str
        Root of the STAC API; the token is sent to this origin only.
    policy : RetryPolicy, optional
        Default :meth:`RetryPolicy.from_env`.
    bound : SearchBound, optional
        Deadline and page count of the whole search this IO serves (every request through it).
    """
    policy = policy or RetryPolicy.from_env()
    stac_io = _paging_stac_api_io_class()(timeout=(policy.connect_timeout_s, policy.read_timeout_s), max_retries=None)
    stac_io.api_url = stac_url
    stac_io.bound = bound
    adapter = http_adapter(policy, stac_token(), stac_url)
    stac_io.session.mount("http://", adapter)
    stac_io.session.mount("https://", adapter)
    return stac_io


def _next_link(page: dict[str, Any], url: str) -> dict[str, Any] | None:
    """The page's ``next`` link as pystac-client reads it, checked; None on the last page."""
    links = page.get("links")
    found = [
        link
        for link in (links if isinstance(links, list) else [])
        if isinstance(link, dict) and link.get("rel") == "next"
    ]
    if not found:
        return None
    link = found[0]
    method = link.get("method", "GET")
    clean = {"rel": "next", "href": link.get("href"), "method": method, "merge": bool(link.get("merge", False))}
    for key in ("body", "headers"):
        if key in link:
            clean[key] = link[key]
    if (
        not isinstance(clean["href"], str)
        or method not in ("GET", "POST")
        or not isinstance(clean.get("body", {}), dict)
        or not isinstance(clean.get("headers", {}), dict)
        or not all(isinstance(v, str) for v in clean.get("headers", {}).values())
    ):
        raise CatalogError(
            f"the STAC API at {redact(url)} sent a malformed 'next' link ({redact(repr(link))[:200]}); its paging is "
            "broken - report it to its operator, or narrow the search (--aoi, years) to fit one page"
        )
    return clean


def _entry_id(entry: Any) -> str | None:
    """The string id of a page entry, None for anything else (ids are checked per item later)."""
    value = entry.get("id") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def _paging_stac_api_io_class() -> type:
    from pystac import Link
    from pystac_client.stac_api_io import StacApiIO

    class PagingStacApiIO(StacApiIO):
        """StacApiIO that checks every page of results and bounds the whole search.

        - a page that is not a JSON object with a list of ``features`` (or ``collections``),
          or JSON nested deeper than Python reads, is a ``CatalogError``;
        - a ``next`` link leading back to a page already read stops the search (a catalogue
          whose ``next`` link points to itself would otherwise be followed until ``max_items``);
        - with a :class:`SearchBound`, no request begins or runs past its deadline and no page
          is read past its page count.
        """

        api_url: str = ""
        bound: SearchBound | None = None

        def json_loads(self, txt: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return json.loads(txt)
            except RecursionError:
                raise CatalogError(
                    f"the STAC API at {redact(self.api_url)} answered JSON nested deeper than can be read (about "
                    f"{sys.getrecursionlimit()} levels; a STAC item needs about 8); the catalogue sent a malformed "
                    "answer - report it to its operator, or narrow the search (--aoi, years) to avoid it"
                ) from None

        def request(self, href: str, *args: Any, **kwargs: Any) -> str:
            bound = self.bound
            if bound is None:
                return str(super().request(href, *args, **kwargs))
            if bound.remaining() <= 0:
                raise bound.expired(self.api_url)
            token = _SEARCH_END.set(bound.end)
            try:
                return str(super().request(href, *args, **kwargs))
            except Exception as exc:
                if bound.remaining() <= 0:
                    raise bound.expired(self.api_url) from exc
                raise
            finally:
                _SEARCH_END.reset(token)

        def get_pages(self, url: str, method: str | None = None, parameters: dict[str, Any] | None = None) -> Any:
            seen: set[str] = set()
            source: Any = url
            count = 0
            while True:
                bound = self.bound
                if bound is not None and bound.pages >= bound.max_pages:
                    raise bound.too_many_pages(self.api_url)
                page = (
                    self.read_json(source, method=method, parameters=parameters)
                    if count == 0
                    else self.read_json(source, parameters=parameters)
                )
                count += 1
                entries = (page.get("features") or page.get("collections")) if isinstance(page, dict) else None
                if not isinstance(page, dict) or not isinstance(entries or [], list):
                    raise CatalogError(
                        f"the STAC API at {redact(self.api_url)} answered {redact(str(source))[:200]} with something "
                        "that is not a page of search results (a JSON object with a list of features); check "
                        "--stac-url, or report it to its operator"
                    )
                if not entries:
                    return
                if bound is not None:
                    bound.pages += 1
                    bound.items += len(entries)
                key = json.dumps([_entry_id(entry) for entry in entries])
                if key in seen:
                    links = [
                        link for link in page.get("links") or [] if isinstance(link, dict) and link.get("rel") == "next"
                    ]
                    href = redact(str(links[0].get("href"))) if links else "(none)"
                    raise CatalogError(
                        f"the STAC API at {redact(url.split('/search')[0])} sent the same page of search results twice "
                        f"(its 'next' link {href} leads back to a page already read, after {count} page(s)); the "
                        "catalogue's paging is broken - report it to its operator, or narrow the search (--aoi, years) "
                        "to fit one page"
                    )
                seen.add(key)
                yield page
                link = _next_link(page, self.api_url)
                if link is None:
                    return
                source = Link.from_dict(link)

    return PagingStacApiIO


# --- Asset reads ---------------------------------------------------------------------------------


def gdal_http_options(policy: RetryPolicy | None = None) -> dict[str, Any]:
    """GDAL configuration options for HTTP reads under ``policy`` (for ``rasterio.Env``)."""
    policy = policy or RetryPolicy.from_env()
    return {
        "GDAL_HTTP_MAX_RETRY": policy.attempts - 1,
        "GDAL_HTTP_RETRY_DELAY": max(policy.backoff_s, 0.001),
        "GDAL_HTTP_RETRY_CODES": ",".join(str(code) for code in RETRY_STATUS),
        "GDAL_HTTP_CONNECTTIMEOUT": max(1, round(policy.connect_timeout_s)),
        # curl's bound on a whole transfer (connect, headers, body): within the deadline too.
        "GDAL_HTTP_TIMEOUT": max(1, round(min(policy.read_timeout_s, policy.deadline_s))),
    }


def is_transient(error: BaseException) -> bool:
    """Whether a read error looks like a network hiccup worth retrying."""
    return bool(_TRANSIENT.search(str(error)))


def call_with_retries(
    action: Callable[[int], T],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``action(attempt)`` until it succeeds, a non-transient error occurs, or the policy ends.

    Parameters
    ----------
    action : callable
        Called with the attempt number (1-based).
    what : str
        What is being fetched, for the log (e.g. the URL).
    policy : RetryPolicy, optional
        Default :meth:`RetryPolicy.from_env`.
    transient : callable
        Decides whether an error of ``retry_on`` types is worth another try.
    retry_on : tuple of exception types
        Only these are considered for a retry; others propagate at once.
    sleep, clock : callable
        Waiting and the monotonic clock (s); replaceable in tests.

    Returns
    -------
    The value of the first successful call.

    Raises
    ------
    The last error, with ``attempts`` (int) set on it, once the attempts or the deadline are
    used up or the error is not transient.
    """
    policy = policy or RetryPolicy.from_env()
    started = clock()
    attempt = 1
    while True:
        try:
            return action(attempt)
        except retry_on as exc:
            elapsed = clock() - started
            wait = policy.delay(attempt)
            if attempt >= policy.attempts or not transient(exc) or elapsed + wait > policy.deadline_s:
                # The error is another library's (OSError, RasterioError, requests'), which declares
                # no such attribute; readers use getattr(exc, "attempts", 1). The one ignore that stays.
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1f s",
                what,
                attempt,
                policy.attempts,
                redact(" ".join(str(exc).split())[:200]),
                wait,
            )
            sleep(wait)
            attempt += 1


__all__ = [
    "RETRY_STATUS",
    "TOKEN_ENV",
    "HttpCall",
    "RetryPolicy",
    "SearchBound",
    "authorization_value",
    "call_with_retries",
    "gdal_http_options",
    "http_adapter",
    "is_transient",
    "last_call",
    "redact",
    "stac_api_io",
    "stac_token",
]
