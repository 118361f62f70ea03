"""Figures of an aggregation: the summary maps and the per-pair time series.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through ``pyplot``: no display is needed and no global figure state is touched.

Colour scales are chosen to be honest: speed and spread start at zero (a speed has a natural
zero) and end at the 98th percentile so that a few outliers do not wash out the glacier, with
the clipping shown by an arrow on the colour bar; perceptually uniform colour maps; the count
of valid maps uses one discrete colour per value; pixels without data are grey.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from rasterio.crs import CRS
from rasterio.transform import array_bounds

from ..aggregation.summary import Summary
from ..io.atomic import atomic_output

log = logging.getLogger(__name__)

#: Colour of pixels without data in the maps.
NO_DATA_COLOUR = "#c8c8c8"
#: Upper percentile of the speed and spread colour scales.
UPPER_PERCENTILE = 98.0


def _date_range(summary: Summary) -> str:
    start, end = summary.start_datetime, summary.end_datetime
    if start is None or end is None:
        return "dates unknown"
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


@dataclass(frozen=True)
class TimeSeriesPoint:
    """One pair in the time-series figure: its own dates and its median speed (m/yr)."""

    pair_id: str
    reference_datetime: datetime
    mid_datetime: datetime
    secondary_datetime: datetime
    median_v: float


def time_series_points(summary: Summary) -> tuple[TimeSeriesPoint, ...]:
    """The pairs that can be placed on a time axis, in input order, each with its own dates.

    Pairs without both dates or without any valid pixel (NaN median) are left out.
    """
    points = []
    for e in summary.entries:
        if e.reference_datetime is None or e.secondary_datetime is None or not np.isfinite(e.median_v):
            continue
        points.append(
            TimeSeriesPoint(e.pair_id, e.reference_datetime, e.mid_datetime, e.secondary_datetime, e.median_v)  # type: ignore[arg-type]
        )
    return tuple(points)


def colour_limit(values: np.ndarray) -> float:
    """Upper end of a colour scale starting at 0: the 98th percentile of the finite values.

    Falls back to the maximum (or 1) when the percentile is not positive, so the range is
    never empty.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    top = float(np.percentile(finite, UPPER_PERCENTILE))
    # A constant or all-zero map still needs a non-empty colour range.
    return top if top > 0 else max(float(finite.max()), 1.0)


def _save_png(fig: Figure, path: Path, dpi: int) -> None:
    # A temporary name, then a rename: an interrupted run never leaves a half-drawn PNG.
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def _axis_label(crs: str) -> tuple[str, str]:
    epsg = CRS.from_user_input(crs).to_epsg()
    name = f"EPSG:{epsg}" if epsg else "projected CRS"
    return f"easting (km, {name})", f"northing (km, {name})"


def plot_summary(summary: Summary, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Three-panel figure: median speed, its spread (standard deviation) and the valid-map count.

    Parameters
    ----------
    summary : Summary
        Result of :func:`glacier_velocity.aggregation.summary.aggregate_products`.
    path : path-like
        Output PNG file; its directory is created if missing.
    dpi : int
        Resolution of the PNG (dots per inch).

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    Speed (m/yr) uses ``viridis`` from 0 to the 98th percentile of the median speed, spread
    (m/yr) ``magma`` from 0 to the 98th percentile of the standard deviation; the colour bars
    extend with an arrow when values are clipped. The count uses one colour per integer
    0..max. Axes are map coordinates in km of the summary's CRS; pixels without data are grey.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = summary.shape
    west, south, east, north = array_bounds(rows, cols, summary.transform)
    # imshow assumes a north-up grid; array_bounds gives the right extent for it.
    extent = (west / 1000, east / 1000, south / 1000, north / 1000)
    xlabel, ylabel = _axis_label(summary.crs)

    fig = Figure(figsize=(15, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharex=True, sharey=True)

    panels = (
        ("median speed", summary.median_v, "viridis", "speed (m/yr)"),
        ("spread (standard deviation of speed)", summary.std_v, "magma", "standard deviation (m/yr)"),
    )
    for ax, (title, values, cmap_name, label) in zip(axes[:2], panels):
        cmap = matplotlib.colormaps[cmap_name].with_extremes(bad=NO_DATA_COLOUR)
        top = colour_limit(values)
        clipped = bool(np.nanmax(values) > top) if np.isfinite(values).any() else False
        image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=top, extent=extent, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.85, extend="max" if clipped else "neither", label=label)
        ax.set_title(title)

    max_count = max(int(summary.count.max()), 1)
    base = matplotlib.colormaps["cividis"].resampled(max_count)
    colours = [NO_DATA_COLOUR] + [base(i) for i in range(max_count)]
    count_cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-0.5, max_count + 1.5, 1.0), count_cmap.N)
    image = axes[2].imshow(summary.count, cmap=count_cmap, norm=norm, extent=extent, interpolation="nearest")
    ticks = np.unique(np.linspace(0, max_count, min(max_count + 1, 11)).round().astype(int))
    fig.colorbar(image, ax=axes[2], shrink=0.85, ticks=ticks, label="valid maps (0 = none, grey)")
    axes[2].set_title("number of valid maps")

    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_aspect("equal")
        # Full kilometre coordinates, not an offset like "+7e3" that readers miss.
        ax.ticklabel_format(useOffset=False, style="plain")
    axes[0].set_ylabel(ylabel)
    fig.suptitle(
        f"Glacier surface velocity, {summary.product_count} pairs, {_date_range(summary)}; "
        f"median over valid area {summary.median_speed:.1f} m/yr"
    )
    _save_png(fig, path, dpi)
    log.info("wrote summary figure %s", path)
    return path


