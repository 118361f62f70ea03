"""Calibration of the error of the median on a demo run (design 0006).

Compares the two candidate errors of the per-pixel median speed with its actual error
against the truth, on the demo glacier (true speed > 50 m/yr) and, for vx and vy, on stable
ground (truth 0):

- propagated: ``aggregation.summary.median_error`` of the pairs' own 1-sigma errors;
- empirical: ``1.2533 * NMAD across pairs / sqrt(n)``.

    PYTHONPATH=src python benchmarks/measure_median_error.py DEMO_DIR

DEMO_DIR is a finished ``glacier-velocity demo --dir DEMO_DIR`` (velocity COGs in results/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio

from glacier_velocity.aggregation.summary import aggregate_products
from glacier_velocity.demo.scenes import DEMO_OUTLINES_FILE
from glacier_velocity.domain.robust import nmad
from glacier_velocity.io.cog import read_velocity_cog
from glacier_velocity.io.outlines import read_glacier_outlines


def main(demo_dir: Path) -> None:
    cogs = sorted(p for p in (demo_dir / "results").rglob("S2_*.tif") if "catalog" not in p.parts)
    products = [read_velocity_cog(p) for p in cogs]
    summary = aggregate_products(
        products, glacier_outlines=read_glacier_outlines(demo_dir / "data" / DEMO_OUTLINES_FILE)
    )
    with rasterio.open(demo_dir / "data" / "truth_median_speed.tif") as src:
        truth, inverse = src.read(1).astype(float), ~src.transform
    rows, cols = np.mgrid[0 : summary.shape[0], 0 : summary.shape[1]]
    tc, tr = inverse @ (summary.transform @ (cols + 0.5, rows + 0.5))
    true_v = truth[
        np.floor(tr).astype(int).clip(0, truth.shape[0] - 1), np.floor(tc).astype(int).clip(0, truth.shape[1] - 1)
    ]
    stack = {name: np.stack([getattr(p, name) for p in products]) for name in ("v", "vx", "vy")}
    n = np.isfinite(stack["v"]).sum(axis=0)
    print(
        f"{len(products)} pairs, grid {summary.shape}; per-pair v_error (median): "
        + ", ".join(f"{np.nanmedian(p.v_error):.1f}" for p in products)
    )
    glacier = (true_v > 50) & np.isfinite(summary.median_v)
    stable = (true_v == 0) & np.isfinite(summary.median_v) & ~summary.region.mask
    for label, where, name, actual in (
        ("glacier, v", glacier, "v", np.abs(summary.median_v - true_v)),
        ("stable, vx", stable, "vx", np.abs(summary.median_vx)),
        ("stable, vy", stable, "vy", np.abs(summary.median_vy)),
    ):
        propagated = getattr(summary, f"{name}_error")
        empirical = 1.2533 * np.apply_along_axis(lambda a: nmad(a[np.isfinite(a)]), 0, stack[name]) / np.sqrt(n)
        rms = np.sqrt(np.mean(actual[where] ** 2))
        print(
            f"{label}: {where.sum()} points, actual |error| median {np.median(actual[where]):.2f}, RMS {rms:.2f} m/yr"
        )
        for est_name, est in (("propagated", propagated), ("empirical", empirical)):
            print(
                f"  {est_name}: median {np.median(est[where]):.2f} m/yr, actual within 1 sigma {100 * np.mean(actual[where] <= est[where]):.1f} %"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
