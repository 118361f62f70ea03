"""The embedded offline demo's data: a small Sentinel-2-like stack over a made-up glacier, its
STAC items and its truth.

The stack is generated deterministically (fixed seeds): one texture of 10 m pixels, warped
for each acquisition by the known velocity field times the time elapsed since the start of
that year (so features move exactly ``velocity * dt`` between two scenes of the same year),
plus a little sensor noise and an illumination change. The velocity field differs between the
two years. Scene metadata follow Earth Search v1 ``sentinel-2-l2a`` items, and the catalogue
deliberately holds the cases discovery must get right:

- scenes too cloudy by metadata (``eo:cloud_cover`` above the demo's 10 % limit);
- two scenes in the same month, of which only the first may be used;
- a scene outside the season (May, while the season is June to September).

With the demo parameters (``params/demo.yml``: 2 pairs per image, baselines up to 70 days)
discovery must select 7 scenes and build 6 pairs; the truth file records them.

The runner (:mod:`.runner`) pushes the stack through the CWL Workflow against a local STAC
API; :mod:`.truth` compares what it recovered with the truth written here.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_geom
from shapely.geometry import Polygon, box

from ..domain.outlines import GlacierOutlines
from ..errors import InvalidParameter
from .synthetic import GlacierTongue, Misregistered, make_texture, warp_image

log = logging.getLogger(__name__)

#: Made-up MGRS tile of the demo scenes (``99`` is no real UTM zone, so it cannot be confused
#: with real data; the grid itself is in UTM zone 43N).
DEMO_TILE = "99XXX"
DEMO_EPSG = 32643
DEMO_COLLECTION = "sentinel-2-l2a"
#: Image size (rows, cols) and pixel size (m) of every demo scene.
DEMO_SHAPE = (480, 480)
DEMO_PIXEL_M = 10.0
#: Upper-left corner (x, y) of the demo grid, metres in EPSG:32643.
DEMO_ORIGIN = (600000.0, 4010000.0)
#: Fastest speed of the glacier (m/yr) in each year; the flow pattern is the same.
DEMO_MAX_SPEED_M_PER_YR = {2022: 250.0, 2023: 400.0}
#: Time span (years) of the displacement fields of :func:`velocity_field`. A whole year of
#: motion would shear the margins too steeply for the synthetic warp to invert.
FIELD_YEARS = 0.1
#: Seed of the surface texture (the same for every scene: it is the glacier's surface).
DEMO_TEXTURE_SEED = 20220101
#: Demo discovery parameters; ``params/demo.yml`` repeats them (a test keeps the two equal).
DEMO_START_MONTH, DEMO_END_MONTH = 6, 9
DEMO_MAX_CLOUD_COVER = 10.0
DEMO_PAIRS_PER_IMAGE = 2
DEMO_MAX_BASELINE_DAYS = 70.0
#: Relative margin of the area of interest inside the image on each side.
_AOI_MARGIN = 0.08
#: True speed (m/yr) above which a point counts as "on the glacier" for the comparison.
GLACIER_SPEED_THRESHOLD_M_PER_YR = 50.0

#: Default directory of the demo's data and results (relative to the working directory).
DEFAULT_DEMO_DIR = Path("build/demo")


@dataclass(frozen=True)
class DemoScene:
    """One acquisition of the demo stack.

    Attributes
    ----------
    datetime : datetime
        Acquisition time (UTC).
    platform : str
        ``"S2A"`` or ``"S2B"``.
    cloud_cover : float
        Cloud cover of the whole tile (%, 0-100) as written to ``eo:cloud_cover``.
    role : str
        Why the scene is in the stack: ``"used"``, ``"cloudy"``, ``"same-month"`` (second of a
        month, must not be used) or ``"off-season"``.
    """

    datetime: datetime
    platform: str
    cloud_cover: float
    role: str

    @property
    def item_id(self) -> str:
        """Earth Search style id, e.g. ``S2A_99XXX_20220610_0_L2A``."""
        return f"{self.platform}_{DEMO_TILE}_{self.datetime:%Y%m%d}_0_L2A"

    @property
    def product_uri(self) -> str:
        """ESA product name in the form of ``s2:product_uri``."""
        stamp = f"{self.datetime:%Y%m%dT%H%M%S}"
        return f"{self.platform}_MSIL2A_{stamp}_N0400_R048_T{DEMO_TILE}_{stamp}.SAFE"


def _utc(year: int, month: int, day: int) -> datetime:
    # Sentinel-2 passes over the Karakoram around 05:50 UTC.
    return datetime(year, month, day, 5, 52, 31, tzinfo=UTC)


#: The demo stack, in time order: 11 scenes over two seasons.
DEMO_SCENES: tuple[DemoScene, ...] = (
    DemoScene(_utc(2022, 6, 10), "S2A", 2.1, "used"),
    DemoScene(_utc(2022, 7, 5), "S2B", 3.4, "used"),
    DemoScene(_utc(2022, 7, 20), "S2A", 0.8, "same-month"),
    DemoScene(_utc(2022, 8, 14), "S2B", 61.0, "cloudy"),
    DemoScene(_utc(2022, 9, 8), "S2A", 4.2, "used"),
    DemoScene(_utc(2023, 5, 15), "S2B", 0.0, "off-season"),
    DemoScene(_utc(2023, 6, 4), "S2A", 5.5, "used"),
    DemoScene(_utc(2023, 7, 9), "S2B", 83.0, "cloudy"),
    DemoScene(_utc(2023, 7, 24), "S2A", 1.9, "used"),
    DemoScene(_utc(2023, 8, 18), "S2B", 0.6, "used"),
    DemoScene(_utc(2023, 9, 12), "S2A", 2.7, "used"),
)


@dataclass(frozen=True)
class DemoStack:
    """Which scenes the generator writes, and how large.

    The demo is :data:`DEMO_STACK`; the workflow benchmark uses more scenes of a larger size
    over the same glacier (its speeds in m/yr do not depend on the size: the glacier tongue
    spans the image whatever its size).

    Attributes
    ----------
    scenes : tuple of DemoScene
        Acquisitions in time order; years must have a velocity field
        (:data:`DEMO_MAX_SPEED_M_PER_YR`).
    shape : tuple of int
        Image size (rows, cols) in px of every scene, 10 m pixels.
    """

    scenes: tuple[DemoScene, ...] = DEMO_SCENES
    shape: tuple[int, int] = DEMO_SHAPE

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 4 * 32:
            raise InvalidParameter("shape", f"scenes must be at least 128 x 128 px (4 chips), not {self.shape}")
        for scene in self.scenes:
            if scene.datetime.year not in DEMO_MAX_SPEED_M_PER_YR:
                raise InvalidParameter(
                    "scenes",
                    f"{scene.item_id}: the demo has velocity fields for {sorted(DEMO_MAX_SPEED_M_PER_YR)} only",
                )
        if list(self.scenes) != sorted(self.scenes, key=lambda s: s.datetime):
            raise InvalidParameter("scenes", "scenes must be in time order")


#: The demo's own stack: :data:`DEMO_SCENES` at :data:`DEMO_SHAPE`.
DEMO_STACK = DemoStack()


@dataclass(frozen=True)
class DemoData:
    """Where the generated demo stack lives.

    Attributes
    ----------
    root : Path
        Directory holding everything below.
    collection : Path
        STAC collection JSON (``sentinel-2-l2a``).
    items : Path
        STAC ItemCollection (GeoJSON FeatureCollection) of every demo scene; each item is
        also written alone as ``items/<id>.json`` next to it.
    truth : Path
        Truth JSON (see :func:`write_truth`).
    bbox : tuple of float
        Area of interest (lon/lat degrees: west, south, east, north).
    """

    root: Path
    collection: Path
    items: Path
    truth: Path
    bbox: tuple[float, float, float, float]


def demo_transform() -> Affine:
    """Affine transform of the demo grid (10 m pixels, north up, EPSG:32643)."""
    return Affine(DEMO_PIXEL_M, 0.0, DEMO_ORIGIN[0], 0.0, -DEMO_PIXEL_M, DEMO_ORIGIN[1])


def _footprint(margin: float = 0.0, shape: tuple[int, int] = DEMO_SHAPE) -> dict[str, Any]:
    """The image rectangle (``shape``, px), shrunk by ``margin`` of its size on each side, in lon/lat."""
    rows, cols = shape
    t = demo_transform()
    c0, c1 = cols * margin, cols * (1 - margin)
    r0, r1 = rows * margin, rows * (1 - margin)
    ring = [t @ (c0, r0), t @ (c1, r0), t @ (c1, r1), t @ (c0, r1), t @ (c0, r0)]
    geom = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    return transform_geom(f"EPSG:{DEMO_EPSG}", "EPSG:4326", geom)


def demo_bbox(shape: tuple[int, int] = DEMO_SHAPE) -> tuple[float, float, float, float]:
    """Area of interest of the demo (lon/lat degrees, W S E N), rounded to 4 decimals.

    It lies inside every scene's footprint (an 8 % margin of the image on each side) of
    scenes of ``shape`` (rows, cols; px).
    """
    coords = np.asarray(_footprint(_AOI_MARGIN, shape)["coordinates"][0])
    west, south = coords.min(axis=0)
    east, north = coords.max(axis=0)
    # Rounding inwards keeps the box inside the inner rectangle's lon/lat hull.
    return (
        float(np.ceil(west * 1e4) / 1e4),
        float(np.ceil(south * 1e4) / 1e4),
        float(np.floor(east * 1e4) / 1e4),
        float(np.floor(north * 1e4) / 1e4),
    )


#: File name of the demo's glacier outlines (GeoJSON, lon/lat) in the demo data directory.
DEMO_OUTLINES_FILE = "glacier_outlines.geojson"


def demo_glacier_outlines(shape: tuple[int, int] = DEMO_SHAPE) -> GlacierOutlines:
    """Outlines of the demo glacier (lon/lat), as RGI would give them for a real one.

    The tongue's outline (:meth:`~glacier_velocity.demo.synthetic.GlacierTongue.outline_px`;
    the same in both years, only the speed differs) clipped to the image, from pixel-centre
    coordinates to map coordinates (centre of pixel (row, col) at ``transform @ (col + 0.5,
    row + 0.5)``) and to lon/lat.
    """
    ring_px = velocity_field(min(DEMO_MAX_SPEED_M_PER_YR), shape).outline_px()
    t = demo_transform()
    ring = [tuple(t @ (float(col) + 0.5, float(row) + 0.5)) for col, row in ring_px]
    rows, cols = shape
    image = box(*(t @ (0, rows)), *(t @ (cols, 0)))
    ice = Polygon(ring).intersection(image)
    utm = GlacierOutlines(ice, f"EPSG:{DEMO_EPSG}", source="demo glacier (GlacierTongue)")
    return GlacierOutlines(utm.in_crs("EPSG:4326"), "EPSG:4326", source=utm.source)


def write_demo_outlines(root: Path, shape: tuple[int, int] = DEMO_SHAPE) -> Path:
    """Write :func:`demo_glacier_outlines` of scenes of ``shape`` (px) as ``root / DEMO_OUTLINES_FILE`` (RFC 7946 GeoJSON)."""
    from ..io.atomic import write_text_atomic

    document = demo_glacier_outlines(shape).to_geojson()
    document["features"][0]["properties"].update(
        {"glac_name": "demo glacier", "source": "glacier_velocity.demo.scenes"}
    )
    return write_text_atomic(root / DEMO_OUTLINES_FILE, json.dumps(document, indent=1) + "\n")


def velocity_field(year: int, shape: tuple[int, int] = DEMO_SHAPE) -> GlacierTongue:
    """The demo glacier's displacement field for one year, in px per year.

    Parameters
    ----------
    year : int
        2022 or 2023 (keys of :data:`DEMO_MAX_SPEED_M_PER_YR`).
    shape : tuple of int
        Image size (rows, cols; px) the glacier tongue spans.

    Returns
    -------
    glacier_velocity.demo.synthetic.GlacierTongue
        Displacement (px) over :data:`FIELD_YEARS` of a glacier tongue whose fastest point
        moves ``DEMO_MAX_SPEED_M_PER_YR[year] / DEMO_PIXEL_M`` px per year.
    """
    if year not in DEMO_MAX_SPEED_M_PER_YR:
        raise InvalidParameter(
            "year", f"the demo has velocity fields for {sorted(DEMO_MAX_SPEED_M_PER_YR)}, not {year}"
        )
    return GlacierTongue(shape, max_px=DEMO_MAX_SPEED_M_PER_YR[year] / DEMO_PIXEL_M * FIELD_YEARS)


def true_speed(year: int, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int] = DEMO_SHAPE) -> np.ndarray:
    """True surface speed (m/yr) of the demo glacier at pixel positions.

    Parameters
    ----------
    year : int
        Year of the velocity field.
    rows, cols : ndarray
        Pixel-centre coordinates on the demo grid (px), broadcastable to one shape.
    shape : tuple of int
        Image size (rows, cols; px) of the scenes.

    Returns
    -------
    ndarray of float64
        Speed (m/yr) at each position.
    """
    dx, dy = velocity_field(year, shape).displacement(rows, cols)
    return np.hypot(dx, dy) * DEMO_PIXEL_M / FIELD_YEARS


def _years_since_epoch(when: datetime) -> float:
    # Each year's field is anchored at 1 August, the middle of the season: a pair within one
    # year sees exactly that year's velocity times its baseline, and the displacement from
    # the texture never exceeds ~2 months of motion, which keeps the warp invertible.
    epoch = datetime(when.year, 8, 1, tzinfo=UTC)
    return (when - epoch).total_seconds() / 86400.0 / 365.25


#: Seed of the scenes' geolocation errors.
GEOLOCATION_SEED = 20240610
#: Range of the geolocation error's length (px): sub-pixel to about 1 px, as between
#: Sentinel-2 orbits (the real pair of design 0005 is off by 1.9 px, modern L2A pairs less).
GEOLOCATION_ERROR_PX = (0.25, 1.0)


def geolocation_error(index: int) -> tuple[float, float]:
    """The geolocation error ``(dx, dy)`` (px; dx along columns = east, dy along rows = south)
    of the demo scene ``DEMO_SCENES[index]``.

    Deterministic and different per acquisition: a length drawn uniformly from
    :data:`GEOLOCATION_ERROR_PX` and a uniform direction, from a generator seeded with
    :data:`GEOLOCATION_SEED` and the index. A pair sees the difference of its two scenes'
    errors as a uniform shift of the whole image, which the stable-ground correction must remove.
    """
    rng = np.random.default_rng([GEOLOCATION_SEED, index])
    length = rng.uniform(*GEOLOCATION_ERROR_PX)
    angle = rng.uniform(0.0, 2 * np.pi)
    return round(float(length * np.cos(angle)), 4), round(float(length * np.sin(angle)), 4)


#: Pixel size (m) of the demo's scene classification (SCL), as Sentinel-2 L2A's.
SCL_PIXEL_M = 20.0
#: SCL classes the demo writes: not vegetated (rock, moraine, debris-covered ice), cloud of
#: medium and high probability, snow and ice.
SCL_BARE, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_SNOW_ICE = 5, 8, 9, 11
#: Cloud brightness (DN added) above which the SCL calls a pixel cloud, and high-probability cloud.
SCL_CLOUD_DN, SCL_CLOUD_HIGH_DN = 500.0, 3000.0
#: Share of the glacier's terminal zone (its lower end) under debris: the SCL reads it as bare
#: ground (class 5) although it moves, as on real debris-covered tongues.
DEBRIS_ZONE_FRACTION = 0.6
#: Scenes (indices in :data:`DEMO_SCENES`) of the season that carry a small cloud over rock, and
#: its centre (fraction of rows, cols) and radius (fraction of the shorter side).
CLOUD_PATCH_SCENES = (4, 8)
CLOUD_PATCH = (0.1, 0.85, 0.06)


def _cloud_dn(scene: DemoScene, index: int, shape: tuple[int, int]) -> np.ndarray:
    """Brightness (DN) that clouds add to the scene: blobs over cloudy scenes, a patch over some others."""
    cloud = np.zeros(shape)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    if scene.cloud_cover > DEMO_MAX_CLOUD_COVER:
        # Drawn after the scene's noise from the same generator (scene_image draws them in this order).
        rng = np.random.default_rng(1000 + index)
        rng.normal(0.0, 60.0, shape)
        for _ in range(6):
            r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            radius = rng.uniform(40, 120)
            cloud += 9000.0 * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * radius**2))
    if index in CLOUD_PATCH_SCENES:
        row, col, size = CLOUD_PATCH
        radius = size * min(shape)
        cloud += 6000.0 * np.exp(-((rr - row * shape[0]) ** 2 + (cc - col * shape[1]) ** 2) / (2 * radius**2))
    return cloud


def scene_image(scene: DemoScene, index: int, shape: tuple[int, int] = DEMO_SHAPE) -> np.ndarray:
    """The demo ``nir`` image (DN, uint16, 0 = nodata) of one scene, ``shape`` (rows, cols) px.

    The texture (ice where the glacier moves) is warped by the year's velocity field times
    the years elapsed since 1 August of that year, plus the scene's own geolocation error
    (:func:`geolocation_error`, which moves rock and ice alike), then given a scene-specific gain
    (illumination) and Gaussian noise (seeded by ``index``). Cloudy scenes also get bright cloud
    blobs, and the scenes of :data:`CLOUD_PATCH_SCENES` a small cloud over rock.
    """
    glacier = velocity_field(scene.datetime.year, shape)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    texture = make_texture(
        shape,
        seed=DEMO_TEXTURE_SEED,
        pixel_size_m=DEMO_PIXEL_M,
        ice_mask=glacier.is_moving(rows, cols),
        crevasse_angle_deg=glacier.flow_angle_deg,
    )
    field = Misregistered(glacier.scaled(_years_since_epoch(scene.datetime) / FIELD_YEARS), *geolocation_error(index))
    warped = np.asarray(warp_image(texture, field), dtype=np.float64)
    rng = np.random.default_rng(1000 + index)
    gain = 1.0 + 0.08 * np.sin(index)
    dn = warped * gain + rng.normal(0.0, 60.0, shape) + _cloud_dn(scene, index, shape)
    # DN 0 means nodata in Sentinel-2 L2A; keep valid pixels at 1 or more.
    return np.clip(np.rint(dn), 1, 65535).astype(np.uint16)


def scl_shape(shape: tuple[int, int] = DEMO_SHAPE) -> tuple[int, int]:
    """Size (rows, cols) of the 20 m scene classification of scenes of ``shape`` (10 m px)."""
    ratio = SCL_PIXEL_M / DEMO_PIXEL_M
    return (int(np.ceil(shape[0] / ratio)), int(np.ceil(shape[1] / ratio)))


def scene_scl(scene: DemoScene, index: int, shape: tuple[int, int] = DEMO_SHAPE) -> np.ndarray:
    """The demo scene classification (SCL, uint8, 20 m) of one scene of ``shape`` (10 m px).

    Sampled at the centre of each 20 m cell: snow and ice (11) on the glacier, except its
    debris-covered terminus (:data:`DEBRIS_ZONE_FRACTION` of the terminal zone), which reads as
    bare ground (5) like the rock around it; cloud (8, 9) where the scene's clouds are bright.
    """
    ratio = SCL_PIXEL_M / DEMO_PIXEL_M
    rows_n, cols_n = scl_shape(shape)
    # Centre of 20 m cell (i, j) in 10 m pixel-centre coordinates.
    rows = (np.arange(rows_n)[:, None] + 0.5) * ratio - 0.5
    cols = (np.arange(cols_n)[None, :] + 0.5) * ratio - 0.5
    glacier = velocity_field(scene.datetime.year, shape)
    scl = np.full((rows_n, cols_n), SCL_BARE, dtype=np.uint8)
    scl[glacier.ice_mask(rows, cols) & ~glacier.debris_mask(rows, cols, DEBRIS_ZONE_FRACTION)] = SCL_SNOW_ICE
    cloud = _cloud_dn(scene, index, shape)
    r = np.clip(np.rint(rows).astype(int), 0, shape[0] - 1)
    c = np.clip(np.rint(cols).astype(int), 0, shape[1] - 1)
    at = cloud[np.ix_(r[:, 0], c[0, :])]
    scl[at > SCL_CLOUD_DN] = SCL_CLOUD_MEDIUM
    scl[at > SCL_CLOUD_HIGH_DN] = SCL_CLOUD_HIGH
    return scl


def scl_transform() -> Affine:
    """Affine transform of the demo's 20 m scene classification (same corner as the 10 m grid)."""
    return Affine(SCL_PIXEL_M, 0.0, DEMO_ORIGIN[0], 0.0, -SCL_PIXEL_M, DEMO_ORIGIN[1])


