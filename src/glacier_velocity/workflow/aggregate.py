"""Stage 3 of the workflow: the run report, the summary of all pairs and the STAC catalog.

:func:`aggregate_run` is the whole step, called by both the aggregation notebook (which CWL
runs) and ``glacier-velocity aggregate``; they write the same files under ``out_dir``::

    out_dir/
      run-report.json                 every pair attempted, succeeded or failed with its reason
      summary/summary_<band>.tif      median_v, median_vx, median_vy, std_v (m/yr), count
      summary/summary_figure.png      median speed, spread and count
      summary/time_series.png         median speed of each pair against time
      summary/aoi.geojson             the run's area of interest, stored once (when given)
      summary/velocity_datacube.nc    every pair on the common grid (CF-1.8 NetCDF, ITS_LIVE's names),
                                      the pairs the summary left out flagged
      catalog/catalog.json            self-contained STAC catalog: one item per pair product,
                                      the summary item, the run report

Without products there is no ``summary/``: the step writes the run report and an empty
catalog and says why. When discovery found no pairs that is an outcome, not an error; when
every pair attempted failed, the step then raises
:class:`~glacier_velocity.errors.AllPairsFailed` listing each pair's reason, so the notebook,
the CWL step and the whole run (cwltool, Toil, an ADES) end non-zero instead of reporting
"0 succeeded" as a success. A product that cannot be read is an error too.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pystac
from rasterio._err import CPLE_BaseError

from ..aggregation.datacube import DATACUBE_FILE_NAME
from ..aggregation.grid import RESAMPLING, ResamplingName
from ..aggregation.summary import (
    MAX_PAIR_ERROR_M_PER_YR,
    ExcludedPair,
    Summary,
    SummaryFiles,
    aggregate_products,
    check_max_pair_error,
    write_summary,
)
from ..domain.aoi import AOI
from ..domain.outlines import GlacierOutlines
from ..errors import AllPairsFailed, InputError, InvalidParameter, OutputError, PairsLeftOut
from ..io.aoi import parse_aoi, write_aoi
from ..io.atomic import output_directory, replace_together
from ..io.outlines import read_glacier_outlines
from ..io.points import PointOfInterest, read_points_of_interest
from ..products.catalog import write_catalog
from ..products.figures import plot_summary, plot_time_series
from ..products.runreport import (
    RUN_REPORT_NAME,
    LeftOutPair,
    PairStatus,
    RunReport,
    build_run_report,
    write_run_report,
)

log = logging.getLogger(__name__)

#: Folder of the summary COGs and figures inside ``out_dir``.
SUMMARY_DIR = "summary"
#: Folder of the STAC catalog inside ``out_dir``.
CATALOG_DIR = "catalog"
#: File name of the run's area of interest beside the summary (GeoJSON), stored once.
AOI_FILE_NAME = "aoi.geojson"
#: Name of the aggregation's output set (its lock, staging directory and journal in ``out_dir``).
SET_KEY = "aggregation"
#: Id (and folder inside the catalog) of the summary item.
SUMMARY_ITEM_ID = "velocity-summary"

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, kw_only=True)
class AggregationParams:
    """Settings of the aggregation step. Checked when constructed.

    Attributes
    ----------
    min_count : int
        Pixels with fewer valid maps than this get no median or spread (the ``count`` map
        keeps the true number); 1 keeps every measured pixel, 3 asks three pairs to agree.
    resampling : {"nearest", "bilinear"}
        How a product on another grid than the first product's (another tile, UTM zone or
        grid spacing) is brought onto it. Products of one workflow run share one grid and
        are never resampled.
    max_pair_error_m_per_yr : float or None
        A pair whose typical 1-sigma speed error (median ``v_error``, m/yr) exceeds this is
        left out of the summary, and the run report and the summary say so. None: no threshold.
    keep_uncorrected_pairs : bool
        Keep in the summary the pairs whose stable-ground correction was not applied (no stable
        ground found, an implausible shift, correction turned off) or that have no error
        estimate. By default they are left out, and the run report lists each with its reason:
        their speeds include the pair's misregistration (0.1-2 px: tens to hundreds of m/yr).
    glacier_outlines : GlacierOutlines or None
        Glacier outlines, read once at the edge by
        :func:`~glacier_velocity.io.outlines.read_glacier_outlines` (a GeoJSON file path, an
        http(s) URL or the text given here is read on construction): the headline numbers and
        the time series are taken over them, and they are drawn on the summary figure. None:
        over the points of interest, else the whole grid.
    points_of_interest : tuple of PointOfInterest, or None
        Points where each pair's speed is sampled for the time series, read by
        :func:`~glacier_velocity.io.points.read_points_of_interest` (``"lon,lat; lon,lat"`` or
        GeoJSON points - a file path, URL or text, a ``name`` property names a point - given
        here is read on construction). None: no points.
    aoi : AOI or None
        The run's area of interest (any form :func:`~glacier_velocity.io.aoi.parse_aoi` reads):
        stored once beside the summary (``aoi.geojson``, an asset of the summary item), whose
        footprint it cuts; the pair items only record it (``gv:aoi``). None: not stored.
    """

    min_count: int = 1
    resampling: str = "nearest"
    max_pair_error_m_per_yr: float | None = MAX_PAIR_ERROR_M_PER_YR
    keep_uncorrected_pairs: bool = False
    glacier_outlines: GlacierOutlines | None = None
    points_of_interest: tuple[PointOfInterest, ...] | None = None
    aoi: AOI | None = None

    def __post_init__(self) -> None:
        check_max_pair_error(self.max_pair_error_m_per_yr)
        if self.aoi is not None:
            object.__setattr__(self, "aoi", parse_aoi(self.aoi))
        if not isinstance(self.keep_uncorrected_pairs, bool):
            raise InvalidParameter(
                "keep_uncorrected_pairs", f"must be true or false, got {self.keep_uncorrected_pairs!r}"
            )
        # A Python caller's path, URL or text: read here, once, before anything is written.
        if self.glacier_outlines is not None and not isinstance(self.glacier_outlines, GlacierOutlines):
            object.__setattr__(self, "glacier_outlines", read_glacier_outlines(self.glacier_outlines))
        if self.points_of_interest is not None:
            object.__setattr__(self, "points_of_interest", read_points_of_interest(self.points_of_interest))
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 1:
            raise InvalidParameter("min_count", f"must be a whole number of maps >= 1, got {self.min_count!r}")
        if self.resampling not in RESAMPLING:
            raise InvalidParameter(
                "resampling", f"must be one of {', '.join(sorted(RESAMPLING))}, got {self.resampling!r}"
            )


@dataclass(frozen=True)
class ProductInput:
    """One pair product handed to aggregation: its velocity COG and its STAC item.

    Attributes
    ----------
    pair_id : str
        The pair's product directory name when a directory was given, else the COG's stem.
    directory : Path
        Folder holding the COG (the pair's product directory as correlation writes it).
    cog : Path
        Velocity COG.
    item : pystac.Item or Path
        The product item JSON beside the COG, or an item made from the COG when there is none.
    """

    pair_id: str
    directory: Path
    cog: Path
    item: pystac.Item | Path


def _is_item_json(path: Path) -> bool:
    return path.suffix.lower() in (".json", ".geojson")


def _data_asset_path(item: pystac.Item, item_path: Path) -> Path:
    """The velocity COG of a product item: asset ``velocity``, else the one data GeoTIFF."""
    if "velocity" in item.assets:
        candidates = [item.assets["velocity"]]
    else:
        candidates = [
            asset
            for asset in item.assets.values()
            if "data" in (asset.roles or [])
            and ("tiff" in (asset.media_type or "") or asset.href.lower().endswith((".tif", ".tiff")))
        ]
    if len(candidates) != 1:
        raise InputError(
            f"{str(item_path)!r}: expected one velocity COG asset (key 'velocity' or one data GeoTIFF), "
            f"found {len(candidates)}"
        )
    return Path(candidates[0].get_absolute_href() or candidates[0].href)


def _from_cog(cog: Path, pair_id: str) -> ProductInput:
    from ..io.cog import read_velocity_cog
    from ..products.items import make_product_item

    sibling = cog.with_suffix(".json")
    item: pystac.Item | Path = sibling if sibling.is_file() else make_product_item(read_velocity_cog(cog), cog)
    return ProductInput(pair_id, cog.parent, cog, item)


def resolve_products(products: Sequence[PathLike | None]) -> list[ProductInput]:
    """The velocity COG and item of each product, from directories, COGs or item JSON files.

    Parameters
    ----------
    products : sequence of path or None
        A pair product directory (as the correlation step writes it: one velocity COG and its
        item JSON), a velocity COG (its item is the JSON file of the same name beside it, or is
        made from the COG), or a product item JSON. None and ``""`` stand for a pair that
        failed and are skipped.

    Raises
    ------
    InputError
        A product does not exist, a directory holds no velocity COG, or a JSON file is not a
        product item.
    """
    resolved: list[ProductInput] = []
    for given in products:
        if given is None or str(given) == "":
            continue
        path = Path(given)
        if path.is_dir():
            cogs = sorted(path.glob("*.tif"))
            if not cogs:
                raise InputError(
                    f"product directory {str(given)!r} holds no velocity COG (.tif); pass the correlation step's product directories"
                )
            resolved += [_from_cog(cog, path.name if len(cogs) == 1 else cog.stem) for cog in cogs]
        elif not path.is_file():
            raise InputError(
                f"product {str(given)!r} does not exist; pass product directories, velocity COGs or their item JSON files"
            )
        elif _is_item_json(path):
            try:
                item = pystac.Item.from_file(str(path.resolve()))
            except Exception as exc:  # pystac raises several types for a malformed file
                raise InputError(f"{str(given)!r} is not a STAC item: {exc}") from exc
            cog = _data_asset_path(item, path)
            resolved.append(ProductInput(cog.stem, cog.parent, cog, path))
        else:
            resolved.append(_from_cog(path, path.stem))
    return resolved


@dataclass(frozen=True)
class AggregationResult:
    """What :func:`aggregate_run` wrote, and its account of the run.

    Attributes
    ----------
    report : RunReport
        Every pair attempted and what happened to it.
    run_report : Path
        ``out_dir/run-report.json``.
    catalog : Path
        ``out_dir/catalog/catalog.json``.
    summary : Summary or None
        Per-pixel statistics (m/yr); None without products.
    files : SummaryFiles or None
        Summary COGs and figures; None without products.
    message : str
        One line: the counts, the number of pairs aggregated and the median speed, or why
        nothing was aggregated.
    """

    report: RunReport
    run_report: Path
    catalog: Path
    summary: Summary | None
    files: SummaryFiles | None
    message: str

    def left_out_table(self) -> str:
        """The pairs left out of the summary, one line each with its cause and reason (as in the run report)."""
        left_out = self.report.left_out
        if not left_out:
            return "no pair was left out of the summary"
        lines = [f"{len(left_out)} pair(s) left out of the summary:"]
        lines += [f"  {p.pair_id} [{p.cause}]: {p.reason}" for p in left_out]
        return "\n".join(lines)

    def stats(self) -> dict[str, Any]:
        """JSON-ready statistics of the run (what the aggregation notebook glues as ``stats``)."""
        report, summary = self.report, self.summary
        run_stats: dict[str, Any] = {
            "pairs_attempted": len(report.pairs),
            "pairs_succeeded": len(report.succeeded),
            "pairs_failed": len(report.failed),
            "run_summary": report.summary_line(),
            "failed_pairs": [
                {"pair_id": p.pair_id, "error_type": p.error_type, "reason": p.reason} for p in report.failed
            ],
        }
        if summary is None:
            return {
                "pair_count": 0,
                "headline_median_v_m_per_yr": None,
                "pairs_left_out": [f"{p.pair_id}: {p.reason}" for p in report.left_out],
                "valid_fraction": 0.0,
                "pairs": [],
                **run_stats,
            }
        start, end = summary.start_datetime, summary.end_datetime
        return {
            "pair_count": summary.product_count,
            "headline": summary.headline(),
            "headline_region": summary.region_name,
            "headline_median_v_m_per_yr": summary.headline_median_v,
            "headline_median_v_error_m_per_yr": summary.headline_median_v_error,
            "pairs_left_out": summary.exclusion_lines(),
            "valid_fraction": summary.valid_fraction,
            "start_datetime": start.isoformat() if start else None,
            "end_datetime": end.isoformat() if end else None,
            "pairs": [
                {
                    "reference_id": e.reference_id,
                    "secondary_id": e.secondary_id,
                    "dt_days": e.dt_days,
                    "median_v_m_per_yr": e.median_v,
                    "valid_fraction": e.valid_fraction,
                }
                for e in summary.entries
            ],
            **run_stats,
        }


def _left_out(excluded: Sequence[ExcludedPair], inputs: Sequence[ProductInput]) -> tuple[LeftOutPair, ...]:
    """The summary's excluded pairs, named as in the run report (their product's pair id)."""
    by_cog = {str(p.cog): p.pair_id for p in inputs}
    return tuple(LeftOutPair(by_cog.get(x.source, x.pair_id), x.entry.v_error, x.reason, x.cause) for x in excluded)


def _report(
    statuses: Sequence[PathLike | PairStatus],
    inputs: Sequence[ProductInput],
    message: str,
    left_out: tuple[LeftOutPair, ...] = (),
) -> RunReport:
    if statuses:
        # The statuses name the pairs; each product directory must belong to a succeeded one.
        directories = list(dict.fromkeys(p.directory for p in inputs))
        return replace(build_run_report(statuses, directories, message=message), left_out=left_out)
    # Products alone (aggregating files by hand): each counts as a pair that succeeded.
    return RunReport(
        tuple(
            PairStatus(
                pair_id=p.pair_id,
                reference_id="",
                secondary_id="",
                reference_href="",
                secondary_href="",
                status="succeeded",
                product=p.cog.stem,
            )
            for p in inputs
        ),
        message,
        left_out,
    )


def _write_summary_files(summary: Summary, summary_dir: Path, params: AggregationParams) -> SummaryFiles:
    """The summary COGs, figures and AOI of a run into ``summary_dir``, beside its datacube."""
    return (
        write_summary(summary, summary_dir)
        .with_figures(
            plot_summary(summary, summary_dir / "summary_figure.png", outlines=params.glacier_outlines),
            plot_time_series(summary, summary_dir / "time_series.png"),
        )
        .with_datacube(summary_dir / DATACUBE_FILE_NAME)
        .with_aoi(write_aoi(params.aoi, summary_dir / AOI_FILE_NAME) if params.aoi is not None else None)
    )


def _no_products(report: RunReport, message: str, report_path: Path) -> str:
    """The step's one line when there is nothing to aggregate."""
    if report.failed:
        first = report.failed[0]
        return (
            f"no velocity products to aggregate: {report.summary_line()}, every pair failed "
            f"(first, {first.pair_id}: {first.reason}); see {report_path}"
        )
    return f"no velocity products to aggregate ({message or 'no pairs were given'}); {report.summary_line()}"


