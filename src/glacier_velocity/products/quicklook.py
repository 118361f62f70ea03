"""Quicklook PNG of one pair's velocity map: speed with a colour bar and flow arrows."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from ..io.atomic import atomic_output
from ..tracking.velocity import VelocityProduct
from .figures import colour_limit

if TYPE_CHECKING:
    from ..io.raster import Raster

log = logging.getLogger(__name__)


def _grid_extent(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of a north-up grid, for matplotlib's ``extent``."""
    rows, cols = shape
    left, top = transform.c, transform.f
    right, bottom = transform @ (cols, rows)
    return (left, right, bottom, top)


def _background_image(background: Raster | np.ndarray) -> tuple[np.ndarray, Affine | None]:
    if hasattr(background, "array"):
        return np.asarray(background.array), background.transform
    return np.asarray(background), None


def write_quicklook(
    product: VelocityProduct,
    path: str | os.PathLike[str],
    background: Raster | np.ndarray | None = None,
    *,
    max_arrows: int = 25,
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
    The colour scale runs from 0 to the 98th percentile of the valid speeds
    (:func:`~glacier_velocity.products.figures.colour_limit`); faster pixels saturate, and the colour bar says so.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    speed = np.asarray(product.v, dtype=np.float32)
    extent = _grid_extent(product.transform, product.shape)
    vmax = colour_limit(speed)

    fig = Figure(figsize=(8.0, 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if background is not None:
        image, bg_transform = _background_image(background)
        bg_extent = _grid_extent(bg_transform, image.shape) if bg_transform is not None else extent
        shown = np.where(image != 0, image, np.nan).astype(np.float32)
        finite = shown[np.isfinite(shown)]
        low, high = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
        ax.imshow(shown, cmap="gray", vmin=low, vmax=high if high > low else low + 1, extent=bg_extent,
                  interpolation="nearest")
    mesh = ax.imshow(
        np.ma.masked_invalid(speed),
        cmap="viridis",
        vmin=0.0,
        vmax=vmax,
        extent=extent,
        alpha=0.75 if background is not None else 1.0,
        interpolation="nearest",
    )
    finite_share = product.valid_fraction
    extend = "max" if np.nanmax(speed, initial=0.0) > vmax else "neither"
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.85, extend=extend)
    cbar.set_label("speed (m/yr); colour scale 0 to 98th percentile")

    rows, cols = product.shape
    step = max(1, math.ceil(max(rows, cols) / max_arrows))
    r_idx, c_idx = np.mgrid[step // 2 : rows : step, step // 2 : cols : step]
    vx = product.vx[r_idx, c_idx]
    vy = product.vy[r_idx, c_idx]
    ok = np.isfinite(vx) & np.isfinite(vy)
    if ok.any():
        x, y = product.transform @ (c_idx[ok] + 0.5, r_idx[ok] + 0.5)
        ax.quiver(x, y, vx[ok], vy[ok], color="white", edgecolor="black", linewidth=0.3,
                  angles="xy", pivot="middle", width=0.003)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(f"easting (m, {product.crs})" if not product.crs.startswith(("PROJCS", "PROJCRS")) else "easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(axis="x", labelrotation=30)
    ref = product.reference_datetime.strftime("%Y-%m-%d") if product.reference_datetime else product.reference_id
    sec = product.secondary_datetime.strftime("%Y-%m-%d") if product.secondary_datetime else product.secondary_id
    ax.set_title(
        f"Surface speed {ref} to {sec} (dt = {product.dt_days:.2f} days)\n"
        f"{finite_share * 100:.1f}% valid, median {np.nanmedian(speed) if finite_share else float('nan'):.1f} m/yr, "
        f"engine {product.engine or '?'}",
        fontsize=10,
    )
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    log.info("wrote quicklook %s", path)
    return path


__all__ = ["write_quicklook"]
