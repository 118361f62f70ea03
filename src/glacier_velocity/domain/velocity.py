"""From pixel offsets to surface velocity in m/yr, on a georeferenced grid.

Conventions (the same as ITS_LIVE / autoRIFT products):

- ``vx`` is the east component and ``vy`` the north component of velocity, ``v`` the
  magnitude, all in metres per year (1 yr = 365.25 days), float32, NaN where unknown.
- Image rows increase southwards for a north-up image, so a positive row offset is a
  *negative* north velocity. The conversion goes through the affine transform rather than
  flipping a sign by hand, so rotated or south-up grids are right too.
- The baseline is the exact time between acquisitions in fractional days
  (seconds / 86400); it is never rounded to whole days.
- Each output pixel centre is the map position of the grid point at which the displacement of
  the reference-image feature was measured (see :func:`grid_transform`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from affine import Affine

from ..errors import InvalidParameter
from .offsets import OffsetField

#: Length of the year in every m/yr of the package (days): the Julian year, as ITS_LIVE.
DAYS_PER_YEAR = 365.25

#: Band order of a velocity product, with units; every band is float32, NaN = nodata.
VELOCITY_BANDS: tuple[tuple[str, str], ...] = (
    ("vx", "m/yr"),
    ("vy", "m/yr"),
    ("v", "m/yr"),
    ("vx_error", "m/yr"),
    ("vy_error", "m/yr"),
    ("v_error", "m/yr"),
    ("dx", "px"),
    ("dy", "px"),
    ("peak", "1"),
    ("snr", "1"),
)


#: Long name of each band (CF ``long_name``; STAC band ``description``).
BAND_DESCRIPTIONS: dict[str, str] = {
    "vx": "velocity east component",
    "vy": "velocity north component",
    "v": "speed (velocity magnitude)",
    "vx_error": "1-sigma error of the east velocity: each match's quality, at the level of the stable-ground NMAD",
    "vy_error": "1-sigma error of the north velocity: each match's quality, at the level of the stable-ground NMAD",
    "v_error": "1-sigma error of the speed, propagated from vx_error and vy_error",
    "dx": "offset along image columns (+ east for north-up grids)",
    "dy": "offset along image rows (+ down, i.e. south for north-up grids)",
    "peak": "normalized cross-correlation at the match (-1..1)",
    "snr": "correlation peak sharpness (peak over RMS correlation 2 px away)",
}

#: CF ``standard_name`` of the bands that have one (the same in the datacube); the errors use
#: the CF ``standard_error`` modifier. The speed has none: the CF standard-name table names
#: the ice velocity's components only, so ``v`` and ``v_error`` carry a ``long_name`` alone.
CF_STANDARD_NAMES: dict[str, str] = {
    "vx": "land_ice_surface_x_velocity",
    "vy": "land_ice_surface_y_velocity",
    "vx_error": "land_ice_surface_x_velocity standard_error",
    "vy_error": "land_ice_surface_y_velocity standard_error",
}


def baseline_days(reference_time: datetime, secondary_time: datetime) -> float:
    """Time from the reference to the secondary acquisition, in fractional days.

    Both datetimes must be timezone-aware or both naive. The result is
    ``(secondary - reference).total_seconds() / 86400``: never truncated to whole days.

    >>> from datetime import datetime, timezone
    >>> baseline_days(datetime(2020, 9, 22, 5, 0, tzinfo=timezone.utc),
    ...               datetime(2020, 10, 2, 17, 0, tzinfo=timezone.utc))
    10.5
    """
    return (secondary_time - reference_time).total_seconds() / 86400.0


def displacement_to_velocity(
    dx_px: np.ndarray | float, dy_px: np.ndarray | float, reference_transform: Affine, dt_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel displacement to east and north velocity (m/yr, float64), through the affine.

    ``(vx, vy) = A (dx, dy) * 365.25 / dt_days`` with ``A`` the linear part of the reference
    transform. For a north-up grid ``e < 0``, so a feature moving down the rows (``dy > 0``)
    moves south (``vy < 0``).
    """
    a, b, d, e = reference_transform.a, reference_transform.b, reference_transform.d, reference_transform.e
    per_year = DAYS_PER_YEAR / dt_days
    dx = np.asarray(dx_px, dtype=np.float64)
    dy = np.asarray(dy_px, dtype=np.float64)
    return (a * dx + b * dy) * per_year, (d * dx + e * dy) * per_year


def grid_transform(reference_transform: Affine, rows: np.ndarray, cols: np.ndarray) -> Affine:
    """Affine transform of the velocity grid.

    Output pixel ``(i, j)`` is centred exactly on the map position of grid point
    ``(rows[i], cols[j])`` (reference pixel-centre coordinates), and is ``spacing`` reference
    pixels wide.
    """
    if len(rows) == 0 or len(cols) == 0:
        raise InvalidParameter("grid", "the tracking grid is empty; the images are smaller than one chip")
    spacing = float(cols[1] - cols[0]) if len(cols) > 1 else float(rows[1] - rows[0]) if len(rows) > 1 else 1.0
    # Pixel-centre coordinate c maps to pixel-edge coordinate c + 0.5; the output pixel's
    # upper-left corner lies half an output pixel before the grid point.
    col0 = float(cols[0]) + 0.5 - spacing / 2.0
    row0 = float(rows[0]) + 0.5 - spacing / 2.0
    return reference_transform @ Affine.translation(col0, row0) @ Affine.scale(spacing)


