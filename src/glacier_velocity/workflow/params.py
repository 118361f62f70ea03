"""The settings of one pair's correlation (:class:`CorrelationParams`), apart from the correlation.

They are what the ``correlate`` and ``track`` subcommands take as options: the command line reads
their defaults from here without loading the STAC client, the product writers and the run report
that :mod:`~glacier_velocity.workflow.correlate` needs (0.1 s of CPU in every ``track`` process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..correction.land import CLOUD_SCL_CLASSES
from ..domain.aoi import AOI
from ..domain.outlines import GlacierOutlines
from ..errors import InvalidParameter
from ..io.aoi import parse_aoi
from ..io.outlines import read_glacier_outlines
from ..stac.endpoint import EARTH_SEARCH_URL, check_stac_url
from ..tracking import ENGINES, FILTERS, Engine, TrackingParams
from ..tracking.params import Filter

#: Scene classification (SCL) classes masked with ``mask_clouds`` (Landsat's ``QA_PIXEL`` flags read
#: as them, :meth:`~glacier_velocity.domain.sensors.Sensor.scl_classes`): no data (0),
#: saturated or defective (1), cloud shadow (3), cloud medium and high probability (8, 9) and
#: thin cirrus (10). Snow and ice (11) is what we measure and is never masked.
SCL_MASKED_CLASSES: tuple[int, ...] = CLOUD_SCL_CLASSES


@dataclass(frozen=True)
class CorrelationParams:
    """Settings of one pair's correlation.

    Attributes
    ----------
    max_velocity_m_per_yr : float
        Fastest surface speed expected in the area (m/yr); sets the search range.
    grid_spacing_px : int
        Distance between measurement points (px of the reference image; 12 px = 120 m).
    chip_px : int
        Side of the matched reference chip (px, even).
    filter : {"wallis", "hps", "oc", "none"}
        Image pre-filter of the tracking engine.
    engine : {"ncc", "autorift"}
        Tracking engine.
    aoi : AOI or None
        Area of interest (lon/lat degrees): ``"W,S,E,N"``, GeoJSON text, the URL or path of a
        GeoJSON file (read by :func:`~glacier_velocity.io.aoi.parse_aoi`, kept as an
        :class:`~glacier_velocity.domain.aoi.AOI`). The product's grid is the AOI's bounding
        box on the reference grid, and points outside the polygon are nodata. None: the
        intersection of both footprints.
    mask_clouds : bool
        Mask clouds, cloud shadows and defective pixels from the classification assets
        (Sentinel-2 ``scl``, Landsat ``qa_pixel``) when the items have them
        (:data:`SCL_MASKED_CLASSES`).
    stable_correction : bool
        Remove the pair's stable-ground shift from ``vx``, ``vy``, ``v`` and estimate their
        1-sigma errors (:mod:`glacier_velocity.correction`); on by default.
    glacier_outlines : GlacierOutlines or None
        Glacier outlines (polygons of ice, e.g. RGI 7.0), read once at the edge by
        :func:`~glacier_velocity.io.outlines.read_glacier_outlines` (a GeoJSON file path, an
        http(s) URL or the GeoJSON text given here is read on construction). Stable ground is
        the ground outside them, and they are drawn on the quicklook. None: stable ground is
        the tightest cluster of displacements on land that the items' classification assets show as
        neither snow/ice, water nor cloud in both scenes (of all points without them), and
        the product says how it was found, or why no correction was applied.
    min_correlation_baseline_days : float
        Shortest baseline (days) a pair may have to be correlated; shorter pairs are refused.
        Over seconds or hours, sub-pixel noise becomes absurd speeds. (Discovery's
        ``min_baseline_days`` only filters which pairs are formed, and has no bound by default.)
    stac_url : str
        Root of the STAC API the two items come from (discovery's ``stac_url``): the STAC token
        (``GLACIER_VELOCITY_STAC_TOKEN``), when set, is sent with the item fetches to this
        origin only - never to another host, nor with the asset reads (COGs on S3 or a CDN
        take their own credentials). Default: Earth Search v1.
    """

    max_velocity_m_per_yr: float = 1000.0
    grid_spacing_px: int = 12
    chip_px: int = 32
    filter: Filter = "wallis"
    engine: Engine = "ncc"
    aoi: AOI | None = None
    mask_clouds: bool = False
    stable_correction: bool = True
    min_correlation_baseline_days: float = 1.0
    glacier_outlines: GlacierOutlines | None = None
    stac_url: str = EARTH_SEARCH_URL

    def __post_init__(self) -> None:
        check_stac_url(self.stac_url)
        if self.glacier_outlines is not None and not isinstance(self.glacier_outlines, GlacierOutlines):
            # A Python caller's path, URL or GeoJSON text: read here, once, like ``aoi``.
            object.__setattr__(self, "glacier_outlines", read_glacier_outlines(self.glacier_outlines))
        shortest = self.min_correlation_baseline_days
        if isinstance(shortest, bool) or not (
            isinstance(shortest, (int, float)) and math.isfinite(shortest) and shortest > 0
        ):
            raise InvalidParameter(
                "min_correlation_baseline_days", f"must be a positive number of days, got {shortest!r}"
            )
        value = self.max_velocity_m_per_yr
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidParameter("max_velocity_m_per_yr", f"must be a positive speed in m/yr, got {value!r}")
        if self.engine not in ENGINES:
            raise InvalidParameter("engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.filter not in FILTERS:
            raise InvalidParameter("filter", f"must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if self.aoi is not None:
            object.__setattr__(self, "aoi", parse_aoi(self.aoi))
        # Grid spacing and chip size are checked where they are used, by TrackingParams;
        # check them now so that a bad value fails before any pixel is read.
        self.tracking_params(1.0)

    def recorded(self) -> dict[str, Any]:
        """The settings as recorded in a product's item (JSON-ready; polygons by their source only)."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        # A bbox as its text; a polygon, like the outlines, by where it came from (gv:aoi has its
        # digest): the text of a glacier outline may be 40 MB, which every item would copy.
        record["aoi"] = None if self.aoi is None else self.aoi.text() if self.aoi.is_box else self.aoi.source
        # Where the outlines came from (a path, a URL or "inline GeoJSON"): the polygons
        # themselves may be megabytes of RGI outlines.
        record["glacier_outlines"] = self.glacier_outlines.source if self.glacier_outlines is not None else None
        return record

    def tracking_params(self, search_px: float = TrackingParams.search_px) -> TrackingParams:
        """Tracking settings for a search range (px); :func:`~glacier_velocity.tracking.memory.speed_search`
        replaces it by the one of ``max_velocity_m_per_yr``."""
        return TrackingParams(
            grid_spacing_px=self.grid_spacing_px,
            chip_px=self.chip_px,
            search_px=search_px,
            filter=self.filter,
        )


__all__ = ["SCL_MASKED_CLASSES", "CorrelationParams"]