def plot_time_series(summary: Summary, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Median speed of each pair against time, each pair at its own dates.

    Parameters
    ----------
    summary : Summary
        Result of :func:`glacier_velocity.aggregation.summary.aggregate_products`.
    path : path-like
        Output PNG file; its directory is created if missing.
    dpi : int
        Resolution of the PNG (dots per inch).

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    Each pair is a dot at the mid-date between its reference and secondary acquisitions,
    with a horizontal bar from the reference to the secondary date; y is the pair's median
    speed over its valid pixels on the summary grid (m/yr). Pairs without dates or without
    any valid pixel cannot be placed and are left out (and logged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    placed = time_series_points(summary)
    if len(placed) < len(summary.entries):
        log.warning(
            "time series: %d of %d pairs have no dates or no valid pixel and are not shown",
            len(summary.entries) - len(placed),
            len(summary.entries),
        )

    fig = Figure(figsize=(8, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    if placed:
        speeds = [p.median_v for p in placed]
        starts = mdates.date2num([p.reference_datetime for p in placed])
        ends = mdates.date2num([p.secondary_datetime for p in placed])
        mids = mdates.date2num([p.mid_datetime for p in placed])
        ax.hlines(speeds, starts, ends, colors="tab:blue", linewidth=2, alpha=0.6)
        ax.plot(mids, speeds, "o", color="tab:blue", label="pair (bar: reference to secondary)")
        ax.xaxis_date()
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(0, max(speeds) * 1.15 if max(speeds) > 0 else 1.0)
        ax.legend(loc="lower right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no pair with dates and valid pixels", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel("median speed over valid area (m/yr)")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Median speed per pair, {len(placed)} pairs, {_date_range(summary)}")
    _save_png(fig, path, dpi)
    log.info("wrote time-series figure %s", path)
    return path


def plot_pair_timeline(
    scenes: Sequence[Any],
    pairs: Sequence[Any],
    path_or_figure: str | os.PathLike[str] | Figure | None = None,
    *,
    selected: Sequence[Any] | None = None,
    max_cloud_cover: float | None = None,
    dpi: int = 120,
) -> Path | Figure:
    """Timeline of the scenes found and the pairs built from them.

    Parameters
    ----------
    scenes : sequence of Scene
        Every scene found (grey dots at their cloud cover, %).
    pairs : sequence of Pair
        The pairs, one bar each from the reference to the secondary acquisition, labelled
        with the pair id and baseline (days).
    path_or_figure : path-like, Figure or None
        A PNG file to write (its directory is created), a matplotlib Figure to draw into
        (cleared first), or None for a new Figure.
    selected : sequence of Scene, optional
        The scenes kept by discovery (blue dots); default the scenes used by the pairs.
    max_cloud_cover : float, optional
        Cloud cover limit (%) drawn as a dashed line.
    dpi : int
        Resolution of the PNG (dots per inch).

    Returns
    -------
    Path or Figure
        The PNG written, or the Figure drawn.

    Notes
    -----
    Two panels sharing the time axis (UTC): cloud cover of the scenes on top (a scene
    without ``eo:cloud_cover`` is drawn at 0 %), the pairs below in the given order.
    """
    if selected is None:
        used = {s.id: s for p in pairs for s in (p.reference, p.secondary)}
        selected = sorted(used.values(), key=lambda s: s.datetime)
    if isinstance(path_or_figure, Figure):
        fig = path_or_figure
        fig.clear()
    else:
        fig = Figure(figsize=(10, 2.5 + 0.25 * max(len(pairs), 4)), layout="constrained")
        FigureCanvasAgg(fig)
    ax_scenes, ax_pairs = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    ax_scenes.scatter([s.datetime for s in scenes], [s.cloud_cover or 0 for s in scenes], color="0.7", label="found")
    ax_scenes.scatter([s.datetime for s in selected], [s.cloud_cover or 0 for s in selected], color="tab:blue", label="selected")
    if max_cloud_cover is not None:
        ax_scenes.axhline(max_cloud_cover, color="tab:red", lw=0.8, ls="--", label="cloud limit")
    ax_scenes.set_ylabel("cloud cover (%)")
    ax_scenes.legend(loc="upper left", fontsize="small", ncols=3)
    if pairs:
        ax_pairs.hlines(range(len(pairs)), [p.reference.datetime for p in pairs], [p.secondary.datetime for p in pairs],
                        color="tab:blue", lw=4)
        ax_pairs.set_yticks(range(len(pairs)), [f"{p.id} ({p.dt_days:.0f} d)" for p in pairs], fontsize="small")
        ax_pairs.invert_yaxis()
    else:
        ax_pairs.set_yticks([])
        ax_pairs.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=ax_pairs.transAxes)
    locator = mdates.AutoDateLocator()
    ax_pairs.xaxis.set_major_locator(locator)
    ax_pairs.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax_pairs.set_xlabel("acquisition date (UTC)")
    ax_scenes.set_title(f"{len(scenes)} scenes found, {len(selected)} selected, {len(pairs)} pairs")
    if isinstance(path_or_figure, (str, os.PathLike)):
        path = Path(path_or_figure)
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_png(fig, path, dpi)
        log.info("wrote pair timeline %s", path)
        return path
    return fig
