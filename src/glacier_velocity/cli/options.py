"""Command-line options shared by the subcommands that run the tracking engine.

Every option is the kebab case of its dataclass field (``chip_px`` -> ``--chip-px``), with the
field's default, so a CLI user, a CWL job file and a notebook name a parameter the same way.
"""

from __future__ import annotations

import argparse

from ..tracking import ENGINES, FILTERS
from ..workflow.params import CorrelationParams

_DEFAULTS = CorrelationParams()


def add_aoi_option(parser: argparse.ArgumentParser, *, required: bool, default_text: str = "") -> None:
    """Add ``--aoi``: the one area-of-interest option of ``discover`` and ``correlate``."""
    parser.add_argument(
        "--aoi",
        required=required,
        metavar="AOI",
        help=(
            "area of interest, lon/lat degrees: W,S,E,N (e.g. 75.194,36.201,75.424,36.411; write "
            "--aoi=-120.5,... when west is negative), GeoJSON text, or the http(s) URL or path of a "
            "GeoJSON file with a (Multi)Polygon; outside a polygon, products hold nodata" + default_text
        ),
    )


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-velocity-m-per-yr``, ``--grid-spacing-px``, ``--chip-px``, ``--filter``, ``--engine``,
    ``--stable-correction`` / ``--no-stable-correction`` and ``--glacier-outlines``."""
    parser.add_argument(
        "--max-velocity-m-per-yr",
        type=float,
        default=_DEFAULTS.max_velocity_m_per_yr,
        metavar="M_PER_YR",
        help="fastest expected surface speed in m/yr; sets the search range (default: %(default)s)",
    )
    parser.add_argument(
        "--grid-spacing-px",
        type=int,
        default=_DEFAULTS.grid_spacing_px,
        metavar="PX",
        help="distance between measurement points in pixels (default: %(default)s = 120 m at 10 m)",
    )
    parser.add_argument(
        "--chip-px",
        type=int,
        default=_DEFAULTS.chip_px,
        metavar="PX",
        help="side of the matched image chip in pixels, even (default: %(default)s)",
    )
    parser.add_argument(
        "--filter", default=_DEFAULTS.filter, choices=FILTERS, help="image pre-filter (default: %(default)s)"
    )
    parser.add_argument(
        "--engine", default=_DEFAULTS.engine, choices=ENGINES, help="tracking engine (default: %(default)s)"
    )
    parser.add_argument(
        "--stable-correction",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.stable_correction,
        help="measure the pair's misregistration on stable ground and remove it from vx, vy, v, with "
        "error bands; --no-stable-correction keeps it (default: yes)",
    )
    parser.add_argument(
        "--glacier-outlines",
        default=_DEFAULTS.glacier_outlines,
        metavar="GEOJSON",
        help="glacier outlines (e.g. RGI 7.0) as a GeoJSON file, an http(s) URL or GeoJSON text, lon/lat or "
        "the CRS its 'crs' names: stable ground is outside them, and they are drawn on the quicklook "
        "(default: the tightest cluster of displacements, on the land the items' scl shows as neither "
        "snow/ice, water nor cloud when they have one)",
    )
