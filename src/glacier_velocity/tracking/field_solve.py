"""The final displacement field as a regularised solve of every chip's measurement.

The last gradient pass of :func:`~.ncc.track_ncc` measures, at each grid point ``i``, the
texture-weighted mean of the motion over the point's chip: with the secondary deformed by the
predictor ``p`` (grid values, bilinear between grid points), the chip's residual ``r_i`` is
``(A (t - p))_i + n_i``, so ``m_i = (A p)_i + r_i = (A t)_i + n_i`` measures the chip mean of
the true motion ``t`` (``A``: the mean over the chip of the bilinear field, ``n_i``: the chip's
noise). Point-wise deformation converges to the field whose chip means equal the measurements:
it undoes the chip's averaging, and with it amplifies the noise (docs/design/0007 section 7:
the noisy synthetic tongue's error was variance, 0.067 px, where the chips' own noise was
0.03 px).

Here the field ``e`` is instead the minimum of

    sum_i ((A e)_i - m_i)**2 / s_i**2  +  FIELD_SMOOTHING * sum_k w_k (L e)_k**2 / S_k**2
        +  EDGE_ANCHOR * sum_i (1 - u_i) (e_i - e0_i)**2 / s_i**2

(each component on its own; ``s_i`` the component's Lucas-Kanade standard error, ``L`` the
second differences along rows and along columns between three valid neighbours, ``S_k`` the
vector standard error at the middle point, ``e0`` the point-wise estimate). The curvature is
penalised in units of the local noise, whatever the noise level, and the edge factor
``w_k = (1 + (c_k / (EDGE_NOISE_RATIO S_k))**2)**-2`` (``c_k`` the curvature of ``e0`` there,
both components) lets the field bend where ``e0`` bends far more than its noise could: shear
margins stay sharp, noise is smoothed (an edge-stopping weight as in Perona & Malik 1990,
doi:10.1109/34.56205; Charbonnier et al. 1997, doi:10.1109/83.551699). Where a point is
hardly smoothed (``u_i``: the mean of its two differences' edge factors), it is held to ``e0``,
which the point-wise deformation resolved there. Solved by Jacobi-preconditioned conjugate
gradients from ``e0``, about 0.35 s of CPU for the 207,000 points of a 5490 px pair.

Only valid points are unknowns; a rejected point keeps the predictor's value, the one the
deformation used, as a known part of its neighbours' chip means, and no curvature is taken
across it. The output is NaN wherever the input is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse

#: Weight of the curvature term (in units of the local noise) against the measurements'.
#: Measured on the benchmark's 1000 px synthetic tongues without the anchor (moving-ice RMSE
#: clean / noisy / steep, steep leak; point-wise 0.027 / 0.067 / 0.083, 0.051 px): 30 gave
#: 0.024 / 0.049 / 0.065, 0.065; 100 0.023 / 0.045 / 0.062, 0.060; 300 0.023 / 0.044 / 0.065,
#: 0.048 px (docs/design/0007 section 7).
FIELD_SMOOTHING = 300.0
#: Curvature of the point-wise estimate, in its standard errors, at which the smoothing's
#: weight falls to a quarter.
EDGE_NOISE_RATIO = 1.0
#: Weight, against the point's own measurement, holding a point to its point-wise estimate in
#: proportion to how little it is smoothed (1 - the mean of its two curvature weights' edge
#: factors). Without it the 44 px margins of tests/test_margins.py lost (moving ice 0.058
#: against 0.045 px point-wise); 0.3 gave 0.046, 1 and 3 0.044 px but the noisy tongue 0.045
#: and 0.050 px.
EDGE_ANCHOR = 0.3
#: Conjugate-gradient stopping: residual norm relative to the right-hand side's, or this many
#: iterations (noisy tongue after 20 / 30 / 40 / 50: 0.049 / 0.046 / 0.044 / 0.043 px; 400
#: gave 0.043).
_TOLERANCE = 1e-3
_MAX_ITERATIONS = 50


@dataclass(frozen=True)
class ChipMeasurement:
    """What the last gradient pass measured, on the grid (rows x cols), per component.

    ``residual_dx``/``dy``: the chips' residual shift (px) after the deformation, NaN where the
    point is not valid; ``predictor_dx``/``dy``: the deformation's grid values (px), finite
    everywhere; ``sigma_x``/``sigma_y``: the residual's standard error (px); ``chip``: the chip
    side (px) each point was measured with (0 where not valid).
    """

    residual_dx: np.ndarray
    residual_dy: np.ndarray
    predictor_dx: np.ndarray
    predictor_dy: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    chip: np.ndarray


def chip_kernel(spacing_px: int, chip_px: int) -> np.ndarray:
    """1-D weights of the grid values around a point in the mean, over a chip of ``chip_px``
    pixels centred on it, of the field interpolated linearly between points ``spacing_px``
    apart (sum 1, odd length, symmetric)."""
    d = np.arange(chip_px) - (chip_px - 1) / 2.0
    reach = int(np.ceil(chip_px / 2.0 / spacing_px))
    taps = np.arange(-reach, reach + 1)
    weights = np.maximum(0.0, 1.0 - np.abs(d[None, :] - taps[:, None] * spacing_px) / spacing_px).mean(axis=1)
    return weights / weights.sum()


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``K x K^T`` of each channel: the separable chip mean, the grid's edge values continued
    beyond it."""
    out = cv2.sepFilter2D(x, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(out).reshape(x.shape)


def _smooth_adjoint(y: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``K^T y K`` of each channel: the adjoint of :func:`_smooth` (the weights that reach
    beyond the grid fold back onto its edge points)."""
    reach = len(kernel) // 2
    padded = cv2.copyMakeBorder(y, reach, reach, reach, reach, cv2.BORDER_CONSTANT, value=0.0)
    full = np.asarray(cv2.sepFilter2D(padded, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_CONSTANT))
    full = full.reshape(padded.shape[:2] + y.shape[2:])
    n_r, n_c = y.shape[:2]
    # fold the rows, then the columns, beyond the grid onto its edge
    full[reach] += full[:reach].sum(axis=0)
    full[reach + n_r - 1] += full[reach + n_r :].sum(axis=0)
    full = full[reach : reach + n_r]
    full[:, reach] += full[:, :reach].sum(axis=1)
    full[:, reach + n_c - 1] += full[:, reach + n_c :].sum(axis=1)
    return np.ascontiguousarray(full[:, reach : reach + n_c])


_SECOND = {0: np.array([[1.0], [-2.0], [1.0]], dtype=np.float32), 1: np.array([[1.0, -2.0, 1.0]], dtype=np.float32)}


def _second(x: np.ndarray, axis: int) -> np.ndarray:
    """Second difference of each channel along ``axis`` (0: rows, 1: columns), the same shape
    as ``x``, zeros beyond the grid."""
    out = cv2.filter2D(x, cv2.CV_32F, _SECOND[axis], borderType=cv2.BORDER_CONSTANT)
    return np.asarray(out).reshape(x.shape)


class _Curvature:
    """Weighted second differences along rows and columns, each between three valid points
    inside the grid, and the weights of :mod:`this module <.field_solve>`."""

    def __init__(self, valid: np.ndarray, start: np.ndarray, noise: np.ndarray) -> None:
        self.weight = []
        #: per point, the mean over both axes of the edge factor (0: an edge, 1: smooth)
        self.share = np.zeros(valid.shape, dtype=np.float32)
        inner = np.zeros(valid.shape, dtype=bool)
        inner[1:-1, 1:-1] = True
        for axis in (0, 1):
            # a difference needs its point and both neighbours along the axis
            ones = np.ones((3, 1) if axis == 0 else (1, 3), dtype=np.float32)
            count = cv2.filter2D(valid.astype(np.float32), cv2.CV_32F, ones, borderType=cv2.BORDER_CONSTANT)
            triple = inner & (np.asarray(count) > 2.5)
            second = _second(np.where(valid[..., None], start, 0.0).astype(np.float32), axis)
            c = np.hypot(second[..., 0], second[..., 1])
            with np.errstate(invalid="ignore", divide="ignore"):
                factor = 1.0 / (1.0 + (c / (EDGE_NOISE_RATIO * noise)) ** 2) ** 2
                w = FIELD_SMOOTHING / noise**2 * factor
            self.share += 0.5 * np.where(triple & np.isfinite(w), factor, 0.0).astype(np.float32)
            w = np.where(triple & np.isfinite(w), w, 0.0).astype(np.float32)
            self.weight.append(np.ascontiguousarray(np.repeat(w[..., None], start.shape[2], axis=2)))

    def normal(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out += L^T W L x``."""
        for axis in (0, 1):
            d = _second(x, axis)
            d *= self.weight[axis]
            out += _second(d, axis)
        return out

    def diagonal(self, shape: tuple[int, ...]) -> np.ndarray:
        """The diagonal of ``L^T W L``."""
        out = np.zeros(shape, dtype=np.float32)
        # each difference, centred on its middle point, reaches one point either side
        w = self.weight[0][1:-1]
        out[:-2] += w
        out[1:-1] += 4.0 * w
        out[2:] += w
        w = self.weight[1][:, 1:-1]
        out[:, :-2] += w
        out[:, 1:-1] += 4.0 * w
        out[:, 2:] += w
        return out


def solve_field(
    measured: ChipMeasurement, pointwise: tuple[np.ndarray, np.ndarray], spacing_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """The regularised field (px, ``dx``, ``dy``) at the points where ``pointwise`` is valid.

    Parameters
    ----------
    measured : ChipMeasurement
        The last gradient pass's residuals, predictor, standard errors and chip sizes.
    pointwise : (ndarray, ndarray), shape (rows, cols)
        The point-wise estimate (px; ``predictor + residual`` at each point, NaN where
        rejected): the start of the iteration, and the curvature the smoothing yields to.
    spacing_px : int
        Grid spacing (px).

    Returns
    -------
    (ndarray, ndarray)
        ``dx``, ``dy`` (px), NaN where ``pointwise`` is; points without a standard error keep
        their point-wise value.
    """
    e = np.dstack(pointwise).astype(np.float64)
    sigma = np.dstack((measured.sigma_x, measured.sigma_y)).astype(np.float64)
    residual = np.dstack((measured.residual_dx, measured.residual_dy)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(e).all(axis=2)
            & (measured.chip > 0)
            & (sigma > 0).all(axis=2)
            & np.isfinite(sigma).all(axis=2)
            & np.isfinite(residual).all(axis=2)
        )
    if valid.sum() < 3:
        return pointwise
    keep = valid[..., None]
    predictor = np.dstack((measured.predictor_dx, measured.predictor_dy)).astype(np.float32)
    sizes = [int(c) for c in np.unique(measured.chip[valid])]
    kernels = {c: chip_kernel(spacing_px, c) for c in sizes}
    weight = np.where(keep, 1.0 / np.where(keep, sigma, 1.0) ** 2, 0.0).astype(np.float32)
    # the data weight of each chip size, zero elsewhere (the sizes' points are disjoint)
    weights = {c: weight * (measured.chip == c)[..., None] for c in sizes}
    # A chip size held by few points is applied at those points only (a sparse matrix); the
    # others as separable filters over the whole grid.
    sparse_sizes = {
        c: _chip_matrix((measured.chip == c) & valid, kernels[c])
        for c in sizes
        if (measured.chip[valid] == c).mean() < _SPARSE_SHARE
    }
    noise = np.where(valid, np.hypot(sigma[..., 0], sigma[..., 1]), np.nan)
    curvature = _Curvature(valid, e, noise)
    mask = np.repeat(keep, 2, axis=2).astype(np.float32)

    # The measured chip means and the known part (rejected points: what the deformation used).
    known = np.where(keep, 0.0, np.where(np.isfinite(e), e, predictor)).astype(np.float32)
    rhs = np.zeros(e.shape, dtype=np.float32)
    for c in sizes:
        target = _smooth(predictor, kernels[c]) + np.where(keep, residual, 0.0).astype(np.float32)
        rhs += _smooth_adjoint(weights[c] * (target - _smooth(known, kernels[c])), kernels[c])
    # Where the field bends (an edge), each point is also held to its point-wise estimate: the
    # data alone leave the modes finer than the chip within an edge band wider than a chip free.
    anchor = (EDGE_ANCHOR * (1.0 - curvature.share)[..., None] * weight).astype(np.float32)
    rhs += anchor * np.where(keep, e, 0.0).astype(np.float32)
    rhs *= mask

    buffer = np.empty(e.shape, dtype=np.float32)

    def normal(x: np.ndarray) -> np.ndarray:
        np.multiply(anchor, x, out=buffer)
        out = buffer.copy()
        flat = x.reshape(-1, x.shape[2])
        for c in sizes:
            if c in sparse_sizes:
                matrix, rows = sparse_sizes[c]
                y = (matrix @ flat) * weights[c].reshape(-1, x.shape[2])[rows]
                out += (matrix.T @ y).reshape(x.shape).astype(np.float32)
                continue
            y = _smooth(x, kernels[c])
            y *= weights[c]
            out += _smooth_adjoint(y, kernels[c])
        curvature.normal(x, out)
        out *= mask
        return out

    diagonal = curvature.diagonal(e.shape) + anchor
    for c in sizes:
        diagonal += _smooth_adjoint(weights[c], (kernels[c] ** 2).astype(np.float64))
    diagonal = np.where(keep & (diagonal > 0), diagonal, 1.0).astype(np.float32)
    start = np.where(keep, e, 0.0).astype(np.float32)
    solution = _conjugate_gradients(normal, rhs, start, diagonal)
    out = np.where(keep, solution, e)
    return out[..., 0], out[..., 1]


#: Chip sizes held by fewer than this share of the valid points are applied as sparse matrices.
_SPARSE_SHARE = 0.1


def _chip_matrix(select: np.ndarray, kernel: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The chip means (:func:`_smooth`) at the points of ``select`` only: a sparse matrix (one
    row per point, the grid's edge values continued beyond it) and those points' flat indices."""
    n_r, n_c = select.shape
    rows = np.flatnonzero(select)
    r0, c0 = np.divmod(rows, n_c)
    reach = len(kernel) // 2
    taps = np.arange(-reach, reach + 1)
    rr = np.clip(r0[:, None, None] + taps[None, :, None], 0, n_r - 1)
    cc = np.clip(c0[:, None, None] + taps[None, None, :], 0, n_c - 1)
    values = np.broadcast_to(np.outer(kernel, kernel)[None], rr.shape[:1] + (len(taps), len(taps)))
    index = np.broadcast_to(np.arange(len(rows))[:, None, None], values.shape)
    matrix = sparse.csr_matrix(
        (values.ravel(), (index.ravel(), (np.broadcast_to(rr, values.shape) * n_c + cc).ravel())),
        shape=(len(rows), n_r * n_c),
    )
    return matrix, rows


def _conjugate_gradients(
    normal: Callable[[np.ndarray], np.ndarray], rhs: np.ndarray, start: np.ndarray, diagonal: np.ndarray
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients for ``normal(x) = rhs`` from ``start`` (both
    channels together: the system is block-diagonal, one block per channel)."""

    def dot(a: np.ndarray, b: np.ndarray) -> float:
        # BLAS, float32 accumulation: ample for the step lengths
        return float(np.dot(a.ravel(), b.ravel()))

    inverse = (1.0 / diagonal).astype(np.float32)
    x = start.copy()
    r = rhs - normal(x)
    z = r * inverse
    d = z.copy()
    rz = dot(r, z)
    stop = (_TOLERANCE**2) * dot(rhs, rhs)
    for _ in range(_MAX_ITERATIONS):
        if dot(r, r) <= stop or rz <= 0.0:
            break
        q = normal(d)
        dq = dot(d, q)
        if dq <= 0.0:
            break
        alpha = rz / dq
        cv2.scaleAdd(d, alpha, x, dst=x)
        cv2.scaleAdd(q, -alpha, r, dst=r)
        np.multiply(r, inverse, out=z)
        rz_next = dot(r, z)
        cv2.scaleAdd(d, rz_next / rz, z, dst=d)
        rz = rz_next
    return x
