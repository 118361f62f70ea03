"""Velocity datacube: every pair product of a run in one CF-1.8 NetCDF file, with ITS_LIVE's names.

Glaciologists analyse ITS_LIVE velocity cubes with xarray; this is the same kind of file for
one run, with the same variable names and units, so code written for ITS_LIVE's cubes reads
it: dimensions ``(mid_date, y, x)`` on the common grid (the first product's, see
:func:`glacier_velocity.aggregation.summary.products_on_grid`), one layer per pair, sorted by
the pair's mid date (pairs with the same mid date keep their input order).

The file is NetCDF-4 with ``mid_date`` an unlimited dimension, written one layer at a time
as the products are read: memory holds one product, whatever the number of pairs. NetCDF
rather than ITS_LIVE's Zarr because a run's cube is one file (a STAC asset, a CWL output,
an ``xarray.open_dataset`` away), the IOOS compliance checker reads it, and netCDF4 is
already a dependency; the names, not the container, are what ITS_LIVE's users' code needs.

Variables
---------
``vx``, ``vy``, ``v`` (meter/year, float32, ``(mid_date, y, x)``)
    East (grid x) and north (grid y) velocity and speed; CF standard names
    ``land_ice_surface_x_velocity``, ``land_ice_surface_y_velocity`` (CF has none for the speed).
``vx_error``, ``vy_error``, ``v_error`` (meter/year)
    1-sigma errors from the corrected stable ground (missing where a pair has none).
``acquisition_date_img1``, ``acquisition_date_img2``, ``date_center`` (per pair)
    Acquisition times of the two scenes and their midpoint (the ``mid_date`` coordinate);
    ``date_dt`` the baseline (days, fractional).
``mission_img1``, ``satellite_img1``, ``mission_img2``, ``satellite_img2`` (per pair)
    ITS_LIVE's codes: mission ``"S"`` (Sentinel) or ``"L"`` (Landsat), satellite ``"2A"``,
    ``"2B"``, ``"8"``...; ``""`` when the scene id does not say. ``id_img1``, ``id_img2``
    are the scene ids; ``roi_valid_percentage`` the share of the grid the pair measured.
``vx_stable_shift``, ``vy_stable_shift`` (meter/year), ``stable_shift_flag``, ``stable_count_stationary``
    The stable-ground correction removed from each pair, how (0 none, 1 from stable ground
    outside the glacier, 2 from the dominant displacement mode), and on how many points.
``in_summary``, ``summary_exclusion_reason`` (per pair, when the summary's choice is given)
    1 when the pair entered the summary, 0 when the summary left it out, and why.
``lat``, ``lon`` (degrees, ``(y, x)``)
    Latitude and longitude of every cell centre (WGS 84), the CF auxiliary coordinates.
``mapping``
    The grid mapping: CF projection attributes, ``crs_wkt``, ``spatial_epsg`` and ``GeoTransform``.

Times are ``days since 1970-01-01`` (float64) as in ITS_LIVE; missing values are
``_FillValue = -32767`` on disk (as in ITS_LIVE) and NaN once opened. The year is 365.25
days (ITS_LIVE uses 365).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..domain.velocity import BAND_DESCRIPTIONS, CF_STANDARD_NAMES, DAYS_PER_YEAR, VelocityProduct
from ..errors import InputError, InvalidParameter
from ..io.atomic import atomic_output
from .grid import Grid, GriddedProduct, ProductLike, ResamplingName, grid_of, product_header, products_on_grid

log = logging.getLogger(__name__)

#: File name of the datacube in the aggregation outputs.
DATACUBE_FILE_NAME = "velocity_datacube.nc"
#: Media type of the STAC asset.
DATACUBE_MEDIA_TYPE = "application/netcdf"
#: Fill value on disk of the float variables (ITS_LIVE's).
FILL_VALUE = -32767.0
#: Units of the velocities and their errors, as ITS_LIVE writes them (UDUNITS reads them).
VELOCITY_UNITS = "meter/year"
#: Units of every time variable (ITS_LIVE's); float64 days resolve a microsecond.
TIME_UNITS = "days since 1970-01-01 00:00:00"
CALENDAR = "proleptic_gregorian"
#: The grid variables, in the order they are written, with ITS_LIVE's descriptions.
GRID_VARIABLES: dict[str, str] = {
    "v": "velocity magnitude",
    "vx": "velocity component in x direction",
    "vy": "velocity component in y direction",
    "v_error": "velocity magnitude error",
    "vx_error": "error for velocity component in x direction",
    "vy_error": "error for velocity component in y direction",
}
#: ``stable_shift_flag`` values (ITS_LIVE's meaning: 0 none, 1 from a stable-surface mask,
#: 2 from the data's own slow part) and their CF ``flag_meanings``.
STABLE_SHIFT_FLAGS = ("no_correction", "correction_from_stable_ground_mask", "correction_from_dominant_displacement")
#: Largest grid cells per chunk row block of a layer (float32: 4 MB).
CHUNK_CELLS = 1 << 20


@dataclass(frozen=True)
class DatacubeInfo:
    """What a written datacube holds."""

    path: Path
    pair_count: int
    shape: tuple[int, int]
    variables: tuple[str, ...]


def mission_and_satellite(scene_id: str) -> tuple[str, str]:
    """ITS_LIVE's mission and satellite codes of a scene id (``("", "")`` when it does not say).

    >>> mission_and_satellite("S2B_43SEA_20200601_0_L2A")
    ('S', '2B')
    >>> mission_and_satellite("LC08_L1TP_063018_20200607_20200824_02_T1")
    ('L', '8')
    >>> mission_and_satellite("reference.tif")
    ('', '')
    """
    sentinel = re.match(r"S(\d)([A-D])_", scene_id)
    if sentinel:
        return "S", sentinel.group(1) + sentinel.group(2)
    landsat = re.match(r"L[COTEM]0?(\d)", scene_id)
    if landsat:
        return "L", landsat.group(1)
    return "", ""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def days_since_epoch(value: datetime) -> float:
    """``value`` as days since 1970-01-01 UTC (fractional), the cube's time unit."""
    return (_utc(value) - _EPOCH).total_seconds() / 86400.0


