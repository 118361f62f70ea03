"""stable_scatter: the scatter left after removing a smooth fit is the noise, not the trend."""

from __future__ import annotations

import numpy as np
import pytest

from glacier_velocity.domain.offsets import OffsetField
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.tracking.precision import stable_scatter


def _field(dx, dy, rows, cols):
    nan = np.full(dx.shape, np.nan, np.float32)
    return OffsetField(
        rows=rows,
        cols=cols,
        dx=dx.astype(np.float32),
        dy=dy.astype(np.float32),
        peak=nan,
        snr=nan,
        engine="test",
        params={},
    )


def test_scatter_of_gaussian_noise_on_a_cubic_trend():
    rng = np.random.default_rng(5)
    rows, cols = np.arange(15.5, 2000, 12.0), np.arange(15.5, 1500, 12.0)
    r, c = np.meshgrid(rows / 1000, cols / 1000, indexing="ij")
    sigma = 0.1
    dx = 0.6 + 0.3 * r - 0.2 * c * c + 0.05 * r**3 + rng.normal(0, sigma, r.shape)
    dy = -1.8 + 0.1 * r * c + rng.normal(0, sigma, r.shape)
    dx[:20, :20] = np.nan  # a cloud
    dx[50, 50] = 7.0  # an outlier does not bend the fit
    s = stable_scatter(_field(dx, dy, rows, cols))
    # The residual vector of two independent N(0, sigma) components: NMAD sqrt(2) sigma, and
    # its length is Rayleigh-distributed, p90 = sigma sqrt(2 ln 10).
    assert s.nmad_px == pytest.approx(np.sqrt(2) * sigma, rel=0.05)
    assert s.p90_px == pytest.approx(sigma * np.sqrt(2 * np.log(10)), rel=0.05)
    assert s.valid_fraction == pytest.approx(1 - 400 / dx.size)
    assert s.points == dx.size - 400


def test_too_few_points_is_a_named_error():
    rows = cols = np.arange(3.5, 40, 8.0)
    dx = np.full((5, 5), np.nan)
    with pytest.raises(InvalidParameter, match="valid points"):
        stable_scatter(_field(dx, dx.copy(), rows, cols))
