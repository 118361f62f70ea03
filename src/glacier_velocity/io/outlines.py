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

from ..domain.crs import parse_crs
from ..domain.outlines import PARAMETER, GlacierOutlines
from ..domain.polygons import labelled_geometries, polygon_parts
from ..errors import InvalidParameter
from .geojson import GeoJSONDocument, load_geojson
from .retry import RetryPolicy

log = logging.getLogger(__name__)


def outlines_from_geojson(document: GeoJSONDocument) -> GlacierOutlines:
    """Glacier outlines from a parsed GeoJSON document (see :func:`read_glacier_outlines`)."""
    polygons = polygon_parts(
        labelled_geometries(document.data, document.source, PARAMETER),
        document.source,
        PARAMETER,
        not_an_area="glacier outlines must be polygons (give single points as points_of_interest)",
    )
    if not polygons:
        raise InvalidParameter(
            PARAMETER, f"{document.source} holds no polygon; give glacier outlines (Polygon or MultiPolygon features)"
        )
    union = shapely.union_all(polygons)
    if parse_crs(document.crs, PARAMETER).is_geographic:
        west, south, east, north = union.bounds
        if not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
            raise InvalidParameter(
                PARAMETER,
                f"{document.source}: coordinates {west:.6g}..{east:.6g}, {south:.6g}..{north:.6g} are not longitude/latitude, "
                "but the file names no CRS; add its 'crs' member or reproject it: ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson",
            )
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
