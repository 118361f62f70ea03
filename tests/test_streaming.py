"""The summary is streamed (issue 23, finding 12): products are read one at a time into the
datacube, and the statistics are made from it a block of rows at a time, so memory no longer
grows with the number of pairs (it grew by ~53 MB a product on a whole-tile grid).

The 300-product, 915 x 915 measurement is a benchmark (benchmarks/bench_aggregation.py); here,
the blocks give exactly the numbers of one pass, and peak memory does not grow with the pairs.
"""

from __future__ import annotations

import logging
import tracemalloc
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from affine import Affine
from numpy.testing import assert_array_equal

from doc_rows import assert_documented
from glacier_velocity.aggregation.summary import aggregate_products, block_rows
from glacier_velocity.errors import InputError
from helpers import T0, make_product, with_errors

SHAPE = (23, 37)
TRANSFORM = Affine(120.0, 0.0, 500_000.0, 0.0, -120.0, 7_000_000.0)


def _products(count: int, shape=SHAPE, seed: int = 5, years: int | None = None):
    """``count`` pairs, three a year (or spread over ``years``), with holes, errors of 10-40 m/yr and one noisy pair."""
    rng = np.random.default_rng(seed)
    products = []
    for k in range(count):
        v = rng.uniform(20, 400, shape).astype(np.float32)
        v[rng.uniform(size=shape) < 0.3] = np.nan
        if years is None:
            start = T0 + timedelta(days=40 * (k % 3) + 365 * (k // 3))
        else:
            start = T0 + timedelta(days=365 * (k % years) + 5 * (k // years))
        product = make_product(v, transform=TRANSFORM, reference_datetime=start, name=f"s{k}", direction_deg=10.0 * k)
        products.append(with_errors(product, 10.0 + 10 * (k % 4), 12.0 + 5 * (k % 3)))
    products[2] = with_errors(products[2], 150.0)  # left out: error above 100 m/yr
    return products


def test_block_rows_follow_the_memory_budget():
    assert block_rows(300, 915) == 29  # 512 MB: 32 blocks of a whole tile with 300 pairs
    assert block_rows(6, 32) == 41666 and block_rows(65535, 10980, memory_mb=1.0) == 1
    assert block_rows(300, 915, memory_mb=2048) == 116


def test_statistics_in_blocks_of_one_row_equal_one_block(tmp_path, caplog):
    products = _products(7)
    whole = aggregate_products(products, points_of_interest=())
    with caplog.at_level(logging.INFO, logger="glacier_velocity.aggregation.summary"):
        rows = aggregate_products(products, memory_mb=1e-6)  # one row per block
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("aggregated "))
    assert line.startswith("aggregated 6 of 7 products on a 23x37 grid in blocks of 1 rows; ")
    share = line.split("; ", 1)[1].split("%", 1)[0]
    assert_documented(line, "6", "7", "23", "37", "1", share, rows.headline())
    assert block_rows(7, SHAPE[1], memory_mb=1e-6) == 1 and block_rows(7, SHAPE[1]) >= SHAPE[0]
    for name in ("median_v", "median_vx", "median_vy", "std_v", "count", "v_error", "vx_error", "vy_error"):
        assert_array_equal(getattr(rows, name), getattr(whole, name), err_msg=name)
    assert rows.entries == whole.entries and rows.excluded == whole.excluded
    assert rows.years == whole.years and len(rows.years) == 3
    assert [x.pair_id for x in rows.excluded] == [products[2].reference_id + "__" + products[2].secondary_id]
    # Against the numbers of the stack held whole (what the summary did before it was streamed).
    kept = [p for i, p in enumerate(products) if i != 2]
    v = np.stack([p.v for p in kept])
    count = np.isfinite(v).sum(axis=0)
    assert_array_equal(rows.count, count)
    with np.errstate(all="ignore"):
        assert_array_equal(rows.median_v[count > 0], np.nanmedian(v[:, count > 0], axis=0).astype(np.float32))
        spread = count >= 2
        std = np.nanstd(v[:, spread].astype(np.float64), axis=0, ddof=1).astype(np.float32)
    assert_array_equal(rows.std_v[spread], std)


def test_undated_products_still_aggregate_but_have_no_datacube(tmp_path):
    products = [replace(p, reference_datetime=None, secondary_datetime=None) for p in _products(3)[:2]]
    summary = aggregate_products(products)
    assert summary.product_count == 2 and summary.years == ()
    with pytest.raises(InputError, match="has no acquisition dates"):
        aggregate_products(products, datacube=tmp_path / "cube.nc")
    assert not (tmp_path / "cube.nc").exists()


def _traced_peak(cogs, **kwargs) -> int:
    """Peak bytes allocated through Python and NumPy while the summary of ``cogs`` is made."""
    tracemalloc.start()
    try:
        aggregate_products(cogs, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_summary_holds_a_few_product_rasters_at_once_whatever_their_number(tmp_path):
    """Held whole (before the summary was streamed), 40 pairs are 240 rasters of the grid (six bands
    each); streamed, one product is read at a time and a block of every pair's rows."""
    from glacier_velocity.io.cog import write_velocity_cog

    shape = (200, 200)
    raster = shape[0] * shape[1] * 4  # bytes of one float32 band on the grid
    cogs = [
        str(write_velocity_cog(product, tmp_path / f"pair_{k:02d}.tif"))
        for k, product in enumerate(_products(40, shape=shape, seed=9, years=2))
    ]
    few, many = (_traced_peak(cogs[:count], memory_mb=2.0) / raster for count in (8, 40))
    print(f"peak traced memory: {few:.1f} rasters with 8 pairs, {many:.1f} with 40")
    # One product as read (about a dozen bands), the summary's maps and one block: no more
    # with 40 pairs than with 8 (held whole, 32 more pairs are 192 more rasters).
    assert many < 60, (few, many)
    assert many - few < 6, (few, many)
