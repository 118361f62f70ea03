"""Windowed reading of single-band COGs, where they sit (local, http(s), s3).

Two ways to read:

- *reference*: the window of a raster that covers an area of interest given in lon/lat. The
  window is snapped outwards to whole pixels, so the result is an exact subset of the native
  grid (its transform is the native one shifted by whole pixels).
- *secondary*: the raster brought onto a given grid (CRS, transform, shape), normally the
  reference window's. When the grids coincide up to a whole-pixel shift the pixels are read
  as they are; otherwise they are resampled with a GDAL warped VRT (cubic by default). The
  result is always on exactly the requested grid, never silently shifted.

DN 0 is nodata (Sentinel-2 L2A convention): pixels equal to the file's declared nodata value
become 0, as do pixels outside the raster.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import array_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ..domain.aoi import AOI, BBox, check_bbox, check_geometry
from ..domain.crs import crs_string
from ..domain.hrefs import check_asset_href
from ..errors import InputError, InvalidParameter
from .gdal_http import NO_CURL_PROXY, gate
from .memory import available_memory_bytes, gigabytes
from .outbound import OutboundPolicy
from .retry import RetryPolicy, call_with_retries, gdal_http_options, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")

#: GDAL settings for reading remote COGs: no directory listing on open (one request less
#: per file), merged range requests and a block cache of 64 MB. Windows are read once, block by
#: block, so GDAL's default cache (5 % of the machine's memory) only held up to a whole tile's
#: blocks after the read, 100-200 MB that the process then kept while tracking. Retries and timeouts come from the
#: :class:`~glacier_velocity.io.retry.RetryPolicy` (:func:`~glacier_velocity.io.retry.gdal_http_options`).
GDAL_READ_OPTIONS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
    "GDAL_CACHEMAX": 64,
}

#: The only GDAL drivers an asset is opened with: GeoTIFF (COGs are GeoTIFFs) and JPEG 2000
#: (the format of ESA's L1C/L2A products). A VRT, or any format that can name other files as
#: its sources, would let a catalogue make the tool read this machine's files; restricting the
#: driver refuses them whatever the file is called, and neither driver follows references.
ASSET_DRIVERS = ("GTiff", "JP2OpenJPEG")


def asset_driver(path: str) -> str:
    """The one driver allowed to open ``path``: JPEG 2000 for ``.jp2``/``.j2k``, else GeoTIFF."""
    name = urlparse(path).path.lower() if "://" in path else path.lower()
    return "JP2OpenJPEG" if name.endswith((".jp2", ".j2k")) else "GTiff"


def open_asset(path: str) -> Any:
    """``rasterio.open`` of an asset for reading, restricted to :data:`ASSET_DRIVERS`."""
    return rasterio.open(path, driver=asset_driver(path))


def _not_recognized(detail: str) -> bool:
    return "not recognized as being in a supported file format" in detail or "not recognized as a supported" in detail


#: Tolerance (px) below which a window edge counts as on a pixel boundary; guards against
#: floating-point noise making a window one pixel larger than the AOI needs.
_SNAP_TOLERANCE_PX = 1e-6


def pixel_centres(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates ``(x, y)`` (CRS units) of the centres of the pixels at ``rows``, ``cols``.

    Arrays of any shape, broadcast against each other (``transform @ (col, row)`` does one point).
    """
    c = np.asarray(cols, dtype=np.float64) + 0.5
    r = np.asarray(rows, dtype=np.float64) + 0.5
    t = transform
    return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f


def pixel_size(transform: Affine) -> float:
    """Side of a pixel of ``transform``'s grid in CRS units (m for UTM).

    The shorter of the two pixel steps: along a row (``hypot(a, d)``) and down a column
    (``hypot(b, e)``). A distance divided by it is the most pixels the distance can span along
    either axis, which is what a search range in px has to cover. On square pixels (Sentinel-2
    grids are square and north-up) every definition gives the same value, ``|a|``.
    """
    return float(min(math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)))


