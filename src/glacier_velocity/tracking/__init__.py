"""Feature tracking: where did each patch of the reference image move to in the secondary?

Two engines share one interface and one result type (:class:`OffsetField`):

- ``"ncc"`` (default): this package's engine, normalized cross-correlation on a pyramid with
  iterative image deformation (:mod:`.ncc`).
- ``"autorift"``: NASA JPL's autoRIFT, used through an adapter when it is importable
  (:mod:`.autorift_adapter`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import InvalidParameter
from .offsets import OffsetField
from .params import FILTERS, TrackingParams, search_range_px

Engine = Literal["ncc", "autorift"]
ENGINES: tuple[str, ...] = ("ncc", "autorift")

__all__ = [
    "ENGINES",
    "FILTERS",
    "Engine",
    "OffsetField",
    "TrackingParams",
    "search_range_px",
    "track_offsets",
]


def track_offsets(
    reference: np.ndarray,
    secondary: np.ndarray,
    params: TrackingParams | None = None,
    *,
    engine: str = "ncc",
    reference_mask: np.ndarray | None = None,
    secondary_mask: np.ndarray | None = None,
    progress: bool | None = None,
) -> OffsetField:
    """Measure the displacement of reference features in the secondary image.

    Parameters
    ----------
    reference, secondary : ndarray, shape (rows, cols)
        Co-registered single-band images on the same grid (e.g. uint16 Sentinel-2 B08).
        Value 0 is nodata and never produces a match.
    params : TrackingParams, optional
        Grid spacing, chip size, search range (px), filter and quality thresholds.
    engine : {"ncc", "autorift"}
        Which engine to run.
    reference_mask, secondary_mask : ndarray of bool, shape (rows, cols), optional
        True where a pixel must not be used (cloud, shadow, ...), in addition to DN 0.
    progress : bool, optional
        Show a progress bar; by default only when stderr is a terminal.

    Returns
    -------
    OffsetField
        Offsets (px) on a regular grid; NaN where no trustworthy match.
    """
    params = params or TrackingParams()
    reference = np.asarray(reference)
    secondary = np.asarray(secondary)
    if reference.ndim != 2 or secondary.ndim != 2:
        raise InvalidParameter("images", "reference and secondary must be single-band 2-D arrays")
    if reference.shape != secondary.shape:
        raise InvalidParameter(
            "images",
            f"reference {reference.shape} and secondary {secondary.shape} differ in shape; "
            "bring the secondary onto the reference grid first",
        )
    for name, mask in (("reference_mask", reference_mask), ("secondary_mask", secondary_mask)):
        if mask is not None and np.shape(mask) != reference.shape:
            raise InvalidParameter(name, f"shape {np.shape(mask)} differs from the image shape {reference.shape}")
    if engine == "ncc":
        from .ncc import track_ncc

        return track_ncc(reference, secondary, params, reference_mask=reference_mask,
                         secondary_mask=secondary_mask, progress=progress)
    if engine == "autorift":
        from .autorift_adapter import track_autorift

        return track_autorift(reference, secondary, params, reference_mask=reference_mask,
                              secondary_mask=secondary_mask, progress=progress)
    raise InvalidParameter("engine", f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
