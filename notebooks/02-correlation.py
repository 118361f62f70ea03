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
# # 2. Correlation: velocity of one image pair
#
# Reads the near-infrared band (B08, 10 m) of two Sentinel-2 scenes, or the panchromatic band (B8,
# 15 m) of two Landsat 8/9 scenes, over the area of interest, tracks
# surface features with the search range scaled to the pair's baseline and the maximum speed,
# and writes the velocity COG (`vx`, `vy`, `v` in m/yr and quality bands), a quicklook PNG and a
# STAC item into the directory `pair_id`. Always writes the pair's status to
# `status_<pair_id>.json`: a failure of this pair (unreadable or corrupt scene, no overlap,
# nothing trackable) is recorded there with its reason, and the batch goes on without it.

# %% tags=["parameters"]
# STAC items (URL or path) of the earlier (reference) and later (secondary) scene.
reference_href = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_43SEA_20200922_0_L2A"
secondary_href = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_43SEA_20201002_0_L2A"
# A Directory of staged STAC items (a CWL Directory arrives as its staged path): relative
# hrefs above are read from it, as discovery over staged items writes them. None: none.
staged_items = None
# Name of the output directory (letters, digits, - and _).
pair_id = "pair"
# Area of interest in degrees lon/lat (WGS 84): "W,S,E,N", GeoJSON text, or the http(s) URL or
# path of a GeoJSON file with a (Multi)Polygon (a CWL File arrives as its staged path); points
# outside a polygon are nodata. None: where
# both scenes overlap (whole tiles: set it by hand, e.g. "75.194,36.201,75.424,36.411" for Yazghil).
aoi = None
# Fastest surface speed expected anywhere in the area, m/yr (sets the search range with the
# baseline).
max_velocity_m_per_yr = 1000.0
# Distance between tracking grid points, pixels (10 m each).
grid_spacing_px = 12
# Side of the square chip matched around each grid point, pixels (even, 8-256).
chip_px = 32
# Pre-filter: "wallis", "hps" (high-pass), "oc" (orientation correlation) or "none".
filter = "wallis"
# Tracking engine: "ncc" (this package) or "autorift" (NASA JPL autoRIFT, when installed).
engine = "ncc"
# True: mask clouds, cloud shadows and defective pixels from the items' `scl` (Landsat: `qa_pixel`)
# assets, when present.
mask_clouds = False
# True: remove the pair's stable-ground shift from vx, vy, v and estimate their errors.
stable_correction = True
# Shortest baseline correlated, days: a pair closer in time is recorded as failed.
min_correlation_baseline_days = 1.0
# Glacier outlines (e.g. RGI 7.0) as GeoJSON: a file path (a CWL File: its staged path), an
# http(s) URL or the text, lon/lat or the CRS its `crs` names. Stable ground is outside them; drawn on the quicklook. None:
# stable ground is the land the items' scl (qa_pixel) shows as neither snow/ice, water nor cloud.
glacier_outlines = None
# Root of the STAC API the items come from: GLACIER_VELOCITY_STAC_TOKEN (environment), when set,
# goes with the item fetches to its origin only.
stac_url = "https://earth-search.aws.element84.com/v1"


# %%
from typing import cast

from IPython.display import Image, display

from glacier_velocity.correction import describe_correction
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.products.quicklook import scene_pair_png
from glacier_velocity.stac.staged import staged_href
from glacier_velocity.tracking import Engine
from glacier_velocity.tracking.params import Filter
from glacier_velocity.workflow import extract_pairs as scraps
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair

# %%
# A bad setting is the same mistake for every pair: it stops the run here.
params = CorrelationParams(
    max_velocity_m_per_yr=max_velocity_m_per_yr,
    grid_spacing_px=grid_spacing_px,
    chip_px=chip_px,
    filter=cast(Filter, filter),  # checked by CorrelationParams
    engine=cast(Engine, engine),  # checked by CorrelationParams
    aoi=parse_aoi(aoi) if aoi else None,
    mask_clouds=mask_clouds,
    stable_correction=stable_correction,
    min_correlation_baseline_days=min_correlation_baseline_days,
    glacier_outlines=read_glacier_outlines(glacier_outlines) if glacier_outlines else None,
    stac_url=stac_url,
)
# A failure of this pair is recorded in its status and the batch goes on; any other
# exception is a bug and fails the notebook.
# The status is swapped in with the products, as one set (never a new product beside an old status).
attempt = attempt_pair(
    staged_href(reference_href, staged_items),
    staged_href(secondary_href, staged_items),
    pair_id,
    params,
    pair_id=pair_id,
    status_path=f"status_{pair_id}.json",
)
products = attempt.products
print(attempt.status.describe())

# %% [markdown]
# ## The two images (B08 digital numbers over the area of interest, as tracked)

# %%
# The images the tracking read, not a second read; subsampled for display (see scene_pair_png).
if products is not None and products.images is not None and attempt.pair is not None:
    pair = attempt.pair
    display(
        Image(
            data=scene_pair_png(
                *products.images,
                titles=(
                    f"{pair.reference.id}\n{pair.reference.datetime:%Y-%m-%d %H:%M} UTC",
                    f"{pair.secondary.id}\n{pair.secondary.datetime:%Y-%m-%d %H:%M} UTC",
                ),
            )
        )
    )
else:
    print(f"pair {pair_id} failed, nothing to show: {attempt.status.reason}")

# %% [markdown]
# ## The velocity product and its quicklook (speed in m/yr, flow arrows)

# %%
if products is not None:
    print(products.summary())
    # Whether the pair's misregistration was removed, and how; or why not (the summary then leaves it out).
    print(describe_correction(products.correction))
    display(Image(filename=str(products.quicklook)))

# %%
stats = {
    "status": attempt.status.status,
    "basename": products.basename if products else None,
    "dt_days": products.dt_days if products else None,
    "search_px": products.search_px if products else None,
    "grid_shape": list(products.grid_shape) if products else None,
    "valid_fraction": products.valid_fraction if products else None,
    "median_v_m_per_yr": attempt.status.median_v_m_per_yr,
}
# Scraps cannot be None: a failed pair glues empty paths.
scraps.glue("pair_id", pair_id)
scraps.glue("status", attempt.status.to_dict())
scraps.glue("velocity", str(products.cog) if products else "")
scraps.glue("quicklook", str(products.quicklook) if products else "")
scraps.glue("item", str(products.item) if products else "")
scraps.glue("stats", stats)
