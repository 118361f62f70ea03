"""The outline-free stable-ground correction on Yahtse Glacier (Landsat-8, no SCL) (design 0005).

Tracks the pair of ../shared/data/real-l8-yahtse with issue 20's settings (120 m grid, 16 days,
7300 m/yr at most) through the `track` path (`workflow.track_files`: no outlines, no scene
classification, so stable ground comes from the displacements alone) and prints the shift found,
how, and what it does to the points that move: the lower trunk (x 479-481.5 km, y 6669-6671 km,
4,000-4,700 m/yr) and every point faster than 1,000 m/yr, corrected against raw. Also the
corrected speed on ground CARST reads as slower than 100 m/yr (rock and slow ice):

    PYTHONPATH=src python benchmarks/measure_yahtse_correction.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio

from glacier_velocity.correction import StableGroundWarning, describe_correction
from glacier_velocity.domain.robust import nmad
from glacier_velocity.tracking import TrackingParams
from glacier_velocity.workflow.track_files import track_files

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real-l8-yahtse"
FILES = ("LC80630182016200LGN00_B8_yahtse.TIF", "LC80630182016216LGN00_B8_yahtse.TIF")
CARST = DATA / "reference" / "carst_vx_vy_m_per_yr.tif"
TRUNK = (479000.0, 6669000.0, 481500.0, 6671000.0)  # x0, y0, x1, y1 (m, UTM 7N)


def main() -> None:
    if not all((DATA / name).is_file() for name in FILES):
        sys.exit(f"the Yahtse pair is not at {DATA}")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StableGroundWarning)
        product = track_files(
            DATA / FILES[0],
            DATA / FILES[1],
            16.0,
            Path(tmp) / "v.tif",
            max_velocity_m_per_yr=7300.0,
            params=TrackingParams(grid_spacing_px=8),
            progress=False,
        )
    print(describe_correction(product.correction))
    for warning in caught:
        print(f"warning: {warning.message}")
    c = product.correction
    valid = np.isfinite(product.v)
    raw_vx = product.vx + (c["stable_shift_vx_m_per_yr"] if c["stable_shift_applied"] else 0.0)
    raw_vy = product.vy + (c["stable_shift_vy_m_per_yr"] if c["stable_shift_applied"] else 0.0)
    raw_v = np.hypot(raw_vx, raw_vy)
    rows, cols = np.mgrid[0 : product.shape[0], 0 : product.shape[1]]
    xs, ys = product.transform * (cols + 0.5, rows + 0.5)
    trunk = valid & (xs >= TRUNK[0]) & (xs <= TRUNK[2]) & (ys >= TRUNK[1]) & (ys <= TRUNK[3])
    print(f"valid points: {int(valid.sum())} of {valid.size}; stable points: {c['stable_count']}")
    for name, where in (
        ("lower trunk", trunk),
        ("lower trunk, faster than 3,000 m/yr (raw)", trunk & (raw_v > 3000.0)),
        ("faster than 1,000 m/yr (raw)", valid & (raw_v > 1000.0)),
    ):
        if where.any():
            print(
                f"{name}: {int(where.sum())} points, median speed {np.median(raw_v[where]):.0f} m/yr raw, "
                f"{np.median(product.v[where]):.0f} m/yr corrected, largest {np.max(product.v[where]):.0f} m/yr"
            )
        else:
            print(f"{name}: no valid point")
    with rasterio.open(CARST) as src:
        carst = np.full(product.shape, np.nan)
        r, col = rasterio.transform.rowcol(src.transform, xs.ravel(), ys.ravel())
        r, col = np.asarray(r).reshape(product.shape), np.asarray(col).reshape(product.shape)
        inside = (r >= 0) & (r < src.height) & (col >= 0) & (col < src.width)
        band_x, band_y = src.read(1), src.read(2)
        carst[inside] = np.hypot(band_x[r[inside], col[inside]], band_y[r[inside], col[inside]])
    slow = valid & (carst < 100.0)
    print(
        f"on CARST's slow ground (< 100 m/yr, {int(slow.sum())} points): corrected vx median "
        f"{np.median(product.vx[slow]):+.1f}, vy {np.median(product.vy[slow]):+.1f} m/yr, NMAD "
        f"{nmad(product.vx[slow]):.1f}/{nmad(product.vy[slow]):.1f} m/yr (raw medians {np.median(raw_vx[slow]):+.1f}, "
        f"{np.median(raw_vy[slow]):+.1f})"
    )


if __name__ == "__main__":
    main()