@dataclass(frozen=True)
class Raster:
    """A georeferenced single-band array read from a file or URL.

    Attributes
    ----------
    array : ndarray, shape (rows, cols)
        Pixel values in the file's data type (uint16 DN for Sentinel-2); 0 = nodata.
    transform : Affine
        Affine transform of ``array`` (map units per pixel, upper-left corner of pixel 0, 0).
    crs : str
        Coordinate reference system (``EPSG:xxxx`` or WKT).
    nodata : float or int
        Nodata value of ``array`` (always 0: DN 0 is nodata).
    href : str
        Where the pixels came from (as given by the caller).
    """

    array: np.ndarray
    transform: Affine
    crs: str
    nodata: float | int
    href: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self.array.shape

    @property
    def pixel_size(self) -> float:
        """Side of a pixel in CRS units (m for UTM); see :func:`pixel_size`."""
        return pixel_size(self.transform)

    @property
    def bounds(self) -> BBox:
        """``(left, bottom, right, top)`` of the array in its CRS (north-up grids)."""
        rows, cols = self.shape
        xs, ys = zip(*(self.transform @ (c, r) for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows))), strict=True)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of pixels with data (not ``nodata``)."""
        return self.array != self.nodata


def gdal_path(href: str) -> str:
    """Path GDAL opens for an href: ``/vsicurl/`` for http(s), ``/vsis3/`` for s3, local as is.

    Raises
    ------
    InputError
        For other URL schemes (see :func:`check_asset_href`), or a local file that does not exist.
    """
    href = check_asset_href(href, "raster")
    parsed = urlparse(href)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    if scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if scheme == "file":
        href = parsed.path
    if href.startswith("/vsi"):
        return href
    if not os.path.isfile(href):
        raise InputError(f"raster file {href!r} does not exist; check the asset href (or the path given)")
    return href


@contextmanager
def gdal_env(policy: RetryPolicy | None = None, **overrides: Any) -> Iterator[None]:
    """GDAL settings for reading COGs, scoped to a ``with`` block (not ``os.environ``).

    curl is kept off any proxy: http(s) reads go to the gate of :mod:`.gdal_http` on 127.0.0.1.
    """
    with rasterio.Env(**{**GDAL_READ_OPTIONS, **gdal_http_options(policy), **NO_CURL_PROXY, **overrides}):
        yield


def check_has_data(raster: Raster, label: str, mask: np.ndarray | None = None) -> None:
    """Raise unless some pixel of ``raster`` has data and is not masked.

    Parameters
    ----------
    raster : Raster
        A window read by :func:`read_window`.
    label : str
        Which scene it is, for the message (e.g. ``"reference 'S2A_43SEA_20200601_0_L2A'"``).
    mask : ndarray of bool, shape (rows, cols), optional
        True where a pixel is unusable (cloud, shadow...).

    Raises
    ------
    InputError
        Every pixel is nodata (DN 0), or every pixel with data is masked.
    """
    valid = raster.valid
    if not valid.any():
        raise InputError(
            f"the {label} has no data (all DN 0) in the area of interest {_bounds_text(raster)}; "
            "choose an area inside the scene's data strip (--aoi) or another scene"
        )
    if mask is not None and not (valid & ~np.asarray(mask, dtype=bool)).any():
        raise InputError(
            f"the {label} is entirely cloud, cloud shadow or defective (scene classification) in the area of interest "
            f"{_bounds_text(raster)}; choose a clearer scene (lower --max-cloud-cover, or --aoi-cloud-cover at discovery)"
        )


def _bounds_text(raster: Raster) -> str:
    left, bottom, right, top = raster.bounds
    return f"({left:.0f}, {bottom:.0f}, {right:.0f}, {top:.0f} in {raster.crs})"


def normalize_aoi(bounds_or_aoi: Any) -> BBox:
    """Lon/lat bounding box ``(west, south, east, north)`` of an AOI.

    Accepts an :class:`~glacier_velocity.domain.aoi.AOI`, a 4-sequence ``(W, S, E, N)`` in degrees,
    a GeoJSON geometry mapping (or a Feature / FeatureCollection), or a shapely geometry;
    checked with :mod:`glacier_velocity.domain.aoi`.
    """
    if isinstance(bounds_or_aoi, AOI):
        return bounds_or_aoi.bbox
    if isinstance(bounds_or_aoi, Mapping):
        geometry = check_geometry(dict(bounds_or_aoi), "aoi")
        return check_bbox(shape(geometry).bounds, "aoi")
    if isinstance(bounds_or_aoi, BaseGeometry):
        return check_bbox(bounds_or_aoi.bounds, "aoi")
    if isinstance(bounds_or_aoi, Sequence) and not isinstance(bounds_or_aoi, (str, bytes)):
        return check_bbox(bounds_or_aoi, "bbox")
    raise InvalidParameter("aoi", f"give a bbox (W, S, E, N) in degrees or a GeoJSON geometry, got {bounds_or_aoi!r}")


#: Largest magnitude a pixel of a float (or wide integer) asset may have and still be a
#: measurement. Optical products store reflectance (about -0.1 to 1.5), scaled reflectance or
#: 16-bit DN (at most 65535) or radiance (below 1000); a value beyond 1e6 is a fill or an
#: overflow (3.4e38 is float32's largest value, a common fill), never a surface. Left in, one
#: such pixel overflows the engines' float32 local statistics (sums of squares above 3.4e38 are
#: +Inf) and turns every chip into "no texture".
MAX_PIXEL_MAGNITUDE = 1e6


def _to_nodata_zero(array: np.ndarray, src_nodata: float | None, what: str = "raster") -> np.ndarray:
    """Replace the file's own nodata value, NaN, +-Inf and absurd values by 0, the package's nodata.

    Absurd means a magnitude above :data:`MAX_PIXEL_MAGNITUDE`; 8- and 16-bit integer
    assets cannot hold one. ``what`` names the raster in the warning that counts them.
    """
    if src_nodata is not None and not (isinstance(src_nodata, float) and math.isnan(src_nodata)) and src_nodata != 0:
        array = np.where(array == src_nodata, 0, array).astype(array.dtype, copy=False)
    if np.issubdtype(array.dtype, np.floating):
        # NaN is how float rasters say nodata: no warning for it.
        array = np.where(np.isnan(array), 0, array).astype(array.dtype, copy=False)
    if array.dtype.itemsize > 2 or np.issubdtype(array.dtype, np.floating):
        absurd = (array > MAX_PIXEL_MAGNITUDE) | (array < -MAX_PIXEL_MAGNITUDE)  # +-Inf included
        count = int(absurd.sum())
        if count:
            log.warning(
                "%s: %d pixel(s) are not finite or beyond +-%.0f (no measurement: a fill value or an overflow); "
                "they are read as nodata",
                what,
                count,
                MAX_PIXEL_MAGNITUDE,
            )
            array = np.where(absurd, 0, array).astype(array.dtype, copy=False)
    return array


def _aoi_window(src: Any, bbox: BBox, href: str) -> Window:
    """Whole-pixel window of ``src`` covering the lon/lat ``bbox``, clipped to the raster."""
    left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *bbox, densify_pts=21)
    inverse = ~src.transform
    cols, rows = zip(
        *(inverse @ (x, y) for x, y in ((left, top), (right, top), (left, bottom), (right, bottom))), strict=True
    )
    col0 = math.floor(min(cols) + _SNAP_TOLERANCE_PX)
    row0 = math.floor(min(rows) + _SNAP_TOLERANCE_PX)
    col1 = math.ceil(max(cols) - _SNAP_TOLERANCE_PX)
    row1 = math.ceil(max(rows) - _SNAP_TOLERANCE_PX)
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        footprint = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        raise InputError(
            f"the AOI {tuple(round(v, 5) for v in bbox)} (W S E N, degrees) lies outside the raster "
            f"{href!r}, whose footprint is {tuple(round(v, 5) for v in footprint)}; choose an AOI inside it"
        )
    return Window(col0, row0, col1 - col0, row1 - row0)


def _whole_pixel_offset(src_transform: Affine, dst_transform: Affine) -> tuple[int, int] | None:
    """(col, row) offset of ``dst`` in ``src`` pixels if the grids coincide, else None."""
    if not all(
        math.isclose(getattr(src_transform, k), getattr(dst_transform, k), rel_tol=1e-9, abs_tol=1e-12) for k in "abde"
    ):
        return None
    col, row = ~src_transform @ (dst_transform.c, dst_transform.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(col)), int(round(row))


@dataclass(frozen=True)
class WindowPlan:
    """The window :func:`read_window` reads over an area, known from the file's header alone.

    Attributes
    ----------
    shape : (int, int)
        Rows, cols (px).
    transform : Affine
        Transform of the window.
    crs : str
        ``EPSG:xxxx`` or WKT.
    dtype : str
        Data type of the band (``uint16`` for Sentinel-2).
    bands : int
        Bands in the file.
    href : str
        The file, as given.
    """

    shape: tuple[int, int]
    transform: Affine
    crs: str
    dtype: str
    bands: int
    href: str

    @property
    def pixel_size(self) -> float:
        """Side of a pixel in CRS units (m for UTM); see :func:`pixel_size`."""
        return pixel_size(self.transform)

    @property
    def nbytes(self) -> int:
        """Bytes of the window's pixels once read."""
        return self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize


