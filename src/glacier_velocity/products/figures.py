"""Figures of an aggregation: the summary maps and the per-pair time series.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through ``pyplot``: no display is needed and no global figure state is touched.

Colour scales are chosen to be honest and comparable: speed uses one logarithmic scale for
every map of a run (:class:`SpeedScale`: two decades up to the fastest speed tracked, so
100-300 m/yr ice sits mid-scale and stable-ground noise is dark, in the quicklooks drawn
pair by pair and in the summary alike), and one arrow length per speed; the spread starts at
zero and ends at the 98th percentile so that a few outliers do not wash out the glacier, with
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
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from shapely.geometry import MultiPolygon, Polygon

from ..aggregation.summary import Summary
from ..domain.outlines import GlacierOutlines
from ..errors import InvalidParameter
from ..io.atomic import atomic_output
from ..io.raster import pixel_centres

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
    """One pair in the time-series figure: its own dates, its speed and its 1-sigma error (m/yr).

    ``series`` names the curve: the summary's headline region (e.g. ``"glacier outlines"``)
    or a point of interest.
    """

    pair_id: str
    reference_datetime: datetime
    mid_datetime: datetime
    secondary_datetime: datetime
    median_v: float
    v_error: float = float("nan")
    series: str = ""


def time_series_points(summary: Summary) -> tuple[TimeSeriesPoint, ...]:
    """The pairs that can be placed on a time axis, each with its own dates.

    One curve over the summary's headline region (the glacier outlines, or the fallback named
    by :attr:`Summary.region_name`; never plain stable ground when outlines or points are
    given), with each pair's median speed there and the median of its ``v_error`` as the
    error bar; plus one curve per point of interest. Pairs without both dates or without a
    value are left out.
    """
    points = []
    curves: list[tuple[str, Any]] = []
    if summary.region is None or summary.region.name != "points of interest":
        curves.append((summary.region_name, lambda e: (e.region_median_v, e.region_v_error)))
    for index, cell in enumerate(summary.points):
        curves.append(
            (cell.name, lambda e, i=index: (e.point_v[i], e.point_v_error[i]) if e.point_v else (np.nan, np.nan))
        )
    for series, value in curves:
        for e in summary.entries:
            v, err = value(e)
            mid = e.mid_datetime  # None unless both dates are known
            if e.reference_datetime is None or e.secondary_datetime is None or mid is None or not np.isfinite(v):
                continue
            points.append(
                TimeSeriesPoint(
                    e.pair_id, e.reference_datetime, mid, e.secondary_datetime, float(v), float(err), series
                )
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


#: The speed colour scale spans this ratio: 10-1000 m/yr for a run tracked up to 1000 m/yr.
SPEED_RANGE_RATIO = 100.0
#: Arrows on a map: at most this many along each axis, the same on every map of a run.
MAX_ARROWS = 20
#: An arrow of ``vmax_m_per_yr / ARROW_SPEEDS_PER_STEP`` spans the distance between two arrows.
ARROW_SPEEDS_PER_STEP = 3.0


@dataclass(frozen=True)
class SpeedScale:
    """The one speed colour scale (and arrow length) of a run's maps, logarithmic up to ``vmax_m_per_yr``.

    Every quicklook of a run and its summary use the same scale, so a colour means the same
    speed in every map and maps can be compared side by side. A quicklook is drawn before
    the other pairs exist, so the scale comes from what every step knows: the fastest speed
    tracked. Logarithmic, since that bound is usually several times the glacier's speed: on
    a linear 0-1000 m/yr scale 100-300 m/yr ice filled the bottom third; on 10-1000 m/yr
    (log) it fills the middle, and stable-ground noise below 10 m/yr is the darkest colour.

    Attributes
    ----------
    vmax_m_per_yr : float
        Top of the colour scale (m/yr, > 0); the bottom is ``vmax_m_per_yr / SPEED_RANGE_RATIO``.
    basis : str
        Where the top came from, in words, shown on the colour bar: ``"fastest speed
        tracked"`` (the run's maximum speed: nothing valid lies above it) or ``"glacier
        speeds"`` (98th percentile of the speeds over the glacier, rounded up).
    """

    vmax_m_per_yr: float
    basis: str

    def __post_init__(self) -> None:
        if not (np.isfinite(self.vmax_m_per_yr) and self.vmax_m_per_yr > 0):
            raise InvalidParameter(
                "max_velocity_m_per_yr", f"the colour scale needs a positive speed in m/yr, got {self.vmax_m_per_yr!r}"
            )

    @property
    def vmin_m_per_yr(self) -> float:
        """Bottom of the colour scale (m/yr): slower cells, stable ground's noise, take its colour."""
        return self.vmax_m_per_yr / SPEED_RANGE_RATIO

    def norm(self) -> LogNorm:
        """The colour normalisation: logarithmic from :attr:`vmin_m_per_yr` to :attr:`vmax_m_per_yr`."""
        return LogNorm(vmin=self.vmin_m_per_yr, vmax=self.vmax_m_per_yr, clip=False)

    @property
    def arrow_m_per_yr(self) -> float:
        """Speed (m/yr) of an arrow as long as the distance between two arrows (:data:`MAX_ARROWS` per map width)."""
        return self.vmax_m_per_yr / ARROW_SPEEDS_PER_STEP

    @property
    def arrow_key_m_per_yr(self) -> float:
        """Speed of the arrow in the scale key (m/yr): the round number at or below :attr:`arrow_m_per_yr`."""
        return nice_floor(self.arrow_m_per_yr)

    @property
    def label(self) -> str:
        return f"speed (m/yr, logarithmic scale; top {self.vmax_m_per_yr:g} m/yr: {self.basis})"


