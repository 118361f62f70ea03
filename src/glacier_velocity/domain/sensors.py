"""The band table: which asset of a mission's STAC items is tracked, and which classifies its pixels.

Every stage after discovery works on one tracked band (DN, 0 = nodata) and, when the items
have one, a pixel classification in the Sentinel-2 scene-classification (SCL) classes. A
mission enters the workflow by a row of :data:`SENSORS`, not by a pipeline of its own:

==============  ===============================  =======================  =======================
sensor          tracked band (asset keys)        classification           product prefix
==============  ===============================  =======================  =======================
``sentinel-2``  B08 near-infrared, 10 m (nir)    ``scl`` (SCL classes)    ``S2``
``landsat-oli`` B8 panchromatic, 15 m (pan, B8)  ``qa_pixel`` (bit flags) ``LC``
==============  ===============================  =======================  =======================

Landsat 8 and 9 Collection 2 Level-1 items (USGS ``landsat-c2l1``) carry the panchromatic band
as ``pan``; uint16 DN whose fill is 0 and whose GeoTIFFs declare no nodata value, which is the
package's convention (DN 0 = nodata) already. Level-2 items (surface reflectance, Earth Search
``landsat-c2-l2``) have no panchromatic band, and the error says so. Their ``qa_pixel`` bit
flags (CFMask; the same layout in Level-1 and Level-2) are read as SCL classes by
:meth:`Sensor.scl_classes`, so the cloud mask and the stable land of
:mod:`glacier_velocity.correction.land` are one implementation for both missions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import MalformedItem

#: How a mission's classification asset encodes its classes.
Classification = Literal["scl", "qa_pixel"]

#: Landsat Collection 2 ``QA_PIXEL`` bits (CFMask), lowest first, and the SCL class each is
#: read as; the first bit set in this order decides (a cloud's shadow on snow is shadow).
#: Pixels with none of them set are clear land, read as SCL 7 ("unclassified": land of no
#: named kind, which is what ``QA_PIXEL`` says of it).
QA_PIXEL_AS_SCL: tuple[tuple[int, int, str], ...] = (
    (0, 0, "fill (no data)"),
    (3, 9, "cloud"),
    (1, 8, "dilated cloud"),
    (4, 3, "cloud shadow"),
    (2, 10, "cirrus"),
    (5, 11, "snow or ice"),
    (7, 6, "water"),
)
#: SCL class of clear land in ``QA_PIXEL``.
QA_PIXEL_CLEAR_SCL = 7


@dataclass(frozen=True)
class Sensor:
    """One row of the band table: what the workflow reads from a mission's STAC items.

    Attributes
    ----------
    key : str
        Name of the row, recorded with each scene (``"sentinel-2"``, ``"landsat-oli"``).
    name : str
        The mission and instrument, for messages (``"Landsat 8/9 OLI"``).
    band_assets : tuple of str
        Asset keys of the tracked band, in order of preference.
    band : str
        The tracked band in words, with its pixel size (for messages and labels).
    classification_assets : tuple of str
        Asset keys of the pixel classification, in order of preference.
    classification : {"scl", "qa_pixel"}
        Its encoding: Sentinel-2 scene classes, or Landsat Collection 2 ``QA_PIXEL`` bit flags.
    product_prefix : str
        First part of every product file name of the mission's pairs.
    missing_band : str
        What a user whose item has no tracked band should do.
    """

    key: str
    name: str
    band_assets: tuple[str, ...]
    band: str
    classification_assets: tuple[str, ...]
    classification: Classification
    product_prefix: str
    missing_band: str

    def band_asset(self, assets: Mapping[str, Any]) -> str | None:
        """The key of the tracked band among an item's ``assets``; None when it has none."""
        return next((key for key in self.band_assets if key in assets), None)

    def classification_asset(self, assets: Mapping[str, Any]) -> str | None:
        """The key of the classification among an item's ``assets``; None when it has none."""
        return next((key for key in self.classification_assets if key in assets), None)

    def scl_classes(self, classification: np.ndarray) -> np.ndarray:
        """The classification asset's pixels as Sentinel-2 SCL classes (uint8).

        SCL is returned as it is; ``QA_PIXEL`` bit flags become fill 0, cloud 9, dilated cloud
        8, cloud shadow 3, cirrus 10, snow or ice 11, water 6 and clear land 7
        (:data:`QA_PIXEL_AS_SCL`). A pixel outside the raster (read as 0) is fill either way.
        """
        values = np.asarray(classification)
        if self.classification == "scl":
            return values.astype(np.uint8, copy=False)
        flags = values.astype(np.uint16, copy=False)
        classes = np.full(flags.shape, QA_PIXEL_CLEAR_SCL, dtype=np.uint8)
        decided = np.zeros(flags.shape, dtype=bool)
        # 0 read from outside the raster has no fill bit set, yet is no data.
        for bit, scl, _ in ((None, 0, "outside"), *QA_PIXEL_AS_SCL):
            where = (flags == 0) if bit is None else (flags & (1 << bit)) != 0
            where &= ~decided
            classes[where] = scl
            decided |= where
        return classes