def read_bytes(shape: tuple[int, int], dtype: str) -> int:
    """Memory (bytes) reading a window of ``shape`` px takes at its peak: the pixels, their
    copy with nodata set to 0, and the masks finding nodata and absurd values (a byte a pixel each)."""
    pixels = shape[0] * shape[1]
    return pixels * (2 * np.dtype(dtype).itemsize + 2)


def plan_window(
    href: str,
    bounds_or_aoi: Any = None,
    *,
    band: int = 1,
    label: str | None = None,
    outbound: OutboundPolicy | None = None,
) -> WindowPlan:
    """The window :func:`read_window` would read (``href`` over ``bounds_or_aoi``), reading no pixel.

    Opens the file's header only (one small range request for a remote COG), with the same
    retries, outbound-address policy and errors as :func:`read_window`; for checks before a
    large read.
    """
    bbox = normalize_aoi(bounds_or_aoi) if bounds_or_aoi is not None else None

    def plan(src: Any) -> WindowPlan:
        _check_band(src, band, href)
        window = _aoi_window(src, bbox, href) if bbox is not None else Window(0, 0, src.width, src.height)
        if src.crs is None:
            raise InputError(f"raster {href!r} has no coordinate reference system; georeference it first")
        return WindowPlan(
            shape=(int(window.height), int(window.width)),
            transform=src.window_transform(window),
            crs=crs_string(src.crs),
            dtype=str(src.dtypes[band - 1]),
            bands=int(src.count),
            href=str(href),
        )

    return _with_asset(href, f"{label} ({href!r})" if label else repr(href), plan, label, outbound)


