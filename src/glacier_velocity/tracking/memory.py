"""The search range's bounds: at most the image size, and no more memory than the machine has.

A search range follows from the maximum speed and the baseline, so a typo
(``--max-velocity-m-per-yr 1e6``) asked the engine for a 4380 px search on a 1000 px image:
9.8 GB of correlations, allocated before any check, and the process was OOM-killed. The range
is capped at the image size (no feature can move farther and stay in the image), and the
engine's memory is estimated from the range and the chip size before anything is allocated.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import replace
from pathlib import Path

from ..errors import InvalidParameter
from .params import TrackingParams

log = logging.getLogger(__name__)

#: cgroup v2 and v1 files holding a container's memory limit (Docker, Kubernetes, Slurm).
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def available_memory_bytes() -> int:
    """Memory (bytes) this process may still allocate: the least of the machine's available
    memory (``MemAvailable``), the container's cgroup limit and the address-space limit
    (``ulimit -v``)."""
    bounds: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                bounds.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    if not bounds:
        bounds.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file in _CGROUP_LIMITS:
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            bounds.append(int(text))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        bounds.append(soft)
    return min(bounds)


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


def bounded_search(
    params: TrackingParams, shape: tuple[int, int], engine: str, *, reason: str | None = None
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

    Raises
    ------
    InvalidParameter
        The engine would need more memory than is available; the message gives both (GB).
    """
    capped = float(max(shape))
    if params.search_px > capped:
        log.warning(
            "search range %.1f px exceeds the %d x %d px image: capped at %.0f px", params.search_px, *shape, capped
        )
        params = replace(params, search_px=capped)
    needed = memory_needed_bytes(shape, params, engine)
    available = available_memory_bytes()
    if needed is None or needed <= available:
        return params
    what = f"{reason}, a search range of {params.search_px:.0f} px" if reason else f"{params.search_px:.0f} px"
    detail = (
        f"{what} on a {shape[0]} x {shape[1]} px image with chip_px = {params.chip_px} would need "
        f"{needed / 1e9:.1f} GB of memory, and {available / 1e9:.1f} GB is available; give the fastest speed really "
        "expected in the area, a smaller chip_px or a smaller area"
    )
    raise InvalidParameter("max_velocity_m_per_yr" if reason else "search_px", detail)


__all__ = ["available_memory_bytes", "bounded_search", "memory_needed_bytes", "search_reason"]
