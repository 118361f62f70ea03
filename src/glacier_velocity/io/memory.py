"""How much memory this process may still allocate, for checks made before a large allocation.

A window read (:func:`~glacier_velocity.io.raster.read_window`) and a tracking engine
(:func:`~glacier_velocity.tracking.memory.bounded_search`) estimate what they need first and
refuse with both figures, instead of dying in NumPy's MemoryError (or being OOM-killed).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

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


def gigabytes(nbytes: float) -> str:
    """``nbytes`` in GB with one decimal, as messages give memory (e.g. ``"10.8"``)."""
    return f"{nbytes / 1e9:.1f}"


__all__ = ["available_memory_bytes", "gigabytes"]
