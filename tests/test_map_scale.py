"""One speed scale (logarithmic), arrow length and key, headline region, km axes and outlines on every map of a run."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.colors import LogNorm
from shapely.geometry import box

from glacier_velocity.aggregation.summary import aggregate_products
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.products.figures import (
    MAX_ARROWS,
    SpeedScale,
    nice_ceiling,
    nice_floor,
    speed_scale,
    summary_figure,
)
from glacier_velocity.products.quicklook import quicklook_figure
from helpers import KARAKORAM_TRANSFORM, karakoram_product


def _speed_image(fig):
    return next(im for im in fig.axes[0].images if im.get_cmap().name == "viridis")


def _texts(fig) -> list[str]:
    """The labels a reader sees: titles, axis and colour-bar labels, the arrow key (not the
    headline, a message that names the parameter that changes it)."""
    fig.canvas.draw()
    texts = [fig._suptitle.get_text().splitlines()[0]] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [a.text.get_text() for a in ax.artists if a.__class__.__name__ == "QuiverKey"]
    return [t for t in texts if t]


def _assert_words_not_parameter_names(fig):
    for text in _texts(fig):
        # max_velocity_m_per_yr, glacier_outlines, ...: snake_case is a parameter, not a label.
        assert not re.search(r"[a-z]_[a-z]", text), text


def test_nice_numbers_and_scale_rules():
    assert [nice_ceiling(v) for v in (0.7, 1.0, 1.2, 233.0, 250.0, 251.0, 999.0, 1000.0)] == [
        1.0,
        1.0,
        2.0,
        250.0,
        250.0,
        500.0,
        1000.0,
        1000.0,
    ]
    assert [nice_floor(v) for v in (0.7, 1.0, 1.9, 233.0, 333.3, 999.0)] == [0.5, 1.0, 1.0, 200.0, 250.0, 500.0]
    assert speed_scale(max_velocity_m_per_yr=1000.0) == SpeedScale(1000.0, "fastest speed tracked")
    speeds = np.append(np.linspace(0, 240, 99), [np.nan, 5e4])  # one outlier above the 98th pct
    glacier = speed_scale(glacier_speeds=speeds)
    assert glacier == SpeedScale(250.0, "glacier speeds")
    assert glacier.arrow_key_m_per_yr == 50.0 and SpeedScale(1000.0, "x").arrow_key_m_per_yr == 250.0
    assert speed_scale(glacier_speeds=np.full(3, np.nan)) == SpeedScale(1.0, "no valid speed")
    with pytest.raises(InvalidParameter, match="^max_velocity_m_per_yr: "):
        SpeedScale(0.0, "max_velocity_m_per_yr")


def test_glacier_speeds_sit_mid_scale_not_in_the_bottom_third():
    # A run tracked up to 1000 m/yr over ice of 100-300 m/yr (issue 24: on 0-1000 linear it
    # used 0.1-0.3 of the colours); logarithmic from 10 m/yr, it uses 0.5-0.74.
    norm = speed_scale(max_velocity_m_per_yr=1000.0).norm()
    assert float(norm(100.0)) == pytest.approx(0.5) and float(norm(300.0)) == pytest.approx(0.7386, abs=1e-4)
    assert float(norm(10.0)) == 0.0 and float(norm(1000.0)) == 1.0


def test_quicklooks_of_a_run_share_one_scale_not_their_own_percentile():
    scale = speed_scale(max_velocity_m_per_yr=600.0)
    slow, fast = karakoram_product(speed=50.0), karakoram_product(speed=400.0)
    for product in (slow, fast):
        fig = quicklook_figure(product, scale=scale)
        assert _speed_image(fig).get_clim() == (6.0, 600.0)
        assert isinstance(_speed_image(fig).norm, LogNorm)
        quiver = next(c for c in fig.axes[0].collections if c.__class__.__name__ == "Quiver")
        # An arrow of 200 m/yr spans one arrow step, 1/20 of the map's width.
        assert quiver.scale == pytest.approx(200.0 * MAX_ARROWS) and quiver.scale_units == "width"
        key = next(a for a in fig.axes[0].artists if a.__class__.__name__ == "QuiverKey")
        assert key.U == 200.0 and key.text.get_text() == "200 m/yr"
        # The key sits in the map's lower right corner, clear of the title.
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        key_box = key.text.get_window_extent(renderer)
        assert not key_box.overlaps(fig.axes[0].title.get_window_extent(renderer))
        assert fig.axes[0].get_window_extent(renderer).contains(key_box.x1 - 1, key_box.y0 + 1)
        assert fig.axes[0].get_xlabel() == "easting (km, EPSG:32643)"
        assert fig.axes[0].get_ylabel() == "northing (km, EPSG:32643)"
        # Axes in km: the 40 x 120 m grid from x = 430 km.
        assert fig.axes[0].get_xlim() == pytest.approx((430.0, 434.8))
        _assert_words_not_parameter_names(fig)
    # Without a scale, the product's recorded max_velocity_m_per_yr is the scale.
    recorded = replace(fast, max_velocity_m_per_yr=800.0)
    assert _speed_image(quicklook_figure(recorded)).get_clim() == (8.0, 800.0)


def _outlines():
    """An outline of the middle 1.2 x 1.2 km of the karakoram grid, in UTM 43N."""
    x0, y0 = KARAKORAM_TRANSFORM.c + 1200, KARAKORAM_TRANSFORM.f - 2400
    return GlacierOutlines(box(x0, y0, x0 + 1200, y0 + 1200), "EPSG:32643")


def test_summary_uses_the_runs_scale_and_draws_outlines():
    products = [
        replace(
            karakoram_product(speed=s),
            max_velocity_m_per_yr=700.0,
            reference_id=f"S2A_43SEA_2020060{k}_0_L2A",
        )
        for k, s in enumerate((90.0, 110.0))
    ]
    # Raw products (no correction, no errors): kept in, the scale is what is tested here.
    summary = aggregate_products(products, keep_uncorrected_pairs=True)
    assert summary.max_velocity_m_per_yr == 700.0
    outlines = _outlines()
    fig = summary_figure(summary, outlines=outlines)
    assert _speed_image(fig).get_clim() == (7.0, 700.0)
    label = fig.axes[0].images[0].colorbar.ax.get_ylabel()
    assert label == "speed (m/yr, logarithmic scale; top 700 m/yr: fastest speed tracked)"
    for ax in fig.axes[:3]:
        lines = [line for line in ax.lines if line.get_color() == "white"]
        assert len(lines) == 1
        xs, ys = lines[0].get_data()
        assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((431.2, 432.4, 3997.6, 3998.8))
        assert ax.get_xlabel().startswith("easting (km")
    _assert_words_not_parameter_names(fig)
    assert quicklook_figure(products[0], outlines=outlines).axes[0].lines[1].get_color() == "white"


def test_a_quicklook_gives_its_median_over_the_runs_headline_region_not_the_whole_grid():
    # Ice at 300 m/yr inside the outlines, rock at 2 m/yr around it: the whole grid's median
    # would be the rock's.
    product = karakoram_product(speed=2.0)
    outlines = _outlines()
    inside = outlines.ice_mask(product.transform, product.shape, product.crs)
    v = np.where(inside, 300.0, 2.0).astype(np.float32)
    product = replace(product, v=v, vx=v, vy=np.zeros_like(v))
    title = quicklook_figure(product, outlines=outlines).axes[0].get_title()
    assert f"median 300.0 m/yr over glacier outlines ({int(inside.sum())} cells)" in title
    # Without outlines (and without errors) it says what it is over.
    title = quicklook_figure(product).axes[0].get_title()
    assert "median 2.0 m/yr over whole grid (no glacier outlines and no errors: stable ground included)" in title