def read_window(
    href: str,
    bounds_or_aoi: Any = None,
    *,
    dst_crs: CRS | str | None = None,
    dst_transform: Affine | None = None,
    dst_shape: tuple[int, int] | None = None,
    resampling: Resampling | str | None = None,
    band: int = 1,
    label: str | None = None,
    outbound: OutboundPolicy | None = None,
) -> Raster:
    """Read one band of a (cloud-optimized) GeoTIFF over an area or onto a grid.

    Parameters
    ----------
    href : str
        Local path, ``file://``, ``http(s)://`` (read through GDAL ``/vsicurl/``) or ``s3://``
        (``/vsis3/``) URL. Public buckets need ``AWS_NO_SIGN_REQUEST=YES`` in the environment.
    bounds_or_aoi : bbox or geometry, optional
        Area of interest in lon/lat (degrees): ``(W, S, E, N)``, a GeoJSON geometry or a
        shapely geometry. Without it and without a destination grid, the whole raster is read;
        with a destination grid it is not used.
    dst_crs, dst_transform, dst_shape : optional
        Destination grid (all three or none). The result is exactly on this grid; pixels
        outside the raster are 0 (nodata).
    resampling : Resampling or str, optional
        Resampling when the grids differ; default cubic (use ``"nearest"`` for class maps
        such as the scene classification). Grids that coincide up to whole pixels are never
        resampled.
    band : int
        Band number (1-based).
    label : str, optional
        Which scene and band this is, for error messages (e.g. ``"reference
        'S2A_43SEA_20200601_0_L2A' nir"``).
    outbound : OutboundPolicy, optional
        Where an http(s) read may connect, its HEAD probes and redirects included (GDAL reads
        through the gate of :mod:`.gdal_http`); default :meth:`OutboundPolicy.from_env`:
        public addresses and the operator's allow-list. Pass the policy trusting ``stac_url``
        for assets of a catalogue the user named.

    Returns
    -------
    Raster
        Pixel values (0 = nodata), transform, CRS and href.

    Raises
    ------
    InputError
        Unsupported scheme, missing, truncated or corrupt file, an AOI/grid outside the
        raster, a window larger than the memory available (checked before reading it), or a
        remote file still failing after the retries of the
        :class:`~glacier_velocity.io.retry.RetryPolicy` (timeouts, resets, 5xx/429);
        :class:`~glacier_velocity.errors.OutboundRefused` for an address ``outbound`` does not
        allow (nothing is sent there).
    InvalidParameter
        Malformed AOI or an incomplete destination grid.
    """
    what = f"{label} ({href!r})" if label else repr(href)
    grid = (dst_crs, dst_transform, dst_shape)
    if any(g is not None for g in grid) and not all(g is not None for g in grid):
        raise InvalidParameter("dst_grid", "give dst_crs, dst_transform and dst_shape together, or none of them")
    dst_grid = (
        (CRS.from_user_input(dst_crs), dst_transform, dst_shape)
        if dst_crs is not None and dst_transform is not None and dst_shape is not None
        else None
    )
    bbox = normalize_aoi(bounds_or_aoi) if bounds_or_aoi is not None and dst_crs is None else None

    def read(src: Any) -> tuple[np.ndarray, Affine, str]:
        _check_band(src, band, href)
        dtype = str(src.dtypes[band - 1])
        if dst_grid is None:
            window = _aoi_window(src, bbox, href) if bbox is not None else Window(0, 0, src.width, src.height)
            check_read_memory((int(window.height), int(window.width)), dtype, what)
            array = src.read(band, window=window)
            transform = src.window_transform(window)
            crs = crs_string(src.crs)
            log.info("read %s window %s (%d x %d px)", href, window, window.height, window.width)
        else:
            rows, cols = (int(n) for n in dst_grid[2])
            check_read_memory((rows, cols), dtype, what)
            array, transform, crs = _read_onto_grid(src, band, *dst_grid, resampling, href)
        return _to_nodata_zero(array, src.nodata, what), transform, crs

    array, transform, crs = _with_asset(href, what, read, label, outbound)
    return Raster(array=array, transform=transform, crs=crs, nodata=0, href=str(href))


