"""Track one pair of co-registered single-band GeoTIFFs into a velocity COG.

This is the tracker's own entry point (``glacier-velocity track``): no STAC, no AOI, just two
images already on the same grid and the time between them. What is measured is
:func:`~glacier_velocity.workflow.measure.measure_velocity`, as for a pair of STAC items.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct
from ..errors import InputError, InvalidParameter
from ..io.cog import write_velocity_cog
from ..io.raster import WindowPlan, plan_window, read_window
from ..tracking import Engine, TrackingParams
from ..tracking.memory import speed_search
from .measure import measure_velocity

log = logging.getLogger(__name__)


def check_same_grid(reference: WindowPlan, secondary: WindowPlan) -> None:
    """Raise :class:`InputError` unless both images share CRS, transform and shape."""
    problems = []
    if reference.crs != secondary.crs:
        problems.append(f"CRS {reference.crs} vs {secondary.crs}")
    if not reference.transform.almost_equals(secondary.transform, precision=1e-6):
        problems.append(f"transform {tuple(reference.transform)[:6]} vs {tuple(secondary.transform)[:6]}")
    if reference.shape != secondary.shape:
        problems.append(f"shape {reference.shape} vs {secondary.shape}")
    if problems:
        raise InputError(
            f"{reference.href!r} and {secondary.href!r} are not on the same grid ("
            + "; ".join(problems)
            + "); resample the secondary onto the reference grid, or use `glacier-velocity correlate`, "
            "which does it for STAC items"
        )


def track_files(
    reference_path: str | os.PathLike[str],
    secondary_path: str | os.PathLike[str],
    dt_days: float,
    out_path: str | os.PathLike[str],
    *,
    max_velocity_m_per_yr: float = 1000.0,
    params: TrackingParams | None = None,
    engine: Engine = "ncc",
    stable_correction: bool = True,
    glacier_outlines: GlacierOutlines | None = None,
    progress: bool | None = None,
) -> VelocityProduct:
    """Track a pair of GeoTIFFs and write the velocity COG.

    Parameters
    ----------
    reference_path, secondary_path : path-like
        Single-band GeoTIFFs on the same grid (CRS, transform, shape); DN 0 is nodata.
    dt_days : float
        Time from reference to secondary acquisition (days, fractional, > 0).
    out_path : path-like
        Velocity COG to write (bands ``vx``, ``vy``, ``v``, ``vx_error``, ``vy_error``,
        ``v_error`` m/yr, ``dx``, ``dy`` px, ``peak``, ``snr``). Nothing is written when an
        input is rejected.
    max_velocity_m_per_yr : float
        Fastest expected speed (m/yr); sets the search range with the baseline and pixel size.
    params : TrackingParams, optional
        Grid spacing, chip size and filter; its ``search_px`` is replaced by the one derived
        from ``max_velocity_m_per_yr``.
    engine : {"ncc", "autorift"}
        The tracker.
    stable_correction : bool
        Remove the pair's stable-ground shift from ``vx``, ``vy``, ``v`` and estimate their
        errors (default; :func:`glacier_velocity.correction.correct_product`).
    glacier_outlines : GlacierOutlines, optional
        Glacier outlines (:func:`~glacier_velocity.io.outlines.read_glacier_outlines`); without
        them stable ground is found automatically and the product says so.

    Returns
    -------
    VelocityProduct
        The product that was written.
    """
    if not (isinstance(dt_days, (int, float)) and math.isfinite(dt_days) and dt_days > 0):
        raise InvalidParameter("dt_days", f"the baseline must be a positive number of days, got {dt_days!r}")
    if not (math.isfinite(max_velocity_m_per_yr) and max_velocity_m_per_yr > 0):
        raise InvalidParameter(
            "max_velocity_m_per_yr", f"must be a positive speed in m/yr, got {max_velocity_m_per_yr!r}"
        )
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise InvalidParameter("out", f"the directory {str(out_path.parent)!r} does not exist")
    # Grids, search range and memory are checked from the headers, before any pixel is read.
    plans = [
        plan_window(str(path), label=role)
        for path, role in ((reference_path, "reference"), (secondary_path, "secondary"))
    ]
    for plan in plans:
        if plan.bands != 1:
            log.warning("%s has %d bands; using band 1", plan.href, plan.bands)
    check_same_grid(*plans)
    tracking = speed_search(
        params or TrackingParams(),
        max_velocity_m_per_yr,
        dt_days,
        plans[0].pixel_size,
        plans[0].shape,
        engine,
        images_bytes=plans[0].nbytes + plans[1].nbytes,
    )
    # Both files at once: decoding a full tile takes seconds, and GDAL reads without the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference, secondary = pool.map(
            lambda plan, role: read_window(plan.href, label=role), plans, ("reference", "secondary")
        )
    product = replace(
        measure_velocity(
            reference,
            secondary,
            dt_days,
            tracking,
            glacier_outlines,
            max_velocity_m_per_yr=max_velocity_m_per_yr,
            engine=engine,
            stable_correction=stable_correction,
            progress=progress,
        ),
        sources={"reference": str(Path(reference.href).resolve()), "secondary": str(Path(secondary.href).resolve())},
    )
    write_velocity_cog(product, out_path)
    return product
