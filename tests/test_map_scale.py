"""One speed scale, arrow key, km axes and outlines on every map of a run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import box

from glacier_velocity.aggregation.summary import aggregate_products
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.products.figures import (
    SpeedScale,
    nice_ceiling,
    speed_scale,
    summary_figure,
)
from glacier_velocity.products.quicklook import quicklook_figure
from helpers import KARAKORAM_TRANSFORM, karakoram_product


def _speed_image(fig):
    return next(im for im in fig.axes[0].images if im.get_cmap().name == "viridis")


def test_nice_ceiling_and_scale_rules():
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
    assert speed_scale(max_velocity_m_per_yr=1000.0) == SpeedScale(1000.0, "max_velocity_m_per_yr")
    speeds = np.append(np.linspace(0, 240, 99), [np.nan, 5e4])  # one outlier above the 98th pct
    glacier = speed_scale(glacier_speeds=speeds)
    assert glacier == SpeedScale(250.0, "glacier speeds")
    assert glacier.arrow_key_m_per_yr == 200.0 and SpeedScale(1000.0, "x").arrow_key_m_per_yr == 500.0
    assert speed_scale(glacier_speeds=np.full(3, np.nan)) == SpeedScale(1.0, "no valid speed")
    with pytest.raises(InvalidParameter, match="^max_velocity_m_per_yr: "):
        SpeedScale(0.0, "max_velocity_m_per_yr")


def test_quicklooks_of_a_run_share_one_scale_not_their_own_percentile():
    scale = speed_scale(max_velocity_m_per_yr=600.0)
    slow, fast = karakoram_product(speed=50.0), karakoram_product(speed=400.0)
    for product in (slow, fast):
        fig = quicklook_figure(product, scale=scale)
        assert _speed_image(fig).get_clim() == (0.0, 600.0)
        quiver = next(c for c in fig.axes[0].collections if c.__class__.__name__ == "Quiver")
        assert quiver.scale == pytest.approx(600.0 / 0.08) and quiver.scale_units == "width"
        key = next(a for a in fig.axes[0].artists if a.__class__.__name__ == "QuiverKey")
        assert key.U == 500.0 and key.text.get_text() == "500 m/yr"
        assert fig.axes[0].get_xlabel() == "easting (km, EPSG:32643)"
        assert fig.axes[0].get_ylabel() == "northing (km, EPSG:32643)"
        # Axes in km: the 40 x 120 m grid from x = 430 km.
        assert fig.axes[0].get_xlim() == pytest.approx((430.0, 434.8))
    # Without a scale, the product's recorded max_velocity_m_per_yr is the scale.
    recorded = replace(fast, engine_params={**fast.engine_params, "max_velocity_m_per_yr": 800.0})
    assert _speed_image(quicklook_figure(recorded)).get_clim() == (0.0, 800.0)


def test_summary_uses_the_runs_scale_and_draws_outlines():
    products = [
        replace(
            karakoram_product(speed=s),
            engine_params={"max_velocity_m_per_yr": 700.0},
            reference_id=f"S2A_43SEA_2020060{k}_0_L2A",
        )
        for k, s in enumerate((90.0, 110.0))
    ]
    # Raw products (no correction, no errors): kept in, the scale is what is tested here.
    summary = aggregate_products(products, keep_uncorrected_pairs=True)
    assert summary.max_velocity_m_per_yr == 700.0
    # An outline of the middle 1.2 x 1.2 km of the grid, in UTM 43N.
    x0, y0 = KARAKORAM_TRANSFORM.c + 1200, KARAKORAM_TRANSFORM.f - 2400
    outlines = GlacierOutlines(box(x0, y0, x0 + 1200, y0 + 1200), "EPSG:32643")
    fig = summary_figure(summary, outlines=outlines)
    assert _speed_image(fig).get_clim() == (0.0, 700.0)
    assert "scale 0-700 from max_velocity_m_per_yr" in fig.axes[0].images[0].colorbar.ax.get_ylabel()
    for ax in fig.axes[:3]:
        lines = [line for line in ax.lines if line.get_color() == "white"]
        assert len(lines) == 1
        xs, ys = lines[0].get_data()
        assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((431.2, 432.4, 3997.6, 3998.8))
        assert ax.get_xlabel().startswith("easting (km")
    assert quicklook_figure(products[0], outlines=outlines).axes[0].lines[1].get_color() == "white"