SENTINEL_2 = Sensor(
    key="sentinel-2",
    name="Sentinel-2 MSI",
    band_assets=("nir",),
    band="near-infrared band B08 (10 m)",
    classification_assets=("scl",),
    classification="scl",
    product_prefix="S2",
    missing_band=(
        "the workflow tracks features in the near-infrared band B08 - use Sentinel-2 L2A items "
        "from Earth Search v1 (collection sentinel-2-l2a) or add a 'nir' asset"
    ),
)

LANDSAT_OLI = Sensor(
    key="landsat-oli",
    name="Landsat 8/9 OLI",
    band_assets=("pan", "B8"),
    band="panchromatic band B8 (15 m)",
    classification_assets=("qa_pixel",),
    classification="qa_pixel",
    product_prefix="LC",
    missing_band=(
        "the workflow tracks features in the panchromatic band B8 (15 m), which Landsat Collection 2 "
        "Level-2 items (surface reflectance, e.g. Earth Search landsat-c2-l2) do not carry - use "
        "Level-1 items (USGS collection landsat-c2l1), whose 'pan' asset is band 8"
    ),
)

#: The band table, by :attr:`Sensor.key`.
SENSORS: dict[str, Sensor] = {sensor.key: sensor for sensor in (SENTINEL_2, LANDSAT_OLI)}

# Landsat scene ids: Collection 2 (LC08_L1TP_063018_20160718_20200906_02_T1) and the older
# scene id (LC80630182016200LGN00); L = Landsat, C/O = OLI(-TIRS), then the satellite.
_LANDSAT_ID = re.compile(r"^L([COTEM])0?(\d)")
_LANDSAT_PLATFORM = re.compile(r"^landsat[-_ ]?0?(\d+)$")


def sensor_of(item_id: str, properties: Mapping[str, Any]) -> Sensor:
    """The band table's row for an item, from its ``platform`` (else its id).

    ``platform`` ``landsat-8``/``landsat-9`` (any case, ``_`` or ``-``) or an id of Landsat
    8/9 OLI (``LC08_...``, ``LC8...``, ``LO09_...``) is Landsat OLI; anything else is Sentinel-2,
    the workflow's first mission, whose Earth Search items say ``sentinel-2a``/``b``/``c``.

    Raises
    ------
    MalformedItem
        A Landsat platform or id other than 8 and 9 (TM has no panchromatic band; the ETM+
        scan-line gaps of Landsat 7 break the chips), field ``platform``.
    """
    platform = properties.get("platform")
    number: str | None = None
    if isinstance(platform, str):
        match = _LANDSAT_PLATFORM.match(platform.strip().lower())
        if match:
            number = match.group(1)
        elif platform.strip().lower().startswith("sentinel-2"):
            return SENTINEL_2
    if number is None:
        match = _LANDSAT_ID.match(item_id)
        if match:
            number = match.group(2)
    if number is None:
        return SENTINEL_2
    if number in ("8", "9"):
        return LANDSAT_OLI
    raise MalformedItem(
        item_id,
        "platform",
        f"is Landsat {number}; the workflow tracks Sentinel-2 (B08) and Landsat 8/9 OLI (panchromatic B8) "
        "scenes only - choose items of those missions",
    )


__all__ = [
    "LANDSAT_OLI",
    "QA_PIXEL_AS_SCL",
    "SENSORS",
    "SENTINEL_2",
    "Classification",
    "Sensor",
    "sensor_of",
]
