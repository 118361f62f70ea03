"""``glacier-velocity correlate``: velocity products of one pair of STAC items."""

from __future__ import annotations

import argparse

from ..correction import describe_correction
from ..io.aoi import parse_aoi
from ..io.outlines import read_glacier_outlines
from ..stac.staged import staged_href
from ..workflow.correlate import CorrelationParams, correlate_pair
from .options import add_aoi_option, add_tracking_options
from .outputs import check_output_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``correlate`` subcommand."""
    parser = subparsers.add_parser(
        "correlate",
        help="measure glacier velocity between two Sentinel-2 or two Landsat 8/9 scenes",
        description=(
            "Read the tracked band of two STAC items over an area (Sentinel-2: nir, B08 at 10 m; Landsat 8/9 "
            "Collection 2 Level-1: pan, B8 at 15 m), track features and write a "
            "velocity COG (vx, vy, v in m/yr plus quality bands), a quicklook PNG and a STAC item."
        ),
    )
    parser.add_argument("reference_href", metavar="REFERENCE", help="STAC item URL or JSON file of the earlier scene")
    parser.add_argument("secondary_href", metavar="SECONDARY", help="STAC item URL or JSON file of the later scene")
    parser.add_argument(
        "--out-dir", required=True, metavar="DIR", help="directory for the products (created if needed)"
    )
    add_aoi_option(parser, required=False, default_text=" (default: where both scenes overlap)")
    add_tracking_options(parser)
    parser.add_argument(
        "--mask-clouds",
        action="store_true",
        help="mask clouds, shadows and defective pixels using the items' scl (Landsat: qa_pixel) assets",
    )
    parser.add_argument(
        "--min-correlation-baseline-days",
        type=float,
        default=CorrelationParams().min_correlation_baseline_days,
        metavar="DAYS",
        help="refuse a pair whose scenes are closer in time than this (days; default: %(default)s)",
    )
    parser.add_argument(
        "--stac-url",
        default=CorrelationParams().stac_url,
        metavar="URL",
        help="root of the STAC API the items come from; GLACIER_VELOCITY_STAC_TOKEN, when set, is sent "
        "with the item fetches to its origin only (default: %(default)s)",
    )
    parser.add_argument(
        "--staged-items",
        metavar="DIR",
        help="a Directory of staged STAC items: relative REFERENCE and SECONDARY are read from it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the correlation and print the product paths and a one-line summary."""
    check_output_dir(args.out_dir, "--out-dir")
    params = CorrelationParams(
        max_velocity_m_per_yr=args.max_velocity_m_per_yr,
        grid_spacing_px=args.grid_spacing_px,
        chip_px=args.chip_px,
        filter=args.filter,
        engine=args.engine,
        aoi=parse_aoi(args.aoi) if args.aoi else None,
        mask_clouds=args.mask_clouds,
        stable_correction=args.stable_correction,
        min_correlation_baseline_days=args.min_correlation_baseline_days,
        glacier_outlines=read_glacier_outlines(args.glacier_outlines) if args.glacier_outlines else None,
        stac_url=args.stac_url,
    )
    reference, secondary = (staged_href(h, args.staged_items) for h in (args.reference_href, args.secondary_href))
    result = correlate_pair(reference, secondary, args.out_dir, params)
    print(f"velocity:  {result.cog}")
    print(f"quicklook: {result.quicklook}")
    print(f"item:      {result.item}")
    print(result.summary())
    print(describe_correction(result.correction))
    return 0
