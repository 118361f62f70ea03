"""Write the three papermill notebooks of the workflow from the cell sources below.

The notebooks are the source of truth users open and CWL runs; this script only keeps their
cells reviewable as plain Python in one place. Run it after editing a cell:

    .venv/bin/python notebooks/make_notebooks.py

Each notebook has exactly one cell tagged ``parameters`` (papermill injects the run's values
after it), then library calls and displays only, and glues its results with scrapbook under
the names listed in :mod:`glacier_velocity.scrap`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}

DISCOVERY = [
    new_markdown_cell(
        "# 1. Discovery: Sentinel-2 scenes and image pairs\n\n"
        "Searches a STAC API for Sentinel-2 L2A scenes over the area of interest, keeps the first "
        "suitable scene of each month in the season (cloud cover, one MGRS tile, footprint covering "
        "the area), pairs each scene with the next *N* and filters the pairs by baseline. Writes the "
        "pair list to `pairs_json` and glues it as `pairs` for the correlation step. Finding nothing "
        "is not an error: the pair list is then empty and the message says which filter removed what."
    ),
    new_code_cell(
        """\
# STAC API root URL and the collection of Sentinel-2 L2A items (with a `nir` B08 asset).
stac_url = "https://earth-search.aws.element84.com/v1"
collection = "sentinel-2-l2a"
# Area of interest: [west, south, east, north] in degrees of longitude/latitude (WGS 84).
bbox = [75.194, 36.201, 75.424, 36.411]
# Or a GeoJSON file with a (Multi)Polygon in lon/lat; when given it replaces bbox. None: use bbox.
geometry = None
# Season years, inclusive (a season wrapping the year end belongs to the year it starts in).
start_year = 2019
end_year = 2022
# Season months 1-12, inclusive; start_month > end_month wraps the year end (e.g. 11 to 2).
start_month = 5
end_month = 10
# Largest cloud cover accepted, percent (0-100).
max_cloud_cover = 10.0
# Pair each selected scene with the next N selected scenes (N >= 1).
pairs_per_image = 2
# Baseline range of a pair, days; None: no limit.
min_baseline_days = None
max_baseline_days = None
# MGRS tile to use, e.g. "43SEA"; None: the tile covering the area of interest best.
tile = None
# True: judge cloud cover over the area of interest from the `scl` asset; False: the tile's eo:cloud_cover.
aoi_cloud_cover = False
# Output: the pair list (JSON file).
pairs_json = "pairs.json"
""",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        """\
import matplotlib.pyplot as plt
import scrapbook as sb

from glacier_velocity.aoi import read_aoi
from glacier_velocity.discovery import DiscoveryParams, discover_pairs
from glacier_velocity.errors import NoPairsFound, NoScenesFound
from glacier_velocity.pairing import format_pair_table, format_scene_table, write_pairs_json
from glacier_velocity.scrap import PairRecord"""
    ),
    new_code_cell(
        """\
params = DiscoveryParams(
    stac_url=stac_url,
    collection=collection,
    bbox=None if geometry else bbox,
    geometry=read_aoi(geometry) if geometry else None,
    start_year=start_year,
    end_year=end_year,
    start_month=start_month,
    end_month=end_month,
    max_cloud_cover=max_cloud_cover,
    pairs_per_image=pairs_per_image,
    min_baseline_days=min_baseline_days,
    max_baseline_days=max_baseline_days,
    tile=tile,
    aoi_cloud_cover=aoi_cloud_cover,
)
# No scenes or no pairs is an answer, not a failure: the workflow goes on with an empty list.
try:
    result = discover_pairs(params)
except (NoScenesFound, NoPairsFound) as exc:
    result = None
    message = f"no pairs found: {exc}"
else:
    message = (
        f"{len(result.pairs)} pairs from {len(result.scenes_selected)} selected of "
        f"{len(result.scenes_found)} scenes found, tile {result.tile}"
    )
pairs = list(result.pairs) if result is not None else []
write_pairs_json(pairs, pairs_json, parameters=params.to_dict())
print(message)"""
    ),
    new_markdown_cell("## What each filter removed, the selected scenes and the pairs"),
    new_code_cell(
        """\
if result is not None:
    print(result.summary(), end="\\n\\n")
    print(format_scene_table(result.scenes_selected), end="\\n\\n")
    print(format_pair_table(result.pairs))"""
    ),
    new_markdown_cell(
        "## Timeline\n\nGrey: every scene found (cloud cover on the left axis); blue: the selected scenes; "
        "each bar a pair, from its reference to its secondary acquisition."
    ),
    new_code_cell(
        """\
