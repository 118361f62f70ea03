"""Points of interest: named lon/lat (or projected) positions where a time series is wanted.

The ``points_of_interest`` parameter arrives as

- a list of ``(lon, lat)`` pairs (a job file or notebook parameter: ``[[76.13, 36.20], ...]``);
- a string of ``lon,lat`` pairs separated by ``;`` (``"76.13,36.20; 76.14,36.21"``), the form a
  command line or an ADES string input carries;
- GeoJSON Point / MultiPoint geometries, Features or a FeatureCollection, as a file path, an
  http(s) URL or inline text (read with :func:`glacier_velocity.io.geojson.load_geojson`).
  A feature's ``name`` (or ``id``) property names its point.

Points are kept in the CRS they were given in; :meth:`PointOfInterest.in_crs` reprojects.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rasterio.warp import transform

from ..domain.crs import GEOJSON_CRS, parse_crs
from ..errors import InvalidParameter
from .geojson import load_geojson

#: The parameter's name, used in every error message.
PARAMETER = "points_of_interest"

_PAIR = re.compile(r"^\s*([-+0-9.eE]+)\s*[, ]\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class PointOfInterest:
    """One named point.

    Attributes
    ----------
    name : str
        Label in figures and statistics (the GeoJSON ``name``/``id``, else ``P1``, ``P2``...).
    x, y : float
        Coordinates in ``crs`` (longitude, latitude in degrees for EPSG:4326).
    crs : str
        CRS of ``x``, ``y``.
    """

    name: str
    x: float
    y: float
    crs: str = GEOJSON_CRS

    def in_crs(self, crs: Any) -> tuple[float, float]:
        """``(x, y)`` of the point in another CRS."""
        source, target = parse_crs(self.crs, PARAMETER), parse_crs(crs, "crs")
        if source == target:
            return self.x, self.y
        xs, ys = transform(source, target, [self.x], [self.y])
        return float(xs[0]), float(ys[0])


def _checked(name: str, x: Any, y: Any, crs: str) -> PointOfInterest:
    try:
        xf, yf = float(x), float(y)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(PARAMETER, f"point {name}: ({x!r}, {y!r}) are not two numbers (lon, lat)") from exc
    if not (math.isfinite(xf) and math.isfinite(yf)):
        raise InvalidParameter(PARAMETER, f"point {name}: ({xf}, {yf}) is not finite")
    if parse_crs(crs, PARAMETER).is_geographic and not (-180 <= xf <= 180 and -90 <= yf <= 90):
        raise InvalidParameter(
            PARAMETER,
            f"point {name}: ({xf:g}, {yf:g}) is not longitude, latitude; give lon first, then lat, in degrees",
        )
    return PointOfInterest(name, xf, yf, crs)


def _from_geojson(value: Any) -> tuple[PointOfInterest, ...]:
    document = load_geojson(value, PARAMETER)
    data = document.data
    if data.get("type") == "FeatureCollection":
        features = data.get("features") or []
    elif data.get("type") == "Feature":
        features = [data]
    else:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    points: list[PointOfInterest] = []
    for number, feature in enumerate(features, start=1):
        geometry = (feature or {}).get("geometry") or {}
        props = (feature or {}).get("properties") or {}
        label = str(props.get("name") or feature.get("id") or props.get("id") or f"P{len(points) + 1}")
        kind = geometry.get("type")
        if kind == "Point":
            coords = [geometry.get("coordinates")]
        elif kind == "MultiPoint":
            coords = geometry.get("coordinates") or []
        else:
            raise InvalidParameter(
                PARAMETER,
                f"{document.source}: feature {number} is a {kind}; points of interest must be Point features "
                "(give polygons as glacier_outlines)",
            )
        for index, xy in enumerate(coords):
            if not isinstance(xy, (list, tuple)) or len(xy) < 2:
                raise InvalidParameter(PARAMETER, f"{document.source}: feature {number} has no (x, y) coordinates")
            name = label if len(coords) == 1 else f"{label}-{index + 1}"
            points.append(_checked(name, xy[0], xy[1], document.crs))
    return tuple(points)


def read_points_of_interest(value: Any) -> tuple[PointOfInterest, ...]:
    """Read the ``points_of_interest`` parameter (see the module docstring for its forms).

    Returns an empty tuple for None, ``""`` or an empty list.

    Raises
    ------
    InvalidParameter
        Named ``points_of_interest``: not numbers, out of lon/lat range, duplicate names, or
        GeoJSON that holds something else than points.

    >>> [(p.name, p.x, p.y) for p in read_points_of_interest("76.13,36.20; 76.14,36.21")]
    [('P1', 76.13, 36.2), ('P2', 76.14, 36.21)]
    """
    if value is None:
        return ()
    if isinstance(value, PointOfInterest):
        return (value,)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value).strip()
        if not text:
            return ()
        parts = [p for p in text.split(";") if p.strip()]
        if all(_PAIR.match(p) for p in parts):
            pairs = [_PAIR.match(p).groups() for p in parts]  # type: ignore[union-attr]
            points = tuple(_checked(f"P{i + 1}", x, y, GEOJSON_CRS) for i, (x, y) in enumerate(pairs))
        else:
            points = _from_geojson(text)
    elif isinstance(value, dict):
        points = _from_geojson(value)
    elif isinstance(value, Sequence):
        items = list(value)
        if items and all(isinstance(p, PointOfInterest) for p in items):
            points = tuple(items)
        else:
            bad = [p for p in items if not (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2)]
            if bad:
                raise InvalidParameter(PARAMETER, f"expected [lon, lat] pairs, got {bad[0]!r}")
            points = tuple(_checked(f"P{i + 1}", x, y, GEOJSON_CRS) for i, (x, y) in enumerate(items))
    else:
        raise InvalidParameter(PARAMETER, f"must be lon/lat pairs or GeoJSON points, got {type(value).__name__}")
    names = [p.name for p in points]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidParameter(PARAMETER, f"point names must be unique; {', '.join(duplicates)} appear more than once")
    return points
