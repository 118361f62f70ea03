"""Regenerate the hand-made Earth-Search-like fixtures in this folder.

Run ``python tests/data/stac/make_items.py``; it rewrites ``collection.json`` and
``sentinel-2-l2a-items.json``. The scenario (AOI = bbox 74.40 35.40 74.60 35.60) is listed in
``SCENES`` below, one row per item with the reason it exists; tests/test_discovery.py states
the expected outcome of each case.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
COG_ROOT = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs"

# Footprints (lon/lat): 43SEA covers the AOI fully; a data-strip edge makes one of its scenes
# partial; 43SDA (west neighbour) also covers the AOI fully but has fewer scenes; 43SEB
# (north neighbour) covers only the northern half of the AOI.
FOOTPRINTS = {
    "43SEA": [[73.90, 35.00], [75.10, 35.00], [75.10, 36.00], [73.90, 36.00]],
    "43SEA-edge": [[74.50, 35.00], [75.10, 35.00], [75.10, 36.00], [74.50, 36.00]],
    "43SDA": [[73.00, 35.00], [74.70, 35.00], [74.70, 36.00], [73.00, 36.00]],
    "43SEB": [[73.90, 35.50], [75.10, 35.50], [75.10, 36.50], [73.90, 36.50]],
}

# (tile, footprint key, datetime UTC, satellite, eo:cloud_cover %, why it is here)
SCENES = [
    ("43SEA", "43SEA", "2020-06-03T05:56:21Z", "A", 5.0, "summer 2020, first of June"),
    ("43SEA", "43SEA", "2020-06-18T05:56:29Z", "B", 1.0, "second June scene: removed by month choice"),
    ("43SEA", "43SEA", "2020-07-08T05:56:29Z", "B", 65.0, "cloudy"),
    ("43SEA", "43SEA", "2020-07-13T05:56:21Z", "A", 8.0, "first clear July scene"),
    ("43SEA", "43SEA", "2020-08-02T05:56:21Z", "A", 12.0, "August"),
    ("43SEA", "43SEA-edge", "2020-09-06T05:56:19Z", "B", 0.0, "partial footprint: removed by footprint"),
    ("43SEA", "43SEA", "2020-09-21T05:56:21Z", "A", 3.0, "September"),
    ("43SEA", "43SEA", "2020-10-15T05:56:19Z", "B", 1.0, "outside the summer season"),
    ("43SEA", "43SEA", "2020-11-04T05:56:21Z", "A", 10.0, "winter season 2020: November"),
    ("43SEA", "43SEA", "2020-12-09T05:56:19Z", "B", 14.0, "winter season 2020: December"),
    ("43SEA", "43SEA", "2020-12-19T05:56:21Z", "A", 2.0, "second December scene"),
    ("43SEA", "43SEA", "2021-01-08T05:56:21Z", "A", 18.0, "winter season 2020: January of the next year"),
    ("43SEA", "43SEA", "2021-02-12T05:56:19Z", "B", 55.0, "cloudy February"),
    ("43SEA", "43SEA", "2021-02-22T05:56:21Z", "A", 7.0, "winter season 2020: February"),
    ("43SEA", "43SEA", "2021-03-10T05:56:19Z", "B", 4.0, "outside both seasons"),
    ("43SEA", "43SEA", "2021-06-12T05:56:29Z", "B", 90.0, "cloudy"),
    ("43SEA", "43SEA", "2021-06-27T05:56:21Z", "A", 6.0, "summer 2021, June"),
    ("43SEA", "43SEA", "2021-07-22T05:56:29Z", "B", 15.0, "July"),
    ("43SEA", "43SEA", "2021-08-16T05:56:21Z", "A", 9.0, "August (no September 2021)"),
    ("43SEA", "43SEA", "2021-11-03T05:56:19Z", "B", 11.0, "winter season 2021: November"),
    ("43SDA", "43SDA", "2020-06-05T05:56:40Z", "B", 3.0, "neighbour tile, full cover, fewer scenes"),
    ("43SDA", "43SDA", "2020-07-10T05:56:38Z", "A", 4.0, "neighbour tile"),
    ("43SDA", "43SDA", "2020-08-04T05:56:40Z", "B", 2.0, "neighbour tile"),
    ("43SEB", "43SEB", "2020-06-10T05:56:11Z", "B", 2.0, "north tile, covers half the AOI"),
    ("43SEB", "43SEB", "2020-07-05T05:56:11Z", "A", 3.0, "north tile"),
    ("43SEB", "43SEB", "2020-08-09T05:56:11Z", "B", 1.0, "north tile"),
    ("43SEB", "43SEB", "2021-07-09T05:56:11Z", "B", 5.0, "north tile"),
]


def item(tile: str, footprint: str, when: str, sat: str, cloud: float, index: int) -> dict:
    date = when[:10].replace("-", "")
    item_id = f"S2{sat}_{tile}_{date}_0_L2A"
    zone, band, square = tile[:2], tile[2], tile[3:]
    year, month = int(when[:4]), int(when[5:7])
    base = f"{COG_ROOT}/{zone}/{band}/{square}/{year}/{month}/{item_id}"
    ring = FOOTPRINTS[footprint] + [FOOTPRINTS[footprint][0]]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    props = {
        "datetime": when,
        "platform": f"sentinel-2{sat.lower()}",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": cloud,
        "mgrs:utm_zone": int(zone),
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "s2:product_uri": f"S2{sat}_MSIL2A_{date}T055621_N0214_R091_T{tile}_{date}T083012.SAFE",
        "s2:processing_baseline": "02.14",
    }
    # Earth Search items carry grid:code; the 43SDA ones rely on the mgrs:* fallback.
    if tile != "43SDA":
        props["grid:code"] = f"MGRS-{tile}"
    # Older items use proj:epsg (projection extension v1), newer ones proj:code (v2).
    if index % 2:
        props["proj:code"] = "EPSG:32643"
    else:
        props["proj:epsg"] = 32643
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": props,
        "links": [],
        "assets": {
            "nir": {
                "href": f"{base}/B08.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "NIR 1 - 10m",
                "roles": ["data", "reflectance"],
                "gsd": 10,
                "eo:bands": [{"name": "nir", "common_name": "nir", "center_wavelength": 0.842}],
            },
            "scl": {
                "href": f"{base}/SCL.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "Scene classification map (SCL)",
                "roles": ["data"],
                "gsd": 20,
            },
            "thumbnail": {"href": f"{base}/thumbnail.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
        },
    }


def main() -> None:
    features = [item(*row[:5], index=i) for i, row in enumerate(SCENES)]
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "sentinel-2-l2a",
        "title": "Sentinel-2 Level-2A (test fixture)",
        "description": "Hand-made Earth-Search-like Sentinel-2 L2A items for tests.",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[73.0, 35.0, 75.1, 36.5]]},
            "temporal": {"interval": [["2020-06-01T00:00:00Z", "2021-12-31T23:59:59Z"]]},
        },
        "links": [],
    }
    (HERE / "collection.json").write_text(json.dumps(collection, indent=2) + "\n")
    (HERE / "sentinel-2-l2a-items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