def check_read_memory(shape: tuple[int, int], dtype: str, what: str) -> None:
    """Refuse a read whose window would need more memory than is available, before reading it.

    Raises
    ------
    InputError
        The message gives the window (px), the memory it needs and what is available (GB).
    """
    needed = read_bytes(shape, dtype)
    available = available_memory_bytes()
    if needed <= available:
        return
    raise InputError(
        f"cannot read raster {what}: its window of {shape[0]} x {shape[1]} px ({dtype}) would need "
        f"{gigabytes(needed)} GB of memory to read, and {gigabytes(available)} GB is available; choose a "
        "smaller area (--aoi)"
    )


def _check_band(src: Any, band: int, href: str) -> None:
    if not 1 <= band <= src.count:
        raise InvalidParameter("band", f"{href!r} has {src.count} band(s); got band {band}")


def _with_asset(href: str, what: str, use: Callable[[Any], T], label: str | None, outbound: OutboundPolicy | None) -> T:
    """``use(src)`` on the opened asset: restricted drivers, retried when remote, http(s) through
    the gate of ``outbound`` (:mod:`.gdal_http`), GDAL errors turned into :class:`InputError`
    naming ``what``."""
    path = gdal_path(href)
    remote = path.startswith(("/vsicurl/", "/vsis3/"))
    policy = RetryPolicy.from_env()
    url = path.removeprefix("/vsicurl/") if path.startswith("/vsicurl/") else None
    door = gate(outbound or OutboundPolicy.from_env()) if url else None
    if door is not None and url is not None:
        path = door.path_for(url, policy)

    def attempt(number: int) -> T:
        # After a failed try GDAL remembers the file as missing; reading it uncached again
        # is what makes the retry a real new request.
        extra = {"CPL_VSIL_CURL_NON_CACHED": path} if remote and number > 1 else {}
        if not remote:
            # VSI_CACHE keeps remote blocks from being fetched twice; on a local file it only adds
            # a copy of every byte (a 5490 px uint16 file read in 0.027 instead of 0.053 s of CPU).
            extra["VSI_CACHE"] = "FALSE"
        with gdal_env(policy, **extra), open_asset(path) as src:
            return use(src)

    try:
        if remote:
            return call_with_retries(attempt, what=str(href), policy=policy, retry_on=(RasterioError,))
        return attempt(1)
    except RasterioError as exc:
        detail = _gdal_detail(exc)
        if door is not None and url is not None:
            refused = door.refusal(url)
            if refused is not None:
                raise refused.about(f"cannot read raster {label or 'asset'}") from None
            # GDAL names the gate's path: name the asset's URL instead, and for a failed
            # connection behind the gate (GDAL saw a 502 or 504), what failed.
            detail = detail.replace(path, f"/vsicurl/{url}")
            if is_transient(exc):
                detail = door.failure(url) or detail
        tries = getattr(exc, "attempts", 1)
        if remote and is_transient(exc):
            raise InputError(
                f"cannot read raster {what}: the server kept failing ({detail}) after {tries} attempt(s); "
                "check the network or try again later (GLACIER_VELOCITY_HTTP_ATTEMPTS sets the attempts)"
            ) from exc
        if _not_recognized(detail):
            raise InputError(
                f"cannot read raster {what}: only GeoTIFF (COG) and JPEG 2000 rasters are read, and this is neither "
                "(a VRT or another format is refused: it could name other files as its sources); fix the asset href"
            ) from exc
        if remote and re.search(r"does not exist|code: 40[134]\b", detail):
            raise InputError(
                f"cannot read raster {what}: not found or not readable at that URL ({detail}); check the asset href"
            ) from exc
        raise InputError(
            f"cannot read raster {what}: the file is truncated, corrupt or not a GeoTIFF ({detail}); "
            "re-download it or fix the asset href"
        ) from exc


