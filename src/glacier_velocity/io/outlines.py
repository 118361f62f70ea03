"""Glacier outlines (polygons of ice, e.g. RGI 7.0) as an input: read, reproject, rasterise.

The user parameter is ``glacier_outlines`` everywhere (CLI ``--glacier-outlines``, CWL input,
notebook parameter, job files): GeoJSON as a file path, an http(s) URL or inline text, in
lon/lat (RFC 7946) or any CRS named by the file's ``crs`` member. Outlines are used for the
stable-ground mask (ground outside them), for every glacier statistic and figure, and drawn on
the maps.

RGI 7.0 is distributed as shapefiles per region; one ``ogr2ogr`` call turns the glaciers of an
area into the GeoJSON read here (see ``params/yazghil.yml``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import shapely
from shapely.geometry import GeometryCollection, shape
from shapely.geometry.base import BaseGeometry

from ..domain.crs import parse_crs
from ..domain.outlines import AREAL, PARAMETER, GlacierOutlines
from ..errors import InvalidParameter
from .geojson import GeoJSONDocument, load_geojson
from .retry import RetryPolicy

log = logging.getLogger(__name__)


def _geometries(document: GeoJSONDocument) -> list[tuple[str, dict[str, Any] | None]]:
    data = document.data
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise InvalidParameter(PARAMETER, f"{document.source}: a FeatureCollection needs a 'features' list")
        out = []
        for number, feature in enumerate(features, start=1):
            if not isinstance(feature, dict):
                raise InvalidParameter(PARAMETER, f"{document.source}: feature {number} is not a GeoJSON Feature")
            props = feature.get("properties") or {}
            label = str(props.get("rgi_id") or props.get("glac_name") or props.get("name") or f"feature {number}")
            out.append((label, feature.get("geometry")))
        return out
    if kind == "Feature":
        return [("the feature", data.get("geometry"))]
    return [("the geometry", data)]


def outlines_from_geojson(document: GeoJSONDocument) -> GlacierOutlines:
    """Glacier outlines from a parsed GeoJSON document (see :func:`read_glacier_outlines`)."""
    polygons: list[BaseGeometry] = []
    for label, geometry in _geometries(document):
        if geometry is None:  # a Feature without geometry carries nothing to mask
            continue
        try:
            geom = shape(geometry)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
            raise InvalidParameter(
                PARAMETER, f"{document.source}: {label} is not a readable GeoJSON geometry ({exc})"
            ) from exc
        parts = list(geom.geoms) if isinstance(geom, GeometryCollection) else [geom]
        for part in parts:
            if part.is_empty:
                continue
            if part.geom_type not in AREAL:
                raise InvalidParameter(
                    PARAMETER,
                    f"{document.source}: {label} is a {part.geom_type}; glacier outlines must be polygons "
                    "(give single points as points_of_interest)",
                )
            if not part.is_valid:
                log.info("%s: %s is invalid (%s); repaired", document.source, label, shapely.is_valid_reason(part))
                part = shapely.make_valid(part)
                # make_valid may return a collection with slivers of lower dimension: keep areas.
                part = shapely.union_all([g for g in getattr(part, "geoms", [part]) if g.geom_type in AREAL])
            polygons.append(part)
    if not polygons:
        raise InvalidParameter(
            PARAMETER, f"{document.source} holds no polygon; give glacier outlines (Polygon or MultiPolygon features)"
        )
    crs = parse_crs(document.crs, PARAMETER)
    if crs.is_geographic:
        west, south, east, north = shapely.union_all(polygons).bounds
        if not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
            raise InvalidParameter(
                PARAMETER,
                f"{document.source}: coordinates {west:.6g}..{east:.6g}, {south:.6g}..{north:.6g} are not longitude/latitude, "
                "but the file names no CRS; add its 'crs' member or reproject it: ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson",
            )
    union = shapely.union_all(polygons)
    return GlacierOutlines(geometry=union, crs=document.crs, count=len(polygons), source=document.source)


def read_glacier_outlines(
    value: GlacierOutlines | str | os.PathLike[str] | dict[str, Any],
    *,
    crs: Any = None,
    policy: RetryPolicy | None = None,
) -> GlacierOutlines:
    """Read the ``glacier_outlines`` parameter.

    Parameters
    ----------
    value : GlacierOutlines, str, path-like or dict
        A GeoJSON file path, an http(s) URL, GeoJSON text, a parsed GeoJSON mapping
        (geometry, Feature or FeatureCollection of Polygon / MultiPolygon), or outlines
        already read (returned as they are).
    crs : optional
        CRS of the coordinates when the GeoJSON has no ``crs`` member (e.g. ``"EPSG:32643"``);
        default lon/lat.
    policy : RetryPolicy, optional
        Retries and timeouts for a URL.

    Returns
    -------
    GlacierOutlines
        The union of the polygons (invalid ones repaired), in the file's CRS.

    Raises
    ------
    InvalidParameter
        Named ``glacier_outlines``: unreadable, not GeoJSON, no polygon, a point or line
        feature, or lon/lat coordinates out of range (a projected file without its CRS).

    Examples
    --------
    >>> outlines = read_glacier_outlines('{"type": "Polygon", "coordinates": '
    ...     '[[[75.2, 36.2], [75.3, 36.2], [75.3, 36.3], [75.2, 36.2]]]}')
    >>> outlines.crs, outlines.count
    ('EPSG:4326', 1)
    """
    if isinstance(value, GlacierOutlines):
        return value
    document = load_geojson(value, PARAMETER, crs=crs, policy=policy)
    outlines = outlines_from_geojson(document)
    log.info("glacier outlines: %d polygon(s) from %s (%s)", outlines.count, outlines.source, outlines.crs)
    return outlines
