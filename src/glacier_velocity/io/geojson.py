"""GeoJSON documents from a file, an http(s) URL or inline text, with their CRS.

Vector inputs (glacier outlines, points of interest) arrive in three forms: the path of a
file, the URL of a file on a web server, or the GeoJSON text itself (a job file or notebook
parameter can carry it inline). This module turns any of them into the parsed document and
says which coordinate reference system its coordinates are in:

- RFC 7946 GeoJSON has no CRS member and is longitude, latitude (WGS84, EPSG:4326);
- older files (GeoJSON 2008, what ``ogr2ogr`` writes for a projected layer) carry
  ``"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32643"}}``;
- a caller may name the CRS of a file that has none (projected coordinates in a bare file).

URLs are fetched through :mod:`glacier_velocity.io.retry`'s session: bounded retries and the
connect/read timeouts of :class:`~glacier_velocity.io.retry.RetryPolicy`; the URL's own host is
allowed (it was given as a parameter), a redirect elsewhere only to a public address
(:mod:`glacier_velocity.io.outbound`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rasterio.crs import CRS

from ..domain.crs import GEOJSON_CRS, crs_string, parse_crs
from ..errors import InvalidParameter, OutboundRefused
from .outbound import OutboundPolicy
from .retry import RetryPolicy, http_session, last_call, redact

#: Largest GeoJSON accepted (bytes): RGI 7.0's largest region file is about 300 MB as
#: GeoJSON; a clip of one area is a few MB. The cap keeps a wrong URL from filling memory.
MAX_GEOJSON_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class GeoJSONDocument:
    """A parsed GeoJSON document and where it came from.

    Attributes
    ----------
    data : dict
        The parsed JSON object (geometry, Feature or FeatureCollection).
    source : str
        The file path or URL it was read from, or ``"inline GeoJSON"``.
    crs : str
        CRS of its coordinates as a string ``rasterio.crs.CRS.from_user_input`` reads
        (``"EPSG:4326"`` unless the document or the caller said otherwise).
    """

    data: dict[str, Any]
    source: str
    crs: str


def _is_inline(text: str) -> bool:
    return text.lstrip().startswith("{")


def _read_url(url: str, parameter: str, policy: RetryPolicy | None) -> str:
    import requests

    policy = policy or RetryPolicy.from_env()
    try:
        # The URL was given as a parameter: its host is allowed, what it redirects to is checked.
        with http_session(policy, outbound=OutboundPolicy.from_env(trusted=[url])) as session:
            answer = session.get(url, timeout=(policy.connect_timeout_s, policy.read_timeout_s), stream=True)
            if answer.status_code != 200:
                call = last_call()
                attempts = call.attempts if call else policy.attempts
                retried = f" after {attempts} attempt(s)" if answer.status_code in (429, 500, 502, 503, 504) else ""
                raise InvalidParameter(
                    parameter, f"cannot fetch {redact(url)!r} (HTTP {answer.status_code}){retried}; check the URL"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_content(chunk_size=1 << 20):
                size += len(chunk)
                if size > MAX_GEOJSON_BYTES:
                    raise InvalidParameter(
                        parameter,
                        f"{redact(url)!r} is larger than {MAX_GEOJSON_BYTES // 2**20} MB; clip the outlines to the area first",
                    )
                chunks.append(chunk)
    except OutboundRefused as exc:
        raise InvalidParameter(parameter, str(exc)) from None
    except requests.RequestException as exc:
        call = last_call()
        tried = call.describe() if call else f"after {policy.attempts} attempt(s)"
        raise InvalidParameter(
            parameter,
            f"cannot fetch {redact(url)!r} {tried} ({type(exc).__name__}); "
            "check the URL and the network, or download the file and give its path",
        ) from exc
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameter(parameter, f"{redact(url)!r} is not UTF-8 text; give a GeoJSON file") from exc


def _read_file(text: str, parameter: str) -> str:
    path = Path(urlsplit(text).path if text.lower().startswith("file://") else text)
    if path.suffix.lower() in (".shp", ".gpkg", ".zip", ".kml"):
        raise InvalidParameter(
            parameter,
            f"{str(path)!r} is not GeoJSON; convert it first, e.g. ogr2ogr -f GeoJSON outlines.geojson {path.name}",
        )
    try:
        if path.stat().st_size > MAX_GEOJSON_BYTES:
            raise InvalidParameter(
                parameter, f"{str(path)!r} is larger than {MAX_GEOJSON_BYTES // 2**20} MB; clip it to the area first"
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidParameter(
            parameter, f"no file {str(path)!r}; give an existing GeoJSON file, an http(s) URL or inline GeoJSON text"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameter(parameter, f"cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from exc


def _document_crs(data: dict[str, Any], parameter: str) -> CRS | None:
    member = data.get("crs")
    if member is None:
        return None
    # GeoJSON 2008: {"type": "name", "properties": {"name": "<URN or EPSG:n>"}}.
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str):
        raise InvalidParameter(
            parameter,
            f"the 'crs' member {json.dumps(member)[:120]} is not of the form {{'type': 'name', 'properties': {{'name': 'EPSG:...'}}}}",
        )
    return parse_crs(name, parameter)


def load_geojson(
    value: str | os.PathLike[str] | dict[str, Any],
    parameter: str,
    *,
    crs: Any = None,
    policy: RetryPolicy | None = None,
) -> GeoJSONDocument:
    """Read GeoJSON from a path, an http(s) URL, inline text or an already parsed object.

    Parameters
    ----------
    value : str, path-like or dict
        A file path (or ``file://`` URL), an ``http://`` / ``https://`` URL, GeoJSON text
        (starting with ``{``), or a parsed GeoJSON mapping.
    parameter : str
        The user's name of the parameter, used in every error message.
    crs : optional
        CRS of the coordinates when the document has no ``crs`` member (anything
        ``rasterio.crs.CRS.from_user_input`` reads). If the document has one, both must agree.
    policy : RetryPolicy, optional
        Retries and timeouts of a URL; default :meth:`RetryPolicy.from_env`.

    Raises
    ------
    InvalidParameter
        Unreadable file or URL, not JSON, not a JSON object, or an unreadable or contradictory CRS.
    """
    if isinstance(value, dict):
        data, source = value, "inline GeoJSON"
    elif isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text.strip():
            raise InvalidParameter(parameter, "is empty; give a GeoJSON file, an http(s) URL or inline GeoJSON text")
        scheme = urlsplit(text).scheme.lower() if not _is_inline(text) else ""
        if _is_inline(text):
            raw, source = text, "inline GeoJSON"
        elif scheme in ("http", "https"):
            raw, source = _read_url(text, parameter, policy), redact(text)
        elif scheme in ("", "file") or len(scheme) == 1:  # one letter: a Windows drive
            raw, source = _read_file(text, parameter), text
        else:
            raise InvalidParameter(
                parameter,
                f"unsupported URL scheme {scheme!r} in {text[:120]!r}; give a file path, an http(s) URL or inline GeoJSON",
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(parameter, f"{source} is not JSON ({exc}); give GeoJSON") from exc
    else:
        raise InvalidParameter(
            parameter, f"must be a GeoJSON file path, an http(s) URL or GeoJSON text, got {type(value).__name__}"
        )
    if not isinstance(data, dict) or "type" not in data:
        raise InvalidParameter(parameter, f"{source} is not a GeoJSON object (no 'type' member)")
    declared = _document_crs(data, parameter)
    given = parse_crs(crs, parameter) if crs is not None else None
    if declared is not None and given is not None and declared != given:
        raise InvalidParameter(
            parameter,
            f"{source} declares its CRS as {crs_string(declared)} but {crs_string(given)} was given; drop one of them",
        )
    chosen = declared or given or CRS.from_user_input(GEOJSON_CRS)
    return GeoJSONDocument(data=data, source=source, crs=crs_string(chosen))