def nice_ceiling(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 x 10^k that is >= ``value`` (> 0): a readable scale end."""
    exponent = np.floor(np.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = float(step * 10**exponent)
        if top >= value * (1 - 1e-12):
            return top
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def nice_floor(value: float) -> float:
    """Largest of 1, 2, 2.5, 5 x 10^k that is <= ``value`` (> 0): a readable key speed."""
    exponent = np.floor(np.log10(value))
    for step in (10.0, 5.0, 2.5, 2.0, 1.0):
        low = float(step * 10**exponent)
        if low <= value * (1 + 1e-12):
            return low
    return float(10 ** (exponent - 1) * 5)  # pragma: no cover - the loop always returns


def speed_scale(*, max_velocity_m_per_yr: float | None = None, glacier_speeds: np.ndarray | None = None) -> SpeedScale:
    """The run's speed scale: up to ``max_velocity_m_per_yr`` when known, else the glacier's speeds.

    Parameters
    ----------
    max_velocity_m_per_yr : float, optional
        The tracking parameter: the largest speed the search can find (m/yr). Known to every
        step of a run (each pair's quicklook is drawn before any other pair exists), so it
        is the scale every map shares.
    glacier_speeds : ndarray, optional
        Speeds over the glacier (m/yr); used without ``max_velocity_m_per_yr``: the
        98th percentile rounded up by :func:`nice_ceiling`.

    With neither, the scale tops at 1 m/yr (a map without any valid speed).

    >>> speed_scale(max_velocity_m_per_yr=1000.0).vmin_m_per_yr
    10.0
    >>> speed_scale(glacier_speeds=np.array([10.0, 180.0, 233.0])).vmax_m_per_yr
    250.0
    """
    if max_velocity_m_per_yr is not None and np.isfinite(max_velocity_m_per_yr):
        return SpeedScale(float(max_velocity_m_per_yr), "fastest speed tracked")
    if glacier_speeds is not None:
        finite = np.asarray(glacier_speeds, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size and np.percentile(finite, UPPER_PERCENTILE) > 0:
            return SpeedScale(nice_ceiling(float(np.percentile(finite, UPPER_PERCENTILE))), "glacier speeds")
    # Nothing to scale (no speed anywhere): any non-empty range draws the empty map.
    return SpeedScale(1.0, "no valid speed")


def speed_colorbar(fig: Figure, image: Any, ax: Any, scale: SpeedScale, values: np.ndarray, **kwargs: Any) -> Any:
    """The colour bar of a speed map: round speeds as ticks, arrows where values are clipped."""
    finite = values[np.isfinite(values)]
    high = bool(finite.size and finite.max() > scale.vmax_m_per_yr)
    low = bool(finite.size and finite.min() < scale.vmin_m_per_yr)
    extend = {(True, True): "both", (True, False): "max", (False, True): "min"}.get((high, low), "neither")
    bar = fig.colorbar(image, ax=ax, extend=extend, label=scale.label, **kwargs)
    ticks = [t for t in _round_speeds(scale.vmin_m_per_yr, scale.vmax_m_per_yr)]
    bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
    bar.ax.yaxis.set_minor_locator(mticker.NullLocator())
    return bar


def _round_speeds(low: float, high: float) -> list[float]:
    """1, 2, 5 x 10^k between ``low`` and ``high`` (both included): the log scale's ticks."""
    ticks = []
    for exponent in range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1):
        for step in (1.0, 2.0, 5.0):
            value = float(step * 10.0**exponent)
            if low * (1 - 1e-9) <= value <= high * (1 + 1e-9):
                ticks.append(value)
    return ticks


def draw_speed(ax: Any, speed: np.ndarray, extent: Any, scale: SpeedScale, **kwargs: Any) -> Any:
    """Speed on a map axis with the run's logarithmic scale; cells slower than its bottom take its colour."""
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=NO_DATA_COLOUR)
    shown = np.ma.masked_invalid(np.asarray(speed, dtype=np.float32))
    # Zero and slower cells have no logarithm: they show the bottom colour, like stable ground.
    shown = np.ma.maximum(shown, scale.vmin_m_per_yr)
    return ax.imshow(shown, cmap=cmap, norm=scale.norm(), extent=extent, interpolation="nearest", **kwargs)


