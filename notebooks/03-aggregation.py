# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Aggregation: summary of all pairs, the run report and the STAC catalog
#
# Collects the status of every pair attempted into the run report (`run-report.json`: which
# pairs succeeded, which failed and why), stacks the velocity of every pair that succeeded on
# the first product's grid and writes per-pixel median speed, median vx and vy, the standard
# deviation of speed (m/yr) and the valid-map count as COGs with the summary and time series
# figures into `summary/`, and a self-contained STAC catalog (with the run report) into
# `catalog/`, all under `out_dir`, with the velocity datacube (every pair on the common grid,
# NetCDF) in `summary/`. Without products it writes the report and an empty catalog and says
# why; when every pair attempted failed it then fails, listing each pair's reason (no pairs
# found is still a success). When every pair is left out of the summary (no stable ground
# without outlines, say), or too few remain for `min_count`, there is no summary: the run
# report, the catalog of the pairs' products and this notebook say why and what to give, and
# the step succeeds so that the run keeps them. The step is
# `glacier_velocity.workflow.aggregate.aggregate_run`, which `glacier-velocity aggregate` runs too.

# %% tags=["parameters"]
# Pair product directories written by the correlation notebook (velocity COG, quicklook, STAC
# item each); None for a pair that failed.
products: list[str | None] = []
# Status files of the correlation notebook (status_<pair_id>.json), one per pair attempted;
# empty: every product directory counts as a pair that succeeded.
statuses: list[str] = []
# Account of the discovery step, reported when there are no products.
message = ""
# Pixels with fewer valid maps get no median or spread (whole number >= 1).
min_count = 1
# How products on another grid are brought onto the first product's: "nearest" or "bilinear".
resampling = "nearest"
# A pair whose typical 1-sigma speed error (median v_error, m/yr) exceeds this is left out;
# the run report lists it.
max_pair_error_m_per_yr = 100.0
# Keep pairs whose stable-ground correction was not applied, or that have no error estimate
# (by default they are left out and listed below with the reason: their speeds include the
# pair's misregistration).
keep_uncorrected_pairs = False
# Glacier outlines as GeoJSON (a file path - a CWL File arrives as its staged path -, an http(s)
# URL or the text): the headline speed and the time series are over them, and they are drawn on
# the summary figure. None: no outlines.
glacier_outlines = None
# Points for the time series: "lon,lat; lon,lat" or GeoJSON points (file path, URL or text).
points_of_interest = None
# The run's area of interest (W,S,E,N, GeoJSON text, URL or file): stored once beside the
# summary (the pair items only record it). None: not stored.
aoi = None
# Output directory: run-report.json, summary/ (COGs, figures) and catalog/ (catalog.json).
out_dir = "."

# %%
from IPython.display import Image, display

from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.io.points import read_points_of_interest
from glacier_velocity.workflow import extract_pairs as scraps
from glacier_velocity.workflow.aggregate import AggregationParams, aggregate_run

# %%
params = AggregationParams(
    min_count=min_count,
    resampling=resampling,
    max_pair_error_m_per_yr=max_pair_error_m_per_yr,
    keep_uncorrected_pairs=keep_uncorrected_pairs,
    glacier_outlines=read_glacier_outlines(glacier_outlines) if glacier_outlines else None,
    points_of_interest=read_points_of_interest(points_of_interest) if points_of_interest else None,
    aoi=parse_aoi(aoi) if aoi else None,
)
result = aggregate_run(products, out_dir, params, statuses=statuses, message=message, nothing_left_fails=False)
print(result.message)
print(result.report.describe())
if result.summary is not None:
    print(result.summary.headline())

# %% [markdown]
# ## Pairs left out of the summary
#
# A pair is left out when its stable-ground correction was not applied or it has no error
# estimate (`keep_uncorrected_pairs` keeps it), or when its typical error exceeds
# `max_pair_error_m_per_yr`. The run report lists the same pairs (`pairs_left_out`).

# %%
print(result.left_out_table())

# %% [markdown]
# ## Summary maps (median speed, spread, count) and time series

# %%
if result.files is not None:
    for figure in result.files.figures().values():
        display(Image(filename=str(figure)))

# %%
scraps.glue("stats", result.stats())
scraps.glue("message", result.message)
scraps.glue("catalog", str(result.catalog))
scraps.glue("run_report", str(result.run_report))