def _write_scene_cog(path: Path, image: np.ndarray, transform: Affine, name: str) -> None:
    profile = {
        "driver": "COG",
        "width": image.shape[1],
        "height": image.shape[0],
        "count": 1,
        "dtype": image.dtype.name,
        "crs": f"EPSG:{DEMO_EPSG}",
        "transform": transform,
        "nodata": 0,
        "compress": "DEFLATE",
        "blocksize": 256,
        "overviews": "AUTO",
    }
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(image, 1)
        dst.set_band_description(1, name)


def scene_item(
    scene: DemoScene, nir_path: Path, shape: tuple[int, int] = DEMO_SHAPE, scl_path: Path | None = None
) -> dict[str, Any]:
    """Earth-Search-v1-shaped STAC item (as JSON) of one demo scene.

    Parameters
    ----------
    scene : DemoScene
    nir_path : Path
        Absolute path of the scene's ``nir`` COG; becomes the asset href.
    shape : tuple of int
        Image size (rows, cols; px).
    scl_path : Path, optional
        Absolute path of the scene's 20 m scene classification COG; the ``scl`` asset.
    """
    rows, cols = shape
    footprint = _footprint(shape=shape)
    coords = np.asarray(footprint["coordinates"][0])
    stamp = scene.datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    zone = DEMO_TILE[:2]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
        ],
        "id": scene.item_id,
        "collection": DEMO_COLLECTION,
        "geometry": footprint,
        "bbox": [
            float(coords[:, 0].min()),
            float(coords[:, 1].min()),
            float(coords[:, 0].max()),
            float(coords[:, 1].max()),
        ],
        "properties": {
            "datetime": stamp,
            "created": stamp,
            "platform": f"sentinel-2{scene.platform[-1].lower()}",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": scene.cloud_cover,
            "proj:epsg": DEMO_EPSG,
            "proj:code": f"EPSG:{DEMO_EPSG}",
            "mgrs:utm_zone": int(zone),
            "mgrs:latitude_band": DEMO_TILE[2],
            "mgrs:grid_square": DEMO_TILE[3:],
            "grid:code": f"MGRS-{DEMO_TILE}",
            "s2:product_uri": scene.product_uri,
            "s2:processing_baseline": "04.00",
            "glacier_velocity:demo_role": scene.role,
        },
        "links": [],
        "assets": _scl_asset(scl_path, shape)
        | {
            "nir": {
                "href": str(nir_path),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "NIR 1 - 10m",
                "roles": ["data", "reflectance"],
                "gsd": DEMO_PIXEL_M,
                "eo:bands": [
                    {"name": "B08", "common_name": "nir", "center_wavelength": 0.842, "full_width_half_max": 0.145}
                ],
                "proj:shape": [rows, cols],
                "proj:transform": list(demo_transform())[:6],
                "raster:bands": [
                    {
                        "nodata": 0,
                        "data_type": "uint16",
                        "spatial_resolution": DEMO_PIXEL_M,
                        "scale": 0.0001,
                        "offset": -0.1,
                    }
                ],
            }
        },
    }


