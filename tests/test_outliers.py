"""Outlier rejection on displacement grids (glacier_velocity.tracking.outliers)."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from glacier_velocity.tracking.outliers import (
    _median_of_eight,
    _nan_median_last_axis,
    fill_gaps,
    isolated_points,
    normalized_median_test,
    small_clusters,
)


def _gradient_field(shape=(12, 14), slope=0.48):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (slope * cols).astype(float), np.zeros(shape)


def test_median_test_flags_a_planted_outlier_and_nothing_else():
    dx, dy = _gradient_field()
    rng = np.random.default_rng(0)
    dx += rng.normal(0, 0.02, dx.shape)
    dx[5, 6] += 3.0
    flagged = normalized_median_test(dx, dy, threshold=3.0)
    assert flagged[5, 6]
    assert flagged.sum() == 1


def test_median_test_keeps_edges_of_a_strong_gradient():
    # One-sided neighbours at the grid edge must not turn a 4 % strain into outliers.
    dx, dy = _gradient_field(slope=0.04 * 12)
    assert not normalized_median_test(dx, dy).any()


def test_isolated_points_and_small_clusters():
    valid = np.zeros((10, 10), dtype=bool)
    valid[1, 1] = True  # alone
    valid[5:7, 5:7] = True  # a 2 x 2 patch: each member has 3 neighbours
    valid[0:4, 6:10] = True  # a 4 x 4 block
    lonely = isolated_points(valid)
    assert lonely[1, 1] and not lonely[5:7, 5:7].any() and not lonely[0:4, 6:10].any()
    small = small_clusters(valid)
    assert small[1, 1] and small[5:7, 5:7].all() and not small[0:4, 6:10].any()


def test_fill_gaps_only_fills():
    values = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [7.0, 8.0, 9.0]])
    filled = fill_gaps(values, smooth_px=0)
    finite = np.isfinite(values)
    np.testing.assert_array_equal(filled[finite], values[finite])
    assert np.isfinite(filled).all()
    assert (fill_gaps(np.full((3, 3), np.nan)) == 0).all()


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (7, 8), elements=st.one_of(st.just(np.nan), st.floats(-100, 100))))
def test_sort_based_median_equals_nanmedian(values):
    count = np.isfinite(values).sum(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values, axis=-1)
    np.testing.assert_allclose(_nan_median_last_axis(values, count), expected, equal_nan=True)


def _median_test_point_by_point(dx, dy, threshold=3.0, epsilon_px=0.1):
    """Westerweel & Scarano's test written out point by point: what the vectorised, blockwise
    implementation must give."""
    out = np.zeros(dx.shape, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(dx.shape[0]):
            for j in range(dx.shape[1]):
                if not np.isfinite(dx[i, j]):
                    continue
                residual_sq, enough = 0.0, True
                for comp in (dx, dy):
                    neighbours = [
                        comp[a, b]
                        for a in range(i - 1, i + 2)
                        for b in range(j - 1, j + 2)
                        if (a, b) != (i, j) and 0 <= a < dx.shape[0] and 0 <= b < dx.shape[1]
                    ]
                    neighbours = np.array([v for v in neighbours if np.isfinite(v)])
                    enough &= neighbours.size >= 6
                    if neighbours.size == 0:
                        residual_sq = np.nan
                        continue
                    median = np.median(neighbours)
                    spread = np.median(np.abs(neighbours - median))
                    residual_sq += (abs(comp[i, j] - median) / (spread + epsilon_px)) ** 2
                out[i, j] = bool(enough and np.sqrt(residual_sq) > threshold)
    return out


def test_median_test_in_blocks_of_rows_equals_the_test_point_by_point():
    # 300 rows: the test runs in blocks of 128 grid rows, and a block's first and last rows
    # need their neighbours in the next one.
    rng = np.random.default_rng(4)
    dx = rng.normal(0, 0.05, (300, 9)) + 0.02 * np.arange(300)[:, None]
    dy = rng.normal(0, 0.05, (300, 9))
    dx[rng.random(dx.shape) < 0.05] += 4.0
    dx[rng.random(dx.shape) < 0.1] = np.nan
    dy[~np.isfinite(dx)] = np.nan
    for row in (127, 200, 256, 298):
        dx[row - 1 : row + 2, 3:6] = 0.02 * row
        dy[row - 1 : row + 2, 3:6] = 0.0
        dx[row, 4] += 3.0
    flagged = normalized_median_test(dx, dy)
    np.testing.assert_array_equal(flagged, _median_test_point_by_point(dx, dy))
    assert flagged[[127, 200, 256, 298], 4].all()


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (6, 8), elements=st.one_of(st.just(np.nan), st.floats(-100, 100))))
def test_the_sorting_network_median_equals_the_sort_based_one(values):
    columns = [values[:, k] for k in range(8)]
    finite = [np.isfinite(c) for c in columns]
    count = np.sum(finite, axis=0)
    np.testing.assert_array_equal(
        _median_of_eight(columns, finite, count), _nan_median_last_axis(values, np.isfinite(values).sum(axis=-1))
    )