def _grid_mapping(crs: str, transform: Any) -> dict[str, Any]:
    from pyproj import CRS as ProjCRS

    proj = ProjCRS.from_user_input(crs)
    attrs = {k: v for k, v in proj.to_cf().items() if v is not None}
    attrs["spatial_ref"] = attrs.get("crs_wkt", "")
    epsg = proj.to_epsg()
    if epsg is not None:
        attrs["spatial_epsg"] = np.int32(epsg)
    attrs["GeoTransform"] = " ".join(
        repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e)
    )
    return attrs


def _stable_shift_flag(correction: Mapping[str, Any]) -> int:
    """0: no correction; 1: from stable ground given by a mask (outlines, scene classes); 2: from the data."""
    method = correction.get("stable_shift_method", "none")
    applied = correction.get("stable_shift_applied")
    if not (method != "none" if applied is None else applied):
        return 0
    return 2 if method == "automatic-mode" else 1


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _on_disk(values: np.ndarray) -> np.ndarray:
    """float32 with NaN as the fill value, as written."""
    values = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(values), values, np.float32(FILL_VALUE))


def _from_disk(values: np.ndarray) -> np.ndarray:
    """float32 with the fill value as NaN, as read (in place)."""
    values = np.asarray(values, dtype=np.float32)
    values[values == np.float32(FILL_VALUE)] = np.nan
    return values


def _times(product: VelocityProduct | Any, where: str) -> tuple[datetime, datetime, datetime]:
    """(reference, secondary, mid) acquisition times of a pair, UTC."""
    if product.reference_datetime is None or product.secondary_datetime is None:
        raise InputError(f"velocity product {where} has no acquisition dates; the datacube is indexed by mid date")
    reference, secondary = _utc(product.reference_datetime), _utc(product.secondary_datetime)
    return reference, secondary, reference + (secondary - reference) / 2


