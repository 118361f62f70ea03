"""``glacier-velocity aggregate``: the workflow's aggregation step on products given by hand."""

from __future__ import annotations

import argparse

from ..aggregation.grid import RESAMPLING
from ..io.aoi import parse_aoi
from ..io.outlines import read_glacier_outlines
from ..io.points import read_points_of_interest
from ..workflow.aggregate import CATALOG_DIR, SUMMARY_DIR, AggregationParams, aggregate_run
from .outputs import check_output_dir

_DEFAULTS = AggregationParams()


def _threshold_or_none(text: str) -> float | None:
    """``--max-pair-error-m-per-yr``: a speed error in m/yr, or ``none`` to keep every pair."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a speed error in m/yr or 'none', got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``aggregate`` subcommand."""
    parser = subparsers.add_parser(
        "aggregate",
        help="run report, median/spread/count maps, figures and STAC catalog of many velocity products",
        description=(
            "The workflow's aggregation step: stack velocity products on the first product's grid "
            "(others are resampled onto it) and write the run report (DIR/run-report.json), per-pixel "
            "median speed, median vx and vy, standard deviation of speed (COGs, m/yr) and valid-map "
            f"count with a summary and a time-series figure (DIR/{SUMMARY_DIR}/), and a self-contained "
            f"STAC catalog (DIR/{CATALOG_DIR}/catalog.json) - the same files as the Workflow."
        ),
    )
    parser.add_argument(
        "products",
        nargs="+",
        metavar="PRODUCT",
        help="pair product directory, velocity COG (.tif) or its item (.json), as correlate writes them",
    )
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="output directory (created if needed)")
    parser.add_argument(
        "--statuses",
        nargs="+",
        default=[],
        metavar="STATUS",
        help="status_<pair_id>.json of every pair attempted (default: every product succeeded)",
    )
    parser.add_argument("--message", default="", help="account of the discovery step, kept in the run report")
    parser.add_argument(
        "--min-count",
        type=int,
        default=_DEFAULTS.min_count,
        metavar="N",
        help="pixels with fewer valid maps get no median or spread (default: %(default)s)",
    )
    parser.add_argument(
        "--resampling",
        choices=sorted(RESAMPLING),
        default=_DEFAULTS.resampling,
        help="how products on another grid are brought onto the first grid (default: %(default)s)",
    )
    parser.add_argument(
        "--max-pair-error-m-per-yr",
        type=_threshold_or_none,
        default=_DEFAULTS.max_pair_error_m_per_yr,
        metavar="M_PER_YR",
        help="leave out a pair whose typical 1-sigma speed error (median v_error) exceeds this, m/yr; "
        "the run report lists it; 'none' keeps every pair (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-uncorrected-pairs",
        action="store_true",
        default=_DEFAULTS.keep_uncorrected_pairs,
        help="keep pairs whose stable-ground correction was not applied, or that have no error estimate; "
        "by default they are left out and the run report lists each with its reason",
    )
    parser.add_argument(
        "--glacier-outlines",
        default=_DEFAULTS.glacier_outlines,
        metavar="GEOJSON",
        help="glacier outlines as a GeoJSON file, http(s) URL or GeoJSON text: the headline speed and the "
        "time series are over them, and they are drawn on the summary figure (default: none)",
    )
    parser.add_argument(
        "--points-of-interest",
        default=_DEFAULTS.points_of_interest,
        metavar="POINTS",
        help="points for the time series: 'lon,lat; lon,lat' or GeoJSON points (file, URL or text); "
        "the headline region when no outlines are given (default: none)",
    )
    parser.add_argument(
        "--aoi",
        default=_DEFAULTS.aoi,
        metavar="AOI",
        help="the run's area of interest (W,S,E,N, GeoJSON text, URL or file), stored once beside the summary "
        "and cutting its footprint; the pair items only record it (default: none)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Aggregate, print the outcome and where the catalog is."""
    check_output_dir(args.out_dir, "--out-dir")
    params = AggregationParams(
        min_count=args.min_count,
        resampling=args.resampling,
        max_pair_error_m_per_yr=args.max_pair_error_m_per_yr,
        keep_uncorrected_pairs=args.keep_uncorrected_pairs,
        glacier_outlines=read_glacier_outlines(args.glacier_outlines) if args.glacier_outlines else None,
        points_of_interest=read_points_of_interest(args.points_of_interest) if args.points_of_interest else None,
        aoi=parse_aoi(args.aoi) if args.aoi else None,
    )
    result = aggregate_run(args.products, args.out_dir, params, statuses=args.statuses, message=args.message)
    print(result.message)
    print(f"catalog: {result.catalog}")
    return 0
