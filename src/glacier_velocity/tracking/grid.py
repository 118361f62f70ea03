"""The regular grid of chips at which displacements are measured."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import TrackingFailed


@dataclass(frozen=True)
class ChipGrid:
    """Square chips of ``chip_px`` pixels whose top-left pixels lie on a regular grid.

    Chip ``(i, j)`` covers rows ``row_starts[i] .. row_starts[i] + chip_px - 1`` and the
    matching columns. Its centre, where its displacement is attributed, is at pixel-centre
    coordinate ``row_starts[i] + chip_px / 2 - 0.5`` (a pixel corner for even chips).
    """

    row_starts: np.ndarray
    col_starts: np.ndarray
    chip_px: int
    spacing_px: int

    @property
    def rows(self) -> np.ndarray:
        """Chip centres along rows (px, pixel-centre coordinates)."""
        return self.row_starts + (self.chip_px / 2.0 - 0.5)

    @property
    def cols(self) -> np.ndarray:
        """Chip centres along columns (px, pixel-centre coordinates)."""
        return self.col_starts + (self.chip_px / 2.0 - 0.5)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.row_starts), len(self.col_starts))


def make_grid(image_shape: tuple[int, int], chip_px: int, spacing_px: int) -> ChipGrid:
    """Chips every ``spacing_px`` pixels, starting at the top-left pixel, all inside the image.

    Raises
    ------
    TrackingFailed
        If the image is smaller than one chip.
    """
    n_rows = (image_shape[0] - chip_px) // spacing_px + 1
    n_cols = (image_shape[1] - chip_px) // spacing_px + 1
    if image_shape[0] < chip_px or image_shape[1] < chip_px:
        raise TrackingFailed(
            f"the image ({image_shape[0]} x {image_shape[1]} px) is smaller than one "
            f"{chip_px}-px chip; use a larger area or a smaller chip size"
        )
    return ChipGrid(
        row_starts=np.arange(n_rows) * spacing_px,
        col_starts=np.arange(n_cols) * spacing_px,
        chip_px=chip_px,
        spacing_px=spacing_px,
    )


def chip_fraction(mask: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray, chip_px: int) -> np.ndarray:
    """Fraction (0..1) of True pixels of ``mask`` in each chip with the given top-left pixels."""
    integral = cv2.integral(np.ascontiguousarray(mask, dtype=bool).view(np.uint8), sdepth=cv2.CV_32S)
    ya, xa = row_starts[:, None], col_starts[None, :]
    corners = (
        integral[ya + chip_px, xa + chip_px],
        integral[ya, xa + chip_px],
        integral[ya + chip_px, xa],
        integral[ya, xa],
    )
    a, b, c, d = (x.astype(np.int64) for x in corners)
    return (a - b - c + d) / float(chip_px * chip_px)