class DatacubeWriter:
    """Writes the datacube one pair layer at a time (NetCDF-4, ``mid_date`` unlimited).

    Use :func:`open_datacube`; :meth:`append` each pair on the common grid in mid-date order.
    """

    def __init__(self, dataset: Any, grid: Grid, *, flags: bool, require_dates: bool = True) -> None:
        self._ds = dataset
        self.grid = grid
        self.flags = flags
        self.require_dates = require_dates
        self.count = 0

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a grid variable for every layer written, NaN where missing:
        float32, shape (layers, stop - start, cols). Chunks are whole rows of one layer, so this
        reads each chunk of the block once."""
        return _from_disk(self._ds[name][: self.count, start:stop, :])

    def read_layer(self, name: str, index: int) -> np.ndarray:
        """One layer of a grid variable, NaN where missing: float32, shape (rows, cols)."""
        return _from_disk(self._ds[name][index, :, :])

    @property
    def variables(self) -> tuple[str, ...]:
        """Names of the cube's variables (coordinates included)."""
        return tuple(map(str, self._ds.variables))

    def append(self, gridded: GriddedProduct, *, left_out: str | None = None) -> None:
        """Write one pair (its bands already on the grid) as the next layer.

        ``left_out`` is the reason the summary left the pair out (None: it entered the summary).
        """
        product, ds, index = gridded.product, self._ds, self.count
        where = gridded.source or f"{product.reference_id} -> {product.secondary_id}"
        if self.require_dates or (product.reference_datetime is not None and product.secondary_datetime is not None):
            reference, secondary, mid = _times(product, where)
            days = {
                "mid": days_since_epoch(mid),
                "img1": days_since_epoch(reference),
                "img2": days_since_epoch(secondary),
            }
        else:
            # A scratch stack (the summary of undated products): no time axis to honour.
            days = dict.fromkeys(("mid", "img1", "img2"), float("nan"))
        bands = {"v": gridded.v, "vx": gridded.vx, "vy": gridded.vy}
        for name in ("v_error", "vx_error", "vy_error"):
            bands[name] = gridded.regrid(getattr(product, name))
        for name in GRID_VARIABLES:
            ds[name][index, :, :] = _on_disk(bands[name])
        ds["mid_date"][index] = days["mid"]
        ds["date_center"][index] = days["mid"]
        ds["acquisition_date_img1"][index] = days["img1"]
        ds["acquisition_date_img2"][index] = days["img2"]
        ds["date_dt"][index] = float(product.dt_days)
        for number, scene in ((1, product.reference_id), (2, product.secondary_id)):
            mission, satellite = mission_and_satellite(scene)
            ds[f"mission_img{number}"][index] = mission
            ds[f"satellite_img{number}"][index] = satellite
            ds[f"id_img{number}"][index] = scene
        valid = np.isfinite(gridded.v)
        ds["roi_valid_percentage"][index] = 100.0 * float(valid.mean()) if valid.size else 0.0
        correction = product.correction or {}
        ds["vx_stable_shift"][index] = _float(correction.get("stable_shift_vx_m_per_yr"))
        ds["vy_stable_shift"][index] = _float(correction.get("stable_shift_vy_m_per_yr"))
        count = correction.get("stable_count")
        ds["stable_count_stationary"][index] = (
            int(count) if isinstance(count, (int, float)) and np.isfinite(count) else -1
        )
        ds["stable_shift_flag"][index] = _stable_shift_flag(correction)
        ds["stable_shift_method"][index] = str(correction.get("stable_shift_method", ""))
        if self.flags:
            ds["in_summary"][index] = 0 if left_out is not None else 1
            ds["summary_exclusion_reason"][index] = left_out or ""
        self.count += 1