def _scl_asset(scl_path: Path | None, shape: tuple[int, int]) -> dict[str, Any]:
    """The ``scl`` asset of an Earth Search v1 item (none without a path)."""
    if scl_path is None:
        return {}
    rows, cols = scl_shape(shape)
    return {
        "scl": {
            "href": str(scl_path),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": "Scene classification map (SCL)",
            "roles": ["data"],
            "gsd": SCL_PIXEL_M,
            "proj:shape": [rows, cols],
            "proj:transform": list(scl_transform())[:6],
            "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": SCL_PIXEL_M}],
        }
    }


def collection_json(items: list[dict[str, Any]]) -> dict[str, Any]:
    """STAC collection ``sentinel-2-l2a`` spanning the demo items."""
    bboxes = np.asarray([item["bbox"] for item in items])
    times = sorted(item["properties"]["datetime"] for item in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": DEMO_COLLECTION,
        "title": "Demo Sentinel-2 Level-2A (synthetic)",
        "description": (
            "Synthetic Sentinel-2 L2A near-infrared scenes over a made-up glacier, generated by "
            "glacier_velocity.demo.scenes; item and asset fields follow Earth Search v1."
        ),
        "license": "CC0-1.0",
        "links": [],
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        float(bboxes[:, 0].min()),
                        float(bboxes[:, 1].min()),
                        float(bboxes[:, 2].max()),
                        float(bboxes[:, 3].max()),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
    }


