"""Figures of one pair: the quicklook PNG of its velocity map (speed with a colour bar and flow
arrows) and the notebook's view of the two images that were tracked."""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from ..aggregation.regions import headline_region
from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct
from ..io.atomic import atomic_output
from ..io.raster import Raster
from .figures import (
    MAX_ARROWS,
    SpeedScale,
    axis_labels,
    draw_arrows,
    draw_outlines,
    draw_speed,
    speed_colorbar,
    speed_scale,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def _grid_extent_km(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of a north-up grid in km, for matplotlib's ``extent``."""
    rows, cols = shape
    left, top = transform.c, transform.f
    right, bottom = transform @ (cols, rows)
    return (left / 1000, right / 1000, bottom / 1000, top / 1000)


def _background_image(background: Raster | np.ndarray) -> tuple[np.ndarray, Affine | None]:
    if isinstance(background, Raster):
        return np.asarray(background.array), background.transform
    return np.asarray(background), None


def write_quicklook(
    product: VelocityProduct,
    path: str | os.PathLike[str],
    background: Raster | np.ndarray | None = None,
    *,
    scale: SpeedScale | None = None,
    outlines: GlacierOutlines | None = None,
    max_arrows: int = MAX_ARROWS,
    dpi: int = 110,
) -> Path:
    """Quicklook PNG: speed (m/yr) with a colour bar and flow arrows over the reference image.

    Parameters
    ----------
    product : VelocityProduct
        The velocity map.
    path : path-like
        Output PNG, written atomically.
    background : Raster or ndarray, optional
        Reference image shown in grey under the speed (a :class:`~glacier_velocity.io.raster.Raster`
        is placed by its transform; a bare array is stretched over the product's extent).
        DN 0 is treated as nodata.
    scale : SpeedScale, optional
        The run's speed colour and arrow scale, the same for every map of the run; default
        from the product's ``max_velocity_m_per_yr``, else its own speeds.
    outlines : GlacierOutlines, optional
        Glacier outlines, drawn on top.
    max_arrows : int
        Largest number of arrows along each axis; arrows are drawn only at valid points.
    dpi : int
        Resolution of the PNG (dots per inch).

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    The colour scale is the run's logarithmic :class:`~glacier_velocity.products.figures.SpeedScale`
    (faster and slower pixels saturate, and the colour bar says so); arrows have the run's
    length per speed and a key in the lower right corner. The title gives the pair's median
    speed over the run's kind of headline region (:func:`pair_headline`). Axes are map
    coordinates in km, as in the summary figure.
    """
    path = Path(path)
    fig = quicklook_figure(product, background, scale=scale, outlines=outlines, max_arrows=max_arrows)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    log.info("wrote quicklook %s", path)
    return path


def quicklook_figure(
    product: VelocityProduct,
    background: Raster | np.ndarray | None = None,
    *,
    scale: SpeedScale | None = None,
    outlines: GlacierOutlines | None = None,
    max_arrows: int = MAX_ARROWS,
) -> Figure:
    """The figure of :func:`write_quicklook`, not yet saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    speed = np.asarray(product.v, dtype=np.float32)
    extent = _grid_extent_km(product.transform, product.shape)
    if scale is None:
        scale = speed_scale(max_velocity_m_per_yr=product.max_velocity_m_per_yr, glacier_speeds=speed)

    fig = Figure(figsize=(8.0, 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if background is not None:
        image, bg_transform = _background_image(background)
        bg_extent = _grid_extent_km(bg_transform, image.shape) if bg_transform is not None else extent
        shown = np.where(image != 0, image, np.nan).astype(np.float32)
        finite = shown[np.isfinite(shown)]
        low, high = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
        ax.imshow(
            shown,
            cmap="gray",
            vmin=low,
            vmax=high if high > low else low + 1,
            extent=bg_extent,
            interpolation="nearest",
        )
    mesh = draw_speed(ax, speed, extent, scale, alpha=0.75 if background is not None else 1.0)
    speed_colorbar(fig, mesh, ax, scale, speed, shrink=0.85)
    draw_arrows(ax, product.vx, product.vy, product.transform, scale, max_arrows=max_arrows)
    draw_outlines(ax, outlines, product.crs)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    xlabel, ylabel = axis_labels(product.crs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(axis="x", labelrotation=30)
    ref = product.reference_datetime.strftime("%Y-%m-%d") if product.reference_datetime else product.reference_id
    sec = product.secondary_datetime.strftime("%Y-%m-%d") if product.secondary_datetime else product.secondary_id
    ax.set_title(
        f"Surface speed {ref} to {sec} ({product.dt_days:.1f} days apart)\n{pair_headline(product, outlines)}; "
        f"{product.valid_fraction * 100:.0f} % of the map measured, tracked with {product.engine or 'an unknown engine'}",
        fontsize=10,
    )
    return fig


def pair_headline(product: VelocityProduct, outlines: GlacierOutlines | None) -> str:
    """The pair's median speed over the same kind of region as the run's headline.

    Over the glacier outlines when given, else the region :func:`~glacier_velocity.aggregation.regions.headline_region`
    falls back to (moving ground, or the whole grid without errors), named in the text:
    e.g. ``"median 243.1 m/yr over glacier outlines (459 cells)"``.
    """
    region = headline_region(
        product.transform,
        product.shape,
        product.crs,
        glacier_outlines=outlines,
        points=(),
        median_v=product.v,
        # None only before __post_init__ fills it: a product without errors has NaN ones.
        v_error=product.v_error if product.v_error is not None else np.full(product.shape, np.nan),
    )
    values = product.v[region.mask & np.isfinite(product.v)]
    median = float(np.median(values)) if values.size else float("nan")
    return f"median {median:.1f} m/yr over {region.name} ({values.size} cells)"


def scene_pair_png(
    reference: Raster,
    secondary: Raster,
    titles: tuple[str, str],
    *,
    max_side_px: int = 320,
    dpi: int = 80,
) -> bytes:
    """PNG of the two images of a pair side by side, for the correlation notebook.

    Parameters
    ----------
    reference, secondary : Raster
        The images as tracked (B08 DN on the reference grid; DN 0 is nodata, shown blank).
    titles : (str, str)
        Title of each panel (scene id and acquisition time).
    max_side_px : int
        Each image is subsampled by a whole stride so that its longer side is at most this
        many pixels: the figure shows the scenes, it is not a product, and drawing and
        embedding full-resolution images cost more than the tracking of a small area.
    dpi : int
        Resolution of the PNG (dots per inch; the figure is 9 x 4.5 in).

    Returns
    -------
    bytes
        The PNG, e.g. for ``IPython.display.Image(data=...)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.5))
    FigureCanvasAgg(fig)
    # Fixed margins instead of a layout engine: the panels never change shape.
    fig.subplots_adjust(left=0.06, right=0.94, bottom=0.06, top=0.86, wspace=0.3)
    for index, (raster, title) in enumerate(zip((reference, secondary), titles, strict=True)):
        stride = max(1, math.ceil(max(raster.shape) / max_side_px))
        image = np.asarray(raster.array[::stride, ::stride], dtype=np.float32)
        image[image == 0] = np.nan
        finite = image[np.isfinite(image)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        ax = fig.add_subplot(1, 2, index + 1)
        shown = ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(shown, ax=ax, shrink=0.8, label="B08 DN")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


__all__ = ["pair_headline", "quicklook_figure", "scene_pair_png", "write_quicklook"]
