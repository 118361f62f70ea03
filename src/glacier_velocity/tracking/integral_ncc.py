"""Normalized cross-correlation of every chip of a grid, for a small set of integer shifts.

Instead of correlating chip by chip, each shift is evaluated for the whole image strip at
once: the product of the reference and the shifted secondary is summed over every chip with
an integral image (summed-area table). The cost per shift is proportional to the number of
pixels, independent of the chip size and of how much the chips overlap, and larger chips
cost nothing extra. Zero-normalised CC (means removed per chip) follows from sums of the
images, their squares and their product (Lewis 1995, "Fast normalized cross-correlation").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _integral(image: np.ndarray) -> np.ndarray:
    """Flattened summed-area table (float32) of an image; row length ``cols + 1``.

    float32 is enough: a strip's sums reach ~1e6, so a chip sum carries an absolute error
    near 0.06 on values near 1000 — a relative 6e-5 that moves a sub-pixel peak by ~1e-4
    px — and it halves the memory traffic, the cost that dominates.
    """
    return cv2.integral(image, sdepth=cv2.CV_32F).ravel()


def _box_sums(table: np.ndarray, corners: tuple[np.ndarray, int, int, int]) -> np.ndarray:
    """Window sums from a flattened summed-area table and precomputed corner offsets."""
    base, right, down, diagonal = corners
    return (
        table[base + diagonal].astype(np.float64)
        - table[base + right]
        - table[base + down]
        + table[base]
    )


def _corners(row_starts: np.ndarray, col_starts: np.ndarray, size: int, width: int) -> tuple[np.ndarray, int, int, int]:
    """Flat indices of the top-left corners of windows, and offsets of the other corners."""
    base = row_starts[:, None] * (width + 1) + col_starts[None, :]
    return base, size, size * (width + 1), size * (width + 1) + size


@dataclass(frozen=True)
class ShiftCorrelation:
    """NCC of every chip for every shift in ``-radius..radius`` (rows and columns).

    ``ncc[i, j, a, b]`` is the correlation of chip ``(i, j)`` with the secondary shifted by
    ``(a - radius, b - radius)`` px (rows, cols).
    """

    ncc: np.ndarray
    radius: int


def correlate_shifts(
    reference: list[np.ndarray],
    secondary: list[np.ndarray],
    row_starts: np.ndarray,
    col_starts: np.ndarray,
    chip_px: int,
    radius: int,
) -> ShiftCorrelation:
    """Zero-normalised cross-correlation of grid chips for all shifts within ``radius`` px.

    Parameters
    ----------
    reference : list of ndarray, shape (rows, cols)
        Filtered reference channels (float32) of a strip.
    secondary : list of ndarray, shape (rows + 2 * radius, cols + 2 * radius)
        Filtered secondary channels padded by ``radius`` px on every side:
        ``secondary[c][y + radius, x + radius]`` lies over ``reference[c][y, x]``.
    row_starts, col_starts : ndarray of int
        Top-left pixels of the chips, in strip coordinates.
    chip_px : int
        Chip side (px).
    radius : int
        Largest shift (px) in each direction.

    Returns
    -------
    ShiftCorrelation
        NCC values, shape ``(n_rows, n_cols, 2 * radius + 1, 2 * radius + 1)``.
    """
    rows, cols = reference[0].shape
    n = float(chip_px * chip_px)
    k = 2 * radius + 1
    ref_corners = _corners(row_starts, col_starts, chip_px, cols)
    # Secondary windows for every shift at once: shape (n_rows, n_cols, k, k).
    padded_cols = cols + 2 * radius
    base, right, down, diagonal = _corners(row_starts, col_starts, chip_px, padded_cols)
    shifts = (np.arange(k)[:, None] * (padded_cols + 1) + np.arange(k)[None, :])
    sec_corners = (base[..., None, None] + shifts, right, down, diagonal)
    shape = (len(row_starts), len(col_starts), k, k)
    num = np.zeros(shape)
    var_r = np.zeros(shape[:2])
    var_s = np.zeros(shape)
    product = np.empty((rows, cols), dtype=np.float32)
    for ch_r, ch_s in zip(reference, secondary, strict=True):
        s_r = _box_sums(_integral(ch_r), ref_corners)
        var_r += _box_sums(_integral(ch_r * ch_r), ref_corners) - s_r * s_r / n
        s_s = _box_sums(_integral(ch_s), sec_corners)
        var_s += _box_sums(_integral(ch_s * ch_s), sec_corners) - s_s * s_s / n
        num -= (s_r / n)[..., None, None] * s_s
        for a in range(k):
            for b in range(k):
                np.multiply(ch_r, ch_s[a : a + rows, b : b + cols], out=product)
                num[:, :, a, b] += _box_sums(_integral(product), ref_corners)
    denom = np.sqrt(np.maximum(var_r[..., None, None] * var_s, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        ncc = np.where(denom > 1e-9 * n, num / np.where(denom > 0, denom, 1.0), np.nan)
    return ShiftCorrelation(ncc=ncc.astype(np.float32), radius=radius)


@dataclass(frozen=True)
class Peak:
    """Sub-pixel correlation peak of every chip.

    ``dy``, ``dx``: shift (px) of the best match (rows, cols), NaN where there is no clear
    interior peak; ``peak``: NCC at the best integer shift; ``snr``: ``peak`` over the RMS
    correlation at shifts 2 px or more away from it (NaN when the shift set is too small).
    """

    dy: np.ndarray
    dx: np.ndarray
    peak: np.ndarray
    snr: np.ndarray


def find_peaks(corr: ShiftCorrelation) -> Peak:
    """Locate the correlation maximum of every chip with sub-pixel precision.

    The 3 x 3 neighbourhood of the best integer shift is fitted with a 2-D quadratic in the
    logarithm of the correlation (a 2-D Gaussian, falling back to the plain correlation when
    a value is not positive). The cross term keeps elongated, tilted peaks (crevasse
    streaks) unbiased, which separable 1-D fits are not. With iterative image deformation the
    fitted offset is a small residual near 0 px, where the estimator has no pixel-locking
    bias, so results are not tied to any sub-pixel lattice.
    """
    ncc = corr.ncc
    n_r, n_c, k, _ = ncc.shape
    flat = np.nan_to_num(ncc.reshape(n_r, n_c, k * k), nan=-2.0)
    best = flat.argmax(axis=2)
    ia, ib = np.divmod(best, k)
    peak = np.take_along_axis(flat, best[..., None], axis=2)[..., 0]
    interior = (ia > 0) & (ia < k - 1) & (ib > 0) & (ib < k - 1) & (peak > -1.5)
    # Gather the 3x3 neighbourhood (clipped at the edges; those points are rejected anyway).
    offs = np.arange(-1, 2)
    ya = np.clip(ia[..., None, None] + offs[:, None], 0, k - 1)
    xb = np.clip(ib[..., None, None] + offs[None, :], 0, k - 1)
    ii = np.arange(n_r)[:, None, None, None]
    jj = np.arange(n_c)[None, :, None, None]
    z = ncc[ii, jj, ya, xb].astype(np.float64)
    positive = np.all(z > 1e-6, axis=(2, 3))
    z = np.where(positive[..., None, None], np.log(np.maximum(z, 1e-6)), z)
    # Least-squares quadratic on the 3x3 stencil (coordinates -1, 0, 1).
    bx = (z[..., :, 2].sum(-1) - z[..., :, 0].sum(-1)) / 6.0
    by = (z[..., 2, :].sum(-1) - z[..., 0, :].sum(-1)) / 6.0
    dxx = (z[..., :, 0].sum(-1) + z[..., :, 2].sum(-1) - 2.0 * z[..., :, 1].sum(-1)) / 6.0
    dyy = (z[..., 0, :].sum(-1) + z[..., 2, :].sum(-1) - 2.0 * z[..., 1, :].sum(-1)) / 6.0
    dxy = (z[..., 2, 2] - z[..., 2, 0] - z[..., 0, 2] + z[..., 0, 0]) / 4.0
    det = 4.0 * dxx * dyy - dxy * dxy
    ok = interior & (det > 0) & (dxx < 0) & np.isfinite(det)
    safe = np.where(ok, det, 1.0)
    sub_x = (dxy * by - 2.0 * dyy * bx) / safe
    sub_y = (dxy * bx - 2.0 * dxx * by) / safe
    ok &= (np.abs(sub_x) <= 1.0) & (np.abs(sub_y) <= 1.0)
    dy = np.where(ok, ia - corr.radius + sub_y, np.nan)
    dx = np.where(ok, ib - corr.radius + sub_x, np.nan)
    snr = _peak_sharpness(ncc, ia, ib, peak)
    peak = np.where(peak > -1.5, peak, np.nan)
    return Peak(dy=dy, dx=dx, peak=peak.astype(np.float32), snr=snr.astype(np.float32))


def _peak_sharpness(ncc: np.ndarray, ia: np.ndarray, ib: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Peak over the RMS of correlations at Chebyshev distance >= 2 px from it."""
    k = ncc.shape[-1]
    grid = np.arange(k)
    far = np.maximum(
        np.abs(grid[None, None, :, None] - ia[..., None, None]),
        np.abs(grid[None, None, None, :] - ib[..., None, None]),
    ) >= 2
    values = np.where(far & np.isfinite(ncc), ncc.astype(np.float64) ** 2, 0.0)
    count = (far & np.isfinite(ncc)).sum(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(values.sum(axis=(2, 3)) / count)
        snr = np.where(count >= 4, np.abs(peak) / np.maximum(rms, 1e-3), np.nan)
    return snr


def gradient_residuals(
    reference: list[np.ndarray],
    secondary: list[np.ndarray],
    row_starts: np.ndarray,
    col_starts: np.ndarray,
    chip_px: int,
) -> Peak:
    """Residual shift of every chip by a gradient (Lucas-Kanade) step, once images align.

    With the secondary already deformed to within a fraction of a pixel of the reference,
    the remaining shift ``r`` satisfies ``S(x) ~ R(x - r)``, so ``S - R ~ -grad(R) . r`` and
    ``r = -H^-1 sum(grad(R) (S - R))`` with ``H = sum(grad(R) grad(R)^T)`` over the chip
    (Lucas & Kanade 1981). Both images are normalised per chip (mean removed, divided by their
    standard deviation), so gain and offset changes do not bias it.

    Unlike fitting a correlation peak, this estimate is exactly 0 for identical chips:
    correlation peaks of finite chips are slightly asymmetric, which biased 3-point fits by
    ~0.012 px RMS on motionless ground. A derivative filter's gain error only scales ``r``
    and so slows, but does not bias, the deformation iteration that drives ``r`` to 0.

    Parameters
    ----------
    reference, secondary : list of ndarray, shape (rows, cols)
        Filtered reference and *deformed* secondary channels of a strip (no padding).
    row_starts, col_starts : ndarray of int
        Top-left pixels of the chips, in strip coordinates.
    chip_px : int
        Chip side (px).

    Returns
    -------
    Peak
        ``dx``/``dy``: residual shift (px), NaN where the chip has no texture in some
        direction; ``peak``: NCC of the aligned chips; ``snr``: NaN (not measured here).
    """
    rows, cols = reference[0].shape
    n = float(chip_px * chip_px)
    corners = _corners(row_starts, col_starts, chip_px, cols)
    shape = (len(row_starts), len(col_starts))
    hxx, hxy, hyy, bx, by, num, var_r, var_s = (np.zeros(shape) for _ in range(8))
    for ch_r, ch_s in zip(reference, secondary, strict=True):
        # Central differences: the symmetric derivative with the least smoothing.
        gx = np.zeros_like(ch_r)
        gy = np.zeros_like(ch_r)
        gx[:, 1:-1] = (ch_r[:, 2:] - ch_r[:, :-2]) * 0.5
        gy[1:-1, :] = (ch_r[2:, :] - ch_r[:-2, :]) * 0.5
        s_r = _box_sums(_integral(ch_r), corners)
        s_s = _box_sums(_integral(ch_s), corners)
        v_r = _box_sums(_integral(ch_r * ch_r), corners) - s_r * s_r / n
        v_s = _box_sums(_integral(ch_s * ch_s), corners) - s_s * s_s / n
        rs = _box_sums(_integral(ch_r * ch_s), corners) - s_r * s_s / n
        sd_r = np.sqrt(np.maximum(v_r, 1e-12) / n)
        sd_s = np.sqrt(np.maximum(v_s, 1e-12) / n)
        s_gx = _box_sums(_integral(gx), corners)
        s_gy = _box_sums(_integral(gy), corners)
        # sum(g (S/sd_s - R/sd_r)) - (mean_S/sd_s - mean_R/sd_r) sum(g), in units of R/sd_r.
        offset = s_s / n / sd_s - s_r / n / sd_r
        for g, s_g, b in ((gx, s_gx, bx), (gy, s_gy, by)):
            b += (
                _box_sums(_integral(g * ch_s), corners) / sd_s
                - _box_sums(_integral(g * ch_r), corners) / sd_r
                - offset * s_g
            ) / sd_r
        hxx += _box_sums(_integral(gx * gx), corners) / sd_r**2
        hyy += _box_sums(_integral(gy * gy), corners) / sd_r**2
        hxy += _box_sums(_integral(gx * gy), corners) / sd_r**2
        num += rs
        var_r += v_r
        var_s += v_s
    det = hxx * hyy - hxy * hxy
    # A chip with texture in one direction only (a straight streak) cannot fix both components.
    ok = det > 1e-6 * (hxx + hyy) ** 2
    safe = np.where(ok, det, 1.0)
    dx = -(hyy * bx - hxy * by) / safe
    dy = -(hxx * by - hxy * bx) / safe
    # The linearisation holds within about a pixel; beyond, the chip was not aligned.
    ok &= (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
    dx = np.where(ok, dx, np.nan)
    dy = np.where(ok, dy, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = num / np.sqrt(np.maximum(var_r * var_s, 1e-30))
    return Peak(dy=dy, dx=dx, peak=peak.astype(np.float32), snr=np.full(shape, np.nan, dtype=np.float32))