if result is not None:
    fig, (ax_scenes, ax_pairs) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, height_ratios=(1, 2))
    ax_scenes.scatter([s.datetime for s in result.scenes_found], [s.cloud_cover or 0 for s in result.scenes_found],
                      color="0.7", label="found")
    ax_scenes.scatter([s.datetime for s in result.scenes_selected], [s.cloud_cover or 0 for s in result.scenes_selected],
                      color="tab:blue", label="selected")
    ax_scenes.axhline(max_cloud_cover, color="tab:red", lw=0.8, ls="--", label="cloud limit")
    ax_scenes.set_ylabel("cloud cover (%)")
    ax_scenes.legend(loc="upper left", fontsize="small", ncols=3)
    ax_pairs.hlines(range(len(pairs)), [p.reference.datetime for p in pairs], [p.secondary.datetime for p in pairs],
                    color="tab:blue", lw=4)
    ax_pairs.set_yticks(range(len(pairs)), [f"{p.id} ({p.dt_days:.0f} d)" for p in pairs], fontsize="small")
    ax_pairs.invert_yaxis()
    ax_pairs.set_xlabel("acquisition date (UTC)")
    fig.tight_layout()
    plt.show()"""
    ),
    new_code_cell(
        """\
records = [PairRecord.from_pair(pair).to_dict() for pair in pairs]
sb.glue("pairs", records)
sb.glue("pairs_json", str(pairs_json))
sb.glue("message", message)
sb.glue("scene_count", len(result.scenes_found) if result is not None else 0)
sb.glue("selected_count", len(result.scenes_selected) if result is not None else 0)
sb.glue("pair_count", len(records))"""
    ),
]

CORRELATION = [
    new_markdown_cell(
        "# 2. Correlation: velocity of one image pair\n\n"
        "Reads the near-infrared band (B08, 10 m) of both scenes over the area of interest, tracks "
        "surface features with the search range scaled to the pair's baseline and the maximum speed, "
        "and writes the velocity COG (`vx`, `vy`, `v` in m/yr and quality bands), a quicklook PNG and a "
        "STAC item into the directory `pair_id`."
    ),
    new_code_cell(
        """\
# STAC items (URL or path) of the earlier (reference) and later (secondary) scene.
reference_href = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_43SEA_20200922_0_L2A"
secondary_href = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_43SEA_20201002_0_L2A"
# Name of the output directory (letters, digits, - and _).
pair_id = "pair"
# Area of interest: [west, south, east, north] in degrees lon/lat (WGS 84); None: the whole scene.
bbox = [75.194, 36.201, 75.424, 36.411]
# Fastest surface speed expected anywhere in the area, m/yr (sets the search range with the baseline).
max_velocity_m_per_yr = 1000.0
# Distance between tracking grid points, pixels (10 m each).
grid_spacing_px = 12
# Side of the square chip matched around each grid point, pixels (even, 8-256).
chip_px = 32
# Pre-filter: "wallis", "hps" (high-pass), "oc" (orientation correlation) or "none".
filter = "wallis"
# Tracking engine: "ncc" (this package) or "autorift" (NASA JPL autoRIFT, when installed).
engine = "ncc"
# True: mask clouds, cloud shadows and defective pixels from the items' `scl` assets (when present).
mask_clouds = False
""",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        """\
import matplotlib.pyplot as plt
import scrapbook as sb
from IPython.display import Image, display

from glacier_velocity.correlate import CorrelationParams, choose_aoi, correlate_pair, load_scene
from glacier_velocity.pairing import Pair
from glacier_velocity.raster import read_window"""
    ),
    new_code_cell(
        """\
params = CorrelationParams(
    max_velocity_m_per_yr=max_velocity_m_per_yr,
    grid_spacing_px=grid_spacing_px,
    chip_px=chip_px,
    filter=filter,
    engine=engine,
    bbox=bbox,
    mask_clouds=mask_clouds,
)
pair = Pair(load_scene(reference_href, "reference"), load_scene(secondary_href, "secondary"))
aoi = choose_aoi(pair, params.bbox)
print(f"pair {pair.id}: {pair.reference.id} -> {pair.secondary.id}, {pair.dt_days:.2f} days, AOI {aoi}")"""
    ),
    new_markdown_cell("## The two images (B08 digital numbers over the area of interest)"),
    new_code_cell(
        """\
reference_image = read_window(pair.reference.nir_href, aoi)
secondary_image = read_window(pair.secondary.nir_href, aoi)
fig, axes = plt.subplots(1, 2, figsize=(12, 6), sharex=True, sharey=True)
for ax, image, scene in zip(axes, (reference_image, secondary_image), (pair.reference, pair.secondary)):
    shown = ax.imshow(image.array, cmap="gray", vmin=image.array[image.valid].min(), vmax=image.array[image.valid].max())
    ax.set_title(f"{scene.id}\\n{scene.datetime:%Y-%m-%d %H:%M} UTC")
    fig.colorbar(shown, ax=ax, shrink=0.7, label="B08 DN")
fig.tight_layout()
plt.show()"""
    ),
    new_markdown_cell("## Feature tracking and the velocity product"),
    new_code_cell(
        """\
