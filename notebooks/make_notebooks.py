"""Write the three papermill notebooks of the workflow from the cell sources below.

The notebooks are the source of truth users open and CWL runs; this script only keeps their
cells reviewable as plain Python in one place. Run it after editing a cell:

    .venv/bin/python notebooks/make_notebooks.py

Each notebook has exactly one cell tagged ``parameters`` (papermill injects the run's values
after it), then library calls and displays only, and glues its results with scrapbook under
the names listed in :mod:`glacier_velocity.workflow.extract_pairs`.
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
import scrapbook as sb
from IPython.display import Image, display

from glacier_velocity.stac.aoi import read_aoi
from glacier_velocity.stac.discovery import DiscoveryParams, discover_pairs
from glacier_velocity.errors import NoPairsFound, NoScenesFound
from glacier_velocity.products.figures import plot_pair_timeline
from glacier_velocity.stac.pairing import format_pair_table, format_scene_table, write_pairs_json
from glacier_velocity.workflow.extract_pairs import PairRecord"""
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
    timeline = plot_pair_timeline(result.scenes_found, pairs, "timeline.png", selected=result.scenes_selected,
                                  max_cloud_cover=max_cloud_cover)
    display(Image(filename=str(timeline)))"""
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
        "STAC item into the directory `pair_id`. Always writes the pair's status to "
        "`status_<pair_id>.json`: a failure of this pair (unreadable or corrupt scene, no overlap, "
        "nothing trackable) is recorded there with its reason, and the batch goes on without it."
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

from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair, choose_aoi
from glacier_velocity.io.raster import read_window
from glacier_velocity.products.runreport import write_status"""
    ),
    new_code_cell(
        """\
# A bad setting is the same mistake for every pair: it stops the run here.
params = CorrelationParams(
    max_velocity_m_per_yr=max_velocity_m_per_yr,
    grid_spacing_px=grid_spacing_px,
    chip_px=chip_px,
    filter=filter,
    engine=engine,
    bbox=bbox,
    mask_clouds=mask_clouds,
)
# A failure of this pair is recorded in its status and the batch goes on; any other
# exception is a bug and fails the notebook.
attempt = attempt_pair(reference_href, secondary_href, pair_id, params, pair_id=pair_id)
status_json = write_status(attempt.status, f"status_{pair_id}.json")
products = attempt.products
print(attempt.status.describe())"""
    ),
    new_markdown_cell("## The two images (B08 digital numbers over the area of interest)"),
    new_code_cell(
        """\
if attempt.succeeded:
    pair = attempt.pair
    aoi = choose_aoi(pair, params.bbox)
    reference_image = read_window(pair.reference.nir_href, aoi)
    secondary_image = read_window(pair.secondary.nir_href, aoi)
    fig, axes = plt.subplots(1, 2, figsize=(12, 6), sharex=True, sharey=True)
    for ax, image, scene in zip(axes, (reference_image, secondary_image), (pair.reference, pair.secondary)):
        shown = ax.imshow(image.array, cmap="gray", vmin=image.array[image.valid].min(), vmax=image.array[image.valid].max())
        ax.set_title(f"{scene.id}\\n{scene.datetime:%Y-%m-%d %H:%M} UTC")
        fig.colorbar(shown, ax=ax, shrink=0.7, label="B08 DN")
    fig.tight_layout()
    plt.show()
else:
    print(f"pair {pair_id} failed, nothing to show: {attempt.status.reason}")"""
    ),
    new_markdown_cell("## The velocity product and its quicklook (speed in m/yr, flow arrows)"),
    new_code_cell(
        """\
if products is not None:
    print(products.summary())
    display(Image(filename=str(products.quicklook)))"""
    ),
    new_code_cell(
        """\
stats = {
    "status": attempt.status.status,
    "basename": products.basename if products else None,
    "dt_days": products.dt_days if products else None,
    "search_px": products.search_px if products else None,
    "grid_shape": list(products.grid_shape) if products else None,
    "valid_fraction": products.valid_fraction if products else None,
    "median_speed_m_per_yr": attempt.status.median_speed_m_per_yr,
}
# Scraps cannot be None: a failed pair glues empty paths.
sb.glue("pair_id", pair_id)
sb.glue("status", attempt.status.to_dict())
sb.glue("velocity", str(products.cog) if products else "")
sb.glue("quicklook", str(products.quicklook) if products else "")
sb.glue("item", str(products.item) if products else "")
sb.glue("stats", stats)"""
    ),
]

