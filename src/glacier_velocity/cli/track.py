"""``glacier-velocity track``: two co-registered GeoTIFFs in, one velocity COG out."""

from __future__ import annotations

import argparse

import numpy as np

from ..correction import describe_correction
from ..io.outlines import read_glacier_outlines
from ..tracking import TrackingParams
from ..workflow.track_files import track_files
from .options import add_tracking_options
from .outputs import check_output_file

_DEFAULTS = TrackingParams()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` subcommand."""
    p = subparsers.add_parser(
        "track",
        help="track features between two co-registered GeoTIFFs",
        description=(
            "Measure surface velocity between two single-band GeoTIFFs on the same grid "
            "(e.g. Sentinel-2 B08 at 10 m, or Landsat 8/9 panchromatic band 8 at 15 m). Output: a "
            "Cloud-Optimized GeoTIFF with bands vx "
            "(east), vy (north), v (m/yr), dx, dy (px), peak and snr; its pixel centres are "
            "the map positions where the displacement of the reference feature was measured."
        ),
    )
    p.add_argument("reference", metavar="REF.tif", help="earlier image (GeoTIFF, DN 0 = nodata)")
    p.add_argument("secondary", metavar="SEC.tif", help="later image on the same grid")
    p.add_argument("--dt-days", type=float, required=True, help="time between the images (days, fractional)")
    p.add_argument("--out", required=True, metavar="VELOCITY.tif", help="output velocity COG")
    add_tracking_options(p)
    p.add_argument(
        "--filter-width-px",
        type=int,
        default=_DEFAULTS.filter_width_px,
        metavar="PX",
        help=f"pre-filter window (px, odd, default {_DEFAULTS.filter_width_px})",
    )
    p.add_argument(
        "--min-peak",
        type=float,
        default=_DEFAULTS.min_peak,
        help=f"smallest accepted correlation peak (default {_DEFAULTS.min_peak})",
    )
    p.add_argument(
        "--min-snr",
        type=float,
        default=_DEFAULTS.min_snr,
        help=f"smallest accepted peak sharpness (default {_DEFAULTS.min_snr})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out", "velocity.tif")
    params = TrackingParams(
        grid_spacing_px=args.grid_spacing_px,
        chip_px=args.chip_px,
        filter=args.filter,
        filter_width_px=args.filter_width_px,
        min_peak=args.min_peak,
        min_snr=args.min_snr,
    )
    product = track_files(
        args.reference,
        args.secondary,
        args.dt_days,
        args.out,
        max_velocity_m_per_yr=args.max_velocity_m_per_yr,
        params=params,
        engine=args.engine,
        stable_correction=args.stable_correction,
        glacier_outlines=read_glacier_outlines(args.glacier_outlines) if args.glacier_outlines else None,
    )
    speed = product.v[np.isfinite(product.v)]
    median = f"{np.median(speed):.1f} m/yr" if speed.size else "n/a"
    print(
        f"{args.out}: {product.shape[0]} x {product.shape[1]} grid points, "
        f"{100 * product.valid_fraction:.1f} % valid, median speed {median}, "
        f"baseline {product.dt_days:g} days, engine {product.engine}"
    )
    print(describe_correction(product.correction))
    return 0
