"""The result catalog: a self-contained STAC catalog of the pair products and the summary.

Layout of the output directory (a valid EO application-package output: ``catalog.json`` at
the top, one folder per item, every link and asset href relative)::

    out_dir/
      catalog.json
      <pair item id>/<pair item id>.json    velocity COG, quicklook PNG
      <summary item id>/<summary item id>.json    summary COGs, figures
      run-report.json    what happened to every pair (see :mod:`glacier_velocity.products.runreport`)

The run report, when given, is linked from the catalog (``rel="describedby"``) and is an
asset (``run_report``) of the summary item; with it the summary item's properties also
carry the pair counts (``gv:pairs_attempted``, ``gv:pairs_succeeded``, ``gv:pairs_failed``
and ``gv:run_summary``, e.g. ``"4 succeeded / 2 failed"``).

Every JSON file is written to a temporary name and renamed into place, and ``catalog.json``
last (after removing an older one first): a ``catalog.json`` on disk always describes items
that are complete.

Asset files that are not yet inside their item's folder are hard-linked there (copied when
a hard link is not possible, e.g. across file systems), so the directory can be moved,
archived or returned as a CWL ``Directory`` and still resolves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pystac
import rasterio
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension

from .._version import __version__
from ..aggregation.datacube import DATACUBE_MEDIA_TYPE
from ..aggregation.summary import SUMMARY_BANDS, SummaryFiles
from ..domain.crs import crs_string
from ..errors import InputError, InvalidParameter
from ..io.aoi import parse_aoi
from ..io.atomic import atomic_output, output_directory, write_text_atomic
from ..io.cog import COG_MEDIA_TYPE
from ..io.raster import pixel_size
from .items import add_projection, area_footprint, lonlat_bbox
from .naming import path_in, safe_name
from .runreport import RUN_REPORT_NAME, RunReport, read_run_report, write_run_report

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Glacier surface velocity"
DEFAULT_DESCRIPTION = (
    "Glacier surface velocity from Sentinel-2 image pairs by feature tracking: one item per "
    "pair (velocity COG with vx, vy, v in m/yr and quality bands, quicklook) and one summary item "
    "(per-pixel median speed and velocity, standard deviation of speed, valid-map count, figures)."
)

#: Roles and titles of the summary figures in the summary item.
FIGURE_ASSETS: dict[str, tuple[list[str], str]] = {
    "summary_figure": (["overview", "visual"], "Median speed, spread and valid-map count"),
    "time_series_figure": (["visual"], "Median speed of each pair against time"),
}


class _AtomicStacIO(pystac.stac_io.DefaultStacIO):
    """pystac I/O that writes local JSON files atomically (temporary name, then rename)."""

    def write_text_to_href(self, href: str, txt: str) -> None:
        if _is_remote(href):
            raise InputError(f"the catalog is written to local files only, not to {href!r}")
        path = Path(urlparse(href).path if href.startswith("file:") else href)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, txt)


def _is_remote(href: str) -> bool:
    return urlparse(href).scheme not in ("", "file") and len(urlparse(href).scheme) > 1


def _place(source: Path, destination: Path) -> Path:
    """Make ``source`` available at ``destination``: nothing to do, a hard link, or a copy.

    The link or copy is made under a temporary name and renamed onto ``destination``, so a
    symbolic link found there is replaced, never written through.
    """
    if destination.exists() and not destination.is_symlink() and os.path.samefile(destination, source):
        return destination  # already there: the same file (or a hard link of it)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(destination) as tmp:
        try:
            # Resolved first: os.link links a symlink itself (Linux link(2)), and the files a CWL
            # runner stages into a step are symlinks to directories it deletes afterwards.
            os.link(source.resolve(), tmp)
        except OSError:
            # Hard links fail across file systems and on some mounts; a copy always works.
            shutil.copy2(source, tmp)
    return destination


def _load_item(item: pystac.Item | str | os.PathLike[str]) -> pystac.Item:
    if isinstance(item, pystac.Item):
        return item.clone()
    path = Path(item)
    if not path.is_file():
        raise InputError(f"product item {str(path)!r} does not exist; pass the item JSON written by correlate")
    try:
        return pystac.Item.from_file(str(path.resolve()))
    except (json.JSONDecodeError, pystac.STACError, KeyError, TypeError) as exc:
        raise InputError(f"{str(path)!r} is not a STAC item: {exc}") from exc


def _gather_assets(item: pystac.Item, folder: Path) -> None:
    """Place every local asset of ``item`` in ``folder`` and point its href there (absolute for now)."""
    for key, asset in item.assets.items():
        href = asset.get_absolute_href() or asset.href
        if _is_remote(href):
            log.warning(
                "asset %r of item %s stays remote (%s); the catalog is not fully self-contained", key, item.id, href
            )
            continue
        source = Path(urlparse(href).path if href.startswith("file:") else href)
        if not source.is_file():
            raise InputError(f"asset {key!r} of item {item.id!r} not found at {str(source)!r}")
        asset.href = str(_place(source, folder / source.name).resolve())


def _drop_local_links_outside(item: pystac.Item, root: Path) -> None:
    """Remove links to local files outside ``root`` (e.g. source scene items given as files).

    They would dangle once the catalog directory is moved; remote links (Earth Search item
    URLs) stay, and the scene ids remain in the ``gv:reference_id``/``gv:secondary_id``
    properties.
    """
    kept = []
    for link in item.links:
        href = link.get_absolute_href() if link.rel not in ("root", "parent", "self") else None
        if href and not _is_remote(href) and root not in Path(href).resolve().parents:
            log.info("item %s: dropping %s link to a local file outside the catalog (%s)", item.id, link.rel, href)
            continue
        kept.append(link)
    item.links = kept


def _span(items: Sequence[pystac.Item]) -> tuple[datetime | None, datetime | None]:
    starts, ends = [], []
    for item in items:
        start = item.common_metadata.start_datetime or item.datetime
        end = item.common_metadata.end_datetime or item.datetime
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
    return (min(starts) if starts else None, max(ends) if ends else None)


def make_summary_item(
    summary_files: SummaryFiles,
    pair_items: Sequence[pystac.Item] = (),
    *,
    item_id: str = "velocity-summary",
    run_report: RunReport | None = None,
) -> pystac.Item:
    """STAC item of the summary COGs and figures, with absolute asset hrefs.

    Parameters
    ----------
    summary_files : SummaryFiles
        From :func:`glacier_velocity.aggregation.summary.write_summary`, with the figure paths set when
        the figures exist.
    pair_items : sequence of pystac.Item
        The pair products that were aggregated; their time span extends the summary's.
    item_id : str
        Id of the item.
    run_report : RunReport, optional
        The run's report; its pair counts and one-line summary become properties
        (``gv:pairs_attempted``, ``gv:pairs_succeeded``, ``gv:pairs_failed``,
        ``gv:run_summary``, and ``gv:failed_pairs`` with each failed pair's id and reason).

    Returns
    -------
    pystac.Item
        ``datetime`` null, ``start_datetime`` the first reference and ``end_datetime`` the
        last secondary acquisition over all pairs; geometry and bbox in lon/lat; projection
        and raster extensions; an asset per COG (role ``data``) and per figure (roles
        ``overview``/``visual``).
    """
    with rasterio.open(summary_files.median_v) as src:
        tags = src.tags()
        transform, shape, crs = src.transform, (src.height, src.width), src.crs
        median_v = src.read(1)
    if crs is None:
        raise InputError(f"{str(summary_files.median_v)!r} has no CRS; write it with write_summary")
    crs_text = crs_string(crs)

    span_start, span_end = _span(pair_items)
    starts = [t for t in (span_start, _parse(tags.get("start_datetime"))) if t is not None]
    ends = [t for t in (span_end, _parse(tags.get("end_datetime"))) if t is not None]
    if not starts or not ends:
        raise InputError("the summary has no dates: neither its COG tags nor the pair items give a time span")
    start, end = min(starts), max(ends)

    # The run's AOI, stored once beside the summary: the item names it and is cut to it.
    aoi = parse_aoi(str(summary_files.aoi)) if summary_files.aoi is not None else None
    geometry = area_footprint(transform, shape, crs_text, aoi)
    finite = median_v[np.isfinite(median_v)]
    properties: dict[str, Any] = {
        "title": f"Velocity summary {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        "gv:product_count": int(tags.get("product_count", len(pair_items))),
        "gv:pair_item_ids": [item.id for item in pair_items],
        "gv:pairs": json.loads(tags.get("pairs", "[]")),
        "gv:min_count": int(tags.get("min_count", "1")),
        "gv:median_v_m_per_yr": float(np.median(finite)) if finite.size else None,
        "gv:valid_fraction": float(finite.size / median_v.size) if median_v.size else 0.0,
        "gv:software_version": __version__,
    }
    if run_report is not None:
        properties.update(_run_properties(run_report))
    if aoi is not None:
        properties["gv:aoi"] = aoi.record()
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=lonlat_bbox(geometry),
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
    )
    add_projection(item, crs, transform, shape)

    descriptions = {name: (unit, description) for name, unit, description in SUMMARY_BANDS}
    resolution = pixel_size(transform)
    for name, path in summary_files.cogs().items():
        unit, description = descriptions[name]
        integer = name == "count"
        asset = pystac.Asset(
            href=str(Path(path).resolve()),
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            title=f"{name} ({unit})",
            description=description,
        )
        item.add_asset(name, asset)
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            RasterBand.create(
                nodata=None if integer else NoDataStrings.NAN,
                data_type=DataType.UINT16 if integer else DataType.FLOAT32,
                unit=unit,
                spatial_resolution=resolution,
            )
        ]
    for name, path in summary_files.figures().items():
        roles, title = FIGURE_ASSETS[name]
        item.add_asset(
            name,
            pystac.Asset(href=str(Path(path).resolve()), media_type=pystac.MediaType.PNG, roles=roles, title=title),
        )
    if summary_files.datacube is not None:
        item.add_asset(
            "datacube",
            pystac.Asset(
                href=str(Path(summary_files.datacube).resolve()),
                media_type=DATACUBE_MEDIA_TYPE,
                roles=["data"],
                title="Velocity datacube (NetCDF, CF-1.8)",
                description="Every pair on the common grid, dimensions (mid_date, y, x): vx, vy, v (m/yr), their errors "
                "when present, acquisition dates and stable-ground shifts; open with xarray.open_dataset",
            ),
        )
    if summary_files.aoi is not None:
        item.add_asset(
            "aoi",
            pystac.Asset(
                href=str(Path(summary_files.aoi).resolve()),
                media_type=pystac.MediaType.GEOJSON,
                roles=["metadata"],
                title="Area of interest (GeoJSON, lon/lat)",
                description="The run's area of interest, stored once: each pair item records its source, bbox, "
                "vertex count and SHA-256 (gv:aoi) and has its simplified cut as geometry",
            ),
        )
    return item


def _run_properties(report: RunReport) -> dict[str, Any]:
    return {
        "gv:pairs_attempted": len(report.pairs),
        "gv:pairs_succeeded": len(report.succeeded),
        "gv:pairs_failed": len(report.failed),
        "gv:run_summary": report.summary_line(),
        "gv:failed_pairs": [
            {"pair_id": p.pair_id, "error_type": p.error_type, "reason": p.reason} for p in report.failed
        ],
    }


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def write_catalog(
    out_dir: str | os.PathLike[str],
    pair_items: Sequence[pystac.Item | str | os.PathLike[str]],
    summary_files: SummaryFiles | None,
    *,
    catalog_id: str = "glacier-velocity",
    title: str = DEFAULT_TITLE,
    description: str = DEFAULT_DESCRIPTION,
    summary_item_id: str = "velocity-summary",
    run_report: RunReport | str | os.PathLike[str] | None = None,
) -> Path:
    """Write a self-contained STAC catalog of the pair products and the summary.

    Parameters
    ----------
    out_dir : path-like
        Catalog directory, created if missing; ``catalog.json`` is written at its top.
    pair_items : sequence of pystac.Item or path
        Product items (JSON files written by correlate, or items whose asset hrefs resolve to
        local files). Each keeps its own id, dates and properties.
    summary_files : SummaryFiles or None
        Summary COGs (and figures) to describe in one summary item; None for pairs only.
        With no items and no summary an empty catalog is written (zero pairs found).
    catalog_id, title, description : str
        Catalog metadata.
    summary_item_id : str
        Id of the summary item.
    run_report : RunReport or path, optional
        The run report (or its JSON file); written as ``run-report.json`` at the top of the
        catalog, linked from the catalog (``describedby``) and, with a summary, an asset of the
        summary item whose properties then carry the pair counts.

    Returns
    -------
    Path
        The ``catalog.json`` file.

    Raises
    ------
    InvalidParameter
        Two items with the same id.
    InputError
        An item file or a local asset is missing.

    Notes
    -----
    Each item is saved as ``<id>/<id>.json`` with its local assets placed in the same
    folder (hard link or copy; files already there are left alone). All links and asset
    hrefs are relative (``CatalogType.SELF_CONTAINED``): the directory can be copied
    anywhere and still resolves.
    """
    items = [_load_item(item) for item in pair_items]
    if not items and summary_files is None:
        # Zero pairs is a legitimate workflow outcome; an empty but valid catalog keeps the
        # output directory the same shape.
        log.warning("writing an empty catalog to %s: no product items and no summary", out_dir)
    ids = [item.id for item in items] + ([summary_item_id] if summary_files is not None else [])
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidParameter(
            "pair_items", f"item ids must be unique, repeated: {duplicates}; pass each pair product once"
        )
    report = read_run_report(run_report) if isinstance(run_report, (str, os.PathLike)) else run_report
    # A real directory (a symbolic link would take the catalog, the report and a copy of every
    # product where it points), resolved only once checked; so is each item's folder.
    out = output_directory(out_dir).resolve()
    # An older catalog.json would describe items while they are being rewritten.
    (out / "catalog.json").unlink(missing_ok=True)

    catalog = pystac.Catalog(id=catalog_id, description=description, title=title)
    report_path = None
    if report is not None:
        report_path = write_run_report(report, out / RUN_REPORT_NAME)
        catalog.add_link(
            # Relative as written: pystac only relativises the hierarchical links itself.
            pystac.Link(
                rel="describedby",
                target=f"./{RUN_REPORT_NAME}",
                media_type=pystac.MediaType.JSON,
                title=f"Run report: {report.summary_line()}",
            )
        )
    for item in items:
        if safe_name(item.id) != item.id:
            # The id names the item's folder inside the catalog: it must not reach outside.
            log.warning("item id %r is not a safe file name; renamed %r", item.id, safe_name(item.id))
            item.id = safe_name(item.id)
        # Links to parents of the item's former home would dangle in the new catalog.
        item.clear_links("root")
        item.clear_links("parent")
        item.clear_links("collection")
        item.collection_id = None
        _drop_local_links_outside(item, out)
        _gather_assets(item, output_directory(path_in(out, item.id)))
        catalog.add_item(item)
    if summary_files is not None:
        summary_item = make_summary_item(summary_files, items, item_id=summary_item_id, run_report=report)
        _gather_assets(summary_item, output_directory(out / summary_item.id))
        if report is not None and report_path is not None:
            # Added after gathering: the report stays once, at the top of the catalog.
            summary_item.add_asset(
                "run_report",
                pystac.Asset(
                    href=str(report_path),
                    media_type=pystac.MediaType.JSON,
                    roles=["metadata"],
                    title=f"Run report: {report.summary_line()}",
                    description="Every pair attempted, succeeded or failed with its reason (glacier-velocity run report)",
                ),
            )
        for item in items:
            summary_item.add_link(
                pystac.Link(rel="derived_from", target=item, media_type=pystac.MediaType.JSON, title=item.id)
            )
        catalog.add_item(summary_item)

    catalog.normalize_hrefs(str(out))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, stac_io=_AtomicStacIO())
    path = out / "catalog.json"
    log.info("wrote STAC catalog %s (%d items)", path, len(ids))
    return path


def check_catalog(catalog_path: str | os.PathLike[str]) -> list[Path]:
    """Read a catalog back and resolve every item and asset to an existing local file.

    Parameters
    ----------
    catalog_path : path-like
        A ``catalog.json``.

    Returns
    -------
    list of Path
        Every asset file, in item order.

    Raises
    ------
    InputError
        An href is absolute or does not resolve to an existing file.
    """
    catalog = pystac.Catalog.from_file(str(Path(catalog_path).resolve()))
    files: list[Path] = []
    for item in catalog.get_items(recursive=True):
        for key, asset in item.assets.items():
            if _is_remote(asset.href) or os.path.isabs(asset.href):
                raise InputError(f"asset {key!r} of item {item.id!r} has a non-relative href {asset.href!r}")
            path = Path(asset.get_absolute_href() or "")
            if not path.is_file():
                raise InputError(f"asset {key!r} of item {item.id!r} does not resolve: {str(path)!r} is missing")
            files.append(path)
    return files


#: Id of the item holding the run's provenance (executed notebooks, pair list, pair statuses).
PROVENANCE_ITEM_ID = "run-provenance"
NOTEBOOK_MEDIA_TYPE = "application/x-ipynb+json"


def add_provenance(
    catalog_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    notebooks: Sequence[str | os.PathLike[str]],
    metadata: Sequence[str | os.PathLike[str]] = (),
    item_id: str = PROVENANCE_ITEM_ID,
) -> Path:
    """Copy a catalog and add one item holding the run's executed notebooks and records.

    The Workflow's single output is then this catalog: the products, the summary and its
    figures, the run report, and how they were made. The aggregation notebook cannot list
    itself in the catalog it writes, hence a step after it.

    Parameters
    ----------
    catalog_dir : path-like
        Directory of a catalog written by :func:`write_catalog` (``catalog.json`` at its top).
    out_dir : path-like
        Where the completed catalog goes; must not exist yet or be empty. Files are hard-linked
        from ``catalog_dir`` when possible, else copied.
    notebooks : sequence of path-like
        Executed notebooks (discovery, one per pair, aggregation): assets with role
        ``metadata`` and media type ``application/x-ipynb+json``, keyed by file stem.
    metadata : sequence of path-like
        Other JSON records of the run (pair list, pair statuses): assets with role ``metadata``.
    item_id : str
        Id (and folder) of the provenance item.

    Returns
    -------
    Path
        The new ``catalog.json``.

    Raises
    ------
    InputError
        ``catalog_dir`` holds no catalog, ``out_dir`` is not empty, a file is missing, two
        files share a name, or the catalog already has an item ``item_id``.

    Notes
    -----
    The item has no geometry (provenance describes no place) and its ``datetime`` is the
    time the run finished (UTC); ``gv:pair_notebooks`` counts the per-pair notebooks.
    """
    source = Path(catalog_dir).resolve()
    if not (source / "catalog.json").is_file():
        raise InputError(
            f"{str(source)!r} holds no catalog.json; pass the catalog directory written by the aggregation step"
        )
    if Path(out_dir).is_dir() and any(Path(out_dir).iterdir()):
        raise InputError(
            f"{str(Path(out_dir).resolve())!r} is not empty; the completed catalog needs a fresh directory"
        )
    out = output_directory(out_dir).resolve()
    files = [Path(f) for f in [*notebooks, *metadata]]
    for path in files:
        if not path.is_file():
            raise InputError(f"provenance file {str(path)!r} does not exist")
    names = [path.name for path in files]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"provenance files must have distinct names, repeated: {repeated}")
    for path in sorted(source.rglob("*")):
        if path.is_file():
            _place(path, out / path.relative_to(source))

    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    if next(catalog.get_items(item_id), None) is not None:
        raise InputError(f"the catalog already has an item {item_id!r}")
    item = pystac.Item(
        id=item_id,
        geometry=None,
        bbox=None,
        datetime=datetime.now(UTC).replace(microsecond=0),
        properties={
            "title": "Run provenance: executed notebooks, pair list and pair statuses",
            "gv:software_version": __version__,
        },
    )
    folder = output_directory(path_in(out, item_id))
    pair_notebooks = 0
    for path in files:
        notebook = path.suffix == ".ipynb"
        pair_notebooks += notebook and path.stem.startswith("correlation_")
        item.add_asset(
            path.stem,
            pystac.Asset(
                href=str(_place(path, folder / path.name)),
                media_type=NOTEBOOK_MEDIA_TYPE if notebook else pystac.MediaType.JSON,
                roles=["metadata"],
                title=f"Executed notebook {path.name}" if notebook else path.name,
            ),
        )
    item.properties["gv:pair_notebooks"] = int(pair_notebooks)
    catalog.add_item(item)
    (out / "catalog.json").unlink()  # catalog.json last, as write_catalog does
    catalog.normalize_hrefs(str(out))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, stac_io=_AtomicStacIO())
    log.info("catalog %s: added %s with %d files", out / "catalog.json", item_id, len(files))
    return out / "catalog.json"


__all__ = ["PROVENANCE_ITEM_ID", "add_provenance", "check_catalog", "make_summary_item", "write_catalog"]
