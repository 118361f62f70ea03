"""``glacier-velocity discover``: find Sentinel-2 scenes over an AOI and write the pair list."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..io.aoi import parse_aoi
from ..stac.discovery import DiscoveryParams, discover_pairs
from ..stac.pairing import format_pair_table, format_scene_table, write_pairs_json
from .options import add_aoi_option
from .outputs import check_output_file

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DiscoveryParams) if f.default is not dataclasses.MISSING}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``discover`` subcommand."""
    parser = subparsers.add_parser(
        "discover",
        help="search a STAC API for Sentinel-2 scenes and write image pairs (pairs.json)",
        description=(
            "Search a STAC API for Sentinel-2 L2A scenes over an area of interest, keep the first "
            "suitable scene of each month of the season, pair each scene with the next N, and write "
            "the pair list as JSON. A season may wrap the year end (--start-month 11 --end-month 2: "
            "season year Y = Nov-Dec of Y and Jan-Feb of Y+1)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_aoi_option(parser, required=True)
    parser.add_argument("--stac-url", default=_DEFAULTS["stac_url"], help="root URL of the STAC API")
    parser.add_argument("--collection", default=_DEFAULTS["collection"], help="STAC collection id")
    parser.add_argument("--start-year", type=int, required=True, help="first season year")
    parser.add_argument("--end-year", type=int, required=True, help="last season year (inclusive)")
    parser.add_argument(
        "--start-month", type=int, default=_DEFAULTS["start_month"], help="first month of the season (1-12)"
    )
    parser.add_argument("--end-month", type=int, default=_DEFAULTS["end_month"], help="last month of the season (1-12)")
    parser.add_argument(
        "--max-cloud-cover",
        type=float,
        default=_DEFAULTS["max_cloud_cover"],
        help="largest cloud cover kept (%%, 0-100)",
    )
    parser.add_argument(
        "--pairs-per-image",
        type=int,
        default=_DEFAULTS["pairs_per_image"],
        help="pair each scene with the next N scenes (N >= 1)",
    )
    parser.add_argument("--min-baseline-days", type=float, help="shortest baseline kept (days)")
    parser.add_argument("--max-baseline-days", type=float, help="longest baseline kept (days)")
    parser.add_argument("--tile", help="MGRS tile to use, e.g. 43SEA (default: the tile covering the AOI best)")
    parser.add_argument(
        "--aoi-cloud-cover",
        action="store_true",
        help="judge cloud over the AOI from the scl asset instead of the whole tile's eo:cloud_cover",
    )
    parser.add_argument("--max-items", type=int, default=_DEFAULTS["max_items"], help="most items fetched from the API")
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=_DEFAULTS["max_pairs"],
        help="most pairs the discovery may give (each is a tracking job); more is refused",
    )
    parser.add_argument(
        "--staged-items",
        metavar="DIR",
        help="use the STAC items staged in DIR (a catalog.json linking them, their assets beside them) "
        "instead of searching the STAC API",
    )
    parser.add_argument(
        "--item-urls",
        nargs="+",
        metavar="URL",
        help="use these STAC items (http(s) URLs) instead of searching the STAC API",
    )
    parser.add_argument("--out", type=Path, default=Path("pairs.json"), help="pair list JSON to write")
    parser.set_defaults(func=run)


def params_from_args(args: argparse.Namespace) -> DiscoveryParams:
    """Build (and so validate) the discovery parameters from parsed arguments."""
    return DiscoveryParams(
        stac_url=args.stac_url,
        collection=args.collection,
        aoi=parse_aoi(args.aoi),
        start_year=args.start_year,
        end_year=args.end_year,
        start_month=args.start_month,
        end_month=args.end_month,
        max_cloud_cover=args.max_cloud_cover,
        pairs_per_image=args.pairs_per_image,
        min_baseline_days=args.min_baseline_days,
        max_baseline_days=args.max_baseline_days,
        tile=args.tile,
        aoi_cloud_cover=args.aoi_cloud_cover,
        max_items=args.max_items,
        max_pairs=args.max_pairs,
    )


def run(args: argparse.Namespace) -> int:
    """Run discovery, print the scene and pair tables, write ``--out``."""
    params = params_from_args(args)
    # Validate the output location before the (possibly slow) search.
    check_output_file(args.out, "--out", "pairs.json")
    result = discover_pairs(params, staged_items=args.staged_items, item_urls=args.item_urls)
    out = write_pairs_json(result.pairs, args.out, parameters=params.to_dict())
    print(f"Tile {result.tile}: {len(result.scenes_found)} scene(s) found, {len(result.scenes_selected)} selected")
    print(format_scene_table(result.scenes_selected))
    print()
    print(f"{len(result.pairs)} pair(s), {params.pairs_per_image} per image")
    print(format_pair_table(result.pairs))
    print()
    print("Filters:")
    for line in result.summary().splitlines():
        print(f"  {line}")
    print(f"Wrote {out}", file=sys.stderr)
    return 0
