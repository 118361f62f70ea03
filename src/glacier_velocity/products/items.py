"""The STAC item of one pair's velocity product.

Item properties specific to this package use the ``gv:`` prefix: ``gv:reference_id``,
``gv:secondary_id``, ``gv:reference_datetime``, ``gv:secondary_datetime``, ``gv:dt_days``
(baseline, fractional days), ``gv:engine``, ``gv:engine_params``, ``gv:max_velocity_m_per_yr``, ``gv:valid_fraction`` and
``gv:median_v_m_per_yr`` and ``gv:software_version``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import shapely
import shapely.geometry
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension, Statistics
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import transform_geom

from .._version import __version__
from ..domain.aoi import AOI
from ..domain.velocity import BAND_DESCRIPTIONS, VELOCITY_BANDS, VelocityProduct
from ..errors import InvalidParameter
from ..io.atomic import atomic_output
from ..io.cog import COG_MEDIA_TYPE
from ..io.raster import pixel_size

log = logging.getLogger(__name__)


def footprint_lonlat(transform: Affine, shape: tuple[int, int], crs: str, densify: int = 10) -> dict[str, Any]:
    """GeoJSON polygon (lon/lat) of a grid's outline, densified so it follows the projection."""
    rows, cols = shape
    ring_px: list[tuple[float, float]] = []
    for (c0, r0), (c1, r1) in (
        ((0, 0), (cols, 0)),
        ((cols, 0), (cols, rows)),
        ((cols, rows), (0, rows)),
        ((0, rows), (0, 0)),
    ):
        for k in range(densify):
            t = k / densify
            ring_px.append((c0 + (c1 - c0) * t, r0 + (r1 - r0) * t))
    ring = [tuple(transform @ p) for p in ring_px]
    ring.append(ring[0])
    geometry = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(CRS.from_user_input(crs), "EPSG:4326", geometry, precision=7)


#: Most vertices of an item's footprint: an item stays a few kB whatever the AOI (a 1e6-vertex
#: glacier outline made 40 MB items, issue 23 finding 13).
MAX_FOOTPRINT_VERTICES = 1000
#: Metres per degree of latitude, to turn a tolerance in metres into degrees.
_M_PER_DEGREE = 111_320.0


def area_footprint(transform: Affine, shape: tuple[int, int], crs: str, area: AOI | None = None) -> dict[str, Any]:
    """Where a product (or summary) on a grid can hold values: its grid's outline, cut to ``area``.

    The result is simplified to half a grid cell (finer than the product can show) and to
    at most :data:`MAX_FOOTPRINT_VERTICES` vertices; the AOI itself is stored once, beside
    the summary. Without an ``area`` (or with a box) it is :func:`footprint_lonlat`.

    Returns
    -------
    dict
        GeoJSON (Multi)Polygon in lon/lat.
    """
    outline = footprint_lonlat(transform, shape, crs)
    if area is None or area.is_box:
        return outline
    cut = area.shape.intersection(shapely.geometry.shape(outline))
    if cut.is_empty:
        return outline
    tolerance = pixel_size(transform) / 2 / _M_PER_DEGREE
    while True:
        # Douglas-Peucker (0.1 s for 1e6 vertices); the topology-preserving variant only when
        # it made the polygon invalid.
        simple = cut.simplify(tolerance, preserve_topology=False)
        if simple.is_empty or not simple.is_valid:
            simple = cut.simplify(tolerance, preserve_topology=True)
        if shapely.get_num_coordinates(simple) <= MAX_FOOTPRINT_VERTICES:
            return shapely.geometry.mapping(simple)
        tolerance *= 2


def add_projection(item: pystac.Item, crs: CRS | str, transform: Affine, shape: tuple[int, int]) -> None:
    """The projection extension of an item on a grid: EPSG code (else WKT2), transform, shape, bbox.

    ``proj:bbox`` is in the grid's CRS: ``(left, bottom, right, top)``.
    """
    crs = CRS.from_user_input(crs)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = crs.to_epsg()
    proj.epsg = epsg
    if epsg is None:
        proj.wkt2 = crs.to_wkt()
    proj.transform = list(transform)[:6]
    proj.shape = list(shape)
    proj.bbox = list(array_bounds(shape[0], shape[1], transform))


def lonlat_bbox(geometry: dict[str, Any]) -> list[float]:
    """``[west, south, east, north]`` of a lon/lat geometry, RFC 7946 style across the antimeridian.

    A footprint cut at 180 degrees (parts touching +180 and -180) gets ``west > east``
    (e.g. ``[179.7, 60.0, -179.0, 60.4]``), not the [-180, 180] of its plain bounds.
    """
    from shapely.geometry import shape

    geom = shape(geometry)
    west, south, east, north = (float(v) for v in geom.bounds)
    parts = list(getattr(geom, "geoms", [geom]))
    if west <= -180 + 1e-9 and east >= 180 - 1e-9 and len(parts) > 1:
        eastern = [p.bounds for p in parts if p.bounds[0] > 0]  # the parts east of 0 lie west of the line
        western = [p.bounds for p in parts if p.bounds[2] < 0]
        if eastern and western and len(eastern) + len(western) == len(parts):
            return [min(b[0] for b in eastern), south, max(b[2] for b in western), north]
    return [west, south, east, north]


def _statistics(band: np.ndarray) -> Statistics | None:
    valid = band[np.isfinite(band)]
    if valid.size == 0:
        return None
    return Statistics.create(
        minimum=float(valid.min()),
        maximum=float(valid.max()),
        mean=float(valid.mean()),
        stddev=float(valid.std()),
        valid_percent=float(valid.size / band.size * 100.0),
    )


