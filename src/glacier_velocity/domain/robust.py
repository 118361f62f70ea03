"""Robust statistics shared by the shift estimate and the error estimate."""

from __future__ import annotations

import numpy as np

#: Scale factor that makes the median absolute deviation a consistent estimate of the
#: standard deviation of normally distributed data (1 / Phi^-1(3/4)).
NMAD_FACTOR = 1.4826


def weighted_median(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Lower weighted median: the smallest value at which the cumulative weight reaches half.

    It is always one of the input values (never an average of two), so shifting every value
    by a constant shifts the result by exactly that constant.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Finite values (any unit).
    weights : ndarray, shape (n,), optional
        Non-negative weights; equal weights when omitted.

    Returns
    -------
    float
        The weighted median, NaN for an empty input or zero total weight.

    >>> weighted_median(np.array([1.0, 2.0, 10.0]), np.array([1.0, 1.0, 0.5]))
    2.0
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return float("nan")
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(w[order])
    total = cumulative[-1]
    if not total > 0:
        return float("nan")
    index = int(np.searchsorted(cumulative, 0.5 * total, side="left"))
    return float(values[order[min(index, values.size - 1)]])


def nmad(values: np.ndarray) -> float:
    """Normalized median absolute deviation, ``1.4826 * median(|x - median(x)|)``.

    A robust 1-sigma spread in the unit of ``values``: equal to the standard deviation for
    normally distributed data, barely moved by a minority of outliers. NaN for an empty input.

    >>> round(nmad(np.array([-1.0, 0.0, 1.0, 100.0])), 4)
    1.4826
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return float("nan")
    return float(NMAD_FACTOR * np.median(np.abs(values - np.median(values))))