def expected_pairs(stack: DemoStack = DEMO_STACK) -> list[tuple[str, str]]:
    """The (reference id, secondary id) pairs discovery must build with the demo parameters
    from ``stack`` (default the demo's).

    Used scenes per year in time order, paired with the next ``DEMO_PAIRS_PER_IMAGE`` used
    scenes, kept when the baseline is at most ``DEMO_MAX_BASELINE_DAYS``. Pairs across the
    two seasons are longer than that and so never kept.
    """
    used = [s for s in stack.scenes if s.role == "used"]
    pairs = []
    for i, reference in enumerate(used):
        for secondary in used[i + 1 : i + 1 + DEMO_PAIRS_PER_IMAGE]:
            dt = (secondary.datetime - reference.datetime).total_seconds() / 86400.0
            if dt <= DEMO_MAX_BASELINE_DAYS:
                pairs.append((reference.item_id, secondary.item_id))
    return pairs


def _pair_misregistration(
    reference_id: str, secondary_id: str, scenes: tuple[DemoScene, ...] = DEMO_SCENES
) -> dict[str, float]:
    """The shift (px) a pair sees from its scenes' geolocation errors: secondary minus reference."""
    index = {s.item_id: i for i, s in enumerate(scenes)}
    (rx, ry), (sx, sy) = geolocation_error(index[reference_id]), geolocation_error(index[secondary_id])
    return {"dx": round(sx - rx, 4), "dy": round(sy - ry, 4)}


