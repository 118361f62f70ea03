"""Area of interest: a lon/lat bbox or a GeoJSON geometry, checked and normalised once.

Longitudes and latitudes are WGS84 degrees (EPSG:4326). A bbox is ``(west, south, east,
north)``; areas crossing the antimeridian are not supported (split them, or run each side).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter

#: A bbox in lon/lat degrees: (west, south, east, north).
BBox = tuple[float, float, float, float]


def check_bbox(bbox: Sequence[Any], parameter: str = "bbox") -> BBox:
    """Validate a lon/lat bbox and return it as a tuple of floats.

    Parameters
    ----------
    bbox : sequence of 4 numbers
        ``(west, south, east, north)`` in degrees.
    parameter : str
        Parameter name used in error messages.

    Raises
    ------
    InvalidParameter
        Not 4 finite numbers, out of range (lon -180..180, lat -90..90), or inverted.

    >>> check_bbox([74.4, 35.4, 74.6, 35.6])
    (74.4, 35.4, 74.6, 35.6)
    """
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(parameter, f"must be 4 numbers W S E N (lon/lat degrees), got {bbox!r}") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidParameter(parameter, f"must be 4 finite numbers W S E N (lon/lat degrees), got {bbox!r}")
    west, south, east, north = values
    for name, lon in (("west", west), ("east", east)):
        if not -180.0 <= lon <= 180.0:
            raise InvalidParameter(
                parameter, f"{name} longitude {lon} is outside -180..180; give W S E N in degrees (lon first)"
            )
    for name, lat in (("south", south), ("north", north)):
        if not -90.0 <= lat <= 90.0:
            raise InvalidParameter(
                parameter, f"{name} latitude {lat} is outside -90..90; give W S E N in degrees (lon first)"
            )
    if west >= east:
        raise InvalidParameter(
            parameter,
            f"west {west} is not less than east {east}; the order is W S E N (areas crossing the antimeridian are not supported)",
        )
    if south >= north:
        raise InvalidParameter(parameter, f"south {south} is not less than north {north}; the order is W S E N")
    return west, south, east, north


def check_geometry(geometry: Any, parameter: str = "geometry") -> dict[str, Any]:
    """Validate a GeoJSON AOI (geometry, Feature or FeatureCollection) and return a geometry dict.

    Features of a collection are merged. The result is a (Multi)Polygon in lon/lat degrees.

    Raises
    ------
    InvalidParameter
        Not GeoJSON, not a polygon, empty, invalid, or coordinates out of range.
    """
    if not isinstance(geometry, dict):
        raise InvalidParameter(
            parameter, f"must be a GeoJSON geometry, Feature or FeatureCollection, got {type(geometry).__name__}"
        )
    kind = geometry.get("type")
    try:
        if kind == "FeatureCollection":
            parts = [shape(f["geometry"]) for f in geometry.get("features", []) if f.get("geometry")]
            geom: BaseGeometry = shapely.union_all(parts) if parts else shapely.Polygon()
        elif kind == "Feature":
            geom = shape(geometry["geometry"])
        else:
            geom = shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise InvalidParameter(
            parameter, f"is not a readable GeoJSON geometry ({exc}); give a Polygon in lon/lat degrees"
        ) from exc
    if geom.is_empty:
        raise InvalidParameter(parameter, "the geometry is empty; give a Polygon in lon/lat degrees")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidParameter(parameter, f"must be a Polygon or MultiPolygon (an area), got {geom.geom_type}")
    if not geom.is_valid:
        raise InvalidParameter(
            parameter, f"the polygon is invalid ({shapely.is_valid_reason(geom)}); fix self-intersections"
        )
    west, _, east, _ = geom.bounds
    if east - west > 180:
        # A ring from 179.9 to -179.9 reads as a band round the whole globe the other way.
        raise InvalidParameter(
            parameter,
            f"the area spans {east - west:.1f} degrees of longitude ({west:g} to {east:g}): it crosses the antimeridian "
            "(180 degrees), which GeoJSON rings cannot do unsplit; split it at 180 into one polygon each side "
            "(RFC 7946, 3.1.9) and run each side on its own",
        )
    check_bbox(geom.bounds, parameter)
    return mapping(geom)


def read_aoi(path: str | os.PathLike[str], parameter: str = "geometry") -> dict[str, Any]:
    """Read an AOI from a GeoJSON file (geometry, Feature or FeatureCollection, lon/lat).

    Raises
    ------
    InvalidParameter
        The file cannot be read, is not JSON, or holds no valid polygon.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidParameter(
            parameter, f"cannot read AOI file {str(path)!r} ({exc.strerror or exc}); give an existing GeoJSON file"
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(
            parameter,
            f"AOI file {str(path)!r} is not GeoJSON ({exc}); give a GeoJSON file with a Polygon in lon/lat degrees",
        ) from exc
    return check_geometry(document, parameter)


def aoi_shape(bbox: BBox | None = None, geometry: dict[str, Any] | None = None) -> BaseGeometry:
    """The AOI as a shapely geometry (lon/lat), from a bbox or a GeoJSON geometry."""
    if geometry is not None:
        return shape(geometry)
    if bbox is not None:
        return box(*bbox)
    raise InvalidParameter("bbox", "no area of interest; give a bbox W S E N or a GeoJSON geometry")
