"""Polygons from GeoJSON: the one check that the area of interest and the glacier outlines share.

Both arrive as a GeoJSON geometry, Feature or FeatureCollection. :func:`labelled_geometries`
names each geometry the way a user finds it in the file (an RGI id, a glacier or feature
name, or its number); :func:`polygon_parts` reads them into shapely (Multi)Polygons:
collections are unpacked, empty parts skipped, invalid rings repaired (keeping the areas of
the repair), and anything that is not an area is refused with the geometry's name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import GeometryCollection, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter

log = logging.getLogger(__name__)

#: Geometry types that are areas.
AREAL = ("Polygon", "MultiPolygon")


def _polygon(rings: Sequence[Any]) -> shapely.Polygon:
    arrays = [np.asarray(ring, dtype=np.float64) for ring in rings]
    return shapely.Polygon(arrays[0], holes=arrays[1:] or None)


def geojson_shape(geometry: dict[str, Any]) -> BaseGeometry:
    """A GeoJSON geometry as a shapely geometry; (Multi)Polygons are built from arrays.

    :func:`shapely.geometry.shape` walks every vertex in Python: 3 s for a 1e6-vertex
    outline, and an AOI's polygon is needed by several stages. Anything else, or
    coordinates that do not form arrays, goes through ``shape`` (and its error messages).
    """
    kind = geometry.get("type")
    try:
        if kind == "Polygon":
            return _polygon(geometry["coordinates"])
        if kind == "MultiPolygon":
            return shapely.MultiPolygon([_polygon(part) for part in geometry["coordinates"]])
    except (ValueError, TypeError, IndexError, KeyError, shapely.errors.GEOSException):
        pass
    return shape(geometry)


def labelled_geometries(data: dict[str, Any], source: str, parameter: str) -> list[tuple[str, Any]]:
    """Each GeoJSON geometry of ``data`` with a name for messages; a Feature without geometry is left out.

    Raises
    ------
    InvalidParameter
        A FeatureCollection without a ``features`` list, or a feature that is not an object.
    """
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise InvalidParameter(parameter, f"{source}: a FeatureCollection needs a 'features' list")
        out = []
        for number, feature in enumerate(features, start=1):
            if not isinstance(feature, dict):
                raise InvalidParameter(parameter, f"{source}: feature {number} is not a GeoJSON Feature")
            props = feature.get("properties") or {}
            label = str(props.get("rgi_id") or props.get("glac_name") or props.get("name") or f"feature {number}")
            if feature.get("geometry") is not None:
                out.append((label, feature["geometry"]))
        return out
    if kind == "Feature":
        geometry = data.get("geometry")
        return [] if geometry is None else [("the feature", geometry)]
    return [("the geometry", data)]


def polygon_parts(
    geometries: Iterable[tuple[str, Any]], source: str, parameter: str, *, not_an_area: str
) -> list[BaseGeometry]:
    """The (Multi)Polygons of named GeoJSON (or shapely) geometries.

    Parameters
    ----------
    geometries : iterable of (label, geometry)
        GeoJSON geometry mappings or shapely geometries, each with its name for messages.
    source : str
        Where they were read from (a path, a URL, ``"inline GeoJSON"``).
    parameter : str
        The user's name of the parameter, for every message.
    not_an_area : str
        What to tell the user when a geometry is a point or a line (what to give instead).

    Returns
    -------
    list of shapely Polygon or MultiPolygon, valid and non-empty (possibly none).

    Raises
    ------
    InvalidParameter
        An unreadable geometry, or one that is not an area.
    """
    parts: list[BaseGeometry] = []
    for label, geometry in geometries:
        try:
            geom = geometry if isinstance(geometry, BaseGeometry) else geojson_shape(geometry)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
            raise InvalidParameter(parameter, f"{source}: {label} is not a readable GeoJSON geometry ({exc})") from exc
        for part in geom.geoms if isinstance(geom, GeometryCollection) else [geom]:
            if part.is_empty:
                continue
            if part.geom_type not in AREAL:
                raise InvalidParameter(parameter, f"{source}: {label} is a {part.geom_type}; {not_an_area}")
            if not part.is_valid:
                log.info("%s: %s is invalid (%s); repaired", source, label, shapely.is_valid_reason(part))
                # make_valid may return a collection with slivers of lower dimension: keep areas.
                repaired = shapely.make_valid(part)
                part = shapely.union_all([g for g in getattr(repaired, "geoms", [repaired]) if g.geom_type in AREAL])
            parts.append(part)
    return parts
