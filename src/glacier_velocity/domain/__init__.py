"""The ground floor: the values every stage passes to the next, and the checks that make them valid.

Nothing here reads a file, a URL or a STAC API; every other folder of the package may import
from here, and this folder imports only :mod:`glacier_velocity.errors` (docs/architecture.md).

- :mod:`.aoi`: the area of interest (:class:`~.aoi.AOI`, ``BBox``) and its shape checks;
- :mod:`.hrefs`: which asset locations may be opened;
- :mod:`.dates`: acquisition times as RFC 3339 text in UTC;
- :mod:`.crs`: reading and writing a coordinate reference system;
- :mod:`.polygons`: the polygon check of GeoJSON inputs (the AOI and the outlines);
- :mod:`.outlines`: glacier outlines (:class:`~.outlines.GlacierOutlines`);
- :mod:`.offsets`: pixel offsets from a tracker (:class:`~.offsets.OffsetField`);
- :mod:`.velocity`: a pair's velocity (:class:`~.velocity.VelocityProduct`), its bands, the
  baseline and the year (``DAYS_PER_YEAR``);
- :mod:`.robust`: the robust statistics (NMAD, weighted median) tracking and correction share;
- :mod:`.names`: file names built from catalogue values (safe characters, bounded length).
"""
