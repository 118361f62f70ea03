"""The embedded offline demo: a small Sentinel-2-like stack over a made-up glacier, its truth,
and a runner that pushes it through the CWL Workflow against a local STAC API.

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

The runner (:func:`run_demo`) serves the items with ``rustac serve`` on a free port, writes
the job file, runs ``cwltool --no-container`` on ``cwl/glacier-velocity.cwl``, stops the
server, and compares the recovered median speed with the truth (:func:`compare_with_truth`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_geom

from .errors import InputError, InvalidParameter
from .runreport import RunReport, read_run_report
from .synthetic import GlacierTongue, make_texture, warp_image

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
    return datetime(year, month, day, 5, 52, 31, tzinfo=timezone.utc)


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


def _footprint(margin: float = 0.0) -> dict[str, Any]:
    """The image rectangle, shrunk by ``margin`` of its size on each side, in lon/lat."""
    rows, cols = DEMO_SHAPE
    t = demo_transform()
    c0, c1 = cols * margin, cols * (1 - margin)
    r0, r1 = rows * margin, rows * (1 - margin)
    ring = [t @ (c0, r0), t @ (c1, r0), t @ (c1, r1), t @ (c0, r1), t @ (c0, r0)]
    geom = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    return transform_geom(f"EPSG:{DEMO_EPSG}", "EPSG:4326", geom)


def demo_bbox() -> tuple[float, float, float, float]:
    """Area of interest of the demo (lon/lat degrees, W S E N), rounded to 4 decimals.

    It lies inside every scene's footprint (an 8 % margin of the image on each side).
    """
    coords = np.asarray(_footprint(_AOI_MARGIN)["coordinates"][0])
    west, south = coords.min(axis=0)
    east, north = coords.max(axis=0)
    # Rounding inwards keeps the box inside the inner rectangle's lon/lat hull.
    return (
        float(np.ceil(west * 1e4) / 1e4),
        float(np.ceil(south * 1e4) / 1e4),
        float(np.floor(east * 1e4) / 1e4),
        float(np.floor(north * 1e4) / 1e4),
    )


def velocity_field(year: int) -> GlacierTongue:
    """The demo glacier's displacement field for one year, in px per year.

    Parameters
    ----------
    year : int
        2022 or 2023 (keys of :data:`DEMO_MAX_SPEED_M_PER_YR`).

    Returns
    -------
    glacier_velocity.synthetic.GlacierTongue
        Displacement (px) over :data:`FIELD_YEARS` of a glacier tongue whose fastest point
        moves ``DEMO_MAX_SPEED_M_PER_YR[year] / DEMO_PIXEL_M`` px per year.
    """
    if year not in DEMO_MAX_SPEED_M_PER_YR:
        raise InvalidParameter("year", f"the demo has velocity fields for {sorted(DEMO_MAX_SPEED_M_PER_YR)}, not {year}")
    return GlacierTongue(DEMO_SHAPE, max_px=DEMO_MAX_SPEED_M_PER_YR[year] / DEMO_PIXEL_M * FIELD_YEARS)


def true_speed(year: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True surface speed (m/yr) of the demo glacier at pixel positions.

    Parameters
    ----------
    year : int
        Year of the velocity field.
    rows, cols : ndarray
        Pixel-centre coordinates on the demo grid (px), broadcastable to one shape.

    Returns
    -------
    ndarray of float64
        Speed (m/yr) at each position.
    """
    dx, dy = velocity_field(year).displacement(rows, cols)
    return np.hypot(dx, dy) * DEMO_PIXEL_M / FIELD_YEARS


def _years_since_epoch(when: datetime) -> float:
    # Each year's field is anchored at 1 August, the middle of the season: a pair within one
    # year sees exactly that year's velocity times its baseline, and the displacement from
    # the texture never exceeds ~2 months of motion, which keeps the warp invertible.
    epoch = datetime(when.year, 8, 1, tzinfo=timezone.utc)
    return (when - epoch).total_seconds() / 86400.0 / 365.25


