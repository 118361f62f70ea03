"""Products of one pair besides the velocity COG: file names, quicklook PNG and STAC item.

File names derive from the tile and the two acquisition dates (:func:`product_basename`), e.g.
``S2_43SEA_20200601_20200721.tif`` (velocity COG), ``..._quicklook.png`` and ``....json``
(STAC item), all in one directory with relative asset hrefs, so the directory can be moved
or served as it is.

Item properties specific to this package use the ``gv:`` prefix: ``gv:reference_id``,
``gv:secondary_id``, ``gv:reference_datetime``, ``gv:secondary_datetime``, ``gv:dt_days``
(baseline, fractional days), ``gv:engine``, ``gv:engine_params``, ``gv:valid_fraction`` and
``gv:median_speed_m_per_yr`` and ``gv:software_version``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pystac
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension, Statistics
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from ._version import __version__
from .atomic import atomic_output
from .cog import COG_MEDIA_TYPE
from .errors import InputError, InvalidParameter
from .velocity import VELOCITY_BANDS, VelocityProduct

if TYPE_CHECKING:
    from .pairing import Pair
    from .raster import Raster

log = logging.getLogger(__name__)

#: Prefix of every product file name (the mission).
MISSION_PREFIX = "S2"

#: What each velocity band holds, for the STAC item.
BAND_DESCRIPTIONS: dict[str, str] = {
    "vx": "velocity east component",
    "vy": "velocity north component",
    "v": "speed (velocity magnitude)",
    "dx": "offset along image columns (+ east for north-up grids)",
    "dy": "offset along image rows (+ down, i.e. south for north-up grids)",
    "peak": "normalized cross-correlation at the match (-1..1)",
    "snr": "correlation peak sharpness (peak over RMS correlation 2 px away)",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """``text`` reduced to a safe file name: ``[A-Za-z0-9_.-]`` only, no ``..``, no leading dot.

    Separators (``/``, ``\\``), spaces, control and non-ASCII characters become ``-``; the
    result is at most 200 characters; ``fallback`` when nothing is left.

    >>> safe_name("../../etc/passwd")
    'etc-passwd'
    >>> safe_name("S2A_43SEA_20200601_0_L2A")
    'S2A_43SEA_20200601_0_L2A'
    """
    cleaned = _UNSAFE.sub("-", str(text))
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip(".-_")[:200].strip(".-_")
    return cleaned or fallback


_safe_part = safe_name


def path_in(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory / name``, refusing any name that would leave ``directory``.

    Raises
    ------
    InputError
        ``name`` is absolute, holds a path separator or ``..``, or resolves outside
        ``directory`` (e.g. through a symbolic link).
    """
    base = Path(directory)
    if not name or name != safe_name(name, ""):
        raise InputError(f"{name!r} is not a safe file name (only letters, digits, '_', '.', '-'); it was not written")
    target = base / name
    resolved_base = base.resolve()
    if resolved_base not in target.resolve().parents:
        raise InputError(f"{str(target)!r} resolves outside the output directory {str(resolved_base)!r}; it was not written")
    return target


