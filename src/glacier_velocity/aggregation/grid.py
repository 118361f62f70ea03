"""The common grid of a summary and its datacube, and products brought onto it one at a time.

Every product is brought onto the grid of the *first* product (its transform, shape and CRS)
before it is stacked or written into the datacube, so maps from different tracking grids or
UTM zones are never silently misaligned (:func:`products_on_grid`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform, transform_bounds

from ..domain.velocity import VelocityProduct
from ..errors import InputError, InvalidParameter
from ..io.raster import pixel_centres

if TYPE_CHECKING:
    from ..io.cog import VelocityHeader

log = logging.getLogger(__name__)

#: Resampling used to bring a product onto the first product's grid.
ResamplingName = Literal["nearest", "bilinear"]
RESAMPLING: dict[str, Resampling] = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear}


ProductLike = VelocityProduct | str | os.PathLike


@dataclass(frozen=True)
class Grid:
    """The common grid of a summary and its datacube: the first product's."""

    transform: Affine
    crs: CRS
    shape: tuple[int, int]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        west, south, east, north = array_bounds(self.shape[0], self.shape[1], self.transform)
        return (west, south, east, north)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # Sentinel-2 acquisition times are UTC; naive values would not compare with aware ones.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def load_product(product: ProductLike) -> tuple[VelocityProduct, str]:
    """A product and the file it was read from (``""`` in memory)."""
    if isinstance(product, VelocityProduct):
        return product, ""
    path = Path(product)
    if not path.is_file():
        raise InputError(f"velocity product {str(path)!r} does not exist; pass velocity COGs written by correlate")
    from ..io.cog import read_velocity_cog  # imported here: cog pulls in GDAL drivers only when files are used

    return read_velocity_cog(path), str(path)


def refuse_repeated_files(products: Sequence[ProductLike]) -> None:
    """Refuse a product file given twice (by its real path)."""
    seen: dict[str, str] = {}
    for product in products:
        if isinstance(product, VelocityProduct):
            continue
        key = os.path.realpath(product)
        if key in seen:
            raise InputError(
                f"velocity product {str(product)!r} is given twice (also as {seen[key]!r}); give each product once"
            )
        seen[key] = str(product)


def product_header(product: ProductLike) -> VelocityProduct | VelocityHeader:
    """The grid, dates and provenance of a product without its pixels: itself in memory, a COG's tags."""
    if isinstance(product, VelocityProduct):
        return product
    from ..io.cog import read_velocity_header  # imported here: cog pulls in GDAL drivers only when files are used

    return read_velocity_header(product)


def grid_of(product: VelocityProduct | VelocityHeader, index: int = 0, source: str = "") -> Grid:
    """The grid of a product (in memory or a COG's header); ``index`` and ``source`` name it in errors."""
    try:
        crs = CRS.from_user_input(product.crs)
    except CRSError as exc:
        where = source or f"product {index}"
        raise InputError(
            f"{where} has no usable CRS ({product.crs!r}); velocity products must be georeferenced"
        ) from exc
    return Grid(product.transform, crs, product.shape)


def _same_grid(product: VelocityProduct, grid: Grid) -> bool:
    return (
        tuple(product.shape) == grid.shape
        and grid_of(product, -1, "").crs == grid.crs
        and product.transform.almost_equals(grid.transform)
    )


def _overlaps(src: Grid, dst: Grid) -> bool:
    west, south, east, north = transform_bounds(src.crs, dst.crs, *src.bounds, densify_pts=21)
    d_west, d_south, d_east, d_north = dst.bounds
    return west < d_east and east > d_west and south < d_north and north > d_south