def _gdal_detail(exc: BaseException) -> str:
    """The GDAL messages of an error and its causes, on one line (rasterio chains them)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = " ".join(str(seen).split())
        if text and "See previous exception" not in text and text not in parts:
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    return "; ".join(parts)[:400] or type(exc).__name__


def _read_onto_grid(
    src: Any,
    band: int,
    dst_crs: CRS,
    dst_transform: Affine,
    dst_shape: tuple[int, int],
    resampling: Resampling | str | None,
    href: str,
) -> tuple[np.ndarray, Affine, str]:
    rows, cols = (int(n) for n in dst_shape)
    if rows < 1 or cols < 1:
        raise InvalidParameter("dst_shape", f"must be positive (rows, cols), got {dst_shape}")
    west, south, east, north = array_bounds(rows, cols, dst_transform)
    src_bounds_in_dst = transform_bounds(src.crs, dst_crs, *src.bounds, densify_pts=21)
    if (
        src_bounds_in_dst[0] >= east
        or src_bounds_in_dst[2] <= west
        or src_bounds_in_dst[1] >= north
        or src_bounds_in_dst[3] <= south
    ):
        raise InputError(
            f"the raster {href!r} does not overlap the requested grid (bounds {west:.1f}, {south:.1f}, "
            f"{east:.1f}, {north:.1f} in {crs_string(dst_crs)}); the two scenes do not cover the same area"
        )
    offset = _whole_pixel_offset(src.transform, dst_transform) if CRS.from_user_input(src.crs) == dst_crs else None
    if offset is not None:
        # Same grid up to whole pixels: read the pixels as they are (no resampling at all).
        window = Window(offset[0], offset[1], cols, rows)
        array = src.read(band, window=window, boundless=True, fill_value=src.nodata if src.nodata is not None else 0)
        log.info("read %s on the reference grid without resampling (offset %s px)", href, offset)
    else:
        method = (
            Resampling.cubic
            if resampling is None
            else (Resampling[resampling] if isinstance(resampling, str) else resampling)
        )
        src_nodata = src.nodata if src.nodata is not None else 0
        scale_options: dict[str, Any] = {}
        src_pixel = pixel_size(src.transform)
        dst_pixel = pixel_size(dst_transform)
        if src.crs.is_projected and dst_crs.is_projected and dst_pixel <= 1.05 * src_pixel:
            # GDAL widens the kernel when it estimates (from the grid rotation between UTM
            # zones) a slight downsampling; a widened kernel no longer reproduces even linear
            # gradients (errors of 0.1 px measured). At equal or finer output pixels the
            # plain kernel is right.
            scale_options = {"XSCALE": 1, "YSCALE": 1}
        with WarpedVRT(
            src,
            crs=dst_crs,
            transform=dst_transform,
            width=cols,
            height=rows,
            resampling=method,
            src_nodata=src_nodata,
            nodata=src_nodata,
            # GDAL's default approximate transformer may be off by 1/8 px; sub-pixel tracking
            # needs the exact one (0 itself fails in rasterio's WarpedVRT).
            tolerance=1e-9,
            **scale_options,
        ) as vrt:
            array = vrt.read(band)
        log.info("resampled %s onto the reference grid (%s)", href, method.name)
    return array, dst_transform, crs_string(dst_crs)
