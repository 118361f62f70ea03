"""How much memory this process may still allocate, for checks made before a large allocation;
and how the C allocator hands it out.

A window read (:func:`~glacier_velocity.io.raster.read_window`) and a tracking engine
(:func:`~glacier_velocity.tracking.memory.bounded_search`) estimate what they need first and
refuse with both figures, instead of dying in NumPy's MemoryError (or being OOM-killed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource
from pathlib import Path

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


def gigabytes(nbytes: float) -> str:
    """``nbytes`` in GB with one decimal, as messages give memory (e.g. ``"10.8"``)."""
    return f"{nbytes / 1e9:.1f}"


#: glibc's ``mallopt`` parameters (malloc.h) and the values :func:`tune_allocator` sets: one
#: arena for every thread; arrays up to 32 MB (the most glibc allows) from the heap, whose
#: free memory is returned to the system only beyond 512 MB.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_ALLOCATOR_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 512 * 2**20))
#: The same settings as the environment variables glibc reads when a process starts (mallopt(3)),
#: for a process the command line does not start: the correlation notebook's kernel, whose own
#: threads exist before any cell runs. ``cwl/correlate.cwl`` sets them for its step (papermill
#: and the kernel it starts). A 5490 px track process whose threads started before it tracked, as a
#: kernel's do, took 9.6 s of CPU (1.9 s system) without any setting, 8.4 s (1.1 s) with these variables.
_ENVIRONMENT_NAMES = {
    _M_ARENA_MAX: "MALLOC_ARENA_MAX",
    _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_",
    _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
}
ALLOCATOR_ENVIRONMENT: dict[str, str] = {_ENVIRONMENT_NAMES[param]: str(value) for param, value in _ALLOCATOR_SETTINGS}


def tune_allocator() -> bool:
    """Make glibc's malloc reuse the memory of the tracking engine's temporaries.

    The engine makes and frees arrays of 10-30 MB for every strip of a full tile, in worker
    threads. By default each thread gets an arena of its own, which grows in heaps of at most
    64 MB and maps anything larger afresh, and the main arena returns freed memory beyond
    twice the last large block: the same memory is mapped, zeroed by the kernel and unmapped
    again for every strip. One arena, arrays up to 32 MB from the heap and a trim threshold of
    512 MB keep it: on a 10980 px pair (whole ``glacier-velocity track`` processes, 3 pairs of
    runs in turn) system time fell from 4.7 to 1.9 s, CPU time by 5 %, with the same peak
    memory (1.28 against 1.30 GiB).

    Call it before the process starts threads (the command line does, first thing): a thread
    that already has an arena keeps it. Elsewhere than glibc it does nothing.

    Returns
    -------
    bool
        Whether the settings were applied.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    applied = all(mallopt(param, value) == 1 for param, value in _ALLOCATOR_SETTINGS)
    if not applied:
        log.debug("the C library refused some malloc settings; its defaults stay")
    return applied


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim(0)``), between the
    tracking engine's passes.

    With :func:`tune_allocator`'s 512 MB trim threshold the heap keeps what a pass freed, and a
    pass whose strips are larger than the last one's (the last gradient pass reads 48 px more
    rows on each side for its 128 px chips) cannot reuse all of it: the heap grew past what
    was live. Trimming once a pass (a few ms), with the filter's row blocks
    (``tracking.filters._READ_BLOCK_ROWS``), brought a 10980 px tile's peak from 1.40 to 1.33 GB
    (medians of 4 runs in turn; benchmarks/README.md). Elsewhere than glibc it does nothing.

    Returns
    -------
    bool
        Whether memory was returned.
    """
    try:
        trim = _libc().malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


__all__ = ["ALLOCATOR_ENVIRONMENT", "available_memory_bytes", "gigabytes", "release_free_memory", "tune_allocator"]