def scene_image(scene: DemoScene, index: int) -> np.ndarray:
    """The demo ``nir`` image (DN, uint16, 0 = nodata) of one scene.

    The texture (ice where the glacier moves) is warped by the year's velocity field times
    the years elapsed since 1 August of that year, then given a scene-specific gain (illumination) and Gaussian noise (seeded by
    ``index``). Cloudy scenes also get bright cloud blobs.
    """
    glacier = velocity_field(scene.datetime.year)
    rows, cols = np.mgrid[0 : DEMO_SHAPE[0], 0 : DEMO_SHAPE[1]]
    texture = make_texture(
        DEMO_SHAPE,
        seed=DEMO_TEXTURE_SEED,
        pixel_size_m=DEMO_PIXEL_M,
        ice_mask=glacier.is_moving(rows, cols),
        crevasse_angle_deg=glacier.flow_angle_deg,
    )
    field = glacier.scaled(_years_since_epoch(scene.datetime) / FIELD_YEARS)
    warped = np.asarray(warp_image(texture, field), dtype=np.float64)
    rng = np.random.default_rng(1000 + index)
    gain = 1.0 + 0.08 * np.sin(index)
    dn = warped * gain + rng.normal(0.0, 60.0, DEMO_SHAPE)
    if scene.cloud_cover > DEMO_MAX_CLOUD_COVER:
        rr, cc = np.mgrid[0 : DEMO_SHAPE[0], 0 : DEMO_SHAPE[1]]
        for _ in range(6):
            r0, c0 = rng.uniform(0, DEMO_SHAPE[0]), rng.uniform(0, DEMO_SHAPE[1])
            radius = rng.uniform(40, 120)
            dn += 9000.0 * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * radius**2))
    # DN 0 means nodata in Sentinel-2 L2A; keep valid pixels at 1 or more.
    return np.clip(np.rint(dn), 1, 65535).astype(np.uint16)


def _write_nir_cog(path: Path, image: np.ndarray) -> None:
    profile = {
        "driver": "COG",
        "width": image.shape[1],
        "height": image.shape[0],
        "count": 1,
        "dtype": "uint16",
        "crs": f"EPSG:{DEMO_EPSG}",
        "transform": demo_transform(),
        "nodata": 0,
        "compress": "DEFLATE",
        "blocksize": 256,
        "overviews": "AUTO",
    }
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(image, 1)
        dst.set_band_description(1, "nir")


