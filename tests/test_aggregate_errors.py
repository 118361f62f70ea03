"""Error-aware aggregation: the error of the median, the pair-error threshold, and headline numbers
and time series over the glacier (outlines or points of interest), never over stable ground."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
import rasterio
from numpy.testing import assert_allclose
from shapely.geometry import box

from glacier_velocity.aggregation.summary import (
    MAX_PAIR_ERROR_M_PER_YR,
    aggregate_products,
    median_error,
    summary_tags,
    write_summary,
)
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.errors import InvalidParameter, PairsLeftOut
from glacier_velocity.io.points import read_points_of_interest
from glacier_velocity.products.figures import plot_time_series, time_series_points
from helpers import ICE, T0, ice_and_rock, make_product
from helpers import PRODUCT_CRS as CRS
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import pair_series as _series


def test_median_error_propagates_the_pairs_errors():
    # n = 2: the median is the mean, sqrt((30^2 + 40^2) / 2) / sqrt(2) = 25.
    assert float(median_error(np.array([30.0, 40.0]))) == pytest.approx(25.0)
    # n = 3: sqrt(pi/2) * harmonic mean / sqrt(3).
    expected = np.sqrt(np.pi / 2) * 3 / (1 / 30 + 1 / 40 + 1 / 50) / np.sqrt(3)
    assert float(median_error(np.array([30.0, 40.0, 50.0]))) == pytest.approx(expected, rel=1e-6)
    assert np.isnan(median_error(np.array([np.nan, np.nan])))


def test_the_error_of_the_median_is_calibrated_on_simulated_noise():
    # 5 pairs with different 1-sigma errors, 20 000 pixels of pure noise around a true 100 m/yr.
    rng = np.random.default_rng(7)
    sigmas = np.array([20.0, 30.0, 30.0, 45.0, 60.0])
    values = 100.0 + rng.normal(0.0, 1.0, (5, 20_000)) * sigmas[:, None]
    errors = np.broadcast_to(sigmas[:, None], values.shape)
    estimate = median_error(errors)
    covered = np.mean(np.abs(np.median(values, axis=0) - 100.0) <= estimate)
    # 1 sigma covers 68.3 % of a normal; the n >= 3 factor is slightly conservative.
    assert 0.66 <= covered <= 0.74, covered
    # Equal errors: the classic 1.2533 sigma / sqrt(n).
    equal = 100.0 + rng.normal(0.0, 30.0, (5, 20_000))
    spread = np.std(np.median(equal, axis=0))
    assert float(median_error(np.full(5, 30.0))) == pytest.approx(spread, rel=0.08)


def test_summary_errors_follow_the_pairs_errors_and_are_written():
    products = _series([ice_and_rock()] * 3, [30.0, 40.0, 50.0])
    summary = aggregate_products(products, glacier_outlines=ICE)
    expected = np.sqrt(np.pi / 2) * 3 / (1 / 30 + 1 / 40 + 1 / 50) / np.sqrt(3)
    assert_allclose(summary.vx_error, expected, rtol=1e-5)
    assert_allclose(summary.vy_error, expected, rtol=1e-5)
    # Flow is due east: the speed error is the east error.
    assert_allclose(summary.v_error, expected, rtol=1e-5)
    assert summary.headline_median_v == pytest.approx(200.0)
    assert summary.headline_median_v_error == pytest.approx(expected, rel=1e-5)
    assert summary.headline().startswith(f"median speed 200.0 +/- {expected:.1f} m/yr over glacier outlines (12 cells)")


def test_summary_error_cogs_carry_the_errors(tmp_path):
    products = _series([ice_and_rock()] * 2, [30.0, 40.0])
    files = write_summary(aggregate_products(products, glacier_outlines=ICE), tmp_path)
    with rasterio.open(files.v_error) as src:
        assert src.tags()["units"] == "m/yr"
        assert_allclose(src.read(1), 25.0, rtol=1e-6)
        tags = src.tags()
    assert tags["headline_region"] == "glacier outlines"
    assert float(tags["headline_median_v"]) == pytest.approx(200.0)
    assert float(tags["headline_median_v_error"]) == pytest.approx(25.0)
    assert json.loads(tags["excluded_pairs"]) == []


#: The correction record of a pair whose stable ground could not be found (all ice).
NOT_CORRECTED = {
    "stable_shift_method": "none",
    "stable_shift_applied": False,
    "stable_shift_warning": "only 0 stable points on land that is not snow, ice, water or cloud (at least 100 "
    "needed): no stable-ground correction applied; give glacier outlines or a larger area with stable ground",
}


def _uncorrected(v: np.ndarray, days: float, dt_days: float = 10.0, name: str = "raw"):
    """A pair whose correction could not run: raw speeds, no errors, the warning in its record."""
    product = make_product(
        v, reference_datetime=T0 + timedelta(days=days), dt_days=dt_days, name=name, error_m_per_yr=None
    )
    return replace(product, correction=dict(NOT_CORRECTED))


def test_a_pair_without_a_correction_is_left_out_and_the_headline_keeps_its_error():
    # The case: a 15-day pair the correction could not run on reads 379 m/yr where the
    # glacier moves at 260; it entered the summary in silence and took the headline's +/- away.
    products = _series([ice_and_rock(260.0)] * 2, [30.0, 40.0])
    products.append(_uncorrected(ice_and_rock(379.0), days=200, dt_days=15.0))
    summary = aggregate_products(products, glacier_outlines=ICE)
    assert summary.product_count == 2
    [left_out] = summary.excluded
    assert (
        left_out.cause == "not_corrected"
        and left_out.pair_id == products[2].reference_id + "__" + products[2].secondary_id
    )
    assert "only 0 stable points" in left_out.reason and "keep_uncorrected_pairs" in left_out.reason
    assert summary.headline_median_v == pytest.approx(260.0)
    assert summary.headline() == "median speed 260.0 +/- 25.0 m/yr over glacier outlines (12 cells)"
    assert json.loads(summary_tags(summary)["excluded_pairs"])[0]["cause"] == "not_corrected"

    # Kept in on purpose: the error is unknown (never smaller), and the headline says why.
    kept = aggregate_products(products, glacier_outlines=ICE, keep_uncorrected_pairs=True)
    assert kept.product_count == 3 and not kept.excluded and kept.keep_uncorrected_pairs
    assert np.isnan(kept.v_error).all()
    assert kept.headline() == (
        "median speed 260.0 m/yr over glacier outlines (12 cells), no +/-: 1 of the 3 pairs aggregated have no "
        f"error estimate (kept in by keep_uncorrected_pairs: {left_out.pair_id})"
    )


def test_a_pair_without_errors_is_left_out_as_unjudged():
    products = _series([ice_and_rock()] * 2, [30.0, 40.0])
    products.append(
        make_product(ice_and_rock(), reference_datetime=T0 + timedelta(days=200), name="raw", error_m_per_yr=None)
    )
    summary = aggregate_products(products, glacier_outlines=ICE)
    assert summary.product_count == 2
    assert [x.cause for x in summary.excluded] == ["no_error"]
    assert "no error estimate (v_error)" in summary.excluded[0].reason
    kept = aggregate_products(products, glacier_outlines=ICE, keep_uncorrected_pairs=True)
    assert kept.product_count == 3 and np.isnan(kept.v_error).all()


def test_min_count_is_checked_after_pairs_are_left_out():
    # 3 products, 2 left out, min_count 2: the summary was empty ("median speed nan") and said nothing.
    products = _series([ice_and_rock()], [30.0])
    products += [_uncorrected(ice_and_rock(), days=100 * k, name=f"raw{k}") for k in (1, 2)]
    with pytest.raises(PairsLeftOut, match=r"^min_count: 2 is more than the 1 pair\(s\) left after 2 of 3") as caught:
        aggregate_products(products, min_count=2)
    assert [x.cause for x in caught.value.excluded] == ["not_corrected", "not_corrected"]
    assert caught.value.parameter == "min_count"
    assert aggregate_products(products, min_count=2, keep_uncorrected_pairs=True).valid_fraction == 1.0


def test_every_pair_left_out_names_what_keeps_them():
    products = [_uncorrected(ice_and_rock(), days=100 * k, name=f"raw{k}") for k in (1, 2)]
    with pytest.raises(
        PairsLeftOut, match=r"^keep_uncorrected_pairs: every pair was left out of the summary: 2 not corrected"
    ):
        aggregate_products(products)


def test_a_headline_without_cells_says_why():
    rock_only = ice_and_rock()
    rock_only[:, :3] = np.nan  # nothing measured on the ice
    products = _series([rock_only], [30.0])
    summary = aggregate_products(products, glacier_outlines=ICE)
    assert summary.headline().endswith(
        "no +/-: no cell of the glacier outlines has a median speed (at least 1 valid map(s))"
    )


def test_a_year_without_an_error_says_why_and_a_year_without_cells_says_so():
    # 2021: two corrected pairs, 260 and 250 m/yr (errors 30 and 20: median 255.0 +/- 18.0);
    # 2022: one pair kept in without a correction, 300 m/yr and no error.
    raw = make_product(
        ice_and_rock(300.0), reference_datetime=T0 + timedelta(days=400), name="raw", error_m_per_yr=None
    )
    products = [*_series([ice_and_rock(260.0), ice_and_rock(250.0)], [30.0, 20.0]), raw]
    summary = aggregate_products(products, glacier_outlines=ICE, keep_uncorrected_pairs=True)
    assert [y.year for y in summary.years] == [2021, 2022]
    raw_id = f"{raw.reference_id}__{raw.secondary_id}"
    assert summary.headline() == (
        "median speed over glacier outlines (12 cells): 2021 255.0 +/- 18.0 m/yr (2 pairs), 2022 300.0 m/yr "
        f"(1 pair); no +/-: 1 of the 3 pairs aggregated have no error estimate (kept in by keep_uncorrected_pairs: "
        f"{raw_id})"
    )
    # A year with nothing measured on the glacier says that instead of a speed.
    rock_only = ice_and_rock()
    rock_only[:, :3] = np.nan
    later = make_product(rock_only, reference_datetime=T0 + timedelta(days=400), name="rock")
    summary = aggregate_products([products[0], later], glacier_outlines=ICE)
    assert summary.headline() == (
        "median speed over glacier outlines (12 cells): 2021 260.0 +/- 30.0 m/yr (1 pair), "
        "2022 no speed measured (1 pair)"
    )


def test_pairs_above_the_error_threshold_are_left_out_and_named():
    speeds = [ice_and_rock(200.0), ice_and_rock(210.0), ice_and_rock(900.0)]
    products = _series(speeds, [30.0, 40.0, 150.0])
    summary = aggregate_products(products, glacier_outlines=ICE)
    assert MAX_PAIR_ERROR_M_PER_YR == 100.0
    assert summary.product_count == 2
    assert [x.pair_id for x in summary.excluded] == [products[2].reference_id + "__" + products[2].secondary_id]
    reason = summary.excluded[0].reason
    assert "150.0 m/yr" in reason and "max_pair_error_m_per_yr = 100 m/yr" in reason
    # The noisy pair's 900 m/yr never reaches the median: (200 + 210) / 2.
    assert summary.headline_median_v == pytest.approx(205.0)
    assert summary.exclusion_lines() == [f"{summary.excluded[0].pair_id}: {reason}"]
    # Threshold off: all three, median 210.
    everything = aggregate_products(products, glacier_outlines=ICE, max_pair_error_m_per_yr=None)
    assert everything.product_count == 3 and everything.headline_median_v == pytest.approx(210.0)


def test_every_pair_above_the_threshold_is_an_error_naming_the_parameter():
    products = _series([ice_and_rock()] * 2, [150.0, 160.0])
    with pytest.raises(InvalidParameter, match="max_pair_error_m_per_yr"):
        aggregate_products(products)
    with pytest.raises(InvalidParameter, match="max_pair_error_m_per_yr"):
        aggregate_products(products, max_pair_error_m_per_yr=-1.0)


def test_headline_is_over_the_glacier_not_over_stable_ground():
    products = _series([ice_and_rock()] * 3, [10.0, 10.0, 10.0])
    with_outlines = aggregate_products(products, glacier_outlines=ICE)
    assert with_outlines.region_name == "glacier outlines"
    assert with_outlines.headline_median_v == pytest.approx(200.0)
    # The whole grid (12 ice cells of 20) would say 200 too; with more rock it says rock.
    mostly_rock = np.full(SHAPE, 5.0, dtype=np.float32)
    mostly_rock[:, 0] = 200.0
    ice = GlacierOutlines(box(500_000.0, 6_999_600.0, 500_100.0, 7_000_000.0), CRS)
    products = _series([mostly_rock] * 3, [10.0, 10.0, 10.0])
    assert aggregate_products(products, glacier_outlines=ice).headline_median_v == pytest.approx(200.0)
    # Without outlines: the significantly moving cells (5 m/yr rock is within 3 sigma of 0).
    fallback = aggregate_products(products)
    assert fallback.region_name.startswith("moving ground")
    assert fallback.headline_median_v == pytest.approx(200.0) and fallback.region_cells == 4
    # Per pair, the time series is over the glacier too.
    assert [e.region_median_v for e in fallback.entries] == [200.0] * 3


def test_points_of_interest_give_a_time_series_with_error_bars(tmp_path):
    from rasterio.warp import transform as reproject_xy

    speeds = [ice_and_rock(200.0), ice_and_rock(260.0), ice_and_rock(230.0)]
    products = _series(speeds, [20.0, 30.0, 40.0])
    # One point on the ice (cell 1, 1) and one on rock (cell 2, 4), given in lon/lat.
    xs, ys = reproject_xy(CRS, "EPSG:4326", [500_150.0, 500_450.0], [6_999_850.0, 6_999_750.0])
    text = f"{xs[0]:.7f},{ys[0]:.7f}; {xs[1]:.7f},{ys[1]:.7f}"
    summary = aggregate_products(products, points_of_interest=read_points_of_interest(text))
    assert summary.region_name == "points of interest"
    assert [(c.row, c.col) for c in summary.points] == [(1, 1), (2, 4)]
    assert [e.point_v for e in summary.entries] == [(200.0, 5.0), (260.0, 5.0), (230.0, 5.0)]
    assert [e.point_v_error[0] for e in summary.entries] == pytest.approx([20.0, 30.0, 40.0])
    points = time_series_points(summary)
    assert [p.series for p in points] == ["P1"] * 3 + ["P2"] * 3
    assert [p.median_v for p in points[:3]] == [200.0, 260.0, 230.0]
    assert [p.v_error for p in points[:3]] == pytest.approx([20.0, 30.0, 40.0])
    assert plot_time_series(summary, tmp_path / "ts.png").stat().st_size > 10_000


def test_glacier_time_series_carries_each_pairs_error():
    products = _series([ice_and_rock(200.0), ice_and_rock(240.0)], [25.0, 35.0])
    summary = aggregate_products(products, glacier_outlines=ICE)
    points = time_series_points(summary)
    assert [(p.series, p.median_v, round(p.v_error, 3)) for p in points] == [
        ("glacier outlines", 200.0, 25.0),
        ("glacier outlines", 240.0, 35.0),
    ]


def test_points_of_interest_forms():
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "terminus"},
                "geometry": {"type": "Point", "coordinates": [76.13, 36.2]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "MultiPoint", "coordinates": [[76.14, 36.21], [76.15, 36.22]]},
            },
        ],
    }
    points = read_points_of_interest(json.dumps(geojson))
    assert [(p.name, p.x, p.y) for p in points] == [
        ("terminus", 76.13, 36.2),
        ("P2-1", 76.14, 36.21),
        ("P2-2", 76.15, 36.22),
    ]
    assert [(p.x, p.y) for p in read_points_of_interest([[76.13, 36.2], [76.14, 36.21]])] == [
        (76.13, 36.2),
        (76.14, 36.21),
    ]
    assert read_points_of_interest("") == () and read_points_of_interest(None) == ()
    with pytest.raises(InvalidParameter, match="points_of_interest.*lon first"):
        read_points_of_interest("36.2,176.13; 200,36")
    with pytest.raises(InvalidParameter, match="points_of_interest.*glacier_outlines"):
        read_points_of_interest(
            '{"type": "Polygon", "coordinates": [[[76.1, 36.2], [76.2, 36.2], [76.2, 36.3], [76.1, 36.2]]]}'
        )
