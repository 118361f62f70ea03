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

Both are bounded in count and time: at most ``attempts`` tries and, between them, waits of
``backoff_s``, ``2 * backoff_s``, ... each capped at ``max_backoff_s``; a retry is not started
once ``deadline_s`` seconds have passed.

The policy can be tuned without code through environment variables (read on every call, so a
notebook or CWL step inherits them): ``GLACIER_VELOCITY_HTTP_ATTEMPTS``,
``GLACIER_VELOCITY_HTTP_BACKOFF_S``, ``GLACIER_VELOCITY_HTTP_MAX_BACKOFF_S``,
``GLACIER_VELOCITY_HTTP_TIMEOUT_S`` (read timeout) and ``GLACIER_VELOCITY_HTTP_DEADLINE_S``.

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

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import InvalidParameter

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
        No retry is started after this many seconds since the first try.
    """

    attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    deadline_s: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or not 1 <= self.attempts <= 20:
            raise InvalidParameter("attempts", f"must be an integer 1-20 (tries per request), got {self.attempts!r}")
        for name in ("backoff_s", "max_backoff_s", "connect_timeout_s", "read_timeout_s", "deadline_s"):
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


def _retry(policy: RetryPolicy) -> Any:
    from urllib3.util.retry import Retry

    class BoundedRetry(Retry):
        """urllib3 Retry whose ``Retry-After`` waits are capped, so a server cannot stall us."""

        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(value, policy.max_backoff_s)

    retries = policy.attempts - 1
    return BoundedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        # urllib3 2 waits 0 before the first retry, then backoff_factor * 2**(n-1).
        backoff_factor=policy.backoff_s / 2,
        backoff_max=policy.max_backoff_s,
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # searches are POSTs, and reads all the same
        respect_retry_after_header=True,
        raise_on_status=False,  # the final answer reaches the caller with its status code
    )


def http_adapter(policy: RetryPolicy, token: str | None = None, origin_url: str | None = None) -> Any:
    """A ``requests`` adapter with the retry policy, adding the token for ``origin_url`` only."""
    from requests.adapters import HTTPAdapter

    header = authorization_value(token) if token else None
    origin = _origin(origin_url) if origin_url else None

    class Adapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            # Added here, after pystac-client logged the prepared request, and only for the
            # API's own origin: a link or redirect to another host never receives the token.
            if header and origin and _origin(request.url) == origin:
                request.headers["Authorization"] = header
            return super().send(request, *args, **kwargs)

    return Adapter(max_retries=_retry(policy))


def http_session(policy: RetryPolicy | None = None, stac_url: str | None = None) -> Any:
    """A ``requests.Session`` retrying per ``policy``.

    With ``stac_url``, the STAC token (if set) is added to requests for that API's origin
    only (STAC items of a private catalogue); without, no request carries it (plain file
    downloads). The caller passes ``timeout=(policy.connect_timeout_s, policy.read_timeout_s)``
    to each request; ``requests`` has no session-wide timeout.
    """
    import requests

    adapter = http_adapter(policy or RetryPolicy.from_env(), stac_token() if stac_url else None, stac_url)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def stac_api_io(stac_url: str, policy: RetryPolicy | None = None) -> Any:
    """A pystac-client ``StacApiIO`` with timeouts, bounded retries and the token, if any.

    Parameters
    ----------
    stac_url : str
        Root of the STAC API; the token is sent to this origin only.
    policy : RetryPolicy, optional
        Default :meth:`RetryPolicy.from_env`.
    """
    policy = policy or RetryPolicy.from_env()
    stac_io = _paging_stac_api_io_class()(timeout=(policy.connect_timeout_s, policy.read_timeout_s), max_retries=None)
    adapter = http_adapter(policy, stac_token(), stac_url)
    stac_io.session.mount("http://", adapter)
    stac_io.session.mount("https://", adapter)
    return stac_io


def _paging_stac_api_io_class() -> type:
    from pystac_client.stac_api_io import StacApiIO

    class PagingStacApiIO(StacApiIO):
        """StacApiIO that stops when a ``next`` link leads back to a page already read.

        A catalogue whose ``next`` link points to itself would otherwise be followed until
        ``max_items`` (thousands of requests, all the same page).
        """

        def get_pages(self, url: str, method: str | None = None, parameters: dict[str, Any] | None = None) -> Any:
            import json

            seen: set[str] = set()
            for count, page in enumerate(super().get_pages(url, method, parameters), start=1):
                ids = [entry.get("id") for entry in page.get("features") or page.get("collections") or []]
                key = json.dumps(ids)
                if key in seen:
                    from ..errors import CatalogError

                    links = [link for link in page.get("links", []) if link.get("rel") == "next"]
                    href = redact(str(links[0].get("href"))) if links else "(none)"
                    raise CatalogError(
                        f"the STAC API at {redact(url.split('/search')[0])} sent the same page of search results twice "
                        f"(its 'next' link {href} leads back to a page already read, after {count} page(s)); the "
                        "catalogue's paging is broken - report it to its operator, or narrow the search (--aoi, years) "
                        "to fit one page"
                    )
                seen.add(key)
                yield page

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
        "GDAL_HTTP_TIMEOUT": max(1, round(policy.read_timeout_s)),
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
    "RetryPolicy",
    "authorization_value",
    "call_with_retries",
    "gdal_http_options",
    "http_adapter",
    "is_transient",
    "redact",
    "stac_api_io",
    "stac_token",
]
