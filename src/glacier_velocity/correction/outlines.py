"""Glacier outlines on the tracking grid: which grid points lie on (or next to) ice.

Outlines are a :class:`~glacier_velocity.domain.outlines.GlacierOutlines` or shapely polygons in
any CRS. They are reprojected to the grid's CRS, grown by a buffer in metres, and burnt into a
boolean mask at the grid points: a point is ice when its position, the centre of its
velocity-grid cell, lies inside a buffered outline (``GlacierOutlines.ice_mask`` does it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from affine import Affine
from shapely import make_valid
from shapely.geometry import GeometryCollection
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from ..domain.crs import GEOJSON_CRS, parse_crs
from ..domain.outlines import GlacierOutlines
from ..errors import InvalidParameter

log = logging.getLogger(__name__)

#: Default growth of the outlines (m) before points count as stable ground: half a 32-px
#: Sentinel-2 chip (160 m), so a stable chip holds no ice, plus 40 m for outline error.
OUTLINE_BUFFER_M = 200.0

#: CRS of shapely outlines given without one (GeoJSON, RFC 7946: longitude, latitude).
OUTLINES_CRS = GEOJSON_CRS

_AREAL = ("Polygon", "MultiPolygon")


def _polygons(glacier_outlines: BaseGeometry | Iterable[BaseGeometry]) -> list[BaseGeometry]:
    """The outlines as a list of (multi)polygons; anything else is refused."""
    geometries = [glacier_outlines] if isinstance(glacier_outlines, BaseGeometry) else list(glacier_outlines)
    polygons: list[BaseGeometry] = []
    for number, geometry in enumerate(geometries, start=1):
        if not isinstance(geometry, BaseGeometry):
            raise InvalidParameter(
                "glacier_outlines", f"outline {number} is a {type(geometry).__name__}, not a shapely geometry"
            )
        if geometry.is_empty:
            continue
        parts = list(geometry.geoms) if isinstance(geometry, GeometryCollection) else [geometry]
        for part in parts:
            if part.geom_type not in _AREAL:
                raise InvalidParameter(
                    "glacier_outlines",
                    f"outline {number} is a {part.geom_type}; glacier outlines must be polygons "
                    "(for points of interest use the points parameter)",
                )
            polygons.append(part if part.is_valid else make_valid(part))
    return polygons


def ice_mask_from_outlines(
    glacier_outlines: GlacierOutlines | BaseGeometry | Iterable[BaseGeometry],
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
    glacier_outlines : GlacierOutlines, shapely geometry or iterable of them
        Glacier outlines: a :class:`~glacier_velocity.domain.outlines.GlacierOutlines` (read from
        GeoJSON, with its own CRS), or Polygon / MultiPolygon geometries in ``outlines_crs``
        (GeometryCollections of them are unpacked, invalid ones repaired). No polygons at all
        means no ice.
    grid_transform : Affine
        Transform of the velocity grid, whose cell centres are the measurement positions
        (:func:`glacier_velocity.domain.velocity.grid_transform`).
    grid_shape : (int, int)
        ``(rows, cols)`` of the velocity grid.
    grid_crs : str
        CRS of the grid; must be projected with metre units (UTM for Sentinel-2).
    outlines_crs : str
        CRS of shapely outlines; lon/lat (EPSG:4326) by default, as in GeoJSON. Ignored for a
        GlacierOutlines, which knows its CRS.
    outline_buffer_m : float
        Distance (m, >= 0) by which the outlines grow before the mask is burnt.

    Returns
    -------
    ndarray of bool, shape grid_shape
        True on (buffered) ice.
    """
    if not (isinstance(outline_buffer_m, (int, float)) and np.isfinite(outline_buffer_m) and outline_buffer_m >= 0):
        raise InvalidParameter("outline_buffer", f"must be a distance in metres >= 0, got {outline_buffer_m!r}")
    target = parse_crs(grid_crs, "crs")
    if not target.is_projected or (target.linear_units or "").lower() not in ("metre", "meter", "m"):
        raise InvalidParameter("crs", f"the tracking grid must be in a projected CRS in metres (UTM), got {grid_crs!r}")
    if not isinstance(glacier_outlines, GlacierOutlines):
        polygons = _polygons(glacier_outlines)
        if not polygons:
            log.info("no glacier outlines given (all empty): every point counts as stable ground")
            return np.zeros(grid_shape, dtype=bool)
        glacier_outlines = GlacierOutlines(unary_union(polygons), crs=str(outlines_crs), count=len(polygons))
    # One rasterisation for every use of the outlines (io.outlines).
    mask = glacier_outlines.ice_mask(grid_transform, grid_shape, grid_crs, buffer_m=float(outline_buffer_m))
    log.info(
        "glacier outlines cover %d of %d grid points (buffer %.0f m)", int(mask.sum()), mask.size, outline_buffer_m
    )
    return mask
