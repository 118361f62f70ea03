"""The regularised final field (tracking/field_solve.py): its operators and what it recovers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_velocity.tracking import field_solve
from glacier_velocity.tracking.field_solve import ChipMeasurement, chip_kernel, solve_field

SPACING_PX = 12


@given(spacing=st.integers(2, 24), chip=st.integers(4, 160))
def test_chip_kernel_is_a_symmetric_mean(spacing: int, chip: int) -> None:
    kernel = chip_kernel(spacing, chip)
    assert len(kernel) % 2 == 1
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel[::-1], atol=1e-12)
    assert (kernel >= 0).all()


def test_chip_kernel_of_a_32_px_chip_on_a_12_px_grid() -> None:
    # the mean over 32 px (offsets -15.5 .. 15.5 px) of the field interpolated linearly between
    # points 12 px apart: the point itself 12/32, its neighbours 9 1/3 / 32, the next ones only
    # through the chip's last 4 px (2/3 / 32)
    np.testing.assert_allclose(chip_kernel(12, 32), [1 / 48, 7 / 24, 3 / 8, 7 / 24, 1 / 48], atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 20),
    chip=st.sampled_from([32, 64, 128]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_adjoint_of_the_chip_mean(rows: int, cols: int, chip: int, seed: int) -> None:
    # <K x, y> == <x, K^T y>: the conjugate gradients converge to the least-squares field only
    # if the normal operator is symmetric
    rng = np.random.default_rng(seed)
    kernel = chip_kernel(SPACING_PX, chip)
    x = rng.standard_normal((rows, cols, 2)).astype(np.float32)
    y = rng.standard_normal((rows, cols, 2)).astype(np.float32)
    forward = field_solve._smooth(x, kernel)
    backward = field_solve._smooth_adjoint(y, kernel)
    assert float(np.sum(forward * y)) == pytest.approx(float(np.sum(x * backward)), rel=1e-4, abs=1e-4)


def test_the_curvature_diagonal_is_that_of_its_operator() -> None:
    rng = np.random.default_rng(3)
    valid = rng.random((7, 9)) > 0.2
    start = rng.standard_normal((7, 9, 2)).astype(np.float32)
    noise = np.where(valid, 0.05 + rng.random((7, 9)), np.nan)
    curvature = field_solve._Curvature(valid, start, noise)
    explicit = np.zeros(start.shape, dtype=np.float32)
    for index in np.ndindex(start.shape):
        unit = np.zeros(start.shape, dtype=np.float32)
        unit[index] = 1.0
        explicit[index] = curvature.normal(unit, np.zeros(start.shape, dtype=np.float32))[index]
    np.testing.assert_allclose(curvature.diagonal(start.shape), explicit, rtol=1e-5, atol=1e-3)


def _measure(
    truth: np.ndarray, predictor: np.ndarray, noise_px: float, chip: int, seed: int, sigma_px: float | None = None
) -> ChipMeasurement:
    """What the last pass measures of ``truth`` (px, one component in both channels) after a
    deformation by ``predictor``: the chip mean of their difference plus noise of ``noise_px``,
    with a standard error of ``sigma_px`` (``noise_px`` unless given)."""
    rng = np.random.default_rng(seed)
    kernel = chip_kernel(SPACING_PX, chip)
    difference = np.dstack((truth - predictor, truth - predictor)).astype(np.float32)
    residual = field_solve._smooth(difference, kernel) + rng.normal(0.0, noise_px, difference.shape)
    sigma = np.full(truth.shape, noise_px if sigma_px is None else sigma_px, dtype=np.float32)
    return ChipMeasurement(
        residual_dx=residual[..., 0],
        residual_dy=residual[..., 1],
        predictor_dx=predictor.astype(np.float32),
        predictor_dy=predictor.astype(np.float32),
        sigma_x=sigma,
        sigma_y=sigma,
        chip=np.full(truth.shape, chip),
    )


def test_a_plane_measured_without_noise_is_returned_as_it_is() -> None:
    rows, cols = np.mgrid[0:30, 0:40].astype(np.float64)
    truth = 2.0 + 0.03 * cols - 0.02 * rows  # px; no curvature, so nothing to smooth
    measured = _measure(truth, np.zeros_like(truth), 0.0, 32, 0, sigma_px=0.02)
    # the point-wise field starts off by a little noise; the exact chip means pull it back
    start = truth + np.random.default_rng(1).normal(0.0, 0.01, truth.shape)
    dx, dy = solve_field(measured, (start, start.copy()), SPACING_PX)
    # 0.010 px RMS of noise in the start -> 0.0009 px RMS, 0.002 px at most inside; the
    # corners, without a curvature term, stay held a little to their start (0.008 px)
    assert np.sqrt(np.mean((dx - truth) ** 2)) < 0.0015
    assert np.abs(dx - truth)[2:-2, 2:-2].max() < 0.003
    np.testing.assert_allclose(dx, dy)


def test_noisy_chip_means_of_a_smooth_field_come_out_closer_than_the_point_wise_estimate() -> None:
    # The point-wise scheme ends where each point's value plus its chip's residual holds; the
    # solve weighs every chip's measurement at once and smooths the noise it amplified.
    rows, cols = np.mgrid[0:40, 0:50].astype(np.float64)
    truth = 5.0 * np.exp(-(((rows - 20) / 14.0) ** 2)) + 0.01 * cols  # px, a smooth tongue
    noise_px = 0.04
    pointwise_error = []
    solved_error = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        predictor = truth + rng.normal(0.0, 0.06, truth.shape)  # a noisy point-wise field
        measured = _measure(truth, predictor, noise_px, 32, seed)
        pointwise = predictor + measured.residual_dx
        dx, _ = solve_field(measured, (pointwise, pointwise.copy()), SPACING_PX)
        inner = (slice(3, -3), slice(3, -3))
        pointwise_error.append(np.sqrt(np.mean((pointwise - truth)[inner] ** 2)))
        solved_error.append(np.sqrt(np.mean((dx - truth)[inner] ** 2)))
    # measured: point-wise 0.067-0.069 px, solved 0.025-0.027 px
    assert np.mean(solved_error) < 0.5 * np.mean(pointwise_error)
    assert np.mean(solved_error) < 0.03


def test_rejected_points_stay_without_a_value_and_few_points_are_left_alone() -> None:
    rows, cols = np.mgrid[0:20, 0:20].astype(np.float64)
    truth = 0.05 * cols
    measured = _measure(truth, truth, 0.02, 32, 7)
    pointwise = truth + measured.residual_dx
    pointwise[5:9, 5:9] = np.nan
    dx, dy = solve_field(measured, (pointwise, pointwise.copy()), SPACING_PX)
    assert np.isnan(dx[5:9, 5:9]).all() and np.isnan(dy[5:9, 5:9]).all()
    assert np.isfinite(dx).sum() == np.isfinite(pointwise).sum()
    # fewer than three valid points: nothing to solve, the point-wise values come back
    few = np.full(truth.shape, np.nan)
    few[0, :2] = 1.0
    same = solve_field(measured, (few, few), SPACING_PX)
    assert same[0] is few