def _resample(band: np.ndarray, src: Grid, dst: Grid, resampling: Resampling) -> np.ndarray:
    out = np.full(dst.shape, np.nan, dtype=np.float32)
    reproject(
        source=np.ascontiguousarray(band, dtype=np.float32),
        destination=out,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def _rotate_to_grid(vx: np.ndarray, vy: np.ndarray, src_crs: CRS, dst: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Rotate east/north components from ``src_crs`` grid axes to the ``dst`` grid axes.

    Grid north differs between projections (e.g. two UTM zones, by the meridian convergence),
    so the components are turned by the local angle between the two grids' x axes, measured
    at every valid pixel; the speed is left unchanged.
    """
    valid = np.isfinite(vx) & np.isfinite(vy)
    if not valid.any():
        return vx, vy
    rows, cols = np.nonzero(valid)
    xs, ys = pixel_centres(dst.transform, rows, cols)
    sx, sy = transform(dst.crs, src_crs, np.asarray(xs, float), np.asarray(ys, float))
    # A 1 m step along the source x axis, seen in destination coordinates.
    ex, ey = transform(src_crs, dst.crs, np.asarray(sx) + 1.0, np.asarray(sy))
    angle = np.arctan2(np.asarray(ey) - ys, np.asarray(ex) - xs)
    cos, sin = np.cos(angle), np.sin(angle)
    out_vx, out_vy = vx.copy(), vy.copy()
    out_vx[rows, cols] = (cos * vx[rows, cols] - sin * vy[rows, cols]).astype(np.float32)
    out_vy[rows, cols] = (sin * vx[rows, cols] + cos * vy[rows, cols]).astype(np.float32)
    return out_vx, out_vy


@dataclass(frozen=True)
class GriddedProduct:
    """One velocity product brought onto the common grid (the first product's).

    Attributes
    ----------
    product : VelocityProduct
        The product as read (its own grid, dates and provenance).
    source : str
        File it was read from, ``""`` when given in memory.
    vx, vy, v : ndarray of float32, shape grid.shape
        East and north velocity and speed (m/yr) on the common grid; ``vx``/``vy`` turned to
        the common grid's axes when the product's CRS differs.
    grid : Grid
        The common grid (transform, CRS, shape).
    resampled : bool
        False when the product already was on the common grid (values copied bit for bit).
    """

    product: VelocityProduct
    source: str
    vx: np.ndarray
    vy: np.ndarray
    v: np.ndarray
    grid: Grid
    resampled: bool

    def regrid(self, band: np.ndarray, resampling: ResamplingName = "nearest") -> np.ndarray:
        """Another band of the product (same grid as ``product.v``) on the common grid."""
        if not self.resampled:
            return np.asarray(band, dtype=np.float32)
        src = grid_of(self.product, -1, self.source)
        return _resample(band, src, self.grid, RESAMPLING[resampling])


def products_on_grid(
    products: Sequence[ProductLike],
    *,
    resampling: ResamplingName = "nearest",
    grid: Grid | None = None,
    order: Sequence[int] | None = None,
) -> Iterator[GriddedProduct]:
    """Bring velocity products one at a time onto one grid: ``grid``, else the first product's.

    The one place where products of different grids or UTM zones are aligned, for the
    summary and the datacube alike. Products on the grid are passed through unchanged; one
    product is read at a time (about 33 MB for a 915 x 915 grid), in ``order`` (indices into
    ``products``; default their order), messages naming each by its index in ``products``.

    Raises
    ------
    InvalidParameter
        Unknown ``resampling``.
    InputError
        A product file is missing, or a product does not overlap the first product's grid.
    """
    if resampling not in RESAMPLING:
        raise InvalidParameter("resampling", f"must be one of {sorted(RESAMPLING)}, got {resampling!r}")
    for index in order if order is not None else range(len(products)):
        product, source = load_product(products[index])
        if grid is None:
            grid = grid_of(product, index, source)
        if _same_grid(product, grid):
            yield GriddedProduct(product, source, product.vx, product.vy, product.v, grid, False)
            continue
        src = grid_of(product, index, source)
        if not _overlaps(src, grid):
            raise InputError(
                f"velocity product {index} ({product.reference_id} -> {product.secondary_id}"
                f"{', ' + source if source else ''}) does not overlap the grid of the first product; "
                "aggregate only products of the same area"
            )
        log.info("resampling product %d (%s) onto the first product's grid (%s)", index, source, resampling)
        method = RESAMPLING[resampling]
        vx = _resample(product.vx, src, grid, method)
        vy = _resample(product.vy, src, grid, method)
        v = _resample(product.v, src, grid, method)
        if src.crs != grid.crs:
            vx, vy = _rotate_to_grid(vx, vy, src.crs, grid)
        yield GriddedProduct(product, source, vx, vy, v, grid, True)