AGGREGATION = [
    new_markdown_cell(
        "# 3. Aggregation: summary of all pairs, the run report and the STAC catalog\n\n"
        "Collects the status of every pair attempted into the run report (`run_report`: which "
        "pairs succeeded, which failed and why), stacks the velocity of every pair that succeeded "
        "on the first product's grid and writes per-pixel median speed, median vx and vy, the "
        "standard deviation of speed (m/yr) and the valid-map count as COGs into `out_dir`, the "
        "summary and time series figures, and a self-contained STAC catalog into `catalog_dir` "
        "(with the run report). Without products (no pairs found, or every pair failed) it writes "
        "the report and an empty catalog and says why."
    ),
    new_code_cell(
        """\
# Pair product directories written by the correlation notebook (velocity COG, quicklook, STAC item each);
# None for a pair that failed.
products = []
# Status files of the correlation notebook (status_<pair_id>.json), one per pair attempted;
# empty: every product directory counts as a pair that succeeded.
statuses = []
# Account of the discovery step, reported when there are no products.
message = ""
# Output directories: summary COGs and figures; the STAC catalog (catalog.json).
out_dir = "summary"
catalog_dir = "catalog"
# Output: the run report (JSON: every pair attempted, succeeded or failed with its reason).
run_report = "run-report.json"
""",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        """\
from pathlib import Path

import scrapbook as sb
from IPython.display import Image, display

from glacier_velocity.aggregation.summary import aggregate_products, write_summary
from glacier_velocity.products.catalog import write_catalog
from glacier_velocity.products.figures import plot_summary, plot_time_series
from glacier_velocity.products.runreport import build_run_report, write_run_report"""
    ),
    new_code_cell(
        """\
# Pairs that failed have no product directory; their statuses say why.
product_dirs = [directory for directory in products if directory]
report = build_run_report(statuses, product_dirs, message=message)
report_path = write_run_report(report, run_report)
# Each product directory holds one velocity COG (.tif) and its STAC item (.json).
velocity_cogs = sorted(str(path) for directory in product_dirs for path in Path(directory).glob("*.tif"))
item_paths = sorted(str(path) for directory in product_dirs for path in Path(directory).glob("*.json"))
run_stats = {
    "pairs_attempted": len(report.pairs),
    "pairs_succeeded": len(report.succeeded),
    "pairs_failed": len(report.failed),
    "run_summary": report.summary_line(),
    "failed_pairs": [{"pair_id": p.pair_id, "error_type": p.error_type, "reason": p.reason} for p in report.failed],
}
if velocity_cogs:
    summary = aggregate_products(velocity_cogs)
    files = write_summary(summary, out_dir).with_figures(
        plot_summary(summary, f"{out_dir}/summary_figure.png"),
        plot_time_series(summary, f"{out_dir}/time_series.png"),
    )
    stats = {
        "pair_count": summary.product_count,
        "median_speed_m_per_yr": summary.median_speed,
        "valid_fraction": summary.valid_fraction,
        "start_datetime": summary.start_datetime.isoformat() if summary.start_datetime else None,
        "end_datetime": summary.end_datetime.isoformat() if summary.end_datetime else None,
        "pairs": [{"reference_id": e.reference_id, "secondary_id": e.secondary_id, "dt_days": e.dt_days,
                   "median_v_m_per_yr": e.median_v, "valid_fraction": e.valid_fraction} for e in summary.entries],
        **run_stats,
    }
    outcome = (f"{report.summary_line()}: {summary.product_count} pairs aggregated, median speed "
               f"{summary.median_speed:.1f} m/yr, {100 * summary.valid_fraction:.0f} % of the grid measured")
    catalog_text = {}
else:
    files = None
    stats = {"pair_count": 0, "median_speed_m_per_yr": None, "valid_fraction": 0.0, "pairs": [], **run_stats}
    if report.failed:
        first = report.failed[0]
        outcome = (f"no velocity products to aggregate: {report.summary_line()}, every pair failed "
                   f"(first, {first.pair_id}: {first.reason}); see {run_report}")
    else:
        outcome = f"no velocity products to aggregate ({message or 'no pairs were given'}); {report.summary_line()}"
    catalog_text = {"title": "Glacier surface velocity: no products", "description": outcome}
catalog = write_catalog(catalog_dir, item_paths, files, run_report=report, **catalog_text)
print(outcome)
print(report.describe())"""
    ),
    new_markdown_cell("## Summary maps (median speed, spread, count) and time series"),
    new_code_cell(
        """\
if files is not None:
    display(Image(filename=str(files.summary_figure)))
    display(Image(filename=str(files.time_series_figure)))"""
    ),
    new_code_cell(
        """\
sb.glue("stats", stats)
sb.glue("message", outcome)
sb.glue("catalog", str(catalog))
sb.glue("run_report", str(report_path))"""
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