def _as_datetime(value: datetime | date | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter("date", f"{value!r} is not an ISO date or datetime (e.g. 2020-06-01)") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def product_basename(pair_or_parts: Pair | tuple[str | None, Any, Any]) -> str:
    """File name stem of a pair's products, safe on any file system.

    Parameters
    ----------
    pair_or_parts : Pair or (tile, reference_date, secondary_date)
        A :class:`~glacier_velocity.pairing.Pair`, or the MGRS tile (None if unknown) and the
        two acquisition dates (``date``, ``datetime`` or ISO strings; datetimes in UTC).

    Returns
    -------
    str
        ``S2_<tile>_<YYYYMMDD>_<YYYYMMDD>``; when both acquisitions fall on the same UTC day
        the times are added (``YYYYMMDDTHHMMSS``). Only ``[A-Za-z0-9_.-]`` occur in it.

    >>> product_basename(("43SEA", "2020-06-01T05:36:29Z", "2020-07-21"))
    'S2_43SEA_20200601_20200721'
    >>> product_basename(("../etc/passwd", "2020-06-01", "2020-06-11"))
    'S2_etc-passwd_20200601_20200611'
    """
    if isinstance(pair_or_parts, tuple):
        tile, ref, sec = pair_or_parts
        ref_dt = _as_datetime(ref).astimezone(timezone.utc)
        sec_dt = _as_datetime(sec).astimezone(timezone.utc)
        fmt = "%Y%m%dT%H%M%S" if ref_dt.date() == sec_dt.date() else "%Y%m%d"
        stem = f"{_safe_part(tile or 'scene', 'scene')}_{ref_dt.strftime(fmt)}_{sec_dt.strftime(fmt)}"
    else:
        stem = pair_or_parts.id
    return f"{MISSION_PREFIX}_{_safe_part(stem, 'pair')}"


def _replace_atomically(path: Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` (same directory)."""
    with atomic_output(path) as tmp:
        write(tmp)
    return path


def _grid_extent(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of a north-up grid, for matplotlib's ``extent``."""
    rows, cols = shape
    left, top = transform.c, transform.f
    right, bottom = transform @ (cols, rows)
    return (left, right, bottom, top)


def speed_color_limit(speed: np.ndarray, percentile: float = 98.0) -> float:
    """Upper end of the speed colour scale (m/yr): a high percentile of the valid speeds.

    Using a percentile rather than the maximum keeps a few outliers from washing out the
    map; the lower end is always 0 so colours compare across maps. 1.0 when nothing is valid.
    """
    valid = speed[np.isfinite(speed)]
    if valid.size == 0:
        return 1.0
    limit = float(np.percentile(valid, percentile))
    return limit if limit > 0 else max(float(valid.max()), 1.0)


def _background_image(background: Raster | np.ndarray) -> tuple[np.ndarray, Affine | None]:
    if hasattr(background, "array"):
        return np.asarray(background.array), background.transform
    return np.asarray(background), None


def write_quicklook(
    product: VelocityProduct,
    path: str | os.PathLike[str],
    background: Raster | np.ndarray | None = None,
    *,
    max_arrows: int = 25,
    dpi: int = 110,
) -> Path:
    """Quicklook PNG: speed (m/yr) with a colour bar and flow arrows over the reference image.

    Parameters
    ----------
    product : VelocityProduct
        The velocity map.
    path : path-like
        Output PNG, written atomically.
    background : Raster or ndarray, optional
        Reference image shown in grey under the speed (a :class:`~glacier_velocity.raster.Raster`
        is placed by its transform; a bare array is stretched over the product's extent).
        DN 0 is treated as nodata.
    max_arrows : int
        Largest number of arrows along each axis; arrows are drawn only at valid points.
    dpi : int
        Resolution of the PNG (dots per inch).

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    The colour scale runs from 0 to the 98th percentile of the valid speeds
    (:func:`speed_color_limit`); faster pixels saturate, and the colour bar says so.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    speed = np.asarray(product.v, dtype=np.float32)
    extent = _grid_extent(product.transform, product.shape)
    vmax = speed_color_limit(speed)

    fig = Figure(figsize=(8.0, 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if background is not None:
        image, bg_transform = _background_image(background)
        bg_extent = _grid_extent(bg_transform, image.shape) if bg_transform is not None else extent
        shown = np.where(image != 0, image, np.nan).astype(np.float32)
        finite = shown[np.isfinite(shown)]
        low, high = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
        ax.imshow(shown, cmap="gray", vmin=low, vmax=high if high > low else low + 1, extent=bg_extent,
                  interpolation="nearest")
    mesh = ax.imshow(
        np.ma.masked_invalid(speed),
        cmap="viridis",
        vmin=0.0,
        vmax=vmax,
        extent=extent,
        alpha=0.75 if background is not None else 1.0,
        interpolation="nearest",
    )
    finite_share = product.valid_fraction
    extend = "max" if np.nanmax(speed, initial=0.0) > vmax else "neither"
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.85, extend=extend)
    cbar.set_label("speed (m/yr); colour scale 0 to 98th percentile")

    rows, cols = product.shape
    step = max(1, math.ceil(max(rows, cols) / max_arrows))
    r_idx, c_idx = np.mgrid[step // 2 : rows : step, step // 2 : cols : step]
    vx = product.vx[r_idx, c_idx]
    vy = product.vy[r_idx, c_idx]
    ok = np.isfinite(vx) & np.isfinite(vy)
    if ok.any():
        x, y = product.transform @ (c_idx[ok] + 0.5, r_idx[ok] + 0.5)
        ax.quiver(x, y, vx[ok], vy[ok], color="white", edgecolor="black", linewidth=0.3,
                  angles="xy", pivot="middle", width=0.003)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(f"easting (m, {product.crs})" if not product.crs.startswith(("PROJCS", "PROJCRS")) else "easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(axis="x", labelrotation=30)
    ref = product.reference_datetime.strftime("%Y-%m-%d") if product.reference_datetime else product.reference_id
    sec = product.secondary_datetime.strftime("%Y-%m-%d") if product.secondary_datetime else product.secondary_id
    ax.set_title(
        f"Surface speed {ref} to {sec} (dt = {product.dt_days:.2f} days)\n"
        f"{finite_share * 100:.1f}% valid, median {np.nanmedian(speed) if finite_share else float('nan'):.1f} m/yr, "
        f"engine {product.engine or '?'}",
        fontsize=10,
    )
    _replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    log.info("wrote quicklook %s", path)
    return path


def footprint_lonlat(transform: Affine, shape: tuple[int, int], crs: str, densify: int = 10) -> dict[str, Any]:
    """GeoJSON polygon (lon/lat) of a grid's outline, densified so it follows the projection."""
    rows, cols = shape
    ring_px: list[tuple[float, float]] = []
    for (c0, r0), (c1, r1) in (((0, 0), (cols, 0)), ((cols, 0), (cols, rows)), ((cols, rows), (0, rows)), ((0, rows), (0, 0))):
        for k in range(densify):
            t = k / densify
            ring_px.append((c0 + (c1 - c0) * t, r0 + (r1 - r0) * t))
    ring = [tuple(transform @ p) for p in ring_px]
    ring.append(ring[0])
    geometry = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(CRS.from_user_input(crs), "EPSG:4326", geometry, precision=7)


def _bbox_of(geometry: dict[str, Any]) -> list[float]:
    from shapely.geometry import shape

    return [float(v) for v in shape(geometry).bounds]


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
        "gv:valid_fraction": product.valid_fraction,
        "gv:median_speed_m_per_yr": float(np.nanmedian(speed)) if np.isfinite(speed).any() else None,
        "gv:software_version": __version__,
    }
    properties.update(extra_properties or {})
    item = pystac.Item(
        id=item_id or cog_path.stem,
        geometry=geometry,
        bbox=_bbox_of(geometry),
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
    )
    if product.sources:
        for role, href in sorted(product.sources.items()):
            item.add_link(pystac.Link(rel="derived_from", target=href, media_type=pystac.MediaType.JSON, title=role))

    crs = CRS.from_user_input(product.crs)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = crs.to_epsg()
    if epsg is not None:
        proj.epsg = epsg
    else:
        proj.epsg = None
        proj.wkt2 = crs.to_wkt()
    proj.transform = list(product.transform)[:6]
    proj.shape = list(product.shape)

    bands_common = []
    raster_bands = []
    for name, unit in VELOCITY_BANDS:
        band = product.band(name)
        bands_common.append({"name": name, "description": BAND_DESCRIPTIONS[name], "unit": unit,
                             "data_type": "float32", "nodata": "nan"})
        raster_bands.append(
            RasterBand.create(nodata="nan", data_type=DataType.FLOAT32, unit=unit,
                              spatial_resolution=float(math.hypot(product.transform.a, product.transform.d)),
                              statistics=_statistics(band))
        )
    asset = pystac.Asset(
        href=str(cog_path),
        media_type=COG_MEDIA_TYPE,
        roles=["data"],
        title="Velocity (vx, vy, v in m/yr) and quality bands",
        extra_fields={"bands": bands_common},
    )
    item.add_asset("velocity", asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = raster_bands
    if quicklook_path is not None:
        item.add_asset(
            "quicklook",
            pystac.Asset(href=str(Path(quicklook_path).resolve()), media_type=pystac.MediaType.PNG,
                         roles=["overview"], title="Speed with flow arrows over the reference image"),
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

    _replace_atomically(path, write)
    log.info("wrote STAC item %s", path)
    return path


def product_paths(out_dir: str | os.PathLike[str], basename: str) -> tuple[Path, Path, Path]:
    """``(cog, quicklook, item json)`` paths of a product in ``out_dir``.

    Raises
    ------
    InputError
        ``basename`` is not a safe file name (see :func:`safe_name`), so a path could leave
        ``out_dir``.
    """
    return (
        path_in(out_dir, f"{basename}.tif"),
        path_in(out_dir, f"{basename}_quicklook.png"),
        path_in(out_dir, f"{basename}.json"),
    )


__all__ = [
    "BAND_DESCRIPTIONS",
    "make_product_item",
    "path_in",
    "safe_name",
    "product_basename",
    "product_paths",
    "save_product_item",
    "speed_color_limit",
    "write_quicklook",
]
