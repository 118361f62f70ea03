"""glacier-velocity: glacier surface velocity from Sentinel-2 image pairs.

The data flow, one folder per stage: ``stac`` (search, pairing) -> ``io`` (windowed COG
reads) -> ``tracking`` (offsets, px) -> ``correction`` (stable ground, velocity in m/yr and its
errors) -> ``aggregation`` (median, spread, count, datacube) -> ``products`` (COG, quicklook,
STAC items, figures, catalog); ``domain`` holds the values they pass on, ``workflow`` composes
them (docs/architecture.md).

The public names below are imported lazily, so ``import glacier_velocity`` stays cheap and
has no side effects.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

#: Public name -> module that defines it, in data-flow order.
_EXPORTS: dict[str, str] = {
    "DiscoveryParams": "stac.discovery",
    "DiscoveryResult": "stac.discovery",
    "search_scenes": "stac.discovery",
    "discover_pairs": "stac.discovery",
    "Scene": "stac.scene",
    "Pair": "stac.pairing",
    "make_pairs": "stac.pairing",
    "select_monthly": "stac.pairing",
    "write_pairs_json": "stac.pairing",
    "read_pairs_json": "stac.pairing",
    "read_window": "io.raster",
    "GlacierOutlines": "domain.outlines",
    "read_glacier_outlines": "io.outlines",
    "TrackingParams": "tracking",
    "OffsetField": "domain.offsets",
    "track_offsets": "tracking",
    "search_range_px": "tracking",
    "VelocityProduct": "domain.velocity",
    "offsets_to_velocity": "domain.velocity",
    "baseline_days": "domain.velocity",
    "write_velocity_cog": "io.cog",
    "read_velocity_cog": "io.cog",
    "measure_velocity": "workflow.measure",
    "track_files": "workflow.track_files",
    "CorrelationParams": "workflow.correlate",
    "correlate_pair": "workflow.correlate",
    "attempt_pair": "workflow.correlate",
    "PairStatus": "products.runreport",
    "RunReport": "products.runreport",
    "build_run_report": "products.runreport",
    "aggregate_products": "aggregation.summary",
    "write_summary": "aggregation.summary",
    "plot_summary": "products.figures",
    "plot_time_series": "products.figures",
    "plot_pair_timeline": "products.figures",
    "write_catalog": "products.catalog",
    "serve_stac": "demo.stacserver",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'glacier_velocity' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
