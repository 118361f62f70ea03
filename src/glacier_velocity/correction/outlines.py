"""Glacier outlines on the tracking grid: which grid points lie on (or next to) ice.

The outlines (a :class:`~glacier_velocity.domain.outlines.GlacierOutlines`, read at the edge) are
reprojected to the grid's CRS, grown by a buffer in metres, and burnt into a boolean mask at the
grid points: a point is ice when its position, the centre of its velocity-grid cell, lies
inside a buffered outline (``GlacierOutlines.ice_mask`` does it).
"""

from __future__ import annotations

import logging

import numpy as np
from affine import Affine

from ..domain.crs import parse_crs
from ..domain.outlines import GlacierOutlines
from ..errors import InvalidParameter

log = logging.getLogger(__name__)

#: Default growth of the outlines (m) before points count as stable ground: half a 32-px
#: Sentinel-2 chip (160 m), so a stable chip holds no ice, plus 40 m for outline error.
OUTLINE_BUFFER_M = 200.0


def ice_mask_from_outlines(
    glacier_outlines: GlacierOutlines,
    grid_transform: Affine,
    grid_shape: tuple[int, int],
    grid_crs: str,
    *,
    outline_buffer_m: float = OUTLINE_BUFFER_M,
) -> np.ndarray:
    """Mark the grid points that lie inside the (buffered) glacier outlines.

    Parameters
    ----------
    glacier_outlines : GlacierOutlines
        Glacier outlines, in their own CRS; :meth:`GlacierOutlines.empty` outlines (no glacier
        in the area) mark no point.
    grid_transform : Affine
        Transform of the velocity grid, whose cell centres are the measurement positions
        (:func:`glacier_velocity.domain.velocity.grid_transform`).
    grid_shape : (int, int)
        ``(rows, cols)`` of the velocity grid.
    grid_crs : str
        CRS of the grid; must be projected with metre units (UTM for Sentinel-2).
    outline_buffer_m : float
        Distance (m, >= 0) by which the outlines grow before the mask is burnt.

    Returns
    -------
    ndarray of bool, shape grid_shape
        True on (buffered) ice.
    """
    if not (isinstance(outline_buffer_m, (int, float)) and np.isfinite(outline_buffer_m) and outline_buffer_m >= 0):
        raise InvalidParameter("outline_buffer", f"must be a distance in metres >= 0, got {outline_buffer_m!r}")
    target = parse_crs(grid_crs, "crs")
    if not target.is_projected or (target.linear_units or "").lower() not in ("metre", "meter", "m"):
        raise InvalidParameter("crs", f"the tracking grid must be in a projected CRS in metres (UTM), got {grid_crs!r}")
    if glacier_outlines.is_empty:
        log.info("no glacier in the area (%s): every point counts as stable ground", glacier_outlines.source)
    # One rasterisation for every use of the outlines (io.outlines).
    mask = glacier_outlines.ice_mask(grid_transform, grid_shape, grid_crs, buffer_m=float(outline_buffer_m))
    log.info(
        "glacier outlines cover %d of %d grid points (buffer %.0f m)", int(mask.sum()), mask.size, outline_buffer_m
    )
    return mask
