"""The result type shared by every tracking engine: displacements on a regular pixel grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OffsetField:
    """Displacement of reference-image features, measured on a regular grid of points.

    Pixel coordinates follow the pixel-centre convention: ``(row, col) = (0.0, 0.0)`` is the
    centre of the top-left pixel of the reference image, so the map position of grid point
    ``(i, j)`` is ``transform * (cols[j] + 0.5, rows[i] + 0.5)`` with the reference's affine
    transform.

    Attributes
    ----------
    rows, cols : ndarray, shape (n_rows,), (n_cols,)
        Reference-image pixel coordinates of the grid points (px), evenly spaced.
    dx, dy : ndarray of float32, shape (n_rows, n_cols)
        Displacement (px) of the reference feature centred on each grid point, to where it is
        found in the secondary image: ``dx`` along columns (+ towards increasing column, east for
        a north-up image), ``dy`` along rows (+ towards increasing row, i.e. *south* for a
        north-up image). NaN where no trustworthy match exists; never zero for "no data".
    peak : ndarray of float32, shape (n_rows, n_cols)
        Normalized cross-correlation at the match (-1..1); NaN where nothing was attempted.
    snr : ndarray of float32, shape (n_rows, n_cols)
        Peak sharpness: correlation peak over the RMS correlation 2 px away from it (>= 0).
    engine : str
        Name of the engine that produced the field.
    params : dict
        Every parameter that determined the result (for provenance tags).
    dx_error, dy_error : ndarray of float32, shape (n_rows, n_cols), or None
        1-sigma error (px) of ``dx`` and ``dy`` at each point, from the quality of its own match
        (NaN where ``dx`` is NaN); None when the engine does not estimate it.
    chip_px : ndarray of int16, shape (n_rows, n_cols), or None
        Side (px) of the chip each point was measured with, when the engine chooses it per
        point (0 where no match); None otherwise.
    """

    rows: np.ndarray
    cols: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    engine: str
    params: dict[str, Any] = field(default_factory=dict)
    dx_error: np.ndarray | None = None
    dy_error: np.ndarray | None = None
    chip_px: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(n_rows, n_cols)``."""
        return (len(self.rows), len(self.cols))

    @property
    def spacing_px(self) -> float:
        """Grid spacing (px); the same along rows and columns."""
        if len(self.cols) > 1:
            return float(self.cols[1] - self.cols[0])
        if len(self.rows) > 1:
            return float(self.rows[1] - self.rows[0])
        return float(self.params.get("grid_spacing_px", 1.0))

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of grid points with a displacement."""
        return np.isfinite(self.dx) & np.isfinite(self.dy)

    @property
    def valid_fraction(self) -> float:
        """Fraction of grid points with a displacement (0..1)."""
        return float(self.valid.mean()) if self.dx.size else 0.0
