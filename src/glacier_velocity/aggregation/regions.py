"""Where the headline numbers and the time series of a summary are taken: never stable ground.

A summary's speed over "the whole grid" mixes stable rock (about 0 m/yr plus noise) with the
ice, so its median says nothing about the glacier. The summary's headline region is, in order
of preference:

1. ``glacier outlines``: grid cells whose centre lies inside the ``glacier_outlines``;
2. ``points of interest``: the grid cells holding the ``points_of_interest``;
3. ``moving ground``: without either, the cells whose median speed exceeds
   :data:`MOVING_SIGMA` times its error (significantly moving). That is flagged in the
   region's name, and it leans fast (slow ice within the noise is left out);
4. ``whole grid``: only when there are no errors either (products made with the correction
   off), flagged likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from ..domain.outlines import GlacierOutlines
from ..io.points import PointOfInterest

#: A cell counts as moving ground when its median speed exceeds this many 1-sigma errors.
MOVING_SIGMA = 3.0


@dataclass(frozen=True)
class PointCell:
    """A point of interest located on the summary grid.

    Attributes
    ----------
    point : PointOfInterest
    row, col : int
        The grid cell holding the point; ``-1`` when it lies off the grid.
    """

    point: PointOfInterest
    row: int
    col: int

    @property
    def on_grid(self) -> bool:
        return self.row >= 0 and self.col >= 0

    @property
    def name(self) -> str:
        return self.point.name


def locate_points(
    points: Sequence[PointOfInterest], transform: Affine, shape: tuple[int, int], crs: str
) -> tuple[PointCell, ...]:
    """The grid cell of each point (``-1, -1`` for a point off the grid)."""
    cells = []
    inverse = ~transform
    for point in points:
        x, y = point.in_crs(crs)
        col_f, row_f = inverse @ (x, y)
        row, col = int(np.floor(row_f)), int(np.floor(col_f))
        inside = 0 <= row < shape[0] and 0 <= col < shape[1]
        cells.append(PointCell(point, row if inside else -1, col if inside else -1))
    return tuple(cells)


@dataclass(frozen=True)
class Region:
    """The cells of a summary grid the headline numbers are taken over.

    Attributes
    ----------
    name : str
        What the cells are, as shown in messages and figures (see the module docstring).
    mask : ndarray of bool, shape (rows, cols)
        True on the region's cells.
    """

    name: str
    mask: np.ndarray

    @property
    def is_glacier(self) -> bool:
        """True when the region comes from outlines or points (not a fallback)."""
        return self.name in ("glacier outlines", "points of interest")


def given_region(
    transform: Affine,
    shape: tuple[int, int],
    crs: str,
    *,
    glacier_outlines: GlacierOutlines | None,
    points: Sequence[PointCell],
) -> Region | None:
    """The headline region the user gave (glacier outlines, else points on the grid), known
    before any speed is; None when the region is to come from the speeds (the fallbacks)."""
    if glacier_outlines is not None:
        return Region("glacier outlines", glacier_outlines.ice_mask(transform, shape, crs))
    on_grid = [p for p in points if p.on_grid]
    if on_grid:
        mask = np.zeros(shape, dtype=bool)
        for cell in on_grid:
            mask[cell.row, cell.col] = True
        return Region("points of interest", mask)
    return None


def headline_region(
    transform: Affine,
    shape: tuple[int, int],
    crs: str,
    *,
    glacier_outlines: GlacierOutlines | None,
    points: Sequence[PointCell],
    median_v: np.ndarray,
    v_error: np.ndarray,
) -> Region:
    """The summary's headline region (see the module docstring for the order)."""
    given = given_region(transform, shape, crs, glacier_outlines=glacier_outlines, points=points)
    if given is not None:
        return given
    with np.errstate(invalid="ignore"):
        moving = np.isfinite(v_error) & (median_v > MOVING_SIGMA * v_error)
    if np.isfinite(v_error).any():
        return Region(
            f"moving ground (speed above {MOVING_SIGMA:g} times its error; no glacier outlines given)", moving
        )
    return Region("whole grid (no glacier outlines and no errors: stable ground included)", np.ones(shape, dtype=bool))
