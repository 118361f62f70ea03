"""Coordinate reference systems: how the package reads a CRS a user names, and how it writes one."""

from __future__ import annotations

from typing import Any

from rasterio.crs import CRS
from rasterio.errors import CRSError

from ..errors import InvalidParameter

#: CRS of GeoJSON without a ``crs`` member (RFC 7946: longitude, latitude in degrees).
GEOJSON_CRS = "EPSG:4326"


def parse_crs(value: Any, parameter: str) -> CRS:
    """A CRS from anything rasterio reads (``"EPSG:32643"``, an OGC URN, WKT, an int EPSG code).

    Raises
    ------
    InvalidParameter
        Named ``parameter``: the value is not a coordinate reference system.
    """
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidParameter(
            parameter, f"cannot read {str(value)[:80]!r} as a coordinate reference system; give e.g. 'EPSG:32643'"
        ) from exc


def crs_string(crs: CRS | str) -> str:
    """``EPSG:xxxx`` when the CRS has an EPSG code, WKT otherwise: the stable, readable form products record."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()
