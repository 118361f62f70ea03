"""Area of interest: the :class:`AOI` value every stage is bounded by, and the checks of its shape.

Longitudes and latitudes are WGS84 degrees (EPSG:4326). A bbox is ``(west, south, east,
north)``; areas crossing the antimeridian are not supported (split them, or run each side).
The user's ``aoi`` parameter is read into an AOI at the edge, by
:func:`glacier_velocity.io.aoi.parse_aoi`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidParameter
from .polygons import geojson_shape, labelled_geometries, polygon_parts

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


def check_geometry(geometry: Any, parameter: str = "geometry", source: str = "inline GeoJSON") -> dict[str, Any]:
    """Validate a GeoJSON AOI (geometry, Feature or FeatureCollection) and return a geometry dict.

    Features of a collection are merged; an invalid ring is repaired
    (:func:`~glacier_velocity.domain.polygons.polygon_parts`, the check the glacier outlines
    share). The result is a (Multi)Polygon in lon/lat degrees.

    Raises
    ------
    InvalidParameter
        Not GeoJSON, not a polygon, empty, or coordinates out of range.
    """
    if not isinstance(geometry, dict):
        raise InvalidParameter(
            parameter, f"must be a GeoJSON geometry, Feature or FeatureCollection, got {type(geometry).__name__}"
        )
    parts = polygon_parts(
        labelled_geometries(geometry, source, parameter),
        source,
        parameter,
        not_an_area="the area of interest must be a Polygon or MultiPolygon (an area) in lon/lat degrees",
    )
    if not parts:
        raise InvalidParameter(parameter, f"{source}: the geometry is empty; give a Polygon in lon/lat degrees")
    geom = shapely.union_all(parts)
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


#: The parameter's name, as the user writes it in every interface.
PARAMETER = "aoi"


@dataclass(frozen=True)
class AOI:
    """The area of interest: a polygon in lon/lat degrees and its bounding box.

    One value bounds every stage: discovery searches with it (``intersects``), correlation
    reads the scenes over its bounding box and keeps only points inside it, and aggregation
    works on those products. Made by :func:`~glacier_velocity.io.aoi.parse_aoi` from what the user gave.

    Attributes
    ----------
    bbox : (west, south, east, north)
        Bounding box of the polygon, lon/lat degrees.
    geometry : dict
        The polygon (GeoJSON Polygon or MultiPolygon, lon/lat degrees); for a bbox, its rectangle.
    source : str
        What it was read from: ``"W,S,E,N"`` text, a file path, a URL or ``"inline GeoJSON"``.
    """

    bbox: BBox
    geometry: dict[str, Any] = field(hash=False)
    source: str = "inline GeoJSON"

    @classmethod
    def from_bbox(cls, bbox: Sequence[Any], parameter: str = PARAMETER) -> AOI:
        """The rectangle ``(west, south, east, north)`` (degrees) as an AOI."""
        checked = check_bbox(bbox, parameter)
        return cls(bbox=checked, geometry=mapping(box(*checked)), source=",".join(f"{v:g}" for v in checked))

    @classmethod
    def from_geojson(cls, data: dict[str, Any], source: str = "inline GeoJSON", parameter: str = PARAMETER) -> AOI:
        """An AOI from a GeoJSON geometry, Feature or FeatureCollection in lon/lat (features merged)."""
        geometry = check_geometry(data, parameter, source)
        west, south, east, north = geojson_shape(geometry).bounds
        return cls(bbox=(west, south, east, north), geometry=geometry, source=source)

    @cached_property
    def shape(self) -> BaseGeometry:
        """The polygon as a shapely geometry (lon/lat), built once."""
        return geojson_shape(self.geometry)

    @cached_property
    def is_box(self) -> bool:
        """True when the AOI is its own bounding box (given as ``W,S,E,N`` or a rectangle)."""
        return bool(self.shape.equals(box(*self.bbox)))

    @cached_property
    def vertex_count(self) -> int:
        """Number of vertices of the polygon (every ring's closing vertex included)."""
        return int(shapely.get_num_coordinates(self.shape))

    @cached_property
    def sha256(self) -> str:
        """SHA-256 (hex) of the polygon's 2-D WKB: the same polygon gives the same digest, so a
        product item can name the AOI it was made with without holding its vertices."""
        return hashlib.sha256(shapely.to_wkb(self.shape, output_dimension=2)).hexdigest()

    def record(self) -> dict[str, Any]:
        """What a product records of the AOI (a few hundred bytes, whatever its size): its
        source, bbox, vertex count and :attr:`sha256`; the polygon itself is stored once,
        beside the run's summary (``aoi.geojson``)."""
        return {
            "source": self.source,
            "bbox": list(self.bbox),
            "vertices": self.vertex_count,
            "sha256": self.sha256,
        }

    def text(self) -> str:
        """The AOI as the string parameter that reads back to it: ``"W,S,E,N"`` or GeoJSON text."""
        if self.is_box:
            return ",".join(repr(v) for v in self.bbox)
        return json.dumps(self.geometry)

    def describe(self) -> str:
        """A short description for messages: the bbox, and the polygon's source when not a box."""
        bbox = f"bbox {[round(v, 5) for v in self.bbox]}"
        return bbox if self.is_box else f"the polygon of {self.source} ({bbox})"

    def inside(self, transform: Affine, shape_: tuple[int, int], crs: Any) -> np.ndarray:
        """Which cells of a raster grid have their centre inside the polygon.

        Parameters
        ----------
        transform : Affine
            The grid's transform (cell upper-left corners; centres at +0.5 cell).
        shape_ : (int, int)
            ``(rows, cols)`` of the grid.
        crs
            CRS of the grid (anything rasterio reads).

        Returns
        -------
        ndarray of bool, shape ``shape_``; True inside the AOI.
        """
        rows, cols = (int(n) for n in shape_)
        if rows == 0 or cols == 0:
            return np.zeros((rows, cols), dtype=bool)
        # densify: a lon/lat edge is a curve in UTM; 0.001 degree steps stay well under a pixel.
        lonlat = shapely.segmentize(self.shape, 0.001)
        local = transform_geom("EPSG:4326", CRS.from_user_input(crs), mapping(lonlat))
        burnt = rasterize([(local, 1)], out_shape=(rows, cols), transform=transform, fill=0, dtype="uint8")
        return burnt.astype(bool)