products = correlate_pair(reference_href, secondary_href, pair_id, params)
print(products.summary())"""
    ),
    new_markdown_cell("## Velocity quicklook (speed in m/yr, flow arrows)"),
    new_code_cell("display(Image(filename=str(products.quicklook)))"),
    new_code_cell(
        """\
stats = {
    "basename": products.basename,
    "dt_days": products.dt_days,
    "search_px": products.search_px,
    "grid_shape": list(products.grid_shape),
    "valid_fraction": products.valid_fraction,
    "median_speed_m_per_yr": products.median_speed_m_per_yr,
}
sb.glue("pair_id", pair_id)
sb.glue("velocity", str(products.cog))
sb.glue("quicklook", str(products.quicklook))
sb.glue("item", str(products.item))
sb.glue("stats", stats)"""
    ),
]

AGGREGATION = [
    new_markdown_cell(
        "# 3. Aggregation: summary of all pairs and the STAC catalog\n\n"
        "Stacks every pair's velocity on the first product's grid and writes per-pixel median speed, "
        "median vx and vy, the standard deviation of speed (m/yr) and the valid-map count as COGs into "
        "`out_dir`, the summary and time series figures, and a self-contained STAC catalog into "
        "`catalog_dir`. Without products (discovery found no pairs) it writes an empty catalog and "
        "says why."
    ),
    new_code_cell(
        """\
# Pair product directories written by the correlation notebook (velocity COG, quicklook, STAC item each).
products = []
# Account of the discovery step, reported when there are no products.
message = ""
# Output directories: summary COGs and figures; the STAC catalog (catalog.json).
out_dir = "summary"
catalog_dir = "catalog"
""",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        """\
from pathlib import Path

import pystac
import scrapbook as sb
from IPython.display import Image, display

from glacier_velocity.aggregate import aggregate_products, write_summary
from glacier_velocity.catalog import write_catalog
from glacier_velocity.figures import plot_summary, plot_time_series"""
    ),
    new_code_cell(
        """\
# Each product directory holds one velocity COG (.tif) and its STAC item (.json).
velocity_cogs = sorted(str(path) for directory in products for path in Path(directory).glob("*.tif"))
item_paths = sorted(str(path) for directory in products for path in Path(directory).glob("*.json"))
if velocity_cogs:
    summary = aggregate_products(velocity_cogs)
    files = write_summary(summary, out_dir)
    summary_figure = plot_summary(summary, f"{out_dir}/summary_figure.png")
    time_series_figure = plot_time_series(summary, f"{out_dir}/time_series.png")
    stats = {
        "pair_count": summary.product_count,
        "median_speed_m_per_yr": summary.median_speed,
        "valid_fraction": summary.valid_fraction,
        "start_datetime": summary.start_datetime.isoformat() if summary.start_datetime else None,
        "end_datetime": summary.end_datetime.isoformat() if summary.end_datetime else None,
        "pairs": [{"reference_id": e.reference_id, "secondary_id": e.secondary_id, "dt_days": e.dt_days,
                   "median_v_m_per_yr": e.median_v, "valid_fraction": e.valid_fraction} for e in summary.entries],
    }
    outcome = (f"{summary.product_count} pairs aggregated: median speed {summary.median_speed:.1f} m/yr, "
               f"{100 * summary.valid_fraction:.0f} % of the grid measured")
else:
    files = None
    stats = {"pair_count": 0, "median_speed_m_per_yr": None, "valid_fraction": 0.0, "pairs": []}
    outcome = f"no velocity products to aggregate ({message or 'no pairs were given'})"
if velocity_cogs:
    catalog = write_catalog(catalog_dir, item_paths, files)
else:
    # An empty but valid catalog keeps the workflow's outputs the same shape with no pairs.
    empty = pystac.Catalog(id="glacier-velocity", title="Glacier surface velocity: no pairs", description=outcome)
    empty.normalize_hrefs(catalog_dir)
    empty.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    catalog = f"{catalog_dir}/catalog.json"
print(outcome)"""
    ),
    new_markdown_cell("## Summary maps (median speed, spread, count) and time series"),
    new_code_cell(
        """\
if velocity_cogs:
    display(Image(filename=str(summary_figure)))
    display(Image(filename=str(time_series_figure)))"""
    ),
    new_code_cell(
        """\
sb.glue("stats", stats)
sb.glue("message", outcome)
sb.glue("catalog", str(catalog))"""
    ),
]


def write(name: str, cells: list) -> Path:
    """Write one notebook into this directory; returns its path."""
    notebook = new_notebook(cells=cells, metadata=KERNEL)
    # Stable cell ids keep regenerated notebooks diff-free.
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{Path(name).stem}-{index:02d}"
    nbformat.validate(notebook)
    path = HERE / name
    nbformat.write(notebook, path)
    return path


if __name__ == "__main__":
    for name, cells in (
        ("01-discovery.ipynb", DISCOVERY),
        ("02-correlation.ipynb", CORRELATION),
        ("03-aggregation.ipynb", AGGREGATION),
    ):
        print(write(name, cells))