def write_truth(root: Path, stack: DemoStack = DEMO_STACK) -> Path:
    """Write the demo's truth: per-year and expected median speed maps and a JSON summary.

    Files (in ``root``): ``truth_speed_2022.tif``, ``truth_speed_2023.tif`` (speed, m/yr, on
    the 10 m demo grid), ``truth_median_speed.tif`` (per-pixel median over the expected pairs
    of each pair's true speed - what the aggregated median map must show) and ``truth.json``
    with the expected scenes and pairs and glacier-wide median speeds (m/yr), all of ``stack``.
    """
    from ..io.cog import write_cog

    rows, cols = np.mgrid[0 : stack.shape[0], 0 : stack.shape[1]].astype(float)
    speed = {year: true_speed(year, rows, cols, stack.shape) for year in DEMO_MAX_SPEED_M_PER_YR}
    by_id = {s.item_id: s for s in stack.scenes}
    pairs = expected_pairs(stack)
    pair_years = [by_id[ref].datetime.year for ref, _ in pairs]
    median = np.median(np.stack([speed[y] for y in pair_years]), axis=0)
    files = {}
    for year, array in speed.items():
        path = write_cog(
            root / f"truth_speed_{year}.tif",
            {"v": array},
            demo_transform(),
            f"EPSG:{DEMO_EPSG}",
            band_units={"v": "m/yr"},
        )
        files[str(year)] = path.name
    write_cog(
        root / "truth_median_speed.tif", {"v": median}, demo_transform(), f"EPSG:{DEMO_EPSG}", band_units={"v": "m/yr"}
    )
    glacier = median > GLACIER_SPEED_THRESHOLD_M_PER_YR
    truth = {
        "description": "Known answer of the glacier-velocity demo (glacier_velocity.demo.scenes).",
        "units": "m/yr",
        "crs": f"EPSG:{DEMO_EPSG}",
        "max_speed_m_per_yr": {str(k): v for k, v in DEMO_MAX_SPEED_M_PER_YR.items()},
        "glacier_median_speed_m_per_yr": {
            str(y): float(np.median(speed[y][speed[y] > GLACIER_SPEED_THRESHOLD_M_PER_YR])) for y in speed
        },
        "glacier_speed_threshold_m_per_yr": GLACIER_SPEED_THRESHOLD_M_PER_YR,
        "median_speed_map": "truth_median_speed.tif",
        "glacier_outlines": DEMO_OUTLINES_FILE,
        "median_speed_glacier_median_m_per_yr": float(np.median(median[glacier])),
        "speed_maps": files,
        "selected_scenes": [s.item_id for s in stack.scenes if s.role == "used"],
        "geolocation_error_px": {
            "description": "each scene's geolocation error (dx along columns = east, dy along rows = south); "
            "a pair sees secondary minus reference as a shift of the whole image",
            **{
                s.item_id: dict(zip(("dx", "dy"), geolocation_error(i), strict=True))
                for i, s in enumerate(stack.scenes)
            },
        },
        "pairs": [
            {
                "reference": ref,
                "secondary": sec,
                "year": y,
                "misregistration_px": _pair_misregistration(ref, sec, stack.scenes),
            }
            for (ref, sec), y in zip(pairs, pair_years, strict=True)
        ],
    }
    path = root / "truth.json"
    path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return path


