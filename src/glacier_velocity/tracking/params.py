"""Tracking parameters, their validation, and the search range from a maximum speed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..domain.velocity import DAYS_PER_YEAR
from ..errors import InvalidParameter

#: Image filters applied before matching (see :mod:`glacier_velocity.tracking.filters`).
Filter = Literal["wallis", "hps", "oc", "none"]
FILTERS: tuple[str, ...] = ("wallis", "hps", "oc", "none")


def search_range_px(max_velocity_m_per_yr: float, dt_days: float, pixel_size_m: float) -> float:
    """Largest displacement (px) a feature can have moved, from a maximum speed.

    Parameters
    ----------
    max_velocity_m_per_yr : float
        Fastest surface speed expected anywhere in the area (m/yr), > 0.
    dt_days : float
        Baseline between the acquisitions (days, fractional), > 0.
    pixel_size_m : float
        Ground size of one pixel (m), > 0.

    Returns
    -------
    float
        ``max_velocity * dt / 365.25 / pixel_size`` (px): pairs further apart in time search
        farther.

    >>> search_range_px(1000.0, 36.525, 10.0)
    10.0
    """
    for name, value in (
        ("max_velocity_m_per_yr", max_velocity_m_per_yr),
        ("dt_days", dt_days),
        ("pixel_size_m", pixel_size_m),
    ):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidParameter(name, f"must be a positive number, got {value!r}")
    return max_velocity_m_per_yr * dt_days / DAYS_PER_YEAR / pixel_size_m


@dataclass(frozen=True)
class TrackingParams:
    """Settings of a tracking run. Defaults suit Sentinel-2 B08 at 10 m.

    Attributes
    ----------
    grid_spacing_px : int
        Distance between grid points (px); 12 px = 120 m for Sentinel-2.
    chip_px : int
        Side of the square reference chip matched around each grid point (px, even).
    search_px : float
        Largest displacement searched in any direction (px). Use :func:`search_range_px`
        to derive it from a maximum speed and the baseline.
    filter : {"wallis", "hps", "oc", "none"}
        Pre-filter: Wallis (local mean and contrast normalisation), high-pass (subtract a box
        mean), orientation correlation (unit gradient vectors), or none.
    filter_width_px : int
        Window of the filter's local statistics (px, odd).
    min_peak : float
        Smallest correlation peak accepted (0..1).
    min_snr : float
        Smallest peak sharpness accepted (peak over RMS correlation 2 px away).
    median_threshold : float
        Normalized median test threshold (Westerweel & Scarano 2005); larger rejects less.
    max_nodata_fraction : float
        Largest fraction of nodata (DN 0 or masked) pixels a chip may hold (0..1).
    """

    grid_spacing_px: int = 12
    chip_px: int = 32
    search_px: float = 25.0
    filter: Filter = "wallis"
    filter_width_px: int = 5
    min_peak: float = 0.27
    min_snr: float = 1.5
    median_threshold: float = 3.0
    max_nodata_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("search_px", "min_peak", "min_snr", "median_threshold", "max_nodata_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidParameter(name, f"must be a number, got {value!r}")
        if not (isinstance(self.grid_spacing_px, int) and self.grid_spacing_px >= 1):
            raise InvalidParameter(
                "grid_spacing_px", f"must be a whole number of pixels >= 1, got {self.grid_spacing_px!r}"
            )
        if not (isinstance(self.chip_px, int) and 8 <= self.chip_px <= 256 and self.chip_px % 2 == 0):
            raise InvalidParameter("chip_px", f"must be an even number of pixels from 8 to 256, got {self.chip_px!r}")
        if not (math.isfinite(self.search_px) and self.search_px > 0):
            raise InvalidParameter("search_px", f"must be a positive number of pixels, got {self.search_px!r}")
        if self.filter not in FILTERS:
            raise InvalidParameter("filter", f"must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if not (isinstance(self.filter_width_px, int) and self.filter_width_px >= 3 and self.filter_width_px % 2 == 1):
            raise InvalidParameter(
                "filter_width_px", f"must be an odd number of pixels >= 3, got {self.filter_width_px!r}"
            )
        if not (-1.0 <= self.min_peak < 1.0):
            raise InvalidParameter("min_peak", f"must be in -1..1, got {self.min_peak!r}")
        if not (self.min_snr >= 0):
            raise InvalidParameter("min_snr", f"must be >= 0, got {self.min_snr!r}")
        if not (self.median_threshold > 0):
            raise InvalidParameter("median_threshold", f"must be > 0, got {self.median_threshold!r}")
        if not (0.0 <= self.max_nodata_fraction < 1.0):
            raise InvalidParameter("max_nodata_fraction", f"must be in 0..1, got {self.max_nodata_fraction!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary of the settings, for provenance tags."""
        return asdict(self)