def draw_outlines(ax: Any, outlines: GlacierOutlines | None, crs: str, *, km: bool = True) -> None:
    """Draw glacier outlines on a map axis in ``crs`` (coordinates in km when ``km``)."""
    if outlines is None:
        return
    geometry = outlines.in_crs(crs)
    scale = 1000.0 if km else 1.0
    # The outlines are areal (GlacierOutlines checks): one polygon or several.
    parts = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    for number, polygon in enumerate(parts):
        if not isinstance(polygon, Polygon):
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            x, y = np.asarray(ring.coords).T / scale
            ax.plot(x, y, color="black", linewidth=2.2, solid_joinstyle="round")
            ax.plot(
                x,
                y,
                color="white",
                linewidth=1.0,
                solid_joinstyle="round",
                label="glacier outlines" if number == 0 and ring is polygon.exterior else None,
            )


def draw_arrows(
    ax: Any, vx: np.ndarray, vy: np.ndarray, transform: Any, scale: SpeedScale, *, max_arrows: int = MAX_ARROWS
) -> None:
    """Flow arrows on a regular subsample of the grid, with a scale key, positions in km.

    Arrow length is fixed by ``scale``: an arrow of :attr:`SpeedScale.arrow_m_per_yr` spans
    ``1 / max_arrows`` of the axis width in every map of the run; the key, in a white box in
    the map's lower right corner (clear of the title), shows an arrow of
    :attr:`SpeedScale.arrow_key_m_per_yr`.
    """
    rows, cols = vx.shape
    step = max(1, int(np.ceil(max(rows, cols) / max_arrows)))
    r_idx, c_idx = np.mgrid[step // 2 : rows : step, step // 2 : cols : step]
    u, w = vx[r_idx, c_idx], vy[r_idx, c_idx]
    ok = np.isfinite(u) & np.isfinite(w)
    if not ok.any():
        return
    x, y = pixel_centres(transform, r_idx[ok], c_idx[ok])
    quiver = ax.quiver(
        np.asarray(x) / 1000,
        np.asarray(y) / 1000,
        u[ok],
        w[ok],
        color="white",
        edgecolor="black",
        linewidth=0.6,
        angles="xy",
        pivot="middle",
        width=0.006,
        headwidth=3.5,
        headlength=4.0,
        headaxislength=3.5,
        scale=scale.arrow_m_per_yr * max_arrows,
        scale_units="width",
        zorder=3,
    )
    ax.add_patch(
        Rectangle(
            (0.64, 0.015),
            0.345,
            0.085,
            transform=ax.transAxes,
            facecolor="white",
            edgecolor="0.4",
            linewidth=0.6,
            alpha=0.9,
            zorder=4,
        )
    )
    key = scale.arrow_key_m_per_yr
    ax.quiverkey(
        quiver,
        X=0.70,
        Y=0.0575,
        U=key,
        label=f"{key:g} m/yr",
        labelpos="E",
        coordinates="axes",
        color="black",
        fontproperties={"size": "small"},
        zorder=5,
    )


def _save_png(fig: Figure, path: Path, dpi: int) -> None:
    # A temporary name, then a rename: an interrupted run never leaves a half-drawn PNG.
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def axis_labels(crs: str) -> tuple[str, str]:
    epsg = CRS.from_user_input(crs).to_epsg()
    name = f"EPSG:{epsg}" if epsg else "projected CRS"
    return f"easting (km, {name})", f"northing (km, {name})"


def plot_summary(
    summary: Summary,
    path: str | os.PathLike[str],
    *,
    dpi: int = 120,
    scale: SpeedScale | None = None,
    outlines: GlacierOutlines | None = None,
) -> Path:
    """Three-panel figure: median speed, its spread (standard deviation) and the valid-map count.

    Parameters
    ----------
    summary : Summary
        Result of :func:`glacier_velocity.aggregation.summary.aggregate_products`.
    path : path-like
        Output PNG file; its directory is created if missing.
    dpi : int
        Resolution of the PNG (dots per inch).
    scale : SpeedScale, optional
        The run's speed scale, shared with its quicklooks; default from the pairs'
        ``max_velocity_m_per_yr`` (:attr:`Summary.max_velocity_m_per_yr`), else from the
        median speeds.
    outlines : GlacierOutlines, optional
        Drawn on top of every panel.

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    Speed (m/yr) uses ``viridis`` on the run's :class:`SpeedScale`, with flow arrows of the
    median velocity and an arrow key; spread
    (m/yr) ``magma`` from 0 to the 98th percentile of the standard deviation; the colour bars
    extend with an arrow when values are clipped. The count uses one colour per integer
    0..max. Axes are map coordinates in km of the summary's CRS; pixels without data are grey.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(summary_figure(summary, scale=scale, outlines=outlines), path, dpi)
    log.info("wrote summary figure %s", path)
    return path


def summary_figure(
    summary: Summary, *, scale: SpeedScale | None = None, outlines: GlacierOutlines | None = None
) -> Figure:
    """The figure of :func:`plot_summary`, not yet saved."""
    rows, cols = summary.shape
    west, south, east, north = array_bounds(rows, cols, summary.transform)
    # imshow assumes a north-up grid; array_bounds gives the right extent for it.
    extent = (west / 1000, east / 1000, south / 1000, north / 1000)
    xlabel, ylabel = axis_labels(summary.crs)

    fig = Figure(figsize=(15, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharex=True, sharey=True)

    if scale is None:
        scale = speed_scale(max_velocity_m_per_yr=summary.max_velocity_m_per_yr, glacier_speeds=summary.median_v)
    image = draw_speed(axes[0], summary.median_v, extent, scale)
    speed_colorbar(fig, image, axes[0], scale, summary.median_v, shrink=0.85)
    axes[0].set_title(f"median speed of {summary.product_count} pairs")
    draw_arrows(axes[0], summary.median_vx, summary.median_vy, summary.transform, scale)

    spread = summary.std_v
    top = colour_limit(spread)
    clipped = bool(np.nanmax(spread) > top) if np.isfinite(spread).any() else False
    cmap = matplotlib.colormaps["magma"].with_extremes(bad=NO_DATA_COLOUR)
    image = axes[1].imshow(spread, cmap=cmap, vmin=0.0, vmax=top, extent=extent, interpolation="nearest")
    fig.colorbar(
        image,
        ax=axes[1],
        shrink=0.85,
        extend="max" if clipped else "neither",
        label="standard deviation between pairs (m/yr)",
    )
    axes[1].set_title("spread of the speed between pairs")

    max_count = max(int(summary.count.max()), 1)
    base = matplotlib.colormaps["cividis"].resampled(max_count)
    colours = [NO_DATA_COLOUR] + [base(i) for i in range(max_count)]
    count_cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-0.5, max_count + 1.5, 1.0), count_cmap.N)
    image = axes[2].imshow(summary.count, cmap=count_cmap, norm=norm, extent=extent, interpolation="nearest")
    ticks = np.unique(np.linspace(0, max_count, min(max_count + 1, 11)).round().astype(int))
    fig.colorbar(image, ax=axes[2], shrink=0.85, ticks=ticks, label="pairs with a speed (0 = none, grey)")
    axes[2].set_title("number of pairs measuring each cell")

    for ax in axes:
        draw_outlines(ax, outlines, summary.crs)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel(xlabel)
        ax.set_aspect("equal")
        # Full kilometre coordinates, not an offset like "+7e3" that readers miss.
        ax.ticklabel_format(useOffset=False, style="plain")
    axes[0].set_ylabel(ylabel)
    excluded = f" ({len(summary.excluded)} left out, see the run report)" if summary.excluded else ""
    # Two lines: the run, then its headline (per year when it spans years), never one long line.
    fig.suptitle(
        f"Glacier surface velocity, {summary.product_count} pairs{excluded}, {_date_range(summary)}\n"
        f"{summary.headline()}"
    )
    return fig


class MonthYearFormatter(mticker.Formatter):
    """Month ticks labelled ``Jul``, with the year under the first tick of every year (``Jul\\n2022``),
    so that each year on the axis is named once, the first one included."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return mdates.num2date(x).strftime("%b %Y")

    def format_ticks(self, values: Any) -> list[str]:
        labels, seen = [], set()
        for value in values:
            when = mdates.num2date(value)
            labels.append(when.strftime("%b") if when.year in seen else when.strftime("%b\n%Y"))
            seen.add(when.year)
        return labels


def date_axis(ax: Any, start: datetime, end: datetime) -> None:
    """Month ticks on a time axis from ``start`` to ``end``, every year labelled (:class:`MonthYearFormatter`)."""
    months = max(1, (end.year - start.year) * 12 + end.month - start.month + 1)
    interval = next(n for n in (1, 2, 3, 4, 6, 12) if months / n <= 10) if months <= 120 else 12
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=range(1, 13, interval)))
    ax.xaxis.set_major_formatter(MonthYearFormatter())


