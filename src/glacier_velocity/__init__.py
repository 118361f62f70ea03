"""glacier-velocity: glacier surface velocity from Sentinel-2 image pairs.

The data flow, one module per stage: discovery (STAC search) -> pairing -> raster (windowed
reads) -> tracking (feature-tracking engines) -> velocity (m/yr) -> cog / products (COG,
quicklook, STAC item) -> aggregate (median / spread / count) -> figures -> catalog.

The public names below are imported lazily, so ``import glacier_velocity`` stays cheap and
has no side effects.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

#: Public name -> module that defines it, in data-flow order.
_EXPORTS: dict[str, str] = {
    "DiscoveryParams": "discovery",
    "DiscoveryResult": "discovery",
    "search_scenes": "discovery",
    "discover_pairs": "discovery",
    "Scene": "scene",
    "Pair": "pairing",
    "make_pairs": "pairing",
    "select_monthly": "pairing",
    "write_pairs_json": "pairing",
    "read_pairs_json": "pairing",
    "read_window": "raster",
    "TrackingParams": "tracking",
    "OffsetField": "tracking",
    "track_offsets": "tracking",
    "search_range_px": "tracking",
    "VelocityProduct": "velocity",
    "offsets_to_velocity": "velocity",
    "baseline_days": "velocity",
    "write_velocity_cog": "cog",
    "read_velocity_cog": "cog",
    "track_files": "track",
    "CorrelationParams": "correlate",
    "correlate_pair": "correlate",
    "attempt_pair": "correlate",
    "PairStatus": "runreport",
    "RunReport": "runreport",
    "build_run_report": "runreport",
    "aggregate_products": "aggregate",
    "write_summary": "aggregate",
    "plot_summary": "figures",
    "plot_time_series": "figures",
    "plot_pair_timeline": "figures",
    "write_catalog": "catalog",
    "serve_stac": "stacserver",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'glacier_velocity' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
