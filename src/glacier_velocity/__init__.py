"""glacier-velocity: glacier surface velocity from Sentinel-2 image pairs.

The data flow, one folder per stage: ``stac`` (search, pairing) -> ``io`` (windowed COG
reads) -> ``tracking`` (offsets, px) -> ``correction`` (stable ground, velocity in m/yr and its
errors) -> ``aggregation`` (median, spread, count, datacube) -> ``products`` (COG, quicklook,
STAC items, figures, catalog); ``domain`` holds the values they pass on, ``workflow`` composes
them (docs/architecture.md).

The public names below are imported lazily, so ``import glacier_velocity`` stays cheap and
has no side effects; type checkers see them through the ``TYPE_CHECKING`` imports (a test
keeps both lists equal).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    # What mypy and editors see: the real types. At run time the names are imported lazily.
    from .aggregation.summary import aggregate_products, write_summary
    from .demo.stacserver import serve_stac
    from .domain.offsets import OffsetField
    from .domain.outlines import GlacierOutlines
    from .domain.velocity import VelocityProduct, baseline_days, offsets_to_velocity
    from .io.cog import read_velocity_cog, write_velocity_cog
    from .io.outlines import read_glacier_outlines
    from .io.raster import read_window
    from .products.catalog import write_catalog
    from .products.figures import plot_pair_timeline, plot_summary, plot_time_series
    from .products.runreport import PairStatus, RunReport, build_run_report
    from .stac.discovery import DiscoveryParams, DiscoveryResult, discover_pairs, search_scenes
    from .stac.pairing import Pair, make_pairs, read_pairs_json, select_monthly, write_pairs_json
    from .stac.scene import Scene
    from .tracking import TrackingParams, search_range_px, track_offsets
    from .workflow.correlate import CorrelationParams, attempt_pair, correlate_pair
    from .workflow.measure import measure_velocity
    from .workflow.track_files import track_files

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
