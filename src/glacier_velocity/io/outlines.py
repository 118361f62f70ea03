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
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely.geometry import GeometryCollection, MultiPolygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter
from .geojson import GEOJSON_CRS, GeoJSONDocument, load_geojson, parse_crs
from .retry import RetryPolicy

log = logging.getLogger(__name__)

#: The parameter's name, as the user writes it in every interface.
PARAMETER = "glacier_outlines"

_AREAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class GlacierOutlines:
    """Polygons of ice in a known CRS.

    Attributes
    ----------
    geometry : shapely Polygon or MultiPolygon
        Union of the outlines, valid, non-empty, in ``crs`` coordinates.
    crs : str
        CRS of ``geometry`` (``"EPSG:4326"`` for lon/lat, ``"EPSG:32643"``, or WKT).
    count : int
        Number of outlines (polygon features) read.
    source : str
        File path, URL or ``"inline GeoJSON"`` they came from (for messages and provenance).
    """

    geometry: BaseGeometry
    crs: str
    count: int = 1
    source: str = "inline GeoJSON"

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, BaseGeometry) or self.geometry.geom_type not in _AREAL:
            raise InvalidParameter(PARAMETER, f"must be polygons of ice, got {type(self.geometry).__name__}")
        if self.geometry.is_empty:
            raise InvalidParameter(PARAMETER, "the outlines are empty; give at least one glacier polygon")
        parse_crs(self.crs, PARAMETER)

    def in_crs(self, crs: Any) -> BaseGeometry:
        """The outlines' geometry in another CRS (exact vertex-by-vertex reprojection).

        Parameters
        ----------
        crs
            Target CRS, anything ``rasterio.crs.CRS.from_user_input`` reads.

        Returns
        -------
        shapely Polygon or MultiPolygon in ``crs`` coordinates. Edges stay straight lines
        between reprojected vertices: RGI outlines have vertices every few tens of metres, so
        the curvature of a lon/lat edge in UTM is far below a pixel.
        """
        source, target = parse_crs(self.crs, PARAMETER), parse_crs(crs, "crs")
        if source == target:
            return self.geometry
        projected = shape(transform_geom(source, target, mapping(self.geometry)))
        return projected if projected.is_valid else shapely.make_valid(projected)

    def ice_mask(self, transform: Affine, shape_: tuple[int, int], crs: Any, *, buffer_m: float = 0.0) -> np.ndarray:
        """Which cells of a raster grid are ice: cell centre inside the (buffered) outlines.

        Parameters
        ----------
        transform : Affine
            The grid's transform (its cells' upper-left corners; centres are at +0.5 cell).
        shape_ : (int, int)
            ``(rows, cols)`` of the grid.
        crs
            CRS of the grid.
        buffer_m : float
            Growth of the outlines (m, >= 0) before rasterising; needs a projected grid CRS
            in metres. A positive buffer keeps the ice margin (and the chips overlapping it)
            out of stable ground.

        Returns
        -------
        ndarray of bool, shape ``shape_``; True on ice.
        """
        if (
            isinstance(buffer_m, bool)
            or not isinstance(buffer_m, (int, float))
            or not math.isfinite(buffer_m)
            or buffer_m < 0
        ):
            raise InvalidParameter("buffer_m", f"must be a distance in metres >= 0, got {buffer_m!r}")
        rows, cols = (int(n) for n in shape_)
        geometry = self.in_crs(crs)
        if buffer_m > 0:
            target = parse_crs(crs, "crs")
            if not target.is_projected or (target.linear_units or "").lower() not in ("metre", "meter", "m"):
                raise InvalidParameter(
                    "crs", f"a buffer in metres needs a projected grid CRS in metres (UTM), got {crs!r}"
                )
            geometry = geometry.buffer(float(buffer_m))
        if geometry.is_empty or rows == 0 or cols == 0:
            return np.zeros((rows, cols), dtype=bool)
        burnt = rasterize(
            [(mapping(geometry), 1)],
            out_shape=(rows, cols),
            transform=transform,
            fill=0,
            all_touched=False,
            dtype="uint8",
        )
        return burnt.astype(bool)

    def to_geojson(self, crs: Any = GEOJSON_CRS) -> dict[str, Any]:
        """A GeoJSON FeatureCollection of the outlines in ``crs`` (RFC 7946 lon/lat by default).

        A CRS other than lon/lat is written as a GeoJSON 2008 ``crs`` member, which
        :func:`read_glacier_outlines` reads back.
        """
        target = parse_crs(crs, "crs")
        geometry = self.in_crs(target)
        parts = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
        document: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"outline": number}, "geometry": mapping(part)}
                for number, part in enumerate(parts, start=1)
            ],
        }
        if target != parse_crs(GEOJSON_CRS, "crs"):
            epsg = target.to_epsg()
            name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else target.to_wkt()
            document["crs"] = {"type": "name", "properties": {"name": name}}
        return document


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
            if part.geom_type not in _AREAL:
                raise InvalidParameter(
                    PARAMETER,
                    f"{document.source}: {label} is a {part.geom_type}; glacier outlines must be polygons "
                    "(give single points as points_of_interest)",
                )
            if not part.is_valid:
                log.info("%s: %s is invalid (%s); repaired", document.source, label, shapely.is_valid_reason(part))
                part = shapely.make_valid(part)
                # make_valid may return a collection with slivers of lower dimension: keep areas.
                part = shapely.union_all([g for g in getattr(part, "geoms", [part]) if g.geom_type in _AREAL])
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
