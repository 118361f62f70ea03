"""Summary and time-series figures: files written, each pair at its own dates, honest colour scales."""

from __future__ import annotations

from datetime import timedelta

import matplotlib.image
import numpy as np
import pytest

from glacier_velocity.aggregation.summary import aggregate_products
from glacier_velocity.products.figures import (
    colour_limit,
    plot_summary,
    plot_time_series,
    time_series_figure,
    time_series_points,
)
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import T0, make_product


def _summary(**kwargs):
    products = []
    for k, (speed, dt_days) in enumerate([(100.0, 5.0), (120.0, 10.0), (80.0, 30.0)]):
        v = np.full(SHAPE, speed, dtype=np.float32)
        v[0, k] = np.nan
        products.append(make_product(v, reference_datetime=T0 + timedelta(days=60 * k), dt_days=dt_days, name=f"p{k}"))
    no_valid = make_product(np.full(SHAPE, np.nan), reference_datetime=T0 + timedelta(days=400), name="empty")
    return aggregate_products([*products, no_valid], **kwargs)


def test_time_series_points_keep_each_pairs_own_dates():
    summary = _summary()
    points = time_series_points(summary)
    assert len(points) == 3  # the pair without a valid pixel cannot be placed
    assert [p.reference_datetime for p in points] == [T0, T0 + timedelta(days=60), T0 + timedelta(days=120)]
    assert [p.secondary_datetime for p in points] == [
        T0 + timedelta(days=5),
        T0 + timedelta(days=70),
        T0 + timedelta(days=150),
    ]
    assert [p.mid_datetime for p in points] == [
        T0 + timedelta(days=2.5),
        T0 + timedelta(days=65),
        T0 + timedelta(days=135),
    ]
    assert [p.median_v for p in points] == [100.0, 120.0, 80.0]
    assert points[1].pair_id == summary.entries[1].pair_id


def test_colour_limit_is_the_98th_percentile_ignoring_nan():
    values = np.append(np.arange(1.0, 101.0), [np.nan, np.nan])
    assert colour_limit(values) == pytest.approx(np.percentile(np.arange(1.0, 101.0), 98))
    assert colour_limit(np.zeros(5)) == 1.0
    assert colour_limit(np.full(3, np.nan)) == 1.0


def _assert_readable_png(path, min_width, min_height):
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height
    # Drawn content, not a blank canvas: many distinct colours.
    colours = np.unique(image[..., :3].reshape(-1, 3).round(2), axis=0)
    assert len(colours) > 20


def test_plot_summary_writes_a_png(tmp_path):
    path = plot_summary(_summary(), tmp_path / "figs" / "summary.png", dpi=60)
    assert path == tmp_path / "figs" / "summary.png"
    _assert_readable_png(path, 600, 250)


def test_plot_time_series_writes_a_png(tmp_path):
    path = plot_time_series(_summary(), tmp_path / "ts.png", dpi=60)
    _assert_readable_png(path, 400, 200)


def test_time_series_without_dates_still_draws(tmp_path):
    product = make_product(np.full(SHAPE, 10.0))
    from dataclasses import replace

    summary = aggregate_products([replace(product, reference_datetime=None, secondary_datetime=None)])
    assert time_series_points(summary) == ()
    assert plot_time_series(summary, tmp_path / "ts.png", dpi=40).is_file()
    assert plot_summary(summary, tmp_path / "s.png", dpi=40).is_file()


def test_scene_pair_png_is_one_small_figure_of_both_images(tmp_path):
    from affine import Affine

    from glacier_velocity.io.raster import Raster
    from glacier_velocity.products.quicklook import scene_pair_png

    rng = np.random.default_rng(3)
    # 2000 x 1500 px scenes with a nodata strip: drawn subsampled, on a 9 x 4.5 in figure.
    images = [rng.integers(1, 4000, size=(2000, 1500), dtype=np.uint16) for _ in range(2)]
    images[1][:, :300] = 0
    rasters = [Raster(a, Affine(10.0, 0, 500000.0, 0, -10.0, 4000000.0), "EPSG:32643", 0, "mem") for a in images]
    png = scene_pair_png(rasters[0], rasters[1], titles=("reference", "secondary"), dpi=80)
    path = tmp_path / "pair.png"
    path.write_bytes(png)
    assert matplotlib.image.imread(path).shape[:2] == (360, 720)
    _assert_readable_png(path, 720, 360)


def _two_years():
    """Two pairs in 2021 (100, 120 m/yr) and two in 2022 (80, 90 m/yr), errors 4 m/yr in vx and vy."""
    from helpers import with_errors

    pairs = [(T0, 100.0), (T0 + timedelta(days=30), 120.0), (T0 + timedelta(days=365), 80.0)]
    pairs.append((T0 + timedelta(days=395), 90.0))
    products = [
        with_errors(make_product(np.full(SHAPE, speed, np.float32), reference_datetime=start, name=f"p{k}"), 4.0)
        for k, (start, speed) in enumerate(pairs)
    ]
    return aggregate_products(products)


def test_a_run_over_two_years_gives_one_headline_per_year():
    summary = _two_years()
    # Each year's cells: the median of its two pairs, error sqrt(4^2 + 4^2) / 2 = 2.83 m/yr.
    assert [(y.year, y.pair_count, y.headline_median_v, y.cells) for y in summary.years] == [
        (2021, 2, 110.0, 20),
        (2022, 2, 85.0, 20),
    ]
    assert [round(y.headline_median_v_error, 2) for y in summary.years] == [2.83, 2.83]
    assert summary.headline() == (
        "median speed over moving ground (speed above 3 times its error; no glacier outlines given) (20 cells): "
        "2021 110.0 +/- 2.8 m/yr (2 pairs), 2022 85.0 +/- 2.8 m/yr (2 pairs)"
    )
    # A year whose only pair measured nothing (kept in: it has no error) says so.
    kept = _summary(keep_uncorrected_pairs=True)
    assert kept.headline().endswith("2021 100.0 +/- 7.2 m/yr (3 pairs), 2022 no speed measured (1 pair)")
    # One year only gives one number, as before.
    one_year = aggregate_products([make_product(np.full(SHAPE, 50.0, np.float32), reference_datetime=T0)])
    assert one_year.years == () and one_year.headline().startswith("median speed 50.0 +/- 10.0 m/yr over")


def test_the_time_series_names_every_year_and_draws_each_years_median():
    fig = time_series_figure(_two_years())
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    # June 2021 to August 2022: the first tick names 2021, the first tick of 2022 names 2022.
    assert labels[0].endswith("\n2021") and sum(label.endswith("\n2022") for label in labels) == 1
    assert all(label.split("\n")[0] in ("Jan", "Mar", "May", "Jul", "Sep", "Nov") for label in labels)
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["2021: 110.0 m/yr", "2022: 85.0 m/yr"]
    assert "median of the year over the same region" in [t.get_text() for t in ax.get_legend().get_texts()]
