"""The embedded offline demo: synthetic Sentinel-2-like scenes over a made-up glacier, their
truth, a local STAC API, and the demo run that pushes them through the CWL Workflow.

- :mod:`.synthetic`: textures, flow fields and exact warps (also the test and benchmark scenes);
- :mod:`.scenes`: the demo stack, its STAC items and its truth;
- :mod:`.stacserver`: a real STAC API (``rustac serve``) on 127.0.0.1;
- :mod:`.run`: the demo run through the Workflow (:mod:`glacier_velocity.workflow.runner`), locally or in
  containers, in a directory the demo marks as its own;
- :mod:`.truth`: the recovered speed against the truth.
"""

from __future__ import annotations

from .run import (
    DEMO_PARAMS,
    DemoResult,
    demo_result,
    median_speed_map,
    prepare_demo_directory,
    record_demo_results,
    run_demo,
    run_demo_in_containers,
    write_pair_job,
)
from .scenes import (
    DEFAULT_DEMO_DIR,
    DEMO_COLLECTION,
    DEMO_END_MONTH,
    DEMO_EPSG,
    DEMO_MAX_BASELINE_DAYS,
    DEMO_MAX_CLOUD_COVER,
    DEMO_MAX_SPEED_M_PER_YR,
    DEMO_ORIGIN,
    DEMO_PAIRS_PER_IMAGE,
    DEMO_PIXEL_M,
    DEMO_SCENES,
    DEMO_SHAPE,
    DEMO_STACK,
    DEMO_START_MONTH,
    DEMO_TEXTURE_SEED,
    DEMO_TILE,
    FIELD_YEARS,
    GLACIER_SPEED_THRESHOLD_M_PER_YR,
    DemoData,
    DemoScene,
    DemoStack,
    collection_json,
    demo_bbox,
    demo_transform,
    expected_pairs,
    generate_demo_data,
    geolocation_error,
    scene_image,
    scene_item,
    true_speed,
    velocity_field,
    write_truth,
)
from .truth import (
    MEDIAN_TOLERANCE,
    PIXEL_MAE_TOLERANCE_M_PER_YR,
    TruthComparison,
    compare_with_truth,
)

__all__ = [
    "MEDIAN_TOLERANCE",
    "PIXEL_MAE_TOLERANCE_M_PER_YR",
    "geolocation_error",
    "DEMO_END_MONTH",
    "DEMO_START_MONTH",
    "DEFAULT_DEMO_DIR",
    "DEMO_COLLECTION",
    "DEMO_EPSG",
    "DEMO_MAX_BASELINE_DAYS",
    "DEMO_MAX_CLOUD_COVER",
    "DEMO_MAX_SPEED_M_PER_YR",
    "DEMO_ORIGIN",
    "DEMO_PAIRS_PER_IMAGE",
    "DEMO_PARAMS",
    "DEMO_PIXEL_M",
    "DEMO_SCENES",
    "DEMO_SHAPE",
    "DEMO_TEXTURE_SEED",
    "DEMO_TILE",
    "DemoData",
    "DemoResult",
    "DEMO_STACK",
    "DemoScene",
    "DemoStack",
    "FIELD_YEARS",
    "GLACIER_SPEED_THRESHOLD_M_PER_YR",
    "TruthComparison",
    "collection_json",
    "compare_with_truth",
    "demo_bbox",
    "demo_result",
    "demo_transform",
    "expected_pairs",
    "generate_demo_data",
    "median_speed_map",
    "prepare_demo_directory",
    "record_demo_results",
    "run_demo",
    "run_demo_in_containers",
    "scene_image",
    "scene_item",
    "true_speed",
    "velocity_field",
    "write_pair_job",
    "write_truth",
]