def _draw_year_headlines(ax: Any, summary: Summary) -> float:
    """Each year's headline as a dashed line across that year's pairs, labelled; returns the top speed drawn."""
    top = 0.0
    for year in summary.years:
        pairs = [e for e in summary.entries if e.mid_datetime is not None and e.mid_datetime.year == year.year]
        if not pairs or not np.isfinite(year.headline_median_v):
            continue
        start = min(e.reference_datetime for e in pairs if e.reference_datetime is not None)
        end = max(e.secondary_datetime for e in pairs if e.secondary_datetime is not None)
        label = "median of the year over the same region" if top == 0.0 else None
        ax.hlines(
            year.headline_median_v, start, end, colors="0.3", linestyles="dashed", linewidth=1.0, zorder=1, label=label
        )
        ax.annotate(
            f"{year.year}: {year.headline_median_v:.1f} m/yr",
            (mdates.date2num(start), year.headline_median_v),
            xytext=(0, 4),
            textcoords="offset points",
            fontsize="small",
            color="0.2",
        )
        top = max(top, year.headline_median_v)
    return top


def plot_time_series(summary: Summary, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Speed of each pair against time over the glacier (and at each point of interest), with error bars.

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
    with a horizontal bar from the reference to the secondary date and a vertical 1-sigma
    error bar; y is the pair's median speed over the summary's headline region (m/yr; see
    :func:`time_series_points`), and one more curve per point of interest. Pairs without
    dates or without a value cannot be placed and are left out (and logged). When the pairs
    span years, each year's headline (:attr:`Summary.years`) is a dashed line across its
    pairs; the time axis names every year.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(time_series_figure(summary), path, dpi)
    log.info("wrote time-series figure %s", path)
    return path


def time_series_figure(summary: Summary) -> Figure:
    """The figure of :func:`plot_time_series`, not yet saved."""
    placed = time_series_points(summary)
    series = list(dict.fromkeys(p.series for p in placed))
    expected = len(summary.entries) * max(len(series), 1)
    if len(placed) < expected:
        log.warning(
            "time series: %d of %d pair values have no dates or no valid pixel and are not shown",
            expected - len(placed),
            expected,
        )

    fig = Figure(figsize=(8, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    if placed:
        colours = matplotlib.colormaps["tab10"]
        top = 0.0
        for number, name in enumerate(series):
            curve = [p for p in placed if p.series == name]
            speeds = np.array([p.median_v for p in curve])
            errors = np.array([p.v_error for p in curve])
            starts = mdates.date2num([p.reference_datetime for p in curve])
            ends = mdates.date2num([p.secondary_datetime for p in curve])
            mids = mdates.date2num([p.mid_datetime for p in curve])
            colour = colours(number % 10)
            ax.hlines(speeds, starts, ends, colors=[colour], linewidth=2, alpha=0.5)
            shown = np.where(np.isfinite(errors), errors, 0.0)
            ax.errorbar(mids, speeds, yerr=shown, fmt="o", color=colour, capsize=3, label=name)
            top = max(top, float(np.max(speeds + shown)))
        top = max(top, _draw_year_headlines(ax, summary))
        ax.xaxis_date()
        date_axis(ax, min(p.reference_datetime for p in placed), max(p.secondary_datetime for p in placed))
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
        ax.legend(
            loc="lower right",
            fontsize="small",
            title="bar: reference to secondary; error bar: 1 sigma",
            title_fontsize="x-small",
        )
    else:
        ax.text(0.5, 0.5, "no pair with dates and valid pixels", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel("median speed (m/yr)")
    ax.grid(True, alpha=0.3)
    pairs = len({p.pair_id for p in placed})
    ax.set_title(f"Speed per pair over {summary.region_name}, {pairs} pairs, {_date_range(summary)}", fontsize="medium")
    return fig


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
    ax_scenes.scatter(
        [s.datetime for s in selected], [s.cloud_cover or 0 for s in selected], color="tab:blue", label="selected"
    )
    if max_cloud_cover is not None:
        ax_scenes.axhline(max_cloud_cover, color="tab:red", lw=0.8, ls="--", label="cloud limit")
    ax_scenes.set_ylabel("cloud cover (%)")
    ax_scenes.legend(loc="upper left", fontsize="small", ncols=3)
    if pairs:
        ax_pairs.hlines(
            range(len(pairs)),
            [p.reference.datetime for p in pairs],
            [p.secondary.datetime for p in pairs],
            color="tab:blue",
            lw=4,
        )
        ax_pairs.set_yticks(range(len(pairs)), [f"{p.id} ({p.dt_days:.0f} d)" for p in pairs], fontsize="small")
        ax_pairs.invert_yaxis()
    else:
        ax_pairs.set_yticks([])
        ax_pairs.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=ax_pairs.transAxes)
    times = [s.datetime for s in scenes] + [t for p in pairs for t in (p.reference.datetime, p.secondary.datetime)]
    if times:
        date_axis(ax_pairs, min(times), max(times))
    ax_pairs.set_xlabel("acquisition date (UTC)")
    ax_scenes.set_title(f"{len(scenes)} scenes found, {len(selected)} selected, {len(pairs)} pairs")
    if isinstance(path_or_figure, (str, os.PathLike)):
        path = Path(path_or_figure)
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_png(fig, path, dpi)
        log.info("wrote pair timeline %s", path)
        return path
    return fig