def scene_item(scene: DemoScene, nir_path: Path) -> dict[str, Any]:
    """Earth-Search-v1-shaped STAC item (as JSON) of one demo scene.

    Parameters
    ----------
    scene : DemoScene
    nir_path : Path
        Absolute path of the scene's ``nir`` COG; becomes the asset href.
    """
    rows, cols = DEMO_SHAPE
    footprint = _footprint()
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
        "bbox": [float(coords[:, 0].min()), float(coords[:, 1].min()), float(coords[:, 0].max()), float(coords[:, 1].max())],
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
        "assets": {
            "nir": {
                "href": str(nir_path),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "NIR 1 - 10m",
                "roles": ["data", "reflectance"],
                "gsd": DEMO_PIXEL_M,
                "eo:bands": [{"name": "B08", "common_name": "nir", "center_wavelength": 0.842, "full_width_half_max": 0.145}],
                "proj:shape": [rows, cols],
                "proj:transform": list(demo_transform())[:6],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": DEMO_PIXEL_M, "scale": 0.0001, "offset": -0.1}],
            }
        },
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
            "glacier_velocity.demo; item and asset fields follow Earth Search v1."
        ),
        "license": "CC0-1.0",
        "links": [],
        "extent": {
            "spatial": {"bbox": [[float(bboxes[:, 0].min()), float(bboxes[:, 1].min()), float(bboxes[:, 2].max()), float(bboxes[:, 3].max())]]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
    }


def expected_pairs() -> list[tuple[str, str]]:
    """The (reference id, secondary id) pairs discovery must build with the demo parameters.

    Used scenes per year in time order, paired with the next ``DEMO_PAIRS_PER_IMAGE`` used
    scenes, kept when the baseline is at most ``DEMO_MAX_BASELINE_DAYS``. Pairs across the
    two seasons are longer than that and so never kept.
    """
    used = [s for s in DEMO_SCENES if s.role == "used"]
    pairs = []
    for i, reference in enumerate(used):
        for secondary in used[i + 1 : i + 1 + DEMO_PAIRS_PER_IMAGE]:
            dt = (secondary.datetime - reference.datetime).total_seconds() / 86400.0
            if dt <= DEMO_MAX_BASELINE_DAYS:
                pairs.append((reference.item_id, secondary.item_id))
    return pairs


def write_truth(root: Path) -> Path:
    """Write the demo's truth: per-year and expected median speed maps and a JSON summary.

    Files (in ``root``): ``truth_speed_2022.tif``, ``truth_speed_2023.tif`` (speed, m/yr, on
    the 10 m demo grid), ``truth_median_speed.tif`` (per-pixel median over the expected pairs
    of each pair's true speed - what the aggregated median map must show) and ``truth.json``
    with the expected scenes and pairs and glacier-wide median speeds (m/yr).
    """
    from .cog import write_cog

    rows, cols = np.mgrid[0 : DEMO_SHAPE[0], 0 : DEMO_SHAPE[1]].astype(float)
    speed = {year: true_speed(year, rows, cols) for year in DEMO_MAX_SPEED_M_PER_YR}
    by_id = {s.item_id: s for s in DEMO_SCENES}
    pairs = expected_pairs()
    pair_years = [by_id[ref].datetime.year for ref, _ in pairs]
    median = np.median(np.stack([speed[y] for y in pair_years]), axis=0)
    files = {}
    for year, array in speed.items():
        path = write_cog(root / f"truth_speed_{year}.tif", {"v": array}, demo_transform(), f"EPSG:{DEMO_EPSG}", band_units={"v": "m/yr"})
        files[str(year)] = path.name
    write_cog(root / "truth_median_speed.tif", {"v": median}, demo_transform(), f"EPSG:{DEMO_EPSG}", band_units={"v": "m/yr"})
    glacier = median > GLACIER_SPEED_THRESHOLD_M_PER_YR
    truth = {
        "description": "Known answer of the glacier-velocity demo (glacier_velocity.demo).",
        "units": "m/yr",
        "crs": f"EPSG:{DEMO_EPSG}",
        "max_speed_m_per_yr": {str(k): v for k, v in DEMO_MAX_SPEED_M_PER_YR.items()},
        "glacier_median_speed_m_per_yr": {str(y): float(np.median(speed[y][speed[y] > GLACIER_SPEED_THRESHOLD_M_PER_YR])) for y in speed},
        "glacier_speed_threshold_m_per_yr": GLACIER_SPEED_THRESHOLD_M_PER_YR,
        "median_speed_map": "truth_median_speed.tif",
        "median_speed_glacier_median_m_per_yr": float(np.median(median[glacier])),
        "speed_maps": files,
        "selected_scenes": [s.item_id for s in DEMO_SCENES if s.role == "used"],
        "pairs": [{"reference": ref, "secondary": sec, "year": y} for (ref, sec), y in zip(pairs, pair_years)],
    }
    path = root / "truth.json"
    path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return path


def generate_demo_data(root: str | os.PathLike[str]) -> DemoData:
    """Generate the demo stack, its STAC items and collection, and the truth.

    Parameters
    ----------
    root : path-like
        Output directory (created; existing demo files are overwritten). About 3 MB.

    Returns
    -------
    DemoData
        Paths of the collection, the item collection and the truth, and the AOI.
    """
    root = Path(root).resolve()
    scenes_dir = root / "scenes"
    scenes_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for index, scene in enumerate(DEMO_SCENES):
        nir_path = scenes_dir / f"{scene.item_id}_B08.tif"
        _write_nir_cog(nir_path, scene_image(scene, index))
        items.append(scene_item(scene, nir_path))
    stac_dir = root / "stac"
    stac_dir.mkdir(exist_ok=True)
    collection_path = stac_dir / "collection.json"
    collection_path.write_text(json.dumps(collection_json(items), indent=2) + "\n", encoding="utf-8")
    items_path = stac_dir / "items.json"
    items_path.write_text(json.dumps({"type": "FeatureCollection", "features": items}, indent=2) + "\n", encoding="utf-8")
    # One file per item as well: the correlation tool can run on item files without a server.
    (stac_dir / "items").mkdir(exist_ok=True)
    for item in items:
        (stac_dir / "items" / f"{item['id']}.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
    truth_path = write_truth(root)
    log.info("demo stack of %d scenes written to %s", len(items), root)
    return DemoData(root=root, collection=collection_path, items=items_path, truth=truth_path, bbox=demo_bbox())


@dataclass(frozen=True)
class TruthComparison:
    """Recovered against true median speed over the demo glacier.

    Attributes
    ----------
    recovered_m_per_yr : float
        Median over glacier grid points of the aggregated median speed (m/yr).
    true_m_per_yr : float
        Median over the same points of the true median speed (m/yr).
    error_m_per_yr : float
        ``recovered - true`` (m/yr).
    relative_error : float
        ``error / true`` (dimensionless).
    pixel_mae_m_per_yr : float
        Mean absolute per-point difference over glacier points with a value (m/yr).
    n_points : int
        Glacier grid points compared (finite recovered value, true speed above the threshold).
    coverage : float
        Fraction of glacier grid points with a recovered value (0..1).
    """

    recovered_m_per_yr: float
    true_m_per_yr: float
    error_m_per_yr: float
    relative_error: float
    pixel_mae_m_per_yr: float
    n_points: int
    coverage: float

    def describe(self) -> str:
        """One line: recovered vs true median speed and the error."""
        return (
            f"median glacier speed {self.recovered_m_per_yr:.1f} m/yr recovered vs {self.true_m_per_yr:.1f} m/yr true: "
            f"error {self.error_m_per_yr:+.1f} m/yr ({100 * self.relative_error:+.1f} %), per-point mean abs. error "
            f"{self.pixel_mae_m_per_yr:.1f} m/yr over {self.n_points} points ({100 * self.coverage:.0f} % of the glacier)"
        )


def compare_with_truth(
    median_speed_tif: str | os.PathLike[str],
    truth_json: str | os.PathLike[str],
    truth_map: str | None = None,
) -> TruthComparison:
    """Compare an aggregated median speed map with the demo truth.

    Each grid point of the recovered map (its pixel centre, a measurement position) is
    looked up in the 10 m true median speed map; points whose true speed exceeds the glacier
    threshold form the glacier.

    Parameters
    ----------
    median_speed_tif : path-like
        Aggregated median speed COG (band 1, m/yr, NaN = nodata), any grid in EPSG:32643.
    truth_json : path-like
        ``truth.json`` written by :func:`write_truth`.
    truth_map : str, optional
        File name (next to ``truth_json``) of the true speed map to compare with; default the
        expected median over the demo pairs. ``truth_speed_2022.tif`` suits a run on 2022 only.

    Returns
    -------
    TruthComparison
    """
    truth_path = Path(truth_json)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    with rasterio.open(truth_path.parent / (truth_map or truth["median_speed_map"])) as src:
        true_map = src.read(1).astype(float)
        true_inverse = ~src.transform
    with rasterio.open(median_speed_tif) as src:
        recovered = src.read(1, masked=True).filled(np.nan).astype(float)
        transform = src.transform
        if src.crs is None or src.crs.to_epsg() != DEMO_EPSG:
            raise InputError(f"{median_speed_tif}: expected a map in EPSG:{DEMO_EPSG}, got {src.crs}")
    rr, cc = np.mgrid[0 : recovered.shape[0], 0 : recovered.shape[1]]
    xs, ys = transform @ (cc + 0.5, rr + 0.5)
    tc, tr = true_inverse @ (xs, ys)
    tr_i, tc_i = np.floor(tr).astype(int), np.floor(tc).astype(int)
    inside = (tr_i >= 0) & (tr_i < true_map.shape[0]) & (tc_i >= 0) & (tc_i < true_map.shape[1])
    true_at = np.full(recovered.shape, np.nan)
    true_at[inside] = true_map[tr_i[inside], tc_i[inside]]
    glacier = inside & (true_at > float(truth["glacier_speed_threshold_m_per_yr"]))
    measured = glacier & np.isfinite(recovered)
    if not measured.any():
        raise InputError(f"{median_speed_tif}: no valid speed on the demo glacier; the tracking recovered nothing")
    recovered_median = float(np.median(recovered[measured]))
    true_median = float(np.median(true_at[measured]))
    error = recovered_median - true_median
    return TruthComparison(
        recovered_m_per_yr=recovered_median,
        true_m_per_yr=true_median,
        error_m_per_yr=error,
        relative_error=error / true_median,
        pixel_mae_m_per_yr=float(np.mean(np.abs(recovered[measured] - true_at[measured]))),
        n_points=int(measured.sum()),
        coverage=float(measured.sum() / glacier.sum()),
    )


# --- Running the Workflow ----------------------------------------------------------------------

#: The Workflow file and the demo job template, relative to the project root.
WORKFLOW = Path("cwl/glacier-velocity.cwl")
DEMO_PARAMS = Path("params/demo.yml")


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``cwl/glacier-velocity.cwl``: ``start`` (default the working
    directory) or one of its parents, else the source checkout this module was installed from.

    Raises
    ------
    InputError
        No such directory (e.g. a wheel install without the repository).
    """
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    candidates += [Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / WORKFLOW).is_file():
            return candidate
    raise InputError(
        f"cannot find {WORKFLOW} in {candidates[0]} or its parents; run from a clone of the glacier-velocity repository"
    )


def write_job(template: str | os.PathLike[str], path: str | os.PathLike[str], **overrides: Any) -> Path:
    """Copy a CWL job file (YAML), replacing some of its values.

    Parameters
    ----------
    template : path-like
        Job file to start from, e.g. ``params/demo.yml``.
    path : path-like
        Job file to write (its directory is created).
    **overrides
        Inputs to set, e.g. ``stac_url="http://127.0.0.1:40123"``.
    """
    import yaml

    job = yaml.safe_load(Path(template).read_text(encoding="utf-8")) or {}
    job.update(overrides)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def workflow_env() -> dict[str, str]:
    """Environment for cwltool: this interpreter's ``bin`` first on ``PATH``.

    cwltool hands each job only ``HOME``, ``TMPDIR`` and ``PATH``; with the virtualenv's
    ``bin`` first, ``papermill``, ``python`` and the ``python3`` kernel are this environment's.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir])
    return env


def write_pair_job(data: DemoData, path: str | os.PathLike[str], pair_index: int = 0, **overrides: Any) -> Path:
    """Job file for the correlation tool alone on one expected demo pair, from item files.

    Parameters
    ----------
    data : DemoData
        The generated demo stack.
    path : path-like
        Job file to write.
    pair_index : int
        Which of :func:`expected_pairs` (0 = the first).
    **overrides
        More inputs of ``cwl/correlate.cwl`` (e.g. ``grid_spacing_px=16``).
    """
    import yaml

    reference_id, secondary_id = expected_pairs()[pair_index]
    items = data.items.parent / "items"
    job = {
        "pair_id": f"{DEMO_TILE}_{reference_id.split('_')[2]}_{secondary_id.split('_')[2]}",
        "reference_href": str(items / f"{reference_id}.json"),
        "secondary_href": str(items / f"{secondary_id}.json"),
        "bbox": list(data.bbox),
        "max_velocity_m_per_yr": 1000.0,
        **overrides,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def run_cwltool(
    process: str | os.PathLike[str],
    job: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
) -> tuple[dict[str, Any], str]:
    """Run a CWL process with ``cwltool --no-container``; return its output object and log.

    Parameters
    ----------
    process : path-like
        CWL file (Workflow or CommandLineTool).
    job : path-like
        Job (input) file.
    outdir : path-like
        Where cwltool moves the outputs.
    extra_args : sequence of str
        More cwltool options (e.g. ``["--parallel"]``).
    quiet : bool
        Capture cwltool's log instead of showing it; it is part of the error when the run fails.

    Returns
    -------
    outputs : dict
        The CWL output object (output id -> File/Directory objects or values).
    log : str
        cwltool's log (stderr) when ``quiet``, else ``""`` (it went to the terminal).

    Raises
    ------
    WorkflowFailed
        cwltool exited with an error.
    """
    cwltool = Path(sys.executable).parent / "cwltool"
    command = [str(cwltool) if cwltool.exists() else "cwltool", "--no-container", "--outdir", str(outdir), *extra_args, str(process), str(job)]
    log.info("running %s", " ".join(command))
    completed = subprocess.run(command, env=workflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or "").strip().splitlines()[-40:])
        raise WorkflowFailed(f"cwltool failed (exit {completed.returncode}) on {process} with {job}" + (f":\n{tail}" if tail else ""))
    return json.loads(completed.stdout), completed.stderr or ""


class WorkflowFailed(InputError):
    """A cwltool run ended with an error; the message holds the end of its log."""


@dataclass(frozen=True)
class DemoResult:
    """Outcome of :func:`run_demo`.

    Attributes
    ----------
    outdir : Path
        Directory holding the Workflow's outputs.
    outputs : dict
        The CWL output object.
    message : str
        The aggregation notebook's one-line summary.
    stats : dict
        Statistics glued by the aggregation notebook (pair count, median speed in m/yr, ...).
    comparison : TruthComparison or None
        Recovered against true median speed; None when no summary map was produced.
    truth : Path
        The demo's ``truth.json``.
    log : str
        cwltool's log when the run was quiet, else ``""``.
    report : RunReport or None
        The run report (every pair attempted, succeeded or failed with its reason).
    """

    outdir: Path
    outputs: dict[str, Any] = field(hash=False)
    message: str
    stats: dict[str, Any] = field(hash=False)
    comparison: TruthComparison | None
    truth: Path
    log: str = ""
    report: RunReport | None = field(default=None, hash=False)

    def report_lines(self) -> list[str]:
        """What a person wants to read after a demo run: where, what, and how right."""
        lines = [f"results: {self.outdir}"]
        catalog = self.outputs.get("catalog")
        if catalog:
            lines.append(f"STAC catalog: {Path(catalog['path']) / 'catalog.json'}")
        figure = self.outputs.get("summary_figure")
        if figure:
            lines.append(f"summary figure: {figure['path']}")
        lines.append(f"summary: {self.message}")
        if self.comparison is None:
            lines.append("truth: no median speed map was produced, nothing to compare")
        else:
            lines.append(f"truth: {self.comparison.describe()}")
        return lines


def demo_result(outputs: dict[str, Any], outdir: Path, truth: Path, log: str = "") -> DemoResult:
    """Read a finished demo Workflow's outputs: scraps, run report and the truth comparison."""
    from .scrap import read_scraps

    scraps = read_scraps(outputs["aggregation_notebook"]["path"])
    median_map = median_speed_map(outputs)
    return DemoResult(
        outdir=outdir,
        outputs=outputs,
        message=str(scraps.get("message", "")),
        stats=dict(scraps.get("stats") or {}),
        comparison=compare_with_truth(median_map, truth) if median_map is not None else None,
        truth=truth,
        log=log,
        report=read_run_report(outputs["run_report"]["path"]) if outputs.get("run_report") else None,
    )


def median_speed_map(outputs: dict[str, Any]) -> Path | None:
    """Path of the median speed COG among the Workflow outputs (None when there is none)."""
    for cog in outputs.get("summary_cogs") or []:
        if cog["basename"] == "summary_median_v.tif":
            return Path(cog["path"])
    return None


def run_demo(
    demo_dir: str | os.PathLike[str] = DEFAULT_DEMO_DIR,
    *,
    project_root: str | os.PathLike[str] | None = None,
    job_template: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    quiet: bool = False,
    data: DemoData | None = None,
) -> DemoResult:
    """Generate the demo stack, serve it, run the Workflow with cwltool and check the result.

    Parameters
    ----------
    demo_dir : path-like
        Working directory of the demo: ``data/`` (stack, STAC JSON, truth), ``job.yml`` (the
        Workflow's job), ``pair.yml`` (a job for ``cwl/correlate.cwl`` alone on the first pair)
        and ``results/`` (the Workflow outputs; emptied first).
    project_root : path-like, optional
        Repository holding ``cwl/`` and ``params/``; found automatically by default.
    job_template : path-like, optional
        Job file to start from; default ``params/demo.yml``.
    overrides : dict, optional
        Inputs to change besides ``stac_url`` (e.g. a shorter season for tests).
    extra_args : sequence of str
        More cwltool options.
    quiet : bool
        Capture cwltool's log.
    data : DemoData, optional
        An already generated stack to serve instead of generating one into ``demo_dir/data``
        (e.g. a copy with a deliberately corrupted scene).

    Returns
    -------
    DemoResult
    """
    from .stacserver import serve_stac

    root = find_project_root(project_root)
    demo_dir = Path(demo_dir).resolve()
    if data is None:
        data = generate_demo_data(demo_dir / "data")
    write_pair_job(data, demo_dir / "pair.yml")
    results = demo_dir / "results"
    if results.exists():
        shutil.rmtree(results)
    with serve_stac([data.collection, data.items]) as stac_url:
        log.info("demo STAC API at %s", stac_url)
        job = write_job(root / (job_template or DEMO_PARAMS), demo_dir / "job.yml", stac_url=stac_url, **(overrides or {}))
        outputs, cwl_log = run_cwltool(root / WORKFLOW, job, results, extra_args=extra_args, quiet=quiet)
    return demo_result(outputs, results, data.truth, cwl_log)
