#!/usr/bin/env python3
"""Make the AROSICS tie points of the real Sentinel-2 pair (tests/data/arosics-tie-points-t33uuu.csv).

AROSICS (Scheffler et al. 2017, doi:10.3390/rs9070676; github.com/GFZ/arosics, Apache-2.0)
co-registers two images by matching 256 x 256 px windows on a regular grid with phase
correlation, and rejects unreliable matches in three steps (reliability, SSIM, RANSAC). Its
tie points are an independent measurement of the pair's misregistration, so the offsets a
tracker measures on this stable ground can be compared with them point by point
(``glacier_velocity.tracking.precision.tie_point_agreement``).

The pair is AROSICS' own test case (``tests/data/testcase_inter1_S2A_S2A``, read from
``../shared/data/real-s2-t33uuu``), with the settings of AROSICS' test suite (``tests/cases.py``:
window 256 px, the two footprint polygons, tie-point filter level 3) except a grid of 50 px
instead of 100 px, for four times as many points (1299 after filtering; a few tie points with
errors of 1 px moved the RMS of 300 points by 0.02 px). DN 0 is nodata.

AROSICS is not a dependency of this package. Run this script with a Python that has it, e.g. a
separate virtual environment (``python -m venv --system-site-packages`` over the system's GDAL
bindings, then ``pip install arosics``), from the project root:

    /path/to/arosics-env/bin/python benchmarks/make_arosics_tie_points.py

The CSV holds, for each tie point that passed AROSICS' filters, the map position of its window
centre and the shift in this package's tracking convention, for the reference 2016-05-29 (AROSICS'
target) and the secondary 2016-06-08 (AROSICS' reference): ``dx_px`` along columns (east),
``dy_px`` along rows (down, south). AROSICS' ``X_SHIFT_PX``/``Y_SHIFT_PX`` (the target's shift
relative to the reference, in image coordinates) have exactly that meaning and sign.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real-s2-t33uuu"
OUT = ROOT / "tests" / "data" / "arosics-tie-points-t33uuu.csv"
#: AROSICS' footprints of the two subsets (its tests/cases.py), EPSG:32633.
FOOTPRINT_REFERENCE = "POLYGON ((340870 5862000, 354000 5862000, 354000 5830000, 331320 5830000, 340870 5862000))"
FOOTPRINT_TARGET = (
    "POLYGON ((341890 5866490, 356180 5866490, 356180 5834970, 335440 5834970, 335490 5845270, 341890 5866490))"
)
GRID_PX = 50


def main() -> int:
    import arosics
    from arosics import COREG_LOCAL

    coreg = COREG_LOCAL(
        str(DATA / "ref_S2A_20160608T153121_T33UUU_sub.jp2"),
        str(DATA / "tgt_S2A_20160529T153631_T33UUU_sub.jp2"),
        grid_res=GRID_PX,
        window_size=(256, 256),
        max_shift=5,
        tieP_filter_level=3,
        nodata=(0, 0),
        footprint_poly_ref=FOOTPRINT_REFERENCE,
        footprint_poly_tgt=FOOTPRINT_TARGET,
        CPUs=1,
        progress=False,
        q=True,
    )
    table = coreg.CoRegPoints_table
    kept = table[~table["OUTLIER"].astype(bool) & (table["X_SHIFT_PX"] != coreg.outFillVal)]
    lines = [
        f"# AROSICS {arosics.__version__} COREG_LOCAL tie points of ../shared/data/real-s2-t33uuu, made by",
        "# benchmarks/make_arosics_tie_points.py (see its docstring): window 256 px, grid 50 px, filter level 3,",
        f"# {len(kept)} of {len(table)} points kept. x_m, y_m: window centre, EPSG:32633 (m). dx_px, dy_px: shift of",
        "# the 2016-05-29 scene's features to the 2016-06-08 scene (px, 10 m; dx along columns = east, dy along",
        "# rows = south). reliability_pct: AROSICS' reliability of the match.",
        "x_m,y_m,dx_px,dy_px,reliability_pct",
    ]
    for row in kept.itertuples():
        lines.append(f"{row.X_MAP:.1f},{row.Y_MAP:.1f},{row.X_SHIFT_PX:.4f},{row.Y_SHIFT_PX:.4f},{row.RELIABILITY:.1f}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{OUT}: {len(kept)} tie points", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
