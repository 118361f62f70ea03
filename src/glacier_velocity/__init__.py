"""glacier-velocity: glacier surface velocity from Sentinel-2 image pairs.

The data flow, one module per stage: discovery (STAC search) -> pairing -> reading windows ->
tracking (feature tracking engine) -> velocity (m/yr) -> products (COG, quicklook, STAC item)
-> aggregation (median / spread / count) -> catalog.
"""

from ._version import __version__

__all__ = ["__version__"]
