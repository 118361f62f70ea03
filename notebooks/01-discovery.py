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
# # 1. Discovery: Sentinel-2 scenes and image pairs
#
# Searches a STAC API for Sentinel-2 L2A scenes over the area of interest, keeps the first
# suitable scene of each month in the season (cloud cover, one MGRS tile, footprint covering the
# area), pairs each scene with the next *N* and filters the pairs by baseline. Writes the pair
# list to `pairs_json` and glues it as `pairs` for the correlation step. Finding nothing is not
# an error: the pair list is then empty and the message says which filter removed what.

# %% tags=["parameters"]
# STAC API root URL and the collection of Sentinel-2 L2A items (with a `nir` B08 asset).
stac_url = "https://earth-search.aws.element84.com/v1"
collection = "sentinel-2-l2a"
# Area of interest in degrees of longitude/latitude (WGS 84): "W,S,E,N", GeoJSON text, or the
# http(s) URL or path of a GeoJSON file with a (Multi)Polygon (e.g. a glacier outline; a CWL
# File input arrives here as its staged path).
aoi = "75.194,36.201,75.424,36.411"
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
# True: judge cloud cover over the area of interest from the `scl` asset; False: the tile's
# eo:cloud_cover.
aoi_cloud_cover = False
# Upper bound on the items fetched from the STAC API, over all season years.
max_items = 5000
# Most pairs the discovery may give (each is a tracking job); more is refused.
max_pairs = 2000
# Items given instead of a search (the STAC API is then not asked): a Directory of staged
# items (a catalog.json linking them, their assets beside them; a CWL Directory arrives as its
# staged path), and/or a list of http(s) URLs of STAC items. None: search the STAC API.
staged_items = None
item_urls = None
# Output: the pair list (JSON file).
pairs_json = "pairs.json"


# %%
from IPython.display import Image, display

from glacier_velocity.errors import NoPairsFound, NoScenesFound
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.products.figures import plot_pair_timeline
from glacier_velocity.stac.discovery import DiscoveryParams, DiscoveryResult, discover_pairs
from glacier_velocity.stac.pairing import format_pair_table, format_scene_table, write_pairs_json
from glacier_velocity.workflow import extract_pairs as scraps
from glacier_velocity.workflow.extract_pairs import PairRecord

# %%
params = DiscoveryParams(
    stac_url=stac_url,
    collection=collection,
    aoi=parse_aoi(aoi),
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
    max_items=max_items,
    max_pairs=max_pairs,
)
# No scenes or no pairs is an answer, not a failure: the workflow goes on with an empty list.
result: DiscoveryResult | None
try:
    result = discover_pairs(params, staged_items=staged_items, item_urls=item_urls)
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
print(message)

# %% [markdown]
# ## What each filter removed, the selected scenes and the pairs

# %%
if result is not None:
    print(result.summary(), end="\n\n")
    print(format_scene_table(result.scenes_selected), end="\n\n")
    print(format_pair_table(result.pairs))

# %% [markdown]
# ## Timeline
#
# Grey: every scene found (cloud cover on the left axis); blue: the selected scenes; each bar a
# pair, from its reference to its secondary acquisition.

# %%
if result is not None:
    timeline = plot_pair_timeline(
        result.scenes_found, pairs, "timeline.png", selected=result.scenes_selected, max_cloud_cover=max_cloud_cover
    )
    display(Image(filename=str(timeline)))

# %%
records = [PairRecord.from_pair(pair).to_dict() for pair in pairs]
scraps.glue("pairs", records)
scraps.glue("pairs_json", str(pairs_json))
scraps.glue("message", message)
scraps.glue("scene_count", len(result.scenes_found) if result is not None else 0)
scraps.glue("selected_count", len(result.scenes_selected) if result is not None else 0)
scraps.glue("pair_count", len(records))