def _outcome(summary: Summary, report: RunReport) -> str:
    """The step's one line: the counts, the pairs aggregated and left out, the headline."""
    left = f", {len(summary.excluded)} left out ({'; '.join(summary.exclusion_lines())})" if summary.excluded else ""
    return (
        f"{report.summary_line()}: {summary.product_count} pairs aggregated{left}, {summary.headline()}, "
        f"{100 * summary.valid_fraction:.0f} % of the grid measured"
    )


def aggregate_run(
    products: Sequence[PathLike | None],
    out_dir: PathLike,
    params: AggregationParams | None = None,
    *,
    statuses: Sequence[PathLike | PairStatus] = (),
    message: str = "",
    nothing_left_fails: bool = True,
) -> AggregationResult:
    """Run report, summary maps, figures and STAC catalog of a run's pair products.

    Parameters
    ----------
    products : sequence of path or None
        The pair products (see :func:`resolve_products`); None or ``""`` for a failed pair.
    out_dir : path-like
        Output directory (created if needed); the layout is in the module docstring. It,
        ``catalog/`` and ``summary/`` must not be symbolic links
        (:func:`~glacier_velocity.io.atomic.output_directory`).
    params : AggregationParams, optional
        ``min_count`` and ``resampling``.
    statuses : sequence of path or PairStatus
        The status of every pair attempted (``status_<pair_id>.json`` of the correlation step);
        empty: every product counts as a pair that succeeded.
    message : str
        The discovery step's account, reported when there are no products.
    nothing_left_fails : bool
        When pairs were left out of the summary until nothing (or too little for ``min_count``)
        remains: True raises :class:`~glacier_velocity.errors.PairsLeftOut` once the run report
        and the catalog are written (``glacier-velocity aggregate``); False returns the result
        without a summary, its message saying why and what to change (the Workflow's step: a
        failed step would take the run report, the catalog and the pairs' products with it).

    Returns
    -------
    AggregationResult

    Raises
    ------
    InputError
        A product or status file is missing or unreadable, the statuses and products
        disagree (a product without a succeeded status, a succeeded pair without a product),
        or an output directory is a symbolic link (nothing is written then).
    PairsLeftOut
        Nothing (or too little for ``min_count``) is left once pairs are left out of the
        summary, and ``nothing_left_fails`` (after the run report and the catalog are written).
    AllPairsFailed
        Every pair of ``statuses`` failed (after the run report and the empty catalog are
        written); the message gives each pair's reason.
    """
    params = params or AggregationParams()
    out = Path(out_dir)
    inputs = resolve_products(products)
    resampling = cast(ResamplingName, params.resampling)  # checked by AggregationParams
    summary: Summary | None = None
    files: SummaryFiles | None = None
    catalog_text: dict[str, str] = {}
    outcome = ""
    left_out: PairsLeftOut | None = None
    # Every directory written into is a real one, checked before the first file is written: a
    # symbolic link left or planted at out_dir, catalog/ or summary/ would take every file
    # where it points. A rejected input leaves no output directory behind.
    created = not out.exists()
    out = output_directory(out)
    for name in (CATALOG_DIR, SUMMARY_DIR):
        output_directory(out / name, create=False)
    report_path = out / RUN_REPORT_NAME
    # The run report, summary/ and catalog/ are one set, like a pair's products: written whole
    # beside the old set, then swapped in (io.atomic.replace_together). A full disk or a kill
    # leaves the earlier run's set as it was, and a new set has nothing of an old one (a pair
    # directory of the catalog the new run has not).
    targets = [report_path, out / SUMMARY_DIR, out / CATALOG_DIR]
    try:
        with replace_together(targets, key=SET_KEY) as (report_tmp, summary_tmp, catalog_tmp):
            summary_tmp.mkdir()
            if inputs:
                try:
                    # The datacube is written as the products are read, into the new set.
                    summary = aggregate_products(
                        [p.cog for p in inputs],
                        min_count=params.min_count,
                        resampling=resampling,
                        max_pair_error_m_per_yr=params.max_pair_error_m_per_yr,
                        glacier_outlines=params.glacier_outlines,
                        points_of_interest=params.points_of_interest or (),
                        keep_uncorrected_pairs=params.keep_uncorrected_pairs,
                        datacube=summary_tmp / DATACUBE_FILE_NAME,
                    )
                except PairsLeftOut as exc:
                    # Nothing (or too little) is left to summarise: the run report still lists every
                    # pair and why it was left out, then the step fails with the same words.
                    left_out = exc
            excluded = summary.excluded if summary is not None else left_out.excluded if left_out is not None else ()
            report = _report(statuses, inputs, message, _left_out(excluded, inputs))
            write_run_report(report, report_tmp)
            if left_out is not None:
                catalog_text = {"title": "Glacier surface velocity: no summary", "description": str(left_out)}
            elif summary is not None:
                files = _write_summary_files(summary, summary_tmp, params)
                outcome = _outcome(summary, report)
            else:
                outcome = _no_products(report, message, report_path)
                catalog_text = {"title": "Glacier surface velocity: no products", "description": outcome}
            write_catalog(
                catalog_tmp,
                [p.item for p in inputs],
                files,
                summary_item_id=SUMMARY_ITEM_ID,
                run_report=report,
                **catalog_text,
            )
    except (OSError, CPLE_BaseError) as exc:
        earlier = "the run report, summary and catalog of an earlier run there were kept unchanged"
        raise OutputError(
            f"could not write the aggregation outputs into {str(out)!r} ({exc}; "
            f"{shutil.disk_usage(out).free / 1e6:.1f} MB free there); "
            f"{earlier if report_path.exists() else 'nothing was written'} - free some space (or choose "
            "another directory) and run the aggregation again"
        ) from exc
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a rejected input leaves no output directory behind
    if not any((out / SUMMARY_DIR).iterdir()):
        (out / SUMMARY_DIR).rmdir()  # no summary: no summary/ (an empty directory, not part of the set)
    if files is not None:
        files = files.moved(out / SUMMARY_DIR)
    catalog = out / CATALOG_DIR / "catalog.json"
    if left_out is not None:
        nothing_left = PairsLeftOut(
            left_out.parameter, f"{left_out.detail} (run report: {report_path})", left_out.excluded
        )
        if nothing_left_fails:
            raise nothing_left
        outcome = f"{report.summary_line()}, no summary: {left_out}; the run report lists each pair left out"
    if report.pairs and not report.succeeded:
        # The report and the empty catalog stay for a look; the run itself failed.
        reasons = "; ".join(f"{p.pair_id}: {p.reason}" for p in report.failed)
        raise AllPairsFailed(
            f"every pair attempted failed ({report.summary_line()}), so the run has no velocity product: "
            f"{reasons}; fix the cause and run again (run report: {report_path})",
            report,
        )
    log.info("%s", outcome)
    return AggregationResult(report, report_path, catalog, summary, files, outcome)
