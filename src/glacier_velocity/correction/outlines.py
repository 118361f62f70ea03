"""Glacier outlines on the tracking grid: which grid points lie on (or next to) ice.

Outlines are shapely polygons in any CRS. They are reprojected to the grid's CRS, grown by a
buffer in metres, and burnt into a boolean mask at the grid points (a point is ice when its
position, the centre of its velocity-grid cell, lies inside a buffered outline).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely import make_valid
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter

log = logging.getLogger(__name__)

#: Default growth of the outlines (m) before points count as stable ground: half a 32-px
#: Sentinel-2 chip (160 m), so a stable chip holds no ice, plus 40 m for outline error.
OUTLINE_BUFFER_M = 200.0

#: CRS of outlines given without one (GeoJSON, RFC 7946: longitude, latitude).
OUTLINES_CRS = "EPSG:4326"

_AREAL = ("Polygon", "MultiPolygon")


def _parse_crs(value: object, parameter: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidParameter(parameter, f"cannot read {value!r} as a coordinate reference system ({exc})") from exc


def _polygons(outlines: BaseGeometry | Iterable[BaseGeometry]) -> list[BaseGeometry]:
    """The outlines as a list of (multi)polygons, each made valid; anything else is refused."""
    geometries = [outlines] if isinstance(outlines, BaseGeometry) else list(outlines)
    polygons: list[BaseGeometry] = []
    for number, geometry in enumerate(geometries, start=1):
        if not isinstance(geometry, BaseGeometry):
            raise InvalidParameter(
                "outlines", f"outline {number} is a {type(geometry).__name__}, not a shapely geometry"
            )
        if geometry.is_empty:
            continue
        parts = list(geometry.geoms) if geometry.geom_type == "GeometryCollection" else [geometry]
        for part in parts:
            if part.geom_type not in _AREAL:
                raise InvalidParameter(
                    "outlines",
                    f"outline {number} is a {part.geom_type}; glacier outlines must be polygons "
                    "(for points of interest use the points parameter)",
                )
            polygons.append(part if part.is_valid else make_valid(part))
    return polygons


def ice_mask_from_outlines(
    outlines: BaseGeometry | Iterable[BaseGeometry],
    grid_transform: Affine,
    grid_shape: tuple[int, int],
    grid_crs: str,
    *,
    outlines_crs: str = OUTLINES_CRS,
    outline_buffer_m: float = OUTLINE_BUFFER_M,
) -> np.ndarray:
    """Mark the grid points that lie inside the (buffered) glacier outlines.

    Parameters
    ----------
    outlines : shapely geometry or iterable of them
        Glacier outlines: Polygon or MultiPolygon (GeometryCollections of them are unpacked).
        Invalid polygons are repaired with ``shapely.make_valid``.
    grid_transform : Affine
        Transform of the velocity grid, whose cell centres are the measurement positions
        (:func:`glacier_velocity.velocity.grid_transform`).
    grid_shape : (int, int)
        ``(rows, cols)`` of the velocity grid.
    grid_crs : str
        CRS of the grid; must be projected with metre units (UTM for Sentinel-2).
    outlines_crs : str
        CRS of the outlines (anything ``rasterio.crs.CRS.from_user_input`` reads); lon/lat
        (EPSG:4326) by default, as in GeoJSON.
    outline_buffer_m : float
        Distance (m, >= 0) by which the outlines grow before the mask is burnt.

    Returns
    -------
    ndarray of bool, shape grid_shape
        True on (buffered) ice.
    """
    if not (isinstance(outline_buffer_m, (int, float)) and np.isfinite(outline_buffer_m) and outline_buffer_m >= 0):
        raise InvalidParameter("outline_buffer", f"must be a distance in metres >= 0, got {outline_buffer_m!r}")
    source = _parse_crs(outlines_crs, "outlines_crs")
    target = _parse_crs(grid_crs, "crs")
    if not target.is_projected or (target.linear_units or "").lower() not in ("metre", "meter", "m"):
        raise InvalidParameter(
            "crs", f"the tracking grid must be in a projected CRS in metres (UTM), got {grid_crs!r}"
        )
    mask = np.zeros(grid_shape, dtype=bool)
    polygons = _polygons(outlines)
    if not polygons:
        log.info("no glacier outlines given (all empty): every point counts as stable ground")
        return mask
    shapes = []
    for polygon in polygons:
        projected = shape(transform_geom(source, target, mapping(polygon)))
        if outline_buffer_m > 0:
            projected = projected.buffer(float(outline_buffer_m))
        if not projected.is_empty:
            shapes.append((mapping(projected), 1))
    if not shapes:
        return mask
    burnt = rasterize(shapes, out_shape=grid_shape, transform=grid_transform, fill=0, all_touched=False, dtype="uint8")
    mask |= burnt.astype(bool)
    log.info("glacier outlines cover %d of %d grid points (buffer %.0f m)", int(mask.sum()), mask.size, outline_buffer_m)
    return mask
