"""Stable land from the Sentinel-2 scene classification (SCL): ground that cannot be ice.

Every Sentinel-2 L2A item has an ``scl`` asset (20 m) classifying each pixel. Without glacier
outlines, ground that does not move is land that is neither snow or ice, water, cloud, cloud
shadow nor missing, in both scenes of a pair. Debris-covered ice reads as bare ground (class 5)
and does move: the shift is taken from the tightest cluster of these points' displacements
(:mod:`.stable`), not from all of them. With outlines, the ground outside them is stable, and
the SCL only takes away its clouds, shadows and water, whose matches are not of the ground.

A grid point counts when the whole chip it is matched with (``chip_px`` square around it) lies
on such land: a chip reaching onto ice measures a blend of ice and rock, as with the outlines'
buffer (:data:`~glacier_velocity.correction.outlines.OUTLINE_BUFFER_M`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InvalidParameter

#: SCL classes of what hides the ground: no data (0), saturated or defective (1), cloud shadow
#: (3), cloud of medium and high probability (8, 9), thin cirrus (10). The correlation step
#: masks them from tracking with ``mask_clouds``.
CLOUD_SCL_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
#: SCL classes that are never ground to measure a shift on: those and water (6).
NOT_GROUND_SCL_CLASSES: tuple[int, ...] = (*CLOUD_SCL_CLASSES, 6)
#: Snow and ice (11): ice without outlines to say which; with them, snow on the rock outside.
SNOW_ICE_SCL_CLASS = 11
#: SCL classes that are not stable ground without outlines. The rest is land: dark areas and
#: topographic shadow (2), vegetation (4), not vegetated (5: rock, soil, moraine - and
#: debris-covered ice) and unclassified (7).
NOT_STABLE_SCL_CLASSES: tuple[int, ...] = (*NOT_GROUND_SCL_CLASSES, SNOW_ICE_SCL_CLASS)


def stable_land(reference_scl: np.ndarray, secondary_scl: np.ndarray, *, snow_and_ice: bool = False) -> np.ndarray:
    """Pixels that are land (not snow/ice, water, cloud, shadow or no data) in both scenes.

    Parameters
    ----------
    reference_scl, secondary_scl : ndarray of int, shape (rows, cols)
        Scene classification of each scene on the tracking grid (nearest-neighbour from 20 m).
    snow_and_ice : bool
        Count snow and ice (11) as land: when glacier outlines say where the ice is, the snow
        outside them lies on rock that does not move.

    Returns
    -------
    ndarray of bool
        True where both scenes show stable land.
    """
    if np.shape(reference_scl) != np.shape(secondary_scl):
        raise InvalidParameter(
            "scl", f"the scene classifications differ in shape: {np.shape(reference_scl)} and {np.shape(secondary_scl)}"
        )
    excluded = NOT_GROUND_SCL_CLASSES if snow_and_ice else NOT_STABLE_SCL_CLASSES
    return ~np.isin(reference_scl, excluded) & ~np.isin(secondary_scl, excluded)


def land_at_points(land: np.ndarray, rows: np.ndarray, cols: np.ndarray, chip_px: int) -> np.ndarray:
    """Grid points whose whole chip lies on stable land.

    Parameters
    ----------
    land : ndarray of bool, shape (image rows, image cols)
        Stable land on the tracking (reference image) grid, e.g. :func:`stable_land`.
    rows, cols : ndarray of float
        Pixel-centre coordinates of the grid points (px), as in
        :class:`~glacier_velocity.domain.offsets.OffsetField`.
    chip_px : int
        Side of the matched chip (px); land outside the image does not count.

    Returns
    -------
    ndarray of bool, shape (len(rows), len(cols))
    """
    land = np.asarray(land, dtype=bool)
    if land.ndim != 2:
        raise InvalidParameter("scl", f"the stable-land mask must be 2-D, got shape {land.shape}")
    whole_chip = ndimage.minimum_filter(land, size=max(int(chip_px), 1), mode="constant", cval=False)
    r = np.clip(np.rint(np.asarray(rows, dtype=np.float64)).astype(np.int64), 0, land.shape[0] - 1)
    c = np.clip(np.rint(np.asarray(cols, dtype=np.float64)).astype(np.int64), 0, land.shape[1] - 1)
    return whole_chip[np.ix_(r, c)]
