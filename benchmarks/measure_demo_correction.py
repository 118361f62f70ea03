"""The demo's truth check with and without the stable-ground correction (design 0006).

Runs the correlation step (the library function the CWL tool calls) on every expected demo
pair, with the correction on (automatic stable ground, and with the demo's glacier outlines)
and off, aggregates each set as the aggregation step does and compares with the truth:

    PYTHONPATH=src python benchmarks/measure_demo_correction.py [DEMO_DATA_DIR]

DEMO_DATA_DIR defaults to build/demo/data; it is generated when it holds no truth.json.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from glacier_velocity.aggregation.summary import aggregate_products, write_summary
from glacier_velocity.demo.scenes import DEMO_OUTLINES_FILE, demo_bbox, expected_pairs, generate_demo_data
from glacier_velocity.demo.truth import compare_with_truth
from glacier_velocity.io.outlines import read_glacier_outlines
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair


def main(data_dir: Path) -> None:
    if not (data_dir / "truth.json").is_file():
        generate_demo_data(data_dir)
    items = data_dir / "stac" / "items"
    outlines = read_glacier_outlines(str(data_dir / DEMO_OUTLINES_FILE))
    runs = {
        "correction off": (False, None),
        "correction on, automatic stable ground": (True, None),
        "correction on, glacier_outlines": (True, outlines),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (correction, glacier_outlines) in runs.items():
            # params/demo.yml's settings, its area of interest included.
            params = CorrelationParams(
                max_velocity_m_per_yr=1000.0,
                grid_spacing_px=12,
                chip_px=32,
                aoi=demo_bbox(),
                stable_correction=correction,
                glacier_outlines=glacier_outlines,
            )
            cogs = []
            for reference, secondary in expected_pairs():
                out = Path(tmp) / name.replace(" ", "_").replace(",", "") / f"{reference}__{secondary}"
                products = correlate_pair(
                    items / f"{reference}.json",
                    items / f"{secondary}.json",
                    out,
                    params,
                    progress=False,
                )
                cogs.append(products.cog)
            summary = aggregate_products(cogs, glacier_outlines=outlines)
            files = write_summary(summary, Path(tmp) / f"summary-{len(name)}")
            comparison = compare_with_truth(files.median_v, data_dir / "truth.json")
            print(f"{name}: {summary.headline()}")
            print(f"  truth: {comparison.describe()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/demo/data"))
