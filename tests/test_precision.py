"""stable_scatter: the scatter left after removing a smooth fit is the noise, not the trend."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from glacier_velocity.domain.offsets import OffsetField
from glacier_velocity.domain.robust import nmad
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.tracking.precision import (
    compare_with_reference,
    read_tie_points,
    stable_scatter,
    tie_point_agreement,
)


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


def _write_ties(path, x, y, dx, dy):
    lines = ["# made for a test", "x_m,y_m,dx_px,dy_px,reliability_pct"]
    lines += [f"{a},{b},{c},{d},90.0" for a, b, c, d in zip(x, y, dx, dy, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_tie_points_are_compared_at_the_nearest_grid_point(tmp_path):
    # A 10 m image whose upper-left corner is (1000, 5000); grid points every 12 px from 15.5.
    transform = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0)
    rows = cols = np.arange(15.5, 400, 12.0)
    dx = np.full((rows.size, cols.size), 0.5)
    dy = np.full((rows.size, cols.size), -1.0)
    dx[3, 4] = 2.5  # the grid point nearest to the second tie point is 2 px off
    dy[5, 5] = np.nan  # the one nearest to the third is not valid
    field = _field(dx, dy, rows, cols)
    # Map positions of grid points (row, col) = (0, 0), (3, 4), (5, 5), a little off the points,
    # and one tie point outside the grid.
    at = [(0, 0), (3, 4), (5, 5)]
    x = [1000.0 + 10.0 * (cols[j] + 0.5) + 30.0 for _, j in at] + [-1e6]
    y = [5000.0 - 10.0 * (rows[i] + 0.5) - 40.0 for i, _ in at] + [0.0]
    _write_ties(tmp_path / "ties.csv", x, y, [0.5, 0.5, 0.5, 0.5], [-1.0, -1.0, -1.0, -1.0])
    ties = read_tie_points(tmp_path / "ties.csv")
    assert ties.x.tolist() == x
    agreement = tie_point_agreement(field, transform, ties)
    assert agreement.points == 2
    assert agreement.covered == pytest.approx(0.5)
    assert agreement.rms_px == pytest.approx(np.sqrt((0.0 + 4.0) / 2))
    assert agreement.median_px == pytest.approx(1.0)


def test_compare_with_reference_counts_the_box_and_the_slow_ground():
    # Our map: 120 m pixels; the reference: 240 m pixels over the same ground, so reference
    # pixel (i, j) is compared with our nearest pixel, (2i, 2j) (its centre lies on their corner).
    transform = Affine(120.0, 0.0, 0.0, 0.0, -120.0, 2400.0)
    reference_transform = Affine(240.0, 0.0, 0.0, 0.0, -240.0, 2400.0)
    rng = np.random.default_rng(3)
    vx = rng.normal(0.0, 20.0, (20, 20))  # slow ground: 20 m/yr of noise
    vy = rng.normal(0.0, 10.0, (20, 20))
    vx[:5, :10] = 4000.0  # the box (upper left 10 x 10 of ours): half fast,
    vx[5:10, :10] = np.nan  # half not measured
    reference_vx = np.full((10, 10), 5.0)
    reference_vx[:5, :5] = 4500.0
    reference_vx[9, 9] = np.nan  # no reference value there
    found = compare_with_reference(
        vx, vy, transform, reference_vx, np.zeros((10, 10)), reference_transform, box=(0.0, 1200.0, 1200.0, 2400.0)
    )
    assert found.box_points == 100
    assert found.fast_share == pytest.approx(0.5)
    assert found.fast_median_m_per_yr == pytest.approx(4000.0, abs=1.0)  # vy is noise
    assert found.slow_points == 100 - 25 - 1
    assert found.slow_valid == found.slow_points
    slow = np.isfinite(reference_vx) & (reference_vx < 100.0)
    assert found.nmad_vx_m_per_yr == pytest.approx(nmad(vx[::2, ::2][slow]))
    assert found.nmad_vy_m_per_yr == pytest.approx(nmad(vy[::2, ::2][slow]))
    # Of the 99 reference points, 10 fall on our unmeasured rows (2i = 6, 8; 2j = 0..8).
    assert found.valid_share == pytest.approx(89 / 99)