def make_product_item(
    product: VelocityProduct,
    cog_path: str | os.PathLike[str],
    quicklook_path: str | os.PathLike[str] | None = None,
    *,
    item_id: str | None = None,
    geometry: dict[str, Any] | None = None,
    extra_properties: dict[str, Any] | None = None,
) -> pystac.Item:
    """STAC item describing a velocity product and its files.

    Parameters
    ----------
    product : VelocityProduct
        The velocity map (its grid gives the geometry and projection information).
    cog_path : path-like
        The velocity COG (asset ``velocity``, roles ``data``).
    quicklook_path : path-like, optional
        The quicklook PNG (asset ``quicklook``, roles ``overview``).
    item_id : str, optional
        Item id; default the COG's file stem.
    geometry : dict, optional
        GeoJSON footprint (lon/lat); default the outline of the product grid.
    extra_properties : dict, optional
        More properties to record (e.g. the tile).

    Returns
    -------
    pystac.Item
        ``datetime`` null with ``start_datetime`` / ``end_datetime`` the reference and
        secondary acquisition times; projection and raster extensions; absolute asset hrefs
        (:func:`save_product_item` makes them relative).
    """
    cog_path = Path(cog_path).resolve()
    geometry = geometry or footprint_lonlat(product.transform, product.shape, product.crs)
    start = product.reference_datetime
    end = product.secondary_datetime
    if start is None or end is None:
        raise InvalidParameter("product", "the product has no acquisition datetimes; a STAC item needs both")
    speed = product.v
    properties: dict[str, Any] = {
        "start_datetime": pystac.utils.datetime_to_str(start),
        "end_datetime": pystac.utils.datetime_to_str(end),
        "gv:reference_id": product.reference_id,
        "gv:secondary_id": product.secondary_id,
        "gv:reference_datetime": pystac.utils.datetime_to_str(start),
        "gv:secondary_datetime": pystac.utils.datetime_to_str(end),
        "gv:dt_days": float(product.dt_days),
        "gv:engine": product.engine,
        "gv:engine_params": json.loads(json.dumps(product.engine_params, default=str)),
        "gv:max_velocity_m_per_yr": product.max_velocity_m_per_yr,
        "gv:valid_fraction": product.valid_fraction,
        "gv:median_v_m_per_yr": float(np.nanmedian(speed)) if np.isfinite(speed).any() else None,
        "gv:software_version": __version__,
    }
    # The stable-ground correction (shift in px and m/yr, stable_count, method, statistics);
    # NaN (nothing measurable) becomes null, which JSON can hold.
    for key, value in product.correction.items():
        properties[f"gv:{key}"] = None if isinstance(value, float) and not math.isfinite(value) else value
    date_center = product.date_center
    properties["gv:date_center"] = pystac.utils.datetime_to_str(date_center) if date_center is not None else None
    properties.update(extra_properties or {})
    item = pystac.Item(
        id=item_id or cog_path.stem,
        geometry=geometry,
        bbox=lonlat_bbox(geometry),
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
    )
    if product.sources:
        for role, href in sorted(product.sources.items()):
            item.add_link(pystac.Link(rel="derived_from", target=href, media_type=pystac.MediaType.JSON, title=role))

    add_projection(item, product.crs, product.transform, product.shape)

    bands_common = []
    raster_bands = []
    for name, unit in VELOCITY_BANDS:
        band = product.band(name)
        bands_common.append(
            {
                "name": name,
                "description": BAND_DESCRIPTIONS[name],
                "unit": unit,
                "data_type": "float32",
                "nodata": "nan",
            }
        )
        raster_bands.append(
            RasterBand.create(
                nodata=NoDataStrings.NAN,
                data_type=DataType.FLOAT32,
                unit=unit,
                spatial_resolution=pixel_size(product.transform),
                statistics=_statistics(band),
            )
        )
    asset = pystac.Asset(
        href=str(cog_path),
        media_type=COG_MEDIA_TYPE,
        roles=["data"],
        title="Velocity (vx, vy, v in m/yr), 1-sigma errors (m/yr) and quality bands",
        extra_fields={"bands": bands_common},
    )
    item.add_asset("velocity", asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = raster_bands
    if quicklook_path is not None:
        item.add_asset(
            "quicklook",
            pystac.Asset(
                href=str(Path(quicklook_path).resolve()),
                media_type=pystac.MediaType.PNG,
                roles=["overview"],
                title="Speed with flow arrows over the reference image",
            ),
        )
    return item


def save_product_item(item: pystac.Item, path: str | os.PathLike[str]) -> Path:
    """Write a product item as JSON with asset hrefs relative to it, atomically.

    Parameters
    ----------
    item : pystac.Item
        Typically from :func:`make_product_item`; it is modified (self href, relative hrefs).
    path : path-like
        Output JSON file, normally next to the assets.

    Returns
    -------
    Path
        The written file; ``pystac.Item.from_file(path)`` resolves the assets again.
    """
    path = Path(path).resolve()
    item.set_self_href(str(path))
    item.make_asset_hrefs_relative()
    data = item.to_dict(include_self_link=False, transform_hrefs=False)

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")

    with atomic_output(path) as tmp:
        write(tmp)
    log.info("wrote STAC item %s", path)
    return path


__all__ = [
    "BAND_DESCRIPTIONS",
    "MAX_FOOTPRINT_VERTICES",
    "area_footprint",
    "footprint_lonlat",
    "lonlat_bbox",
    "make_product_item",
    "save_product_item",
]
