"""Velocity datacube: every pair product of a run in one CF-1.8 NetCDF file.

Glaciologists analyse ITS_LIVE velocity cubes with xarray; this is the same kind of file for
one run: dimensions ``(mid_date, y, x)`` on the common grid (the first product's, see
:func:`glacier_velocity.aggregation.summary.products_on_grid`), one layer per pair, sorted by
the pair's mid date (pairs with the same mid date keep their input order).

Variables
---------
``vx``, ``vy``, ``v`` (m/yr, float32)
    East (grid x) and north (grid y) velocity and speed, CF standard names
    ``land_ice_surface_x_velocity``, ``land_ice_surface_y_velocity``, ``land_ice_surface_speed``.
``vx_error``, ``vy_error``, ``v_error`` (m/yr, float32), when the products carry them
    1-sigma errors from the corrected stable ground (standard-name modifier ``standard_error``).
``reference_datetime``, ``secondary_datetime`` (per pair)
    Acquisition times of the two scenes; ``dt_days`` the baseline (days, fractional).
``reference_id``, ``secondary_id`` (per pair)
    Scene identifiers (provenance).
``stable_shift_*``, ``stable_count`` (per pair), when the products carry them
    The stable-ground correction removed from each pair (px and m/yr).
``mapping``
    The grid mapping: CF projection attributes, ``crs_wkt`` and ``GeoTransform``.

Missing values are ``_FillValue = -32767`` on disk (as in ITS_LIVE) and NaN once opened. The
year is 365.25 days (ITS_LIVE uses 365).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..domain.velocity import DAYS_PER_YEAR
from ..errors import InputError, InvalidParameter
from ..io.atomic import atomic_output
from .summary import ProductLike, ResamplingName, products_on_grid

log = logging.getLogger(__name__)

#: File name of the datacube in the aggregation outputs.
DATACUBE_FILE_NAME = "velocity_datacube.nc"
#: Media type of the STAC asset.
DATACUBE_MEDIA_TYPE = "application/netcdf"
#: Fill value on disk of the float variables (ITS_LIVE's).
FILL_VALUE = -32767.0

#: Velocity variables: name -> (CF standard name, long name).
VELOCITY_VARIABLES: dict[str, tuple[str, str]] = {
    "vx": ("land_ice_surface_x_velocity", "velocity along the grid x axis (east)"),
    "vy": ("land_ice_surface_y_velocity", "velocity along the grid y axis (north)"),
    "v": ("land_ice_surface_speed", "speed (magnitude of vx, vy)"),
}
#: Error variables, present when the products carry them (1-sigma, m/yr).
ERROR_VARIABLES: dict[str, tuple[str, str]] = {
    "vx_error": ("land_ice_surface_x_velocity standard_error", "1-sigma error of vx from the corrected stable ground"),
    "vy_error": ("land_ice_surface_y_velocity standard_error", "1-sigma error of vy from the corrected stable ground"),
    "v_error": ("land_ice_surface_speed standard_error", "1-sigma error of v, propagated from vx_error and vy_error"),
}
#: Per-pair stable-ground correction (name -> units), present when the products carry it.
STABLE_SHIFT_VARIABLES: dict[str, str] = {
    "stable_shift_dx_px": "pixel",
    "stable_shift_dy_px": "pixel",
    "stable_shift_vx_m_per_yr": "m/yr",
    "stable_shift_vy_m_per_yr": "m/yr",
    "stable_count": "1",
}


@dataclass(frozen=True)
class DatacubeInfo:
    """What a written datacube holds."""

    path: Path
    pair_count: int
    shape: tuple[int, int]
    variables: tuple[str, ...]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _datetime64(value: datetime) -> np.datetime64:
    # naive UTC at ns precision: xarray encodes datetime64 to CF "days since ..." itself.
    return np.datetime64(_utc(value).replace(tzinfo=None), "ns")


def _optional(product: Any, name: str) -> Any:
    """A correction output of a product (error band or stable-shift value), or None.

    The correction stage (issue 10) adds these to the velocity products; older products
    and products made without the correction have none, and the cube then omits them.
    """
    value = getattr(product, name, None)
    if value is None:
        # VelocityProduct.correction: the StableShift.as_properties() record of the pair.
        value = (getattr(product, "correction", None) or {}).get(name)
    if value is None:
        shift = getattr(product, "stable_shift", None)
        if shift is not None and hasattr(shift, "as_properties"):
            value = shift.as_properties().get(name)
    return value


def _grid_mapping(crs: str, transform: Any) -> dict[str, Any]:
    from pyproj import CRS as ProjCRS

    attrs = {k: v for k, v in ProjCRS.from_user_input(crs).to_cf().items() if v is not None}
    attrs["spatial_ref"] = attrs.get("crs_wkt", "")
    attrs["GeoTransform"] = " ".join(
        repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e)
    )
    return attrs


def build_datacube(products: Sequence[ProductLike], *, resampling: ResamplingName = "nearest") -> Any:
    """All pair products on the common grid as one CF-1.8 ``xarray.Dataset``.

    Parameters
    ----------
    products : sequence of VelocityProduct or path
        Velocity products (or COGs); the first defines the grid. Every product needs its two
        acquisition datetimes (the cube is indexed by the pair's mid date).
    resampling : {"nearest", "bilinear"}
        How products on another grid are brought onto the first one.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(mid_date, y, x)``; ``x``, ``y`` are the cell-centre coordinates (m).

    Raises
    ------
    InvalidParameter
        No products.
    InputError
        A product without acquisition dates, missing files, or a product off the grid.
    """
    import xarray as xr

    if len(products) == 0:
        raise InvalidParameter("products", "no velocity products given; pass at least one")
    layers: list[dict[str, Any]] = []
    grid = None
    for gridded in products_on_grid(products, resampling=resampling):
        product = gridded.product
        grid = gridded.grid
        if product.reference_datetime is None or product.secondary_datetime is None:
            where = gridded.source or f"{product.reference_id} -> {product.secondary_id}"
            raise InputError(f"velocity product {where} has no acquisition dates; the datacube is indexed by mid date")
        reference, secondary = _utc(product.reference_datetime), _utc(product.secondary_datetime)
        layer: dict[str, Any] = {
            "vx": np.asarray(gridded.vx, np.float32),
            "vy": np.asarray(gridded.vy, np.float32),
            "v": np.asarray(gridded.v, np.float32),
            "mid": reference + (secondary - reference) / 2,
            "reference_datetime": reference,
            "secondary_datetime": secondary,
            "dt_days": float(product.dt_days),
            "reference_id": product.reference_id,
            "secondary_id": product.secondary_id,
        }
        for name in ERROR_VARIABLES:
            band = _optional(product, name)
            if band is not None:
                layer[name] = gridded.regrid(np.asarray(band, np.float32))
        for name in STABLE_SHIFT_VARIABLES:
            value = _optional(product, name)
            if value is not None:
                layer[name] = value
        method = _optional(product, "stable_shift_method")
        if method is not None:
            layer["stable_shift_method"] = str(method)
        layers.append(layer)
    assert grid is not None
    # Stable sort: equal mid dates keep their input order.
    order = sorted(range(len(layers)), key=lambda i: layers[i]["mid"])
    layers = [layers[i] for i in order]
    rows, cols = grid.shape
    t = grid.transform
    x = np.array([(t @ (c + 0.5, 0.5))[0] for c in range(cols)])
    y = np.array([(t @ (0.5, r + 0.5))[1] for r in range(rows)])
    coords = {
        "mid_date": (
            "mid_date",
            np.array([_datetime64(layer["mid"]) for layer in layers]),
            {"standard_name": "time", "long_name": "midpoint between the two acquisitions of the pair"},
        ),
        "y": (
            "y",
            y,
            {"standard_name": "projection_y_coordinate", "long_name": "y of cell centre", "units": "m", "axis": "Y"},
        ),
        "x": (
            "x",
            x,
            {"standard_name": "projection_x_coordinate", "long_name": "x of cell centre", "units": "m", "axis": "X"},
        ),
    }
    data_vars: dict[str, Any] = {}

    def grid_var(name: str, standard_name: str, long_name: str) -> None:
        if any(name not in layer for layer in layers):
            if any(name in layer for layer in layers):
                log.warning("datacube: %s is missing in some pairs; written as NaN there", name)
            else:
                return
        stack = np.stack([layer.get(name, np.full((rows, cols), np.nan, np.float32)) for layer in layers])
        data_vars[name] = (
            ("mid_date", "y", "x"),
            stack.astype(np.float32),
            {"standard_name": standard_name, "long_name": long_name, "units": "m/yr", "grid_mapping": "mapping"},
        )

    for name, (standard_name, long_name) in {**VELOCITY_VARIABLES, **ERROR_VARIABLES}.items():
        grid_var(name, standard_name, long_name)
    data_vars["reference_datetime"] = (
        "mid_date",
        np.array([_datetime64(layer["reference_datetime"]) for layer in layers]),
        {"long_name": "acquisition time of the reference (first) scene, UTC"},
    )
    data_vars["secondary_datetime"] = (
        "mid_date",
        np.array([_datetime64(layer["secondary_datetime"]) for layer in layers]),
        {"long_name": "acquisition time of the secondary (second) scene, UTC"},
    )
    data_vars["dt_days"] = (
        "mid_date",
        np.array([layer["dt_days"] for layer in layers], np.float64),
        {"long_name": "time between the acquisitions (baseline)", "units": "days"},
    )
    data_vars["reference_id"] = (
        "mid_date",
        np.array([layer["reference_id"] for layer in layers], dtype=object),
        {"long_name": "identifier of the reference scene"},
    )
    data_vars["secondary_id"] = (
        "mid_date",
        np.array([layer["secondary_id"] for layer in layers], dtype=object),
        {"long_name": "identifier of the secondary scene"},
    )
    for name, units in STABLE_SHIFT_VARIABLES.items():
        if any(name in layer for layer in layers):
            dtype = np.int32 if name == "stable_count" else np.float64
            fill = -1 if name == "stable_count" else np.nan
            values = np.array([layer.get(name, fill) for layer in layers], dtype=dtype)
            data_vars[name] = ("mid_date", values, {"long_name": f"stable-ground correction: {name}", "units": units})
    if any("stable_shift_method" in layer for layer in layers):
        data_vars["stable_shift_method"] = (
            "mid_date",
            np.array([layer.get("stable_shift_method", "") for layer in layers], dtype=object),
            {"long_name": "how stable ground was found (outlines, automatic-mode, none)"},
        )
    data_vars["mapping"] = ((), np.int32(0), _grid_mapping(grid.crs.to_wkt(), t))
    dataset = xr.Dataset(data_vars=data_vars, coords=coords)
    dataset.attrs.update(
        {
            "Conventions": "CF-1.8",
            "title": "Glacier surface velocity pairs (datacube)",
            "source": f"glacier-velocity {__version__}: feature tracking of Sentinel-2 pairs",
            "history": f"{datetime.now(UTC).isoformat(timespec='seconds')} written by glacier-velocity {__version__}",
            "velocity_convention": "vx east (grid x), vy north (grid y), v magnitude; m/yr",
            "year_length_days": DAYS_PER_YEAR,
            "comment": "one layer per image pair on the grid of the first product; ITS_LIVE uses 365 days per year, this product 365.25",
        }
    )
    return dataset


def write_datacube(
    products: Sequence[ProductLike],
    path: str | os.PathLike[str],
    *,
    resampling: ResamplingName = "nearest",
) -> DatacubeInfo:
    """Build the datacube (:func:`build_datacube`) and write it as NetCDF-4, atomically.

    Returns
    -------
    DatacubeInfo
        The written path, pair count, grid shape and variable names.
    """
    dataset = build_datacube(products, resampling=resampling)
    encoding: dict[str, dict[str, Any]] = {}
    for name, variable in dataset.data_vars.items():
        if variable.dims == ("mid_date", "y", "x"):
            encoding[str(name)] = {
                "_FillValue": np.float32(FILL_VALUE),
                "zlib": True,
                "complevel": 4,
                "chunksizes": (1, *variable.shape[1:]),
            }
        elif variable.dtype == np.float64:
            encoding[str(name)] = {"_FillValue": np.nan}
        elif variable.dtype.kind in "iuO" or name == "mapping":
            encoding[str(name)] = {"_FillValue": None}
    for name in ("mid_date", "reference_datetime", "secondary_datetime"):
        encoding[name] = {"units": "microseconds since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    for name in ("x", "y"):
        encoding[name] = {"_FillValue": None}
    path = Path(path)
    with atomic_output(path) as tmp:
        dataset.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    info = DatacubeInfo(
        path, dataset.sizes["mid_date"], (dataset.sizes["y"], dataset.sizes["x"]), tuple(map(str, dataset.data_vars))
    )
    log.info("datacube: %d pairs on a %dx%d grid -> %s", info.pair_count, *info.shape, path)
    return info
