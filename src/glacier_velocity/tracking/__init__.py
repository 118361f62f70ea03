"""Feature tracking: where did each patch of the reference image move to in the secondary?

Two engines share one interface and one result type (:class:`OffsetField`):

- ``"ncc"`` (default): this package's engine, normalized cross-correlation on a pyramid with
  iterative image deformation (:mod:`.ncc`).
- ``"autorift"``: NASA JPL's autoRIFT, used through an adapter when it is importable
  (:mod:`.autorift_adapter`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from ..domain.offsets import OffsetField
from ..errors import InvalidParameter, TrackingFailed
from .memory import bounded_search
from .params import FILTERS, TrackingParams, search_range_px

Engine = Literal["ncc", "autorift"]
ENGINES: tuple[str, ...] = ("ncc", "autorift")

#: How far (as a share of the search range) a displacement may exceed the search range and
#: still count: at the edge of the range a match is noise as often as motion. A point moving
#: farther than ``(1 + SEARCH_MARGIN) x search_px`` - faster than 1.2 x max_velocity_m_per_yr -
#: is invalid, whatever the engine returned.
SEARCH_MARGIN = 0.2

__all__ = [
    "ENGINES",
    "SEARCH_MARGIN",
    "FILTERS",
    "Engine",
    "TrackingParams",
    "bounded_search",
    "search_range_px",
    "track_offsets",
]


def track_offsets(
    reference: np.ndarray,
    secondary: np.ndarray,
    params: TrackingParams | None = None,
    *,
    engine: Engine = "ncc",
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
        Offsets (px) on a regular grid; NaN where no trustworthy match or where the
        displacement exceeds the search range by more than :data:`SEARCH_MARGIN`.

    Raises
    ------
    TrackingFailed
        No grid point has a trustworthy match (featureless images: fresh snow, saturation,
        uniform cloud), or an image holds no valid pixel.
    InvalidParameter
        Named ``search_px``: the engine would need more memory than is available. A search
        range wider than the image is capped at the image size first.
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
    # Before any allocation: a search wider than the image is capped, one that would not fit
    # in memory is refused (it was OOM-killed at 24 GB).
    params = bounded_search(params, reference.shape, engine)
    if engine == "ncc":
        from .ncc import track_ncc

        field = track_ncc(
            reference,
            secondary,
            params,
            reference_mask=reference_mask,
            secondary_mask=secondary_mask,
            progress=progress,
        )
    elif engine == "autorift":
        from .autorift_adapter import track_autorift

        field = track_autorift(
            reference,
            secondary,
            params,
            reference_mask=reference_mask,
            secondary_mask=secondary_mask,
            progress=progress,
        )
    else:
        raise InvalidParameter("engine", f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return _require_matches(_within_search(field, params.search_px), params)


def _within_search(field: OffsetField, search_px: float) -> OffsetField:
    """``field`` with displacements beyond the search range (plus the margin) set to NaN."""
    with np.errstate(invalid="ignore"):
        beyond = np.hypot(field.dx, field.dy) > (1.0 + SEARCH_MARGIN) * search_px
    if not beyond.any():
        return field
    return replace(
        field,
        dx=np.where(beyond, np.nan, field.dx).astype(np.float32),
        dy=np.where(beyond, np.nan, field.dy).astype(np.float32),
    )


def _require_matches(field: OffsetField, params: TrackingParams) -> OffsetField:
    if field.valid.any():
        return field
    raise TrackingFailed(
        f"nothing trackable: none of the {field.dx.size} grid points matched (correlation peak >= {params.min_peak:g}, "
        f"sharpness >= {params.min_snr:g}, within the search range of {params.search_px:.2f} px); the images share no "
        "texture there (fresh snow, saturation, uniform cloud) - choose other scenes or another season"
    )
