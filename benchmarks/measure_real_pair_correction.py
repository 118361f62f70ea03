#!/usr/bin/env python3
"""Measure the stable-ground correction and error estimate on the real Sentinel-2 pair.

Prints the figures of docs/design/0005-stable-ground-correction.md: raw and corrected
medians, the shift, the NMAD (reported error) against the actual spread, coverage within
1 sigma, overall and by correlation-peak class, and the shift's variation across the scene.

    PYTHONPATH=src python benchmarks/measure_real_pair_correction.py [DATA_DIR]

DATA_DIR defaults to ../shared/data/real-s2-t33uuu next to the project; nothing is copied.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import from_bounds

from glacier_velocity.correction import correct_velocity
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.domain.robust import nmad
from glacier_velocity.domain.velocity import baseline_days, offsets_to_velocity
from glacier_velocity.tracking import TrackingParams, track_offsets

PROJECT = Path(__file__).resolve().parents[1]


def read_overlap(earlier: Path, later: Path):
    with rasterio.open(earlier) as early, rasterio.open(later) as late:
        left, bottom = max(early.bounds.left, late.bounds.left), max(early.bounds.bottom, late.bounds.bottom)
        right, top = min(early.bounds.right, late.bounds.right), min(early.bounds.top, late.bounds.top)
        wins = [
            from_bounds(left, bottom, right, top, transform=s.transform).round_offsets().round_lengths()
            for s in (early, late)
        ]
        return (
            early.read(1, window=wins[0]),
            late.read(1, window=wins[1]),
            early.window_transform(wins[0]),
            early.crs.to_string(),
        )


def spread(values: np.ndarray) -> float:
    low, high = np.percentile(values, [15.87, 84.13])
    return float(high - low) / 2.0


def main() -> int:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT.parent / "shared" / "data" / "real-s2-t33uuu"
    earlier = data / "tgt_S2A_20160529T153631_T33UUU_sub.jp2"
    later = data / "ref_S2A_20160608T153121_T33UUU_sub.jp2"
    if not earlier.is_file():
        print(f"real pair not found in {data}", file=sys.stderr)
        return 2
    reference, secondary, transform, crs = read_overlap(earlier, later)
    dt = baseline_days(datetime(2016, 5, 29, 15, 36, 31, tzinfo=UTC), datetime(2016, 6, 8, 15, 31, 21, tzinfo=UTC))
    offsets = track_offsets(reference, secondary, TrackingParams(search_px=20.0), engine="ncc", progress=False)
    valid = offsets.valid
    raw = offsets_to_velocity(offsets, transform, crs, dt, reference_id="2016-05-29", secondary_id="2016-06-08")
    print(f"overlap {reference.shape}, grid {offsets.shape}, valid {int(valid.sum())}, dt {dt:.4f} days")
    print(
        f"raw median vx {np.median(raw.vx[valid]):.1f}, vy {np.median(raw.vy[valid]):.1f}, "
        f"v {np.median(raw.v[valid]):.1f} m/yr"
    )
    for label, glacier_outlines in (("automatic-mode", None), ("no glacier here", GlacierOutlines.empty())):
        result = correct_velocity(offsets, transform, crs, dt, glacier_outlines=glacier_outlines)
        s = result.shift
        print(
            f"\n[{label}] method {s.method}, shift dx {s.dx_px:+.4f} dy {s.dy_px:+.4f} px = "
            f"vx {s.vx_m_per_yr:+.1f} vy {s.vy_m_per_yr:+.1f} m/yr, stable_count {s.stable_count}"
        )
        print(
            f"  corrected stable median vx {s.stats.vx_median_m_per_yr:+.2f} vy {s.stats.vy_median_m_per_yr:+.2f} m/yr;"
            f" median v over valid {np.median(result.v[valid]):.1f} m/yr"
        )
        for comp, error in (("vx", result.errors.vx_error), ("vy", result.errors.vy_error)):
            values = getattr(result, comp)[s.stable]
            sigma = float(error[s.stable][0])
            print(
                f"  {comp}: error {sigma:.1f}, spread {spread(values):.1f}, ratio {sigma / spread(values):.2f}, "
                f"within 1 sigma {100 * np.mean(np.abs(values) <= sigma):.1f} %"
            )
            for low, high in ((0.0, 0.5), (0.5, 0.7), (0.7, 1.01)):
                cls = s.stable & (offsets.peak >= low) & (offsets.peak < high)
                v = getattr(result, comp)[cls]
                print(
                    f"    peak {low:.1f}-{min(high, 1.0):.1f}: {int(cls.sum())} points, NMAD {nmad(v):.1f}, "
                    f"within {100 * np.mean(np.abs(v) <= sigma):.0f} %"
                )
    n_rows, n_cols = offsets.shape
    blocks = [
        (np.median(offsets.dx[b][valid[b]]), np.median(offsets.dy[b][valid[b]]))
        for b in (
            (slice(i * n_rows // 3, (i + 1) * n_rows // 3), slice(j * n_cols // 3, (j + 1) * n_cols // 3))
            for i in range(3)
            for j in range(3)
        )
    ]
    bx, by = np.array(blocks).T
    print(f"\n3x3 block medians: dx {bx.min():+.3f}..{bx.max():+.3f} px, dy {by.min():+.3f}..{by.max():+.3f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