def _create(ds: Any, grid: Grid, *, pairs: int, flags: bool, chunk_rows: int | None = None) -> None:
    """Dimensions, coordinates, attributes and empty variables of a datacube."""
    rows, cols = grid.shape
    t = grid.transform
    ds.createDimension("mid_date", None)
    ds.createDimension("y", rows)
    ds.createDimension("x", cols)

    def variable(name: str, dtype: Any, dims: tuple[str, ...], attrs: Mapping[str, Any], **kw: Any) -> Any:
        var = ds.createVariable(name, dtype, dims, **kw)
        var.setncatts(dict(attrs))
        return var

    time_attrs = {"units": TIME_UNITS, "calendar": CALENDAR}
    variable(
        "mid_date",
        "f8",
        ("mid_date",),
        {
            "standard_name": "time",
            "long_name": "midpoint of image 1 and image 2 acquisition date and time",
            "axis": "T",
            **time_attrs,
        },
    )
    x = np.array([(t @ (c + 0.5, 0.5))[0] for c in range(cols)])
    y = np.array([(t @ (0.5, r + 0.5))[1] for r in range(rows)])
    for name, values in (("y", y), ("x", x)):
        var = variable(
            name,
            "f8",
            (name,),
            {
                "standard_name": f"projection_{name}_coordinate",
                "long_name": f"{name} coordinate of projection (cell centre)",
                "units": "m",
                "axis": name.upper(),
            },
        )
        var[:] = values
    _write_lonlat(ds, grid, x, y, variable)

    # One chunk per block of whole rows of one layer: a row block of every layer is what the
    # summary reads at once, and a layer is written whole.
    chunk_rows = max(1, min(rows, chunk_rows or CHUNK_CELLS // max(cols, 1)))
    for name, description in GRID_VARIABLES.items():
        attrs = {
            "long_name": BAND_DESCRIPTIONS[name],
            "description": description,
            "units": VELOCITY_UNITS,
            "grid_mapping": "mapping",
            "coordinates": "lat lon",
        }
        if name in CF_STANDARD_NAMES:
            attrs["standard_name"] = CF_STANDARD_NAMES[name]
        variable(
            name,
            "f4",
            ("mid_date", "y", "x"),
            attrs,
            zlib=True,
            complevel=4,
            shuffle=True,
            chunksizes=(1, chunk_rows, cols),
            fill_value=np.float32(FILL_VALUE),
        )
    per_pair = ("mid_date",)
    for name, long_name in (
        ("date_center", "midpoint of image 1 and image 2 acquisition date"),
        ("acquisition_date_img1", "acquisition date and time of image 1 (reference), UTC"),
        ("acquisition_date_img2", "acquisition date and time of image 2 (secondary), UTC"),
    ):
        variable(name, "f8", per_pair, {"long_name": long_name, **time_attrs})
    variable(
        "date_dt",
        "f8",
        per_pair,
        {"long_name": "time separation between acquisition of image 1 and image 2 (baseline)", "units": "days"},
    )
    for number in (1, 2):
        variable(
            f"mission_img{number}", str, per_pair, {"long_name": f"id of the mission that acquired image {number}"}
        )
        variable(
            f"satellite_img{number}", str, per_pair, {"long_name": f"id of the satellite that acquired image {number}"}
        )
        variable(f"id_img{number}", str, per_pair, {"long_name": f"identifier of image {number} (scene id)"})
    variable(
        "roi_valid_percentage",
        "f4",
        per_pair,
        {"long_name": "percentage of the grid's cells with a valid velocity", "units": "percent"},
    )
    for axis in ("x", "y"):
        variable(
            f"v{axis}_stable_shift",
            "f8",
            per_pair,
            {
                "long_name": f"v{axis} shift removed by the stable-ground correction",
                "units": VELOCITY_UNITS,
            },
            fill_value=FILL_VALUE,
        )
    variable(
        "stable_count_stationary",
        "i4",
        per_pair,
        {"long_name": "number of valid points on stable ground the shift was measured on", "units": "1"},
        fill_value=np.int32(-1),
    )
    variable(
        "stable_shift_flag",
        "i1",
        per_pair,
        {
            "long_name": "flag for applying the velocity bias (stable-ground) correction",
            "flag_values": np.array([0, 1, 2], dtype=np.int8),
            "flag_meanings": " ".join(STABLE_SHIFT_FLAGS),
        },
    )
    variable(
        "stable_shift_method",
        str,
        per_pair,
        {"long_name": "how stable ground was found: outlines, scene-classification, automatic-mode or none"},
    )
    if flags:
        variable(
            "in_summary",
            "i1",
            per_pair,
            {
                "long_name": "whether the pair entered the run's summary",
                "flag_values": np.array([0, 1], dtype=np.int8),
                "flag_meanings": "left_out_of_summary used_in_summary",
            },
        )
        variable(
            "summary_exclusion_reason",
            str,
            per_pair,
            {"long_name": "why the summary left the pair out (empty when it is used)"},
        )
    mapping = variable("mapping", "i4", (), _grid_mapping(grid.crs.to_wkt(), t))
    mapping.assignValue(0)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ds.setncatts(
        {
            "Conventions": "CF-1.8",
            "title": "Glacier surface velocity of image pairs (datacube, ITS_LIVE variable names)",
            "institution": "made with glacier-velocity",
            "source": f"glacier-velocity {__version__}: feature tracking of Sentinel-2 pairs",
            "history": f"{now} written by glacier-velocity {__version__}",
            "references": "variable names follow the ITS_LIVE datacubes (its-live.jpl.nasa.gov)",
            "date_created": now,
            "projection": str(grid.crs.to_epsg() or grid.crs.to_wkt()),
            "GDAL_AREA_OR_POINT": "Area",
            "velocity_convention": "vx east (grid x), vy north (grid y), v magnitude; meter/year",
            "year_length_days": DAYS_PER_YEAR,
            "pair_count": np.int32(pairs),
            "comment": (
                "one layer per image pair on the grid of the first product, sorted by mid_date; "
                "ITS_LIVE uses 365 days per year, this product 365.25"
            ),
        }
    )


def _write_lonlat(ds: Any, grid: Grid, x: np.ndarray, y: np.ndarray, variable: Any) -> None:
    """2-D ``lat``/``lon`` of the cell centres, computed and written a row block at a time."""
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True)
    lat, lon = (
        variable(
            name,
            "f8",
            ("y", "x"),
            {"standard_name": standard, "long_name": f"{standard} of cell centre (WGS 84)", "units": units},
            zlib=True,
            complevel=4,
        )
        for name, standard, units in (("lat", "latitude", "degrees_north"), ("lon", "longitude", "degrees_east"))
    )
    step = max(1, CHUNK_CELLS // max(len(x), 1))
    for start in range(0, len(y), step):
        xx, yy = np.meshgrid(x, y[start : start + step])
        lons, lats = to_lonlat.transform(xx, yy)
        lon[start : start + step, :] = lons
        lat[start : start + step, :] = lats


@contextmanager
def open_datacube(
    path: str | os.PathLike[str],
    grid: Grid,
    *,
    pairs: int,
    flags: bool = False,
    chunk_rows: int | None = None,
    require_dates: bool = True,
) -> Iterator[DatacubeWriter]:
    """A :class:`DatacubeWriter` on a new datacube at ``path``, renamed into place when the block succeeds.

    ``pairs`` is the number of layers to come (recorded as ``pair_count``); ``flags`` adds
    ``in_summary`` and ``summary_exclusion_reason``; ``chunk_rows`` is the height of a chunk
    (default: up to :data:`CHUNK_CELLS` cells); ``require_dates`` False takes products without
    acquisition dates (NaN times: a scratch stack, not a datacube for users).
    """
    import netCDF4

    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            dataset = netCDF4.Dataset(tmp, "w", format="NETCDF4")
            try:
                dataset.set_auto_mask(False)
                _create(dataset, grid, pairs=pairs, flags=flags, chunk_rows=chunk_rows)
                writer = DatacubeWriter(dataset, grid, flags=flags, require_dates=require_dates)
                yield writer
            finally:
                dataset.close()
        except RuntimeError as exc:
            # netCDF4 reports a failed write (a full disk: "NetCDF: HDF error") as RuntimeError.
            if str(exc).startswith("NetCDF"):
                raise OSError(f"writing the datacube {path.name}: {exc}") from exc
            raise
        if writer.count != pairs:
            raise ValueError(f"the datacube got {writer.count} layers of the {pairs} announced")


def mid_date_order(products: Sequence[ProductLike], headers: Sequence[Any] | None = None) -> list[int]:
    """Indices of ``products`` sorted by mid date (stable: equal mid dates keep their order).

    Reads only the COGs' tags (or takes their ``headers``). Raises :class:`InputError` for a
    product without dates.
    """
    mids = []
    for index, product in enumerate(products):
        header = headers[index] if headers is not None else product_header(product)
        where = (
            f"{index} ({product.reference_id} -> {product.secondary_id})"
            if isinstance(product, VelocityProduct)
            else str(product)
        )
        mids.append(_times(header, where)[2])
    return sorted(range(len(products)), key=lambda i: mids[i])


def write_datacube(
    products: Sequence[ProductLike],
    path: str | os.PathLike[str],
    *,
    resampling: ResamplingName = "nearest",
    left_out: Mapping[str, str] | None = None,
) -> DatacubeInfo:
    """Write every pair product onto the common grid as one NetCDF-4 datacube, a layer at a time.

    Parameters
    ----------
    products : sequence of VelocityProduct or path
        Velocity products (or their COGs); the first defines the grid. Every product needs its
        two acquisition datetimes (the cube is indexed by the pair's mid date).
    path : path-like
        The NetCDF file, written atomically.
    resampling : {"nearest", "bilinear"}
        How products on another grid are brought onto the first one.
    left_out : mapping of pair id to reason, optional
        The pairs the summary left out (``<reference_id>__<secondary_id>``) and why: they get
        ``in_summary = 0`` and the reason; the others ``in_summary = 1``. None: no such
        variables (the summary's choice is not known).

    Returns
    -------
    DatacubeInfo
        The written path, pair count, grid shape and variable names.

    Raises
    ------
    InvalidParameter
        No products.
    InputError
        A product without acquisition dates, missing files, or a product off the grid.
    """
    if len(products) == 0:
        raise InvalidParameter("products", "no velocity products given; pass at least one")
    order = mid_date_order(products)
    grid = grid_of(product_header(products[0]), 0, "" if isinstance(products[0], VelocityProduct) else str(products[0]))
    reasons = dict(left_out or {})
    with open_datacube(path, grid, pairs=len(products), flags=left_out is not None) as cube:
        for gridded in products_on_grid([products[i] for i in order], resampling=resampling, grid=grid):
            pair_id = f"{gridded.product.reference_id}__{gridded.product.secondary_id}"
            cube.append(gridded, left_out=reasons.get(pair_id))
        variables = cube.variables
    info = DatacubeInfo(Path(path), len(products), grid.shape, variables)
    log.info("datacube: %d pairs on a %dx%d grid -> %s", info.pair_count, *info.shape, path)
    return info
