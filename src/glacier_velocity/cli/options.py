"""Command-line options shared by the subcommands that run the tracking engine."""

from __future__ import annotations

import argparse

from ..tracking import ENGINES, FILTERS, TrackingParams

_DEFAULTS = TrackingParams()


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-velocity``, ``--grid-spacing``, ``--chip-size``, ``--filter``, ``--engine``
    and ``--no-stable-correction``."""
    parser.add_argument("--max-velocity", type=float, default=1000.0, metavar="M_PER_YR",
                        help="fastest expected surface speed in m/yr; sets the search range (default: %(default)s)")
    parser.add_argument("--grid-spacing", type=int, default=_DEFAULTS.grid_spacing_px, metavar="PX",
                        help="distance between measurement points in pixels (default: %(default)s = 120 m at 10 m)")
    parser.add_argument("--chip-size", type=int, default=_DEFAULTS.chip_px, metavar="PX",
                        help="side of the matched image chip in pixels, even (default: %(default)s)")
    parser.add_argument("--filter", default=_DEFAULTS.filter, choices=FILTERS,
                        help="image pre-filter (default: %(default)s)")
    parser.add_argument("--engine", default="ncc", choices=ENGINES, help="tracking engine (default: %(default)s)")
    parser.add_argument("--no-stable-correction", dest="stable_correction", action="store_false",
                        help="keep the pair's misregistration in vx, vy, v: no stable-ground shift removed and "
                             "no error bands (by default the shift is measured on stable ground and removed)")
