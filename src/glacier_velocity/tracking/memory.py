"""The search range's bounds: at most the image size, and no more memory than the machine has.

A search range follows from the maximum speed and the baseline, so a typo
(``--max-velocity-m-per-yr 1e6``) asked the engine for a 4380 px search on a 1000 px image:
9.8 GB of correlations, allocated before any check, and the process was OOM-killed. The range
is capped at the image size (no feature can move farther and stay in the image), and the
engine's memory is estimated from the range and the chip size before anything is allocated.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..domain.velocity import DAYS_PER_YEAR
from ..errors import InputError, InvalidParameter
from ..io.memory import available_memory_bytes, gigabytes
from .params import TrackingParams, search_range_px

log = logging.getLogger(__name__)


def memory_needed_bytes(shape: tuple[int, int], params: TrackingParams, engine: str) -> int | None:
    """The engine's estimate (bytes) for images of ``shape`` px; None when it makes none
    (autoRIFT sizes its own search in C++)."""
    if engine != "ncc":
        return None
    from .ncc import memory_needed_bytes as ncc_memory_needed_bytes

    return ncc_memory_needed_bytes(shape, params)


def search_reason(max_velocity_m_per_yr: float, dt_days: float, pixel_size_m: float) -> str:
    """Where a search range came from, for :func:`bounded_search`'s message."""
    return f"{max_velocity_m_per_yr:g} m/yr over {dt_days:.2f} days at {pixel_size_m:g} m pixels"


#: Smallest search range (px) derived from a speed that is tracked. Below one pixel every
#: match lies outside the search (the engines match whole pixels, then refine), so a pair
#: would fail as "nothing trackable" after its whole read: ``--max-velocity-m-per-yr 0.5`` over
#: 16 days at 10 m is 0.002 px.
MIN_SEARCH_PX = 1.0


def speed_search(
    params: TrackingParams,
    max_velocity_m_per_yr: float,
    dt_days: float,
    pixel_size_m: float,
    shape: tuple[int, int],
    engine: str,
    *,
    images_bytes: int = 0,
) -> TrackingParams:
    """``params`` with the search range of a speed, bounded; checked before any pixel is read.

    Parameters
    ----------
    params : TrackingParams
        Chip size, grid spacing and filter; its ``search_px`` is replaced.
    max_velocity_m_per_yr : float
        Fastest speed expected (m/yr).
    dt_days : float
        Baseline of the pair (days).
    pixel_size_m : float
        Pixel size of the images (m).
    shape : (int, int)
        Shape of the images that will be read (rows, cols; px).
    engine : str
        Tracking engine.
    images_bytes : int
        Memory (bytes) the two images take once read, counted with the engine's.

    Raises
    ------
    InvalidParameter
        ``max_velocity_m_per_yr``: the search range is below :data:`MIN_SEARCH_PX`, or the
        engine and the images would need more memory than is available (:func:`bounded_search`).
    """
    search = search_range_px(max_velocity_m_per_yr, dt_days, pixel_size_m)
    reason = search_reason(max_velocity_m_per_yr, dt_days, pixel_size_m)
    if search < MIN_SEARCH_PX:
        slowest = MIN_SEARCH_PX * pixel_size_m * DAYS_PER_YEAR / dt_days
        raise InvalidParameter(
            "max_velocity_m_per_yr",
            f"{reason} is a search range of {search:.3g} px, below one pixel: no displacement could be found "
            f"(the engines match whole pixels, then refine them); give the fastest speed really expected in the "
            f"area, at least {slowest:.3g} m/yr for this pair, or pair acquisitions further apart",
        )
    return bounded_search(replace(params, search_px=search), shape, engine, reason=reason, images_bytes=images_bytes)


def bounded_search(
    params: TrackingParams,
    shape: tuple[int, int],
    engine: str,
    *,
    reason: str | None = None,
    images_bytes: int = 0,
) -> TrackingParams:
    """``params`` with the search range capped at the image size, checked against the memory.

    Parameters
    ----------
    params : TrackingParams
        Chip size, grid spacing and the search range (px) asked for.
    shape : (int, int)
        Image shape (rows, cols; px).
    engine : str
        Tracking engine.
    reason : str, optional
        Where the search range came from (:func:`search_reason`, e.g. ``"1e+06 m/yr over
        16.00 days at 10 m pixels"``); the error then names ``max_velocity_m_per_yr``, the parameter
        the user set, instead of ``search_px``.
    images_bytes : int
        Memory (bytes) of the images themselves, held while the engine works; counted when
        the images are not read yet (a check before the read).

    Raises
    ------
    InputError
        The images alone would need more memory than is available (only a smaller area helps).
    InvalidParameter
        The engine and the images would need more memory than is available; the message
        gives both (GB).
    """
    capped = float(max(shape))
    if params.search_px > capped:
        log.warning(
            "search range %.1f px exceeds the %d x %d px image: capped at %.0f px", params.search_px, *shape, capped
        )
        params = replace(params, search_px=capped)
    engine_bytes = memory_needed_bytes(shape, params, engine)
    needed = (engine_bytes or 0) + images_bytes
    available = available_memory_bytes()
    if (engine_bytes is None and not images_bytes) or needed <= available:
        return params
    if images_bytes > available:
        # The images alone do not fit: no speed or chip size helps, only a smaller area.
        raise InputError(
            f"the two images of {shape[0]} x {shape[1]} px would need {gigabytes(images_bytes)} GB of memory before "
            f"any tracking, and {gigabytes(available)} GB is available; choose a smaller area (--aoi: a glacier's "
            "outline or bounding box, not a whole tile)"
        )
    what = f"{reason}, a search range of {params.search_px:.0f} px" if reason else f"{params.search_px:.0f} px"
    detail = (
        f"{what} on a {shape[0]} x {shape[1]} px image with chip_px = {params.chip_px} would need "
        f"{gigabytes(needed)} GB of memory, and {gigabytes(available)} GB is available; give the fastest "
        "speed really expected in the area, a smaller chip_px or a smaller area"
    )
    raise InvalidParameter("max_velocity_m_per_yr" if reason else "search_px", detail)


__all__ = [
    "MIN_SEARCH_PX",
    "available_memory_bytes",
    "bounded_search",
    "memory_needed_bytes",
    "search_reason",
    "speed_search",
]
