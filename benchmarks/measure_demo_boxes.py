"""The stable-ground correction without outlines on areas drawn tight around the demo glacier.

For boxes of the demo grid that are 45 %, 70 %, 86 % and 100 % ice, runs the correlation step
(the library function the CWL tool calls) on every expected demo pair without glacier outlines,
once with the items' ``scl`` assets (stable land from the scene classification) and once without
them (the displacements alone), then aggregates each set as the aggregation step does (headline
over the demo's outlines) and compares with the truth (design record 0005):

    PYTHONPATH=src python benchmarks/measure_demo_boxes.py [DEMO_DATA_DIR]

DEMO_DATA_DIR defaults to build/demo/data; it is generated when it holds no truth.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from rasterio.warp import transform_bounds

from glacier_velocity.aggregation.summary import aggregate_products, write_summary
from glacier_velocity.correction import StableGroundWarning
from glacier_velocity.demo.scenes import (
    DEMO_EPSG,
    DEMO_OUTLINES_FILE,
    demo_transform,
    expected_pairs,
    generate_demo_data,
    velocity_field,
)
from glacier_velocity.demo.truth import compare_with_truth
from glacier_velocity.errors import PairsLeftOut
from glacier_velocity.io.cog import read_velocity_cog
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair

#: Boxes (first row, last row, first col, last col; px of the 10 m demo grid) and their name.
BOXES = {
    "45 % ice": (10, 470, 10, 470),
    "70 % ice": (70, 370, 10, 450),
    "86 % ice": (120, 330, 10, 430),
    "100 % ice": (165, 285, 10, 360),
}


def box_aoi(rows_cols: tuple[int, int, int, int]) -> str:
    """The box as a lon/lat ``W,S,E,N`` AOI (inside the box: rounded inwards)."""
    r0, r1, c0, c1 = rows_cols
    t = demo_transform()
    (x0, y0), (x1, y1) = t * (c0, r1), t * (c1, r0)
    west, south, east, north = transform_bounds(f"EPSG:{DEMO_EPSG}", "EPSG:4326", x0, y0, x1, y1)
    return f"{np.ceil(west * 1e5) / 1e5},{np.ceil(south * 1e5) / 1e5},{np.floor(east * 1e5) / 1e5},{np.floor(north * 1e5) / 1e5}"


def ice_fraction(cog: Path) -> float:
    """Share of the product's valid grid points on the demo glacier (its outline)."""
    import rasterio

    with rasterio.open(cog) as src:
        v = src.read(3)
        inverse = ~demo_transform()
        rows, cols = np.mgrid[0 : src.height, 0 : src.width]
        xs, ys = src.transform * (cols + 0.5, rows + 0.5)
    c, r = inverse * (xs, ys)
    inside = np.isfinite(v)
    return float(velocity_field(2022).ice_mask(r - 0.5, c - 0.5)[inside].mean())


def items_without_scl(items: Path, out: Path) -> Path:
    """Copies of the item JSONs without their ``scl`` asset."""
    out.mkdir(parents=True, exist_ok=True)
    for path in items.glob("*.json"):
        item = json.loads(path.read_text())
        item["assets"].pop("scl", None)
        (out / path.name).write_text(json.dumps(item))
    return out


def main(data_dir: Path) -> None:
    if not (data_dir / "truth.json").is_file():
        generate_demo_data(data_dir)
    truth = json.loads((data_dir / "truth.json").read_text())
    misregistration = {(p["reference"], p["secondary"]): p["misregistration_px"] for p in truth["pairs"]}
    outlines = read_glacier_outlines(str(data_dir / DEMO_OUTLINES_FILE))
    with tempfile.TemporaryDirectory() as tmp:
        sources = {
            "scl": data_dir / "stac" / "items",
            "no scl": items_without_scl(data_dir / "stac" / "items", Path(tmp) / "items-no-scl"),
        }
        for box, rows_cols in BOXES.items():
            params = CorrelationParams(aoi=box_aoi(rows_cols))  # params/demo.yml's settings, no outlines
            for source, items in sources.items():
                cogs, lines = [], []
                for reference, secondary in expected_pairs():
                    out = Path(tmp) / box.replace(" ", "").replace("%", "") / source.replace(" ", "") / reference
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", StableGroundWarning)
                        products = correlate_pair(
                            items / f"{reference}.json", items / f"{secondary}.json", out, params, progress=False
                        )
                    cogs.append(products.cog)
                    c = read_velocity_cog(products.cog).correction  # the COG's tags
                    true = misregistration[(reference, secondary)]
                    if c["stable_shift_applied"]:
                        error = np.hypot(c["stable_shift_dx_px"] - true["dx"], c["stable_shift_dy_px"] - true["dy"])
                        lines.append(
                            f"    {reference[4:]} -> {secondary[4:]}: {c['stable_shift_method']}, "
                            f"{c['stable_count']} points, shift off by {error:.3f} px"
                            + (" (caution)" if c.get("stable_shift_warning") else "")
                        )
                    else:
                        lines.append(
                            f"    {reference[4:]} -> {secondary[4:]}: NOT corrected: {c.get('stable_shift_warning')}"
                        )
                print(f"{box} (measured {100 * ice_fraction(cogs[0]):.0f} % of valid points on ice), {source}:")
                print("\n".join(lines))
                try:
                    summary = aggregate_products(cogs, glacier_outlines=outlines)
                except PairsLeftOut as exc:
                    print(f"  summary: none, {exc}")
                    continue
                files = write_summary(summary, Path(tmp) / "summary" / box.replace(" ", "") / source.replace(" ", ""))
                comparison = compare_with_truth(files.median_v, data_dir / "truth.json")
                left = f", {len(summary.excluded)} left out" if summary.excluded else ""
                print(f"  summary: {summary.product_count} pairs{left}; {summary.headline()}")
                print(f"  truth: {comparison.describe()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/demo/data"))
