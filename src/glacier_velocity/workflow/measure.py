"""One pair's velocity from two images on one grid: track -> m/yr -> stable-ground correction.

The core that both entry points share: :func:`~glacier_velocity.workflow.correlate.correlate_pair`
(two STAC items, windowed COG reads over an area) and
:func:`~glacier_velocity.workflow.track_files.track_files` (two local GeoTIFFs). What is read,
and where the product is written, differs between them; what is measured does not.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..correction import correct_product, land_at_points
from ..domain.outlines import GlacierOutlines
from ..domain.velocity import VelocityProduct, offsets_to_velocity
from ..io.raster import Raster
from ..tracking import Engine, TrackingParams, track_offsets

log = logging.getLogger(__name__)


def measure_velocity(
    reference: Raster,
    secondary: Raster,
    dt_days: float,
    tracking: TrackingParams,
    outlines: GlacierOutlines | None = None,
    *,
    max_velocity_m_per_yr: float,
    engine: Engine = "ncc",
    stable_correction: bool = True,
    reference_mask: np.ndarray | None = None,
    secondary_mask: np.ndarray | None = None,
    stable_land: np.ndarray | None = None,
    progress: bool | None = None,
) -> VelocityProduct:
    """Measure the surface velocity between two images on the same grid.

    Parameters
    ----------
    reference, secondary : Raster
        The earlier and the later image on one grid (CRS, transform, shape); DN 0 is nodata.
    dt_days : float
        Baseline (days, fractional, > 0).
    tracking : TrackingParams
        Grid spacing, chip size, filter, thresholds and the search range (px) of
        ``max_velocity_m_per_yr`` over ``dt_days``, bounded before any pixel was read
        (:func:`~glacier_velocity.tracking.memory.speed_search`).
    outlines : GlacierOutlines, optional
        Glacier outlines: stable ground is the ground outside them. Without them it is the
        tightest cluster of displacements, on ``stable_land`` when given, and the product says
        how it was found.
    max_velocity_m_per_yr : float
        Fastest surface speed expected in the area (m/yr), recorded in the product so
        that the aggregation draws its summary on the same speed scale.
    engine : {"ncc", "autorift"}
        The tracker.
    stable_correction : bool
        Remove the pair's stable-ground shift from ``vx``, ``vy``, ``v`` and estimate their
        errors (default).
    reference_mask, secondary_mask : ndarray of bool, optional
        True where a pixel must not be used (cloud, shadow), besides DN 0.
    stable_land : ndarray of bool, optional
        On the images' grid: True on land that is neither water, cloud nor shadow in both scenes,
        nor snow/ice when no outlines are given (:func:`~glacier_velocity.correction.land.stable_land`
        of their SCL). Only grid points whose whole chip lies on it can be stable ground.
    progress : bool, optional
        Progress bar of the tracker; default only on a terminal.

    Returns
    -------
    VelocityProduct
        Velocity (m/yr), corrected for the stable-ground shift unless that was turned off;
        ``reference_id``/``secondary_id`` are the images' file names and ``sources`` their
        hrefs, for the caller to replace with what it knows (item ids, acquisition times).
    """
    log.info(
        "tracking %dx%d px, search %.2f px (%g m/yr over %.2f days at %g m)",
        *reference.shape,
        tracking.search_px,
        max_velocity_m_per_yr,
        dt_days,
        reference.pixel_size,
    )
    offsets = track_offsets(
        reference.array,
        secondary.array,
        tracking,
        engine=engine,
        reference_mask=reference_mask,
        secondary_mask=secondary_mask,
        progress=progress,
    )
    product = offsets_to_velocity(
        offsets,
        reference.transform,
        reference.crs,
        dt_days,
        reference_id=Path(reference.href).name,
        secondary_id=Path(secondary.href).name,
        sources={"reference": reference.href, "secondary": secondary.href},
    )
    product = replace(product, max_velocity_m_per_yr=max_velocity_m_per_yr)
    land = None
    if stable_land is not None:
        land = land_at_points(stable_land, offsets.rows, offsets.cols, tracking.chip_px)
        log.info("%d of %d grid points have their chip on stable land (scene classification)", land.sum(), land.size)
    return correct_product(
        product, offsets, reference.transform, stable_correction=stable_correction, glacier_outlines=outlines, land=land
    )