def generate_demo_data(root: str | os.PathLike[str], stack: DemoStack = DEMO_STACK) -> DemoData:
    """Generate the demo stack, its STAC items and collection, and the truth.

    Parameters
    ----------
    root : path-like
        Output directory (created; existing demo files are overwritten). About 3 MB for the
        demo's stack.
    stack : DemoStack
        Scenes and image size; default the demo's (:data:`DEMO_STACK`).

    Returns
    -------
    DemoData
        Paths of the collection, the item collection and the truth, and the AOI.
    """
    root = Path(root).resolve()
    scenes_dir = root / "scenes"
    scenes_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for index, scene in enumerate(stack.scenes):
        nir_path = scenes_dir / f"{scene.item_id}_B08.tif"
        _write_scene_cog(nir_path, scene_image(scene, index, stack.shape), demo_transform(), "nir")
        scl_path = scenes_dir / f"{scene.item_id}_SCL.tif"
        _write_scene_cog(scl_path, scene_scl(scene, index, stack.shape), scl_transform(), "scl")
        items.append(scene_item(scene, nir_path, stack.shape, scl_path))
    stac_dir = root / "stac"
    stac_dir.mkdir(exist_ok=True)
    collection_path = stac_dir / "collection.json"
    collection_path.write_text(json.dumps(collection_json(items), indent=2) + "\n", encoding="utf-8")
    items_path = stac_dir / "items.json"
    items_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": items}, indent=2) + "\n", encoding="utf-8"
    )
    # One file per item as well: the correlation tool can run on item files without a server.
    (stac_dir / "items").mkdir(exist_ok=True)
    for item in items:
        (stac_dir / "items" / f"{item['id']}.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
    truth_path = write_truth(root, stack)
    write_demo_outlines(root, stack.shape)
    log.info("demo stack of %d scenes written to %s", len(items), root)
    return DemoData(
        root=root, collection=collection_path, items=items_path, truth=truth_path, bbox=demo_bbox(stack.shape)
    )
