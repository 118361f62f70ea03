"""Glacier outlines (polygons of ice, e.g. RGI 7.0) as a value: reproject, rasterise, write back.

The inputs are read into a :class:`GlacierOutlines` once, at the edge
(:func:`glacier_velocity.io.outlines.read_glacier_outlines`); every stage after that takes
``GlacierOutlines | None``. None means the outlines are not known (stable ground is then found
automatically); :meth:`GlacierOutlines.empty` means they are known and there is no glacier in
the area (every valid point is stable ground).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely.geometry import MultiPolygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter
from .crs import GEOJSON_CRS, parse_crs
from .polygons import AREAL

#: The parameter's name, as the user writes it in every interface.
PARAMETER = "glacier_outlines"


@dataclass(frozen=True)
class GlacierOutlines:
    """Polygons of ice in a known CRS.

    Attributes
    ----------
    geometry : shapely Polygon or MultiPolygon
        Union of the outlines, valid, in ``crs`` coordinates; non-empty, except for
        :meth:`empty` outlines.
    crs : str
        CRS of ``geometry`` (``"EPSG:4326"`` for lon/lat, ``"EPSG:32643"``, or WKT).
    count : int
        Number of outlines (polygon features) read; 0 for :meth:`empty` outlines.
    source : str
        File path, URL or ``"inline GeoJSON"`` they came from (for messages and provenance).
    """

    geometry: BaseGeometry
    crs: str
    count: int = 1
    source: str = "inline GeoJSON"

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, BaseGeometry) or self.geometry.geom_type not in AREAL:
            kind = self.geometry.geom_type if isinstance(self.geometry, BaseGeometry) else type(self.geometry).__name__
            raise InvalidParameter(PARAMETER, f"must be polygons of ice, got {kind}")
        if self.geometry.is_empty and self.count != 0:
            raise InvalidParameter(
                PARAMETER,
                "the outlines are empty; give at least one glacier polygon (GlacierOutlines.empty() says: no glacier here)",
            )
        if self.count == 0 and not self.geometry.is_empty:
            raise InvalidParameter(PARAMETER, "count 0 is for empty outlines only; give the number of polygons")
        parse_crs(self.crs, PARAMETER)

    @classmethod
    def empty(cls, source: str = "no glacier in the area") -> GlacierOutlines:
        """Outlines that say there is no glacier in the area: no point is ice.

        Unlike no outlines at all (None, stable ground found automatically), every valid point
        is then stable ground, e.g. for a pair over rock only, or to measure a pair's
        misregistration over the whole image.
        """
        return cls(MultiPolygon(), GEOJSON_CRS, count=0, source=source)

    @property
    def is_empty(self) -> bool:
        """True for :meth:`empty` outlines (no glacier in the area)."""
        return self.count == 0

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
        if source == target or self.is_empty:
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
