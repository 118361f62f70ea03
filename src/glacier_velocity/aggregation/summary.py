"""Aggregation of velocity products: per-pixel median, spread and count, and a time series.

Every product is brought onto the grid of the *first* product (its transform, shape and CRS)
before stacking, so maps from different tracking grids or UTM zones are never silently
misaligned. Each product keeps its own acquisition dates: the summary lists one
:class:`PairEntry` per product, in input order, each with its own reference and secondary
datetimes, baseline and median speed.

Statistics are NaN-aware. A pixel counts as valid in a map when its speed ``v`` is finite.
Statistics are only evaluated on pixels with at least ``min_count`` valid maps (and the
standard deviation on pixels with at least two), so no all-NaN slice ever reaches
``numpy.nanmedian`` and no warning needs to be silenced.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform, transform_bounds

from .._version import __version__
from ..errors import InputError, InvalidParameter
from ..io.raster import pixel_centres
from ..stac.scene import format_datetime
from ..tracking.velocity import VelocityProduct

log = logging.getLogger(__name__)

#: Resampling used to bring a product onto the first product's grid.
ResamplingName = Literal["nearest", "bilinear"]
RESAMPLING: dict[str, Resampling] = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear}

#: File names (without directory) of the summary COGs written by :func:`write_summary`.
SUMMARY_BANDS: tuple[tuple[str, str, str], ...] = (
    ("median_v", "m/yr", "median over pairs of the speed of each pair"),
    ("median_vx", "m/yr", "median over pairs of the east velocity"),
    ("median_vy", "m/yr", "median over pairs of the north velocity"),
    ("std_v", "m/yr", "standard deviation over pairs of the speed (ddof=1; NaN with fewer than 2 maps)"),
    ("count", "1", "number of pairs with a valid speed at the pixel (0 = none)"),
)

ProductLike = VelocityProduct | str | os.PathLike


@dataclass(frozen=True)
class PairEntry:
    """One velocity product in a summary, with its own dates.

    Attributes
    ----------
    reference_id, secondary_id : str
        Identifiers of the two scenes of the pair.
    reference_datetime, secondary_datetime : datetime or None
        Acquisition times of this pair (timezone-aware, UTC when the input was naive).
    dt_days : float
        Baseline of this pair (days, fractional).
    median_v : float
        Median speed (m/yr) over the pixels where this pair has a speed, on the summary grid;
        NaN when it has none there.
    valid_px : int
        Number of summary-grid pixels where this pair has a speed.
    valid_fraction : float
        ``valid_px`` over the number of summary-grid pixels (0..1).
    resampled : bool
        Whether the product was resampled onto the summary grid (False: same grid).
    source : str
        File the product was read from, or ``""`` for an in-memory product.
    max_velocity_m_per_yr : float or None
        The tracking bound the pair was made with (m/yr), when recorded in its engine settings.
    """

    reference_id: str
    secondary_id: str
    reference_datetime: datetime | None
    secondary_datetime: datetime | None
    dt_days: float
    median_v: float
    valid_px: int
    valid_fraction: float
    resampled: bool
    source: str = ""
    max_velocity_m_per_yr: float | None = None

    @property
    def mid_datetime(self) -> datetime | None:
        """Midpoint between the reference and secondary acquisitions, when both are known."""
        if self.reference_datetime is None or self.secondary_datetime is None:
            return None
        return self.reference_datetime + (self.secondary_datetime - self.reference_datetime) / 2

    @property
    def pair_id(self) -> str:
        """``reference_id`` and ``secondary_id`` joined by ``__``."""
        return f"{self.reference_id}__{self.secondary_id}"


@dataclass(frozen=True)
class Summary:
    """Per-pixel statistics of a stack of velocity maps on one grid.

    Attributes
    ----------
    median_v, median_vx, median_vy : ndarray of float32, shape (rows, cols)
        Median of the per-pair speed, east velocity and north velocity (m/yr); NaN where fewer
        than ``min_count`` maps are valid. ``median_v`` is the median of the speeds, not the
        speed of the median vector.
    std_v : ndarray of float32, shape (rows, cols)
        Sample standard deviation (ddof=1) of the per-pair speed (m/yr); NaN where fewer than
        ``max(2, min_count)`` maps are valid.
    count : ndarray of uint16, shape (rows, cols)
        Number of maps with a valid speed at each pixel (0 = none); never masked by
        ``min_count``.
    transform : Affine
        Affine transform of the grid (the first product's).
    crs : str
        CRS of the grid (the first product's).
    entries : tuple of PairEntry
        One entry per product, in input order, each with its own dates.
    min_count : int
        Minimum number of valid maps a pixel needs to get statistics.
    """

    median_v: np.ndarray
    median_vx: np.ndarray
    median_vy: np.ndarray
    std_v: np.ndarray
    count: np.ndarray
    transform: Affine
    crs: str
    entries: tuple[PairEntry, ...]
    min_count: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(rows, cols)``."""
        return self.median_v.shape

    @property
    def product_count(self) -> int:
        """Number of products aggregated."""
        return len(self.entries)

    @property
    def start_datetime(self) -> datetime | None:
        """Earliest reference acquisition over all pairs (None when no pair has dates)."""
        times = [e.reference_datetime for e in self.entries if e.reference_datetime is not None]
        return min(times) if times else None

    @property
    def end_datetime(self) -> datetime | None:
        """Latest secondary acquisition over all pairs (None when no pair has dates)."""
        times = [e.secondary_datetime for e in self.entries if e.secondary_datetime is not None]
        return max(times) if times else None

    @property
    def valid_fraction(self) -> float:
        """Fraction of pixels with a median speed (0..1)."""
        return float(np.isfinite(self.median_v).mean()) if self.median_v.size else 0.0

    @property
    def max_velocity_m_per_yr(self) -> float | None:
        """The largest ``max_velocity_m_per_yr`` the pairs were tracked with (m/yr), if recorded."""
        values = [e.max_velocity_m_per_yr for e in self.entries if e.max_velocity_m_per_yr is not None]
        return max(values) if values else None

    @property
    def median_speed(self) -> float:
        """Median of ``median_v`` over the pixels that have one (m/yr); NaN when none do."""
        finite = self.median_v[np.isfinite(self.median_v)]
        return float(np.median(finite)) if finite.size else float("nan")

    def band(self, name: str) -> np.ndarray:
        """Array of one summary band by its name in :data:`SUMMARY_BANDS`."""
        if name not in {b for b, _, _ in SUMMARY_BANDS}:
            raise KeyError(f"unknown summary band {name!r}; bands are {[b for b, _, _ in SUMMARY_BANDS]}")
        return getattr(self, name)


@dataclass(frozen=True)
class SummaryFiles:
    """Paths of the summary COGs written by :func:`write_summary`, and optionally the figures."""

    median_v: Path
    median_vx: Path
    median_vy: Path
    std_v: Path
    count: Path
    summary_figure: Path | None = None
    time_series_figure: Path | None = None
    datacube: Path | None = None

    def with_datacube(self, datacube: Path | None) -> SummaryFiles:
        """A copy that also lists the velocity datacube (see :mod:`glacier_velocity.aggregation.datacube`)."""
        return replace(self, datacube=datacube)

    def with_figures(self, summary_figure: Path | None, time_series_figure: Path | None) -> SummaryFiles:
        """A copy that also lists the figure PNGs (see :mod:`glacier_velocity.products.figures`)."""
        return replace(self, summary_figure=summary_figure, time_series_figure=time_series_figure)

    def cogs(self) -> dict[str, Path]:
        """Band name -> COG path, in :data:`SUMMARY_BANDS` order."""
        return {name: getattr(self, name) for name, _, _ in SUMMARY_BANDS}

    def figures(self) -> dict[str, Path]:
        """Figure name -> PNG path, for the figures that exist."""
        out = {"summary_figure": self.summary_figure, "time_series_figure": self.time_series_figure}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class _Grid:
    transform: Affine
    crs: CRS
    shape: tuple[int, int]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        west, south, east, north = array_bounds(self.shape[0], self.shape[1], self.transform)
        return (west, south, east, north)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # Sentinel-2 acquisition times are UTC; naive values would not compare with aware ones.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _load(product: ProductLike) -> tuple[VelocityProduct, str]:
    if isinstance(product, VelocityProduct):
        return product, ""
    path = Path(product)
    if not path.is_file():
        raise InputError(f"velocity product {str(path)!r} does not exist; pass velocity COGs written by correlate")
    from ..io.cog import read_velocity_cog  # imported here: cog pulls in GDAL drivers only when files are used

    return read_velocity_cog(path), str(path)


def _max_velocity(product: VelocityProduct) -> float | None:
    """The product's tracking bound ``max_velocity_m_per_yr`` (m/yr) from its engine settings."""
    value = product.engine_params.get("max_velocity_m_per_yr")
    try:
        return float(value) if value is not None and np.isfinite(float(value)) else None
    except (TypeError, ValueError):
        return None


def _iter_products(products: Sequence[ProductLike]) -> Iterator[tuple[VelocityProduct, str]]:
    # One product at a time: only the resampled vx, vy and v of each are kept in the stacks.
    for product in products:
        yield _load(product)


def _grid_of(product: VelocityProduct, index: int, source: str) -> _Grid:
    try:
        crs = CRS.from_user_input(product.crs)
    except CRSError as exc:
        where = source or f"product {index}"
        raise InputError(f"{where} has no usable CRS ({product.crs!r}); velocity products must be georeferenced") from exc
    return _Grid(product.transform, crs, product.shape)


def _same_grid(product: VelocityProduct, grid: _Grid) -> bool:
    return (
        tuple(product.shape) == grid.shape
        and _grid_of(product, -1, "").crs == grid.crs
        and product.transform.almost_equals(grid.transform)
    )


def _overlaps(src: _Grid, dst: _Grid) -> bool:
    west, south, east, north = transform_bounds(src.crs, dst.crs, *src.bounds, densify_pts=21)
    d_west, d_south, d_east, d_north = dst.bounds
    return west < d_east and east > d_west and south < d_north and north > d_south


def _resample(band: np.ndarray, src: _Grid, dst: _Grid, resampling: Resampling) -> np.ndarray:
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


def _rotate_to_grid(vx: np.ndarray, vy: np.ndarray, src_crs: CRS, dst: _Grid) -> tuple[np.ndarray, np.ndarray]:
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
    grid : _Grid
        The common grid (transform, CRS, shape).
    resampled : bool
        False when the product already was on the common grid (values copied bit for bit).
    """

    product: VelocityProduct
    source: str
    vx: np.ndarray
    vy: np.ndarray
    v: np.ndarray
    grid: _Grid
    resampled: bool

    def regrid(self, band: np.ndarray, resampling: ResamplingName = "nearest") -> np.ndarray:
        """Another band of the product (same grid as ``product.v``) on the common grid."""
        if not self.resampled:
            return np.asarray(band, dtype=np.float32)
        src = _grid_of(self.product, -1, self.source)
        return _resample(band, src, self.grid, RESAMPLING[resampling])


def products_on_grid(products: Sequence[ProductLike], *, resampling: ResamplingName = "nearest") -> Iterator[GriddedProduct]:
    """Bring velocity products one at a time onto the first product's grid.

    The one place where products of different grids or UTM zones are aligned, for the
    summary and the datacube alike. Products on the first grid are passed through unchanged.

    Raises
    ------
    InvalidParameter
        Unknown ``resampling``.
    InputError
        A product file is missing, or a product does not overlap the first product's grid.
    """
    if resampling not in RESAMPLING:
        raise InvalidParameter("resampling", f"must be one of {sorted(RESAMPLING)}, got {resampling!r}")
    grid: _Grid | None = None
    for index, (product, source) in enumerate(_iter_products(products)):
        if grid is None:
            grid = _grid_of(product, index, source)
        if _same_grid(product, grid):
            yield GriddedProduct(product, source, product.vx, product.vy, product.v, grid, False)
            continue
        src = _grid_of(product, index, source)
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


def aggregate_products(
    products: Sequence[ProductLike],
    *,
    min_count: int = 1,
    resampling: ResamplingName = "nearest",
) -> Summary:
    """Median speed and velocity, spread and valid-map count per pixel over velocity products.

    Parameters
    ----------
    products : sequence of VelocityProduct or path
        Velocity products, in memory or as velocity COGs (read with
        :func:`glacier_velocity.io.cog.read_velocity_cog`). The first one defines the output
        grid (transform, shape, CRS).
    min_count : int, default 1
        Pixels with fewer valid maps get NaN statistics (``count`` keeps the true number).
    resampling : {"nearest", "bilinear"}, default "nearest"
        How products on another grid are brought onto the first grid. Nodata (NaN) never
        enters an interpolated value. When the CRS differs, ``vx``/``vy`` are also rotated
        to the first grid's axes.

    Returns
    -------
    Summary
        Statistics on the first product's grid (m/yr) and one :class:`PairEntry` per product
        with its own dates.

    Raises
    ------
    InvalidParameter
        No products, ``min_count`` < 1, or an unknown ``resampling``.
    InputError
        A product file is missing, or a product does not overlap the first product's grid.
    """
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise InvalidParameter("min_count", f"must be an integer >= 1, got {min_count!r}")
    if resampling not in RESAMPLING:
        raise InvalidParameter("resampling", f"must be one of {sorted(RESAMPLING)}, got {resampling!r}")
    n = len(products)
    if n == 0:
        raise InvalidParameter("products", "no velocity products given; pass at least one")
    if n > np.iinfo(np.uint16).max:
        raise InvalidParameter("products", f"at most {np.iinfo(np.uint16).max} products per summary, got {n}")

    grid: _Grid | None = None
    stacks: dict[str, np.ndarray] = {}
    entries: list[PairEntry] = []
    for index, gridded in enumerate(products_on_grid(products, resampling=resampling)):
        product, source, resampled = gridded.product, gridded.source, gridded.resampled
        if grid is None:
            grid = gridded.grid
            stacks = {name: np.full((n, *grid.shape), np.nan, dtype=np.float32) for name in ("v", "vx", "vy")}
        stacks["v"][index] = gridded.v
        stacks["vx"][index] = gridded.vx
        stacks["vy"][index] = gridded.vy
        valid = np.isfinite(stacks["v"][index])
        valid_px = int(valid.sum())
        entries.append(
            PairEntry(
                reference_id=product.reference_id,
                secondary_id=product.secondary_id,
                reference_datetime=_as_utc(product.reference_datetime),
                secondary_datetime=_as_utc(product.secondary_datetime),
                dt_days=float(product.dt_days),
                median_v=float(np.median(stacks["v"][index][valid])) if valid_px else float("nan"),
                valid_px=valid_px,
                valid_fraction=valid_px / valid.size if valid.size else 0.0,
                resampled=resampled,
                source=source,
                max_velocity_m_per_yr=_max_velocity(product),
            )
        )
        del product

    assert grid is not None
    count = np.isfinite(stacks["v"]).sum(axis=0).astype(np.uint16)
    enough = count >= min_count
    spread = count >= max(2, min_count)
    out: dict[str, np.ndarray] = {}
    for name in ("v", "vx", "vy"):
        median = np.full(grid.shape, np.nan, dtype=np.float32)
        # Only pixels with a valid value reach nanmedian: no all-NaN slices, no warnings.
        median[enough] = np.nanmedian(stacks[name][:, enough], axis=0)
        out[f"median_{name}"] = median
    std_v = np.full(grid.shape, np.nan, dtype=np.float32)
    std_v[spread] = np.nanstd(stacks["v"][:, spread].astype(np.float64), axis=0, ddof=1)
    summary = Summary(
        median_v=out["median_v"],
        median_vx=out["median_vx"],
        median_vy=out["median_vy"],
        std_v=std_v,
        count=count,
        transform=grid.transform,
        crs=grid.crs.to_string(),
        entries=tuple(entries),
        min_count=int(min_count),
    )
    log.info(
        "aggregated %d products on a %dx%d grid; %.1f%% of pixels have a median speed",
        n,
        *grid.shape,
        100 * summary.valid_fraction,
    )
    return summary


#: File name of each summary COG inside the output directory.
SUMMARY_FILE_NAMES: dict[str, str] = {name: f"summary_{name}.tif" for name, _, _ in SUMMARY_BANDS}



def summary_tags(summary: Summary) -> dict[str, str]:
    """Dataset tags shared by every summary COG (all values strings).

    ``start_datetime`` is the first reference acquisition and ``end_datetime`` the last
    secondary acquisition; ``pairs`` is a JSON list with each pair's own ids, dates and
    baseline, so no map borrows another's dates.
    """
    pairs = [
        {
            "reference_id": e.reference_id,
            "secondary_id": e.secondary_id,
            "reference_datetime": format_datetime(e.reference_datetime),
            "secondary_datetime": format_datetime(e.secondary_datetime),
            "dt_days": e.dt_days,
            "median_v": None if np.isnan(e.median_v) else round(e.median_v, 3),
        }
        for e in summary.entries
    ]
    return {
        "product": "glacier-velocity summary",
        "start_datetime": format_datetime(summary.start_datetime),
        "end_datetime": format_datetime(summary.end_datetime),
        "product_count": str(summary.product_count),
        "product_ids": json.dumps([e.pair_id for e in summary.entries]),
        "pairs": json.dumps(pairs),
        "min_count": str(summary.min_count),
        "software": "glacier-velocity",
        "software_version": __version__,
        "velocity_convention": "vx east, vy north, v magnitude, 1 yr = 365.25 days",
    }


def write_summary(summary: Summary, out_dir: str | os.PathLike[str]) -> SummaryFiles:
    """Write the summary bands as Cloud-Optimized GeoTIFFs, one file per band.

    Parameters
    ----------
    summary : Summary
        Result of :func:`aggregate_products`.
    out_dir : path-like
        Output directory, created if missing. Files are named ``summary_<band>.tif``.

    Returns
    -------
    SummaryFiles
        The paths of the five COGs.

    Notes
    -----
    ``median_v``, ``median_vx``, ``median_vy`` and ``std_v`` are float32 in m/yr with NaN
    declared as nodata. ``count`` is uint16 with **no** nodata value: every pixel has a
    count, and 0 means that no pair has a valid speed there. Every file carries the tags of
    :func:`summary_tags` (time span, number of products, their ids and dates) and a
    ``description`` tag.
    """
    from ..io.cog import write_cog  # the COG writer is only needed when files are written

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tags = summary_tags(summary)
    paths: dict[str, Path] = {}
    for name, unit, description in SUMMARY_BANDS:
        path = out / SUMMARY_FILE_NAMES[name]
        band_tags = {**tags, "description": description, "units": unit}
        # The count is an integer band where 0 means "no valid map": it declares no nodata.
        integer = name == "count"
        paths[name] = write_cog(
            path,
            {name: summary.band(name)},
            summary.transform,
            summary.crs,
            tags=band_tags,
            band_units={name: unit},
            nodata=None if integer else float("nan"),
            dtype="uint16" if integer else "float32",
        )
    log.info("wrote %d summary COGs to %s", len(paths), out)
    return SummaryFiles(**paths)