@dataclass(frozen=True)
class VelocityProduct:
    """A velocity map from one image pair, with its quality layers and provenance.

    Attributes
    ----------
    vx, vy, v : ndarray of float32, shape (rows, cols)
        East and north velocity and speed (m/yr). NaN where no valid match.
    dx, dy : ndarray of float32, shape (rows, cols)
        Offsets (px of the reference image): along columns and along rows (+ down).
    peak, snr : ndarray of float32, shape (rows, cols)
        Correlation peak (-1..1) and peak sharpness (see :class:`OffsetField`).
    transform : Affine
        Transform of the velocity grid; pixel centres are the measurement positions.
    crs : str
        Coordinate reference system (``EPSG:xxxx`` or WKT).
    dt_days : float
        Baseline (days, fractional).
    reference_id, secondary_id : str
        Identifiers of the two scenes (STAC item ids or file names).
    reference_datetime, secondary_datetime : datetime or None
        Acquisition times, when known.
    engine : str
        Tracking engine name; ``engine_params`` its settings (chip, grid spacing, search range
        in px, filter).
    max_velocity_m_per_yr : float or None
        Fastest surface speed the pair was tracked for (m/yr): with the baseline it set the
        search range; the maps' colour scale of the run. None when not recorded (a product
        tracked with a search range given in px).
    sources : dict
        Where the inputs came from (item hrefs or file paths), for provenance.
    vx_error, vy_error, v_error : ndarray of float32, shape (rows, cols)
        1-sigma errors of ``vx``, ``vy``, ``v`` (m/yr): each point's match quality at the level
        of the stable-ground scatter (:mod:`glacier_velocity.correction.uncertainty`); all NaN
        when not estimated (None on input).
    correction : dict
        The stable-ground correction applied to ``vx``, ``vy``, ``v`` (``dx``, ``dy`` stay raw):
        ``StableShift.as_properties()`` (``stable_shift_dx_px``, ``stable_shift_method``, ...);
        empty when the product has not been through the correction stage.
    """

    vx: np.ndarray
    vy: np.ndarray
    v: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    transform: Affine
    crs: str
    dt_days: float
    reference_id: str
    secondary_id: str
    reference_datetime: datetime | None = None
    secondary_datetime: datetime | None = None
    engine: str = ""
    engine_params: dict[str, Any] = field(default_factory=dict)
    max_velocity_m_per_yr: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    vx_error: np.ndarray | None = None
    vy_error: np.ndarray | None = None
    v_error: np.ndarray | None = None
    correction: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("vx_error", "vy_error", "v_error"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(np.shape(self.v), np.nan, dtype=np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        return self.v.shape

    @property
    def valid_fraction(self) -> float:
        """Fraction of grid points with a velocity (0..1)."""
        return float(np.isfinite(self.v).mean()) if self.v.size else 0.0

    @property
    def date_center(self) -> datetime | None:
        """Mid-time of the two acquisitions (ITS_LIVE's ``date_center``); None when either is unknown."""
        if self.reference_datetime is None or self.secondary_datetime is None:
            return None
        return self.reference_datetime + (self.secondary_datetime - self.reference_datetime) / 2

    def band(self, name: str) -> np.ndarray:
        """Array of one band by its name in :data:`VELOCITY_BANDS`."""
        if name not in dict(VELOCITY_BANDS):
            raise KeyError(f"unknown band {name!r}; bands are {[b for b, _ in VELOCITY_BANDS]}")
        return getattr(self, name)

    def masked(self, outside: np.ndarray) -> VelocityProduct:
        """A copy with every band NaN where ``outside`` is True (bool, the grid's shape).

        Used to keep only the points inside the area of interest; the stable-ground correction
        recorded in ``correction`` stays as it was measured.
        """
        outside = np.asarray(outside, dtype=bool)
        if outside.shape != self.shape:
            raise ValueError(f"mask shape {outside.shape} is not the grid's {self.shape}")
        bands: dict[str, Any] = {
            name: np.where(outside, np.nan, getattr(self, name)).astype(np.float32) for name, _ in VELOCITY_BANDS
        }
        return replace(self, **bands)


def offsets_to_velocity(
    offsets: OffsetField,
    reference_transform: Affine,
    crs: str,
    dt_days: float,
    *,
    reference_id: str,
    secondary_id: str,
    reference_datetime: datetime | None = None,
    secondary_datetime: datetime | None = None,
    sources: dict[str, str] | None = None,
) -> VelocityProduct:
    """Convert a pixel offset field into a georeferenced velocity product.

    Parameters
    ----------
    offsets : OffsetField
        Offsets (px) on the reference grid; ``dy`` positive down the rows.
    reference_transform : Affine
        Affine transform of the reference image (map units per pixel, metres for UTM).
    crs : str
        CRS of the reference image.
    dt_days : float
        Baseline (days), positive; fractional days are kept as they are.

    Returns
    -------
    VelocityProduct
        ``vx`` east and ``vy`` north (m/yr), ``v`` their magnitude.
    """
    if not np.isfinite(dt_days) or dt_days <= 0:
        raise InvalidParameter("dt_days", f"the baseline must be a positive number of days, got {dt_days}")
    east, north = displacement_to_velocity(offsets.dx, offsets.dy, reference_transform, dt_days)
    vx = east.astype(np.float32)
    vy = north.astype(np.float32)
    v = np.hypot(vx, vy).astype(np.float32)
    return VelocityProduct(
        vx=vx,
        vy=vy,
        v=v,
        dx=offsets.dx.astype(np.float32),
        dy=offsets.dy.astype(np.float32),
        peak=offsets.peak.astype(np.float32),
        snr=offsets.snr.astype(np.float32),
        transform=grid_transform(reference_transform, offsets.rows, offsets.cols),
        crs=crs,
        dt_days=float(dt_days),
        reference_id=reference_id,
        secondary_id=secondary_id,
        reference_datetime=reference_datetime,
        secondary_datetime=secondary_datetime,
        engine=offsets.engine,
        engine_params=dict(offsets.params),
        sources=dict(sources or {}),
    )
