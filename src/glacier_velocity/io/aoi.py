"""The ``aoi`` parameter, read and checked once into an :class:`~glacier_velocity.domain.aoi.AOI`.

The user gives it as one value, in every interface (CLI ``--aoi``, CWL input, notebook
parameter, job files, an OGC execute request): ``"W,S,E,N"``, GeoJSON text, or the http(s)
URL or path of a GeoJSON file (a CWL ``File`` arrives here as its staged path).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..domain.aoi import AOI, PARAMETER
from ..domain.crs import GEOJSON_CRS
from ..errors import InvalidParameter
from .atomic import write_text_atomic
from .geojson import load_geojson

#: "W,S,E,N": numbers separated by commas or spaces (four, checked by :func:`check_bbox`).
_BBOX_TEXT = re.compile(r"^[-+0-9.eE,\s]*[0-9][-+0-9.eE,\s]*$")


def parse_aoi(value: AOI | str | os.PathLike[str] | Sequence[Any] | dict[str, Any], parameter: str = PARAMETER) -> AOI:
    """Read the ``aoi`` parameter, in any of the forms a user or an ADES passes.

    Parameters
    ----------
    value : AOI, str, path-like, sequence of 4 numbers or dict
        ``"W,S,E,N"`` (lon/lat degrees, e.g. ``"75.194,36.201,75.424,36.411"``); GeoJSON text
        (starting with ``{``); an http(s) URL or a file path of a GeoJSON file; a
        ``(west, south, east, north)`` sequence or a parsed GeoJSON mapping (Python callers);
        or an AOI (returned as it is). GeoJSON is a (Multi)Polygon, a Feature or a
        FeatureCollection (merged) in lon/lat, read by :func:`glacier_velocity.io.geojson.load_geojson`
        (the reader of the glacier outlines).
    parameter : str
        The user's name of the parameter, used in every error message.

    Raises
    ------
    InvalidParameter
        Named ``aoi``: not 4 numbers, out of range or inverted; an unreadable file or URL;
        not GeoJSON; no valid polygon; coordinates in another CRS than lon/lat.

    >>> parse_aoi("74.4,35.4,74.6,35.6").bbox
    (74.4, 35.4, 74.6, 35.6)
    """
    if isinstance(value, AOI):
        return value
    if isinstance(value, str) and _BBOX_TEXT.match(value):
        try:
            numbers = [float(v) for v in re.split(r"[,\s]+", value.strip())]
        except ValueError as exc:
            raise InvalidParameter(parameter, f"must be 4 numbers W,S,E,N (lon/lat degrees), got {value!r}") from exc
        return AOI.from_bbox(numbers, parameter)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return AOI.from_bbox(value, parameter)
    if not isinstance(value, (str, os.PathLike, dict)):
        raise InvalidParameter(
            parameter,
            f"must be W,S,E,N (lon/lat degrees), GeoJSON text, or the URL or path of a GeoJSON file, got {type(value).__name__}",
        )
    try:
        document = load_geojson(value, parameter)
    except InvalidParameter as exc:
        if exc.detail.startswith("no file "):
            # Text that is no file may be a bbox typed another way ("74.4;35.4;...").
            raise InvalidParameter(
                parameter,
                f"{exc.detail.rsplit('; give', 1)[0]}: give W,S,E,N (four numbers, lon/lat degrees, e.g. "
                "75.194,36.201,75.424,36.411), GeoJSON text, an http(s) URL or the path of an existing GeoJSON file",
            ) from exc
        raise
    if document.crs != GEOJSON_CRS:
        raise InvalidParameter(
            parameter,
            f"{document.source} is in {document.crs}; give the area of interest in lon/lat: "
            "ogr2ogr -t_srs EPSG:4326 aoi.geojson in.geojson",
        )
    return AOI.from_geojson(document.data, document.source, parameter)


def write_aoi(aoi: AOI, path: str | os.PathLike[str]) -> Path:
    """Write the AOI's polygon as a GeoJSON FeatureCollection (lon/lat), atomically.

    The run stores its AOI once, beside the summary; each product item records only
    :meth:`~glacier_velocity.domain.aoi.AOI.record` (source, bbox, vertex count, SHA-256 of the
    polygon), which the feature's properties repeat. :func:`parse_aoi` reads the file back.
    """
    feature = {"type": "Feature", "properties": aoi.record(), "geometry": aoi.geometry}
    return write_text_atomic(path, json.dumps({"type": "FeatureCollection", "features": [feature]}))
