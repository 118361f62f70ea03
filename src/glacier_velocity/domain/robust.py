"""Robust statistics shared by the shift estimate and the error estimate."""

from __future__ import annotations

import numpy as np

#: Scale factor that makes the median absolute deviation a consistent estimate of the
#: standard deviation of normally distributed data (1 / Phi^-1(3/4)).
NMAD_FACTOR = 1.4826


#: Inputs longer than this (points) are not sorted whole by :func:`weighted_median`: a sample of
#: about :data:`_SAMPLE_POINTS` brackets the median and only the values inside are sorted.
_BRACKET_FROM = 16384
_SAMPLE_POINTS = 4096
#: Half-width of the bracket in cumulative weight share: the sample's weighted quantiles 0.47 and
#: 0.53. With 4096 sample points a quantile's own scatter is about 0.008, so the bracket misses
#: the median (and the whole input is sorted instead) only for very uneven weights.
_BRACKET_SHARE = 0.03


def weighted_median(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Lower weighted median: the smallest value at which the cumulative weight reaches half.

    It is always one of the input values (never an average of two), so shifting every value
    by a constant shifts the result by exactly that constant.

    Long inputs are not sorted whole: the median is bracketed by weighted quantiles of a strided
    sample, the weight below the bracket is summed, and only the values inside it (about 6 %)
    are sorted (10x faster than sorting 131,000 points, the stable ground of a 5490 px pair). The
    value is the sort's, except when the weight up to a value equals half the total to within
    float64 rounding (the sums are taken in another order); with whole-number weights, or none,
    it is always the same.

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
    n = values.size
    if n == 0:
        return float("nan")
    if weights is None:
        # the lower median: the first sorted index whose count reaches n / 2
        k = (n + 1) // 2 - 1
        return float(np.partition(values, k)[k])
    w = np.asarray(weights, dtype=np.float64).ravel()
    total = float(w.sum())
    if not total > 0:
        return float("nan")
    half = 0.5 * total
    below = 0.0  # weight of the values left out below those still considered
    if n > _BRACKET_FROM:
        step = n // _SAMPLE_POINTS
        sample, sample_w = values[::step], w[::step]
        order = np.argsort(sample, kind="stable")
        share = np.cumsum(sample_w[order])
        if share[-1] > 0:
            share /= share[-1]
            i_lo, i_hi = np.searchsorted(share, [0.5 - _BRACKET_SHARE, 0.5 + _BRACKET_SHARE], side="left")
            lo, hi = sample[order[i_lo]], sample[order[min(int(i_hi), sample.size - 1)]]
            under = values < lo
            w_under = float(w[under].sum())
            if w_under < half:
                inside = ~under & (values <= hi)
                if w_under + float(w[inside].sum()) >= half:  # else the bracket missed: sort all
                    values, w, below = values[inside], w[inside], w_under
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(w[order])
    cumulative += below
    index = int(np.searchsorted(cumulative, half, side="left"))
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
