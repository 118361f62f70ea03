"""Correlation of one pair: two STAC items in, velocity COG + quicklook + STAC item out.

Flow of :func:`correlate_pair`:

1. Load both items (URLs or JSON files) as :class:`~glacier_velocity.stac.scene.Scene` and check
   that they form a :class:`~glacier_velocity.stac.pairing.Pair` (different scenes, secondary later).
2. Choose the area: the given AOI (checked against both footprints), or the intersection of
   both footprints.
3. Read the reference's tracked band (the band table's, :mod:`~glacier_velocity.domain.sensors`:
   Sentinel-2 ``nir`` B08, Landsat 8/9 ``pan`` B8) over the area's bounding box, snapped to its native
   grid, and the secondary onto exactly that grid (:func:`~glacier_velocity.io.raster.read_window`).
   Optionally mask clouds, cloud shadows and defective pixels from the classification assets
   (Sentinel-2 ``scl``, Landsat ``qa_pixel``, read as SCL classes).
4. Derive the search range (px) from the maximum speed, the exact baseline and the pixel
   size, and track (:func:`~glacier_velocity.tracking.track_offsets`).
5. Convert to velocity (m/yr) and correct for the stable-ground shift, over the whole window
   (a glacier outline given as the AOI leaves no stable ground inside it). Then points whose
   cell centre lies outside the AOI polygon become nodata: the product covers the polygon's
   bounding box on the reference grid and holds values inside the polygon only.
6. Write the COG, the quicklook and the item JSON into the
   output directory under :func:`~glacier_velocity.products.naming.product_basename`, as one
   set (:func:`~glacier_velocity.io.atomic.replace_together`): written completely beside the
   old set, then swapped in, under a lock that makes a second writer of the pair wait. A
   failure (a full disk, a kill) leaves the old set as it was, and the error says so.

:func:`attempt_pair` is the batch form used by the correlation notebook: a
:class:`~glacier_velocity.errors.GlacierVelocityError` of the pair (corrupt asset, no
overlap, nothing trackable) becomes a failed :class:`~glacier_velocity.products.runreport.PairStatus`
instead of ending the run; any other exception is a bug and propagates.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from rasterio._err import CPLE_BaseError
from shapely.geometry import shape

from ..correction.land import stable_land
from ..domain.aoi import AOI
from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct
from ..errors import GlacierVelocityError, InputError, InvalidParameter, OutputError
from ..io.atomic import output_directory, replace_together
from ..io.cog import write_velocity_cog
from ..io.outbound import OutboundPolicy
from ..io.raster import Raster, check_has_data, plan_window, read_window
from ..products.items import area_footprint, make_product_item, save_product_item
from ..products.naming import product_basename, product_paths, safe_name
from ..products.runreport import PairStatus, status_text, write_status
from ..stac.pairing import Pair
from ..stac.scene import Scene, read_item
from ..tracking.memory import speed_search
from .measure import measure_velocity
from .params import SCL_MASKED_CLASSES, CorrelationParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairProducts:
    """What :func:`correlate_pair` wrote, with a summary of the result.

    Attributes
    ----------
    basename : str
        Common file name stem, e.g. ``"S2_43SEA_20200601_20200721"``.
    cog, quicklook, item : Path
        Velocity COG, quicklook PNG and STAC item JSON.
    dt_days : float
        Baseline (days, fractional).
    search_px : float
        Search range used (px).
    grid_shape : (int, int)
        Shape of the velocity grid (rows, cols).
    valid_fraction : float
        Fraction of grid points with a velocity (0..1).
    median_v_m_per_yr : float
        Median speed over valid points (m/yr); NaN when none is valid.
    images : (Raster, Raster) or None
        The reference and secondary images as tracked (DN of the tracked band on the reference grid), kept
        in memory so the notebook shows them without reading them again; not written.
        None when the products were written from a velocity product alone.
    correction : dict
        The product's stable-ground correction record (``stable_shift_applied``, the shift,
        the method and the warning, as in the COG tags); see
        :func:`~glacier_velocity.correction.describe_correction`.
    """

    basename: str
    cog: Path
    quicklook: Path
    item: Path
    dt_days: float
    search_px: float
    grid_shape: tuple[int, int]
    valid_fraction: float
    median_v_m_per_yr: float
    images: tuple[Raster, Raster] | None = field(default=None, repr=False, compare=False)
    correction: dict[str, Any] = field(default_factory=dict, compare=False)

    def summary(self) -> str:
        """One line: valid share and median speed."""
        return (
            f"{self.basename}: {self.valid_fraction * 100:.1f}% valid of {self.grid_shape[0]}x{self.grid_shape[1]} points, "
            f"median speed {self.median_v_m_per_yr:.1f} m/yr, dt {self.dt_days:.2f} days, search {self.search_px:.1f} px"
        )


def load_scene(
    source: str | os.PathLike[str] | pystac.Item | Scene, role: str = "item", stac_url: str | None = None
) -> Scene:
    """A scene from a STAC item URL, an item JSON file, a ``pystac.Item`` or a Scene.

    ``stac_url`` is the API the item comes from: the STAC token goes to its origin only
    (:func:`~glacier_velocity.stac.scene.read_item`).

    Raises
    ------
    InputError
        The item cannot be read or is not a usable Sentinel-2 or Landsat 8/9 item.
    """
    if isinstance(source, Scene):
        return source
    if isinstance(source, pystac.Item):
        return Scene.from_item(source)
    return Scene.from_item(read_item(source, role, stac_url))


def _source_of(given: Any, scene: Scene) -> str:
    """Provenance of a scene: its item href, else what the caller gave, else its id."""
    if scene.self_href:
        return scene.self_href
    return os.fspath(given) if isinstance(given, (str, os.PathLike)) else scene.id


def choose_aoi(pair: Pair, aoi: AOI | None) -> AOI:
    """The area to process: ``aoi`` checked against both footprints, or their overlap's bbox.

    Raises
    ------
    InputError
        The scenes do not overlap each other, or the AOI misses one of them.
    """
    ref_shape = shape(pair.reference.geometry)
    sec_shape = shape(pair.secondary.geometry)
    overlap = ref_shape.intersection(sec_shape)
    if overlap.is_empty or overlap.area == 0:
        raise InputError(
            f"the footprints of {pair.reference.id!r} and {pair.secondary.id!r} do not overlap; "
            "choose two scenes of the same area (same MGRS tile)"
        )
    if aoi is None:
        return AOI.from_bbox(overlap.bounds)
    area = aoi.shape
    for scene, footprint in ((pair.reference, ref_shape), (pair.secondary, sec_shape)):
        if not footprint.intersects(area) or footprint.intersection(area).area == 0:
            raise InputError(
                f"the area of interest ({aoi.describe()}, W S E N in degrees) does not overlap scene {scene.id!r}, "
                f"whose footprint spans {tuple(round(v, 4) for v in footprint.bounds)}; choose an aoi inside both scenes"
            )
    return aoi


def _read_scl(scene: Scene, grid: Raster, outbound: OutboundPolicy, purpose: str) -> np.ndarray | None:
    """The scene's classification (Sentinel-2 SCL, 20 m; Landsat ``QA_PIXEL``, 30 m) as SCL classes
    on the tracking grid, nearest neighbour; None without one."""
    key = scene.sensor.classification_assets[0]
    if scene.classification_href is None:
        log.warning("scene %s has no %s asset: %s", scene.id, key, purpose)
        return None
    classification = read_window(
        scene.classification_href,
        dst_crs=grid.crs,
        dst_transform=grid.transform,
        dst_shape=grid.shape,
        resampling="nearest",
        label=f"scene {scene.id!r} {key}",
        outbound=outbound,
    )
    return scene.sensor.scl_classes(classification.array)


def _cloud_mask(scene: Scene, scl: np.ndarray | None) -> np.ndarray | None:
    """Clouds, shadows and defects of the scene (:data:`SCL_MASKED_CLASSES`); None without an SCL."""
    if scl is None:
        return None
    mask = np.isin(scl, SCL_MASKED_CLASSES)
    log.info("scene %s: %.1f%% of the window masked by its scene classification", scene.id, mask.mean() * 100)
    return mask


def correlate_pair(
    reference: str | os.PathLike[str] | pystac.Item | Scene,
    secondary: str | os.PathLike[str] | pystac.Item | Scene,
    out_dir: str | os.PathLike[str],
    params: CorrelationParams | None = None,
    *,
    progress: bool | None = None,
    beside: Callable[[PairProducts], Mapping[Path, str]] | None = None,
) -> PairProducts:
    """Measure the surface velocity between two acquisitions and write the products.

    Parameters
    ----------
    reference, secondary : str, path, pystac.Item or Scene
        STAC items (URLs or JSON files) of the earlier and the later acquisition, both
        Sentinel-2 or both Landsat 8/9; their tracked bands (``nir``, B08 at 10 m; ``pan``, B8 at
        15 m) are read where they sit.
    out_dir : path-like
        Directory for the products (created if needed).
    params : CorrelationParams, optional
        Maximum speed, grid spacing, chip size, filter, engine, AOI, cloud masking,
        stable-ground correction and the glacier outlines (the stable-ground mask and the
        quicklook; without them stable ground is found automatically and the product says so).
    progress : bool, optional
        Progress bar of the tracking engine; default only on a terminal.
    beside : callable, optional
        Text files written with the set and swapped in with it (the pair's status), given
        what was written: ``{path: text}``.

    Returns
    -------
    PairProducts
        Paths of the velocity COG, quicklook PNG and STAC item, summary numbers and the two
        images as tracked.

    Raises
    ------
    InputError
        Unreadable items or rasters, the same scene twice, secondary not later than the
        reference, scenes that do not overlap each other or the AOI, no data in the AOI, a
        window whose two images alone exceed the available memory (checked before reading).
    InvalidParameter
        ``max_velocity_m_per_yr`` gives a search range below a pixel, or one whose engine and
        images exceed the available memory (checked before reading).
    OutputError
        The products could not be written (full disk, read-only); an earlier run's set of
        the pair is kept as it was.
    """
    params = params or CorrelationParams()
    pair = Pair(
        load_scene(reference, "reference", params.stac_url), load_scene(secondary, "secondary", params.stac_url)
    )
    ref_scene, sec_scene = pair.reference, pair.secondary
    aoi = choose_aoi(pair, params.aoi)
    dt_days = pair.dt_days
    if dt_days < params.min_correlation_baseline_days:
        raise InputError(
            f"pair {pair.id}: the baseline is {dt_days * 86400:.0f} s ({dt_days:.6f} days), shorter than "
            f"min_correlation_baseline_days = {params.min_correlation_baseline_days:g}; over so short a time "
            "sub-pixel noise reads as absurd speeds - pair acquisitions at least that far apart"
        )
    log.info("pair %s: %s -> %s, dt %.4f days, AOI %s", pair.id, ref_scene.id, sec_scene.id, dt_days, aoi.describe())

    ref_label = f"reference {ref_scene.id!r}"
    sec_label = f"secondary {sec_scene.id!r}"
    ref_band = f"{ref_label} {ref_scene.sensor.band_assets[0]}"
    # Assets on the catalogue's own host or public addresses only: a remote catalogue's items
    # cannot make the step probe this machine or its network (io.outbound).
    outbound = OutboundPolicy.from_env(trusted=[params.stac_url])
    # What needs no pixel is checked before the first is read: the search range of the speed
    # (below a pixel nothing can be found) and the memory of both windows and the engine
    # (a whole-tile window would otherwise be allocated first and die in a MemoryError).
    window = plan_window(ref_scene.band_href, aoi.bbox, label=ref_band, outbound=outbound)
    tracking = speed_search(
        params.tracking_params(),
        params.max_velocity_m_per_yr,
        dt_days,
        window.pixel_size,
        window.shape,
        params.engine,
        images_bytes=2 * window.nbytes,
    )
    ref_raster = read_window(ref_scene.band_href, aoi.bbox, label=ref_band, outbound=outbound)
    check_has_data(ref_raster, ref_label)
    sec_raster = read_window(
        sec_scene.band_href,
        dst_crs=ref_raster.crs,
        dst_transform=ref_raster.transform,
        dst_shape=ref_raster.shape,
        label=f"{sec_label} {sec_scene.sensor.band_assets[0]}",
        outbound=outbound,
    )
    check_has_data(sec_raster, sec_label)
    # The scene classification marks clouds to mask and the land that can be stable ground:
    # neither water nor cloud in both scenes, nor snow/ice without outlines to say where ice is.
    wants_land = params.stable_correction
    no_outlines = params.glacier_outlines is None
    ref_scl = sec_scl = None
    if params.mask_clouds or wants_land:
        without = "; ".join(
            (["no cloud mask for it"] if params.mask_clouds else [])
            + (["stable ground is found from the displacements alone"] if wants_land and no_outlines else [])
            + (["its clouds may count as stable ground"] if wants_land and not no_outlines else [])
        )
        ref_scl = _read_scl(ref_scene, ref_raster, outbound, without)
        sec_scl = _read_scl(sec_scene, ref_raster, outbound, without)
    ref_mask = sec_mask = None
    if params.mask_clouds:
        ref_mask, sec_mask = _cloud_mask(ref_scene, ref_scl), _cloud_mask(sec_scene, sec_scl)
        check_has_data(ref_raster, ref_label, mask=ref_mask)
        check_has_data(sec_raster, sec_label, mask=sec_mask)
    land = None
    if wants_land and ref_scl is not None and sec_scl is not None:
        land = stable_land(ref_scl, sec_scl, snow_and_ice=not no_outlines)

    product = replace(
        measure_velocity(
            ref_raster,
            sec_raster,
            dt_days,
            tracking,
            params.glacier_outlines,
            max_velocity_m_per_yr=params.max_velocity_m_per_yr,
            engine=params.engine,
            stable_correction=params.stable_correction,
            reference_mask=ref_mask,
            secondary_mask=sec_mask,
            stable_land=land,
            progress=progress,
        ),
        reference_id=ref_scene.id,
        secondary_id=sec_scene.id,
        reference_datetime=ref_scene.datetime,
        secondary_datetime=sec_scene.datetime,
        sources={"reference": _source_of(reference, ref_scene), "secondary": _source_of(secondary, sec_scene)},
    )
    if params.aoi is not None:
        # After the correction, which needs the stable ground around the glacier.
        product = product.masked(~aoi.inside(product.transform, product.shape, product.crs))
    written = write_pair_products(
        product,
        pair,
        out_dir,
        background=ref_raster,
        search_px=tracking.search_px,
        params=params,
        aoi=aoi,
        outlines=params.glacier_outlines,
        beside=beside,
    )
    return replace(written, images=(ref_raster, sec_raster))


def write_pair_products(
    product: VelocityProduct,
    pair: Pair,
    out_dir: str | os.PathLike[str],
    *,
    background: Raster | None = None,
    search_px: float = float("nan"),
    params: CorrelationParams | None = None,
    aoi: AOI | None = None,
    outlines: GlacierOutlines | None = None,
    beside: Callable[[PairProducts], Mapping[Path, str]] | None = None,
) -> PairProducts:
    """Write the COG, quicklook and STAC item of a pair's velocity product into ``out_dir``
    (``outlines``, when given, drawn on the quicklook), as one set with the files ``beside``
    returns (see :func:`correlate_pair`).

    The set replaces an earlier run's only once it is complete
    (:func:`~glacier_velocity.io.atomic.replace_together`): a reader finds the old set or the
    new one, never a mix, and a second writer of the same pair waits for the first.

    Raises
    ------
    OutputError
        A file could not be written (full disk, read-only, another writer for too long); the
        old set is untouched, and the message says whether there was one.
    """
    out = output_directory(out_dir)
    basename = product_basename(pair)
    cog_path, quicklook_path, item_path = product_paths(out, basename)
    extra: dict[str, Any] = {"gv:tile": pair.tile}
    if params is not None:
        extra["gv:correlation_params"] = params.recorded()
    if math.isfinite(search_px):
        extra["gv:search_px"] = float(search_px)
    if aoi is not None:
        extra["gv:aoi_bbox"] = list(aoi.bbox)
        if not aoi.is_box:
            # The polygon's record, not its vertices (a glacier outline may have a million):
            # the run stores it once, beside the summary; the item's geometry is its simplified cut.
            extra["gv:aoi"] = aoi.record()
    speed = product.v
    median = float(np.nanmedian(speed)) if np.isfinite(speed).any() else float("nan")
    result = PairProducts(
        basename=basename,
        cog=cog_path,
        quicklook=quicklook_path,
        item=item_path,
        dt_days=product.dt_days,
        search_px=float(search_px),
        grid_shape=product.shape,
        valid_fraction=product.valid_fraction,
        median_v_m_per_yr=median,
        correction=dict(product.correction),
    )
    texts = dict(beside(result)) if beside is not None else {}
    # The item, which points at the COG and the quicklook, is renamed into place after them,
    # and the status after the item.
    targets = [cog_path, quicklook_path, item_path, *texts]
    try:
        with replace_together(targets, key=basename) as staged:
            cog_tmp, quicklook_tmp, item_tmp, *text_tmps = staged
            write_velocity_cog(product, cog_tmp)
            # Matplotlib only here: `glacier-velocity track` and the CLI's option parsing import
            # this module without drawing anything (0.4 s of a 5490 px pair's 8 s).
            from ..products.figures import speed_scale
            from ..products.quicklook import write_quicklook

            scale = speed_scale(max_velocity_m_per_yr=params.max_velocity_m_per_yr) if params is not None else None
            write_quicklook(product, quicklook_tmp, background, scale=scale, outlines=outlines)
            item = make_product_item(
                product,
                cog_tmp,
                quicklook_tmp,
                item_id=basename,
                geometry=area_footprint(product.transform, product.shape, product.crs, aoi),
                extra_properties=extra,
            )
            save_product_item(item, item_tmp)
            for tmp, text in zip(text_tmps, texts.values(), strict=True):
                tmp.write_text(text, encoding="utf-8")
    except (OSError, CPLE_BaseError) as exc:
        raise OutputError(
            f"could not write the products of pair {pair.id} into {str(out)!r} ({exc}; "
            f"{shutil.disk_usage(out).free / 1e6:.1f} MB free there); "
            f"{earlier_products(out, basename) or 'no product was written'} - "
            "free some space (or choose another directory) and run the pair again"
        ) from exc
    log.info("%s", result.summary())
    return result


def earlier_products(out_dir: str | os.PathLike[str], basename: str) -> str | None:
    """The words a failed run of the pair adds to its message when an earlier run's products
    are in ``out_dir`` (the failure left them as they were); None when there are none."""
    if any(path.exists() for path in product_paths(Path(out_dir), basename)):
        return f"the products {basename}.* of an earlier run in {str(out_dir)!r} were kept unchanged"
    return None


@dataclass(frozen=True)
class PairAttempt:
    """Outcome of :func:`attempt_pair`.

    Attributes
    ----------
    status : PairStatus
        ``"succeeded"`` with the product name and summary numbers, or ``"failed"`` with the
        error type and its message.
    products : PairProducts or None
        What was written; None when the pair failed.
    pair : Pair or None
        The pair, when both items could be read and form a pair.
    """

    status: PairStatus
    products: PairProducts | None
    pair: Pair | None

    @property
    def succeeded(self) -> bool:
        """True when the products were written."""
        return self.status.succeeded


def _href_of(given: Any) -> str:
    if isinstance(given, Scene):
        return given.self_href or given.id
    if isinstance(given, pystac.Item):
        return given.get_self_href() or given.id
    return os.fspath(given)


def attempt_pair(
    reference: str | os.PathLike[str] | pystac.Item | Scene,
    secondary: str | os.PathLike[str] | pystac.Item | Scene,
    out_dir: str | os.PathLike[str],
    params: CorrelationParams | None = None,
    *,
    pair_id: str | None = None,
    progress: bool | None = None,
    status_path: str | os.PathLike[str] | None = None,
) -> PairAttempt:
    """:func:`correlate_pair` for a batch: a failure of this pair is recorded, not raised.

    Parameters
    ----------
    reference, secondary : str, path, pystac.Item or Scene
        STAC items of the earlier and the later acquisition (see :func:`correlate_pair`).
    out_dir : path-like
        Directory for the products.
    params : CorrelationParams, optional
        Correlation settings; validate them before the batch (a bad setting is the same
        mistake for every pair and should stop the run, not fail each pair).
    pair_id : str, optional
        Id recorded in the status; default the name of ``out_dir``.
    progress : bool, optional
        Progress bar of the tracking engine.
    status_path : path-like, optional
        Where to write the status JSON (``status_<pair_id>.json``); when the pair succeeds it
        is swapped in with the products, as one set.

    Returns
    -------
    PairAttempt
        The status, and the products when they were written.

    Notes
    -----
    Only :class:`~glacier_velocity.errors.GlacierVelocityError` marks the pair as failed:
    unreadable items or assets (truncated or corrupt COG, missing ``nir`` or ``pan`` asset), the same
    scene twice, scenes that do not overlap each other or the area, no data, nothing
    trackable, products that cannot be written (full disk). Any other exception is a
    programming error and propagates. A failed pair writes no product file and leaves an
    earlier run's products of the pair as they were - its status says so - and ``out_dir``
    itself is removed when left empty.
    """
    out = Path(out_dir)
    pair_id = pair_id or out.name
    if safe_name(pair_id) != pair_id:
        # It names files (status_<pair_id>.json) and directories of the batch.
        raise InvalidParameter("pair_id", f"{pair_id!r} is not a safe file name; use letters, digits, '.', '-' and '_'")
    reference_href, secondary_href = _href_of(reference), _href_of(secondary)
    params = params or CorrelationParams()
    reference_scene = secondary_scene = None
    pair = None

    def succeeded(products: PairProducts) -> PairStatus:
        assert pair is not None
        return PairStatus.from_products(
            pair_id,
            reference_href,
            secondary_href,
            products,
            reference_id=pair.reference.id,
            secondary_id=pair.secondary.id,
        )

    def status_beside(products: PairProducts) -> dict[Path, str]:
        return {Path(status_path): status_text(succeeded(products))} if status_path is not None else {}

    try:
        reference_scene = load_scene(reference, "reference", params.stac_url)
        secondary_scene = load_scene(secondary, "secondary", params.stac_url)
        pair = Pair(reference_scene, secondary_scene)
        products = correlate_pair(
            reference_scene,
            secondary_scene,
            out,
            params,
            progress=progress,
            beside=status_beside,
        )
    except GlacierVelocityError as exc:
        status = PairStatus.failed(
            pair_id,
            reference_href,
            secondary_href,
            exc,
            reference_id=reference_scene.id if reference_scene else None,
            secondary_id=secondary_scene.id if secondary_scene else None,
        )
        # An OutputError's message says it already.
        kept = None if pair is None or isinstance(exc, OutputError) else earlier_products(out, product_basename(pair))
        if kept:
            status = replace(status, reason=f"{status.reason}; {kept}")
        log.warning("%s", status.describe())
        if status_path is not None:
            write_status(status, status_path)
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        return PairAttempt(status=status, products=None, pair=pair)
    return PairAttempt(status=succeeded(products), products=products, pair=pair)
