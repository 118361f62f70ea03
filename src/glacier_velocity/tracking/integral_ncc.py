"""Normalized cross-correlation of every chip of a grid, for a small set of integer shifts.

Instead of correlating chip by chip, each shift is evaluated for the whole image strip at
once: the product of the reference and the shifted secondary is summed over every chip with
an integral image (summed-area table). The cost per shift is proportional to the number of
pixels, independent of the chip size and of how much the chips overlap, and larger chips
cost nothing extra. Zero-normalised CC (means removed per chip) follows from sums of the
images, their squares and their product (Lewis 1995, "Fast normalized cross-correlation").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ChipWindows:
    """A regular grid of square windows: ``n_rows x n_cols`` windows of ``size`` px whose
    top-left pixels are ``(row0 + i * step, col0 + j * step)``."""

    row0: int
    col0: int
    step: int
    n_rows: int
    n_cols: int
    size: int

    @classmethod
    def of(cls, row_starts: np.ndarray, col_starts: np.ndarray, size: int) -> ChipWindows:
        """The windows of evenly spaced chip starts (a grid's rows and columns)."""
        step = (
            int(row_starts[1] - row_starts[0])
            if len(row_starts) > 1
            else (int(col_starts[1] - col_starts[0]) if len(col_starts) > 1 else size)
        )
        for starts in (row_starts, col_starts):
            if len(starts) > 1 and np.any(np.diff(starts) != step):
                raise ValueError("chip starts must be evenly spaced, with the same step along rows and columns")
        return cls(int(row_starts[0]), int(col_starts[0]), step, len(row_starts), len(col_starts), size)

    def shifted(self, rows: int, cols: int) -> ChipWindows:
        return ChipWindows(self.row0 + rows, self.col0 + cols, self.step, self.n_rows, self.n_cols, self.size)

    @property
    def block(self) -> int:
        """Largest block (px) that tiles every window exactly: windows are sums of blocks."""
        return math.gcd(self.step, self.size, self.row0, self.col0)

    def sums(self, image: np.ndarray) -> np.ndarray:
        """Sum of ``image`` (float32) over every window, float64, shape ``(n_rows, n_cols)``.

        The image is first reduced to sums over ``block x block`` pixel blocks (one fast
        vectorised pass, ``cv2.resize`` with area averaging at an integer factor), so the
        summed-area table is ``block**2`` times smaller (16x for 32 px chips every 12 px).
        The table is float64 and window corners are read with strided slices, not gathers.
        """
        return self.sums_from_table(block_table(image, self.block), self.block)

    def reach(self) -> tuple[int, int]:
        """Rows and columns (px) of the image that the windows reach."""
        return (
            self.row0 + (self.n_rows - 1) * self.step + self.size,
            self.col0 + (self.n_cols - 1) * self.step + self.size,
        )

    def sums_from_table(self, table: np.ndarray, g: int = 1) -> np.ndarray:
        """Window sums from a summed-area table of the image reduced by ``g``: :func:`block_table`."""
        r0, c0, step, size = self.row0 // g, self.col0 // g, self.step // g, self.size // g
        rs = slice(r0, r0 + step * (self.n_rows - 1) + 1, step)
        re = slice(r0 + size, r0 + size + step * (self.n_rows - 1) + 1, step)
        cs = slice(c0, c0 + step * (self.n_cols - 1) + 1, step)
        ce = slice(c0 + size, c0 + size + step * (self.n_cols - 1) + 1, step)
        return (table[re, ce] - table[rs, ce] - table[re, cs] + table[rs, cs]) * float(g * g)


def block_table(image: np.ndarray, g: int) -> np.ndarray:
    """Summed-area table (float64) of ``image`` reduced to means over ``g`` x ``g`` px blocks.

    The reduction is one fast vectorised pass (``cv2.resize`` with area averaging at an integer
    factor), so the table is ``g**2`` times smaller (16x for 32 px chips every 12 px) and window
    corners are read with strided slices, not gathers (:meth:`ChipWindows.sums_from_table`).
    """
    if g > 1:
        rows, cols = image.shape[0] // g, image.shape[1] // g
        image = cv2.resize(image[: rows * g, : cols * g], (cols, rows), interpolation=cv2.INTER_AREA)
    return cv2.integral(image, sdepth=cv2.CV_64F)


def _box_sums(image: np.ndarray, size: int) -> np.ndarray:
    """Sum (float64) of every ``size`` x ``size`` window, indexed by its top-left pixel.

    From a summed-area table, so each value is exact to float64 rounding whatever the window.
    """
    table = cv2.integral(image, sdepth=cv2.CV_64F)
    return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]


#: The correlation of a chip with a flat (featureless or empty) window is undefined; it is stored
#: as this value, below any real correlation, so that the peak search needs no NaN handling.
UNDEFINED = -2.0


@dataclass(frozen=True)
class ShiftCorrelation:
    """NCC of every chip for every shift in ``-radius..radius`` (rows and columns).

    ``ncc[i, j, a, b]`` is the correlation of chip ``(i, j)`` with the secondary shifted by
    ``(a - radius, b - radius)`` px (rows, cols); :data:`UNDEFINED` where a window is flat.
    """

    ncc: np.ndarray
    radius: int


@dataclass(frozen=True)
class ReferenceSums:
    """Per-chip sums of one filtered reference channel; they do not depend on the secondary,
    so every pass over the same level reuses them.

    ``s``: sum; ``var``: sum of squared deviations from the chip mean. With gradients
    (central differences ``gx``, ``gy``): ``s_gx``, ``s_gy``, ``gx_r``, ``gy_r`` (sums of the
    gradient times the image), ``hxx``, ``hyy``, ``hxy`` (sums of gradient products).
    """

    s: np.ndarray
    var: np.ndarray
    s_gx: np.ndarray | None = None
    s_gy: np.ndarray | None = None
    gx_r: np.ndarray | None = None
    gy_r: np.ndarray | None = None
    hxx: np.ndarray | None = None
    hyy: np.ndarray | None = None
    hxy: np.ndarray | None = None


def gradients_of(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences (the symmetric derivative with the least smoothing) along columns
    and rows, 0 at the border."""
    gx = np.empty_like(image)
    gy = np.empty_like(image)
    gx[:, [0, -1]] = 0.0
    gy[[0, -1], :] = 0.0
    np.subtract(image[:, 2:], image[:, :-2], out=gx[:, 1:-1])
    np.subtract(image[2:, :], image[:-2, :], out=gy[1:-1, :])
    gx *= 0.5
    gy *= 0.5
    return gx, gy


def reference_sums(
    channel: np.ndarray, windows: ChipWindows, gradients: tuple[np.ndarray, np.ndarray] | None
) -> ReferenceSums:
    """The secondary-independent chip sums of one reference channel (see :class:`ReferenceSums`);
    with its :func:`gradients_of`, the gradient sums too."""
    return reference_sums_of(channel, [windows], gradients)[0]


def reference_sums_of(
    channel: np.ndarray, sets: list[ChipWindows], gradients: tuple[np.ndarray, np.ndarray] | None
) -> list[ReferenceSums]:
    """:func:`reference_sums` for several sets of windows, each image reduced once for all."""
    blocks = sorted({w.block for w in sets})

    def sums(image: np.ndarray) -> list[np.ndarray]:
        tables = {g: block_table(image, g) for g in blocks}
        return [w.sums_from_table(tables[w.block], w.block) for w in sets]

    s = sums(channel)
    product = np.multiply(channel, channel)
    ss = sums(product)
    var = [b - a * a / float(w.size * w.size) for w, a, b in zip(sets, s, ss, strict=True)]
    if gradients is None:
        return [ReferenceSums(s=a, var=v) for a, v in zip(s, var, strict=True)]
    gx, gy = gradients
    # One product image at a time, in one buffer: a strip of a full tile is ~13 MB per image.
    parts = [sums(gx), sums(gy)]
    for left, right in ((gx, channel), (gy, channel), (gx, gx), (gy, gy), (gx, gy)):
        parts.append(sums(np.multiply(left, right, out=product)))
    return [
        ReferenceSums(s[k], var[k], *(part[k] for part in parts))  # s_gx, s_gy, gx_r, gy_r, hxx, hyy, hxy
        for k in range(len(sets))
    ]


def correlate_shifts(
    reference: list[np.ndarray],
    secondary: list[np.ndarray],
    row_starts: np.ndarray,
    col_starts: np.ndarray,
    chip_px: int,
    radius: int,
    ref_sums: list[ReferenceSums] | None = None,
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
        Top-left pixels of the chips, in strip coordinates (evenly spaced).
    chip_px : int
        Chip side (px).
    radius : int
        Largest shift (px) in each direction.
    ref_sums : list of ReferenceSums, optional
        :func:`reference_sums` of each reference channel, if already known.

    Returns
    -------
    ShiftCorrelation
        NCC values, shape ``(n_rows, n_cols, 2 * radius + 1, 2 * radius + 1)``.
    """
    rows, cols = reference[0].shape
    n = float(chip_px * chip_px)
    k = 2 * radius + 1
    windows = ChipWindows.of(row_starts, col_starts, chip_px)
    if ref_sums is None:
        ref_sums = [reference_sums(ch, windows, gradients=None) for ch in reference]
    var_r = np.sum([rsum.var for rsum in ref_sums], axis=0)
    mean_r = [rsum.s / n for rsum in ref_sums]
    # The secondary's window sums at every shift are strided reads of its box sums: one table
    # per channel and power, made once for all shifts.
    boxes = [(_box_sums(ch_s, chip_px), _box_sums(ch_s * ch_s, chip_px)) for ch_s in secondary]
    out = np.empty((k, k, windows.n_rows, windows.n_cols), dtype=np.float32)
    product = np.empty((rows, cols), dtype=np.float32)
    rs = slice(windows.row0, windows.row0 + windows.step * (windows.n_rows - 1) + 1, windows.step)
    cs = slice(windows.col0, windows.col0 + windows.step * (windows.n_cols - 1) + 1, windows.step)
    for a in range(k):
        for b in range(k):
            num = np.zeros(var_r.shape)
            var_s = np.zeros(var_r.shape)
            for ch_r, ch_s, (box_s, box_ss), m_r in zip(reference, secondary, boxes, mean_r, strict=True):
                s_s = box_s[a:, b:][rs, cs]
                var_s += box_ss[a:, b:][rs, cs] - s_s * s_s / n
                np.multiply(ch_r, ch_s[a : a + rows, b : b + cols], out=product)
                num += windows.sums(product) - m_r * s_s
            denom = np.sqrt(np.maximum(var_r * var_s, 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[a, b] = np.where(denom > 1e-9 * n, num / np.where(denom > 0, denom, 1.0), UNDEFINED)
    # Shift by shift, channels summed before normalising: only the float32 result has the size
    # of all shifts, laid out shift-major while it is written and transposed once.
    return ShiftCorrelation(ncc=np.ascontiguousarray(out.transpose(2, 3, 0, 1)), radius=radius)


@dataclass(frozen=True)
class Peak:
    """Sub-pixel correlation peak of every chip.

    ``dy``, ``dx``: shift (px) of the best match (rows, cols), NaN where there is no clear
    interior peak; ``peak``: NCC at the best integer shift; ``snr``: ``peak`` over the RMS
    correlation at shifts 2 px or more away from it (NaN when the shift set is too small);
    ``sigma_x``, ``sigma_y``: standard errors (px) of ``dx``, ``dy`` where the estimator gives
    them (:func:`gradient_residuals`); ``contrast``: the secondary chip's standard deviation
    over the reference chip's, in filtered units (:func:`gradient_residuals`; about 1 where
    both images show the same texture, near 0 where the secondary is flat, e.g. a cloud).
    """

    dy: np.ndarray
    dx: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    sigma_x: np.ndarray | None = None
    sigma_y: np.ndarray | None = None
    chip: np.ndarray | None = None
    contrast: np.ndarray | None = None


def find_peaks(corr: ShiftCorrelation, sub_pixel: bool = True) -> Peak:
    """Locate the correlation maximum of every chip with sub-pixel precision (or, without
    ``sub_pixel``, to the whole pixel).

    The 3 x 3 neighbourhood of the best integer shift is fitted with a 2-D quadratic in the
    logarithm of the correlation (a 2-D Gaussian, falling back to the plain correlation when
    a value is not positive). The cross term keeps elongated, tilted peaks (crevasse
    streaks) unbiased, which separable 1-D fits are not. With iterative image deformation the
    fitted offset is a small residual near 0 px, where the estimator has no pixel-locking
    bias, so results are not tied to any sub-pixel lattice.
    """
    ncc = corr.ncc
    n_r, n_c, k, _ = ncc.shape
    flat = ncc.reshape(n_r, n_c, k * k)
    best = flat.argmax(axis=2)
    ia, ib = np.divmod(best, k)
    peak = np.take_along_axis(flat, best[..., None], axis=2)[..., 0]
    if not sub_pixel:
        # The best whole-pixel shift and its correlation only (a search whose peaks a finer
        # pass measures again): no fit, no sharpness.
        found = peak > UNDEFINED / 2
        nan = np.full(peak.shape, np.nan, dtype=np.float32)
        return Peak(
            dy=np.where(found, ia - corr.radius, np.nan),
            dx=np.where(found, ib - corr.radius, np.nan),
            peak=np.where(found, peak, np.nan).astype(np.float32),
            snr=nan,
        )
    interior = (ia > 0) & (ia < k - 1) & (ib > 0) & (ib < k - 1) & (peak > -1.5)
    # Gather the 3x3 neighbourhood (clipped at the edges; those points are rejected anyway).
    offs = np.arange(-1, 2)
    ya = np.clip(ia[..., None, None] + offs[:, None], 0, k - 1)
    xb = np.clip(ib[..., None, None] + offs[None, :], 0, k - 1)
    ii = np.arange(n_r)[:, None, None, None]
    jj = np.arange(n_c)[None, :, None, None]
    z = ncc[ii, jj, ya, xb].astype(np.float64)
    interior &= np.all(z > UNDEFINED / 2, axis=(2, 3))  # a flat window next to the peak: no fit
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
    """Peak over the RMS of correlations at Chebyshev distance >= 2 px from it.

    The sums over those correlations are the sums over all of them minus the 3 x 3 around the
    peak, so no temporary as large as ``ncc`` (every chip, every shift) is made.
    """
    k = ncc.shape[-1]
    finite = ncc > UNDEFINED / 2
    values = np.where(finite, ncc, np.float32(0.0))
    total = np.einsum("ijab,ijab->ij", values, values, dtype=np.float64)
    count = finite.sum(axis=(2, 3))
    near_sq = np.zeros(ia.shape)
    near_count = np.zeros(ia.shape, dtype=np.int64)
    ii = np.arange(ia.shape[0])[:, None]
    jj = np.arange(ia.shape[1])[None, :]
    for da in (-1, 0, 1):
        for db in (-1, 0, 1):
            ya, xb = ia + da, ib + db
            inside = (ya >= 0) & (ya < k) & (xb >= 0) & (xb < k)
            value = ncc[ii, jj, np.clip(ya, 0, k - 1), np.clip(xb, 0, k - 1)].astype(np.float64)
            ok = inside & (value > UNDEFINED / 2)
            near_sq += np.where(ok, value * value, 0.0)
            near_count += ok
    far_count = count - near_count
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.maximum(total - near_sq, 0.0) / far_count)
        snr = np.where(far_count >= 4, np.abs(peak) / np.maximum(rms, 1e-3), np.nan)
    return snr


def gradient_residuals(
    reference: list[np.ndarray],
    secondary: list[np.ndarray],
    chips: list[tuple[ChipWindows, list[ReferenceSums]]],
    gradients: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[Peak]:
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

    Its standard error follows from the same normal equations: with the chips normalised to
    unit variance, the misfit left per pixel is ``e2 = (2 n (1 - NCC) - b^T H^-1 b) / (n - 3)``
    and ``cov(r) = e2 H^-1`` (``sigma_x``, ``sigma_y``). It assumes independent pixel noise;
    neighbouring pixels of filtered images are not independent, which a calibration on real
    pairs accounts for (:data:`glacier_velocity.tracking.ncc.ERROR_CALIBRATION`).

    Parameters
    ----------
    reference, secondary : list of ndarray, shape (rows, cols)
        Filtered reference and *deformed* secondary channels of a strip (no padding).
    chips : list of (ChipWindows, list of ReferenceSums)
        One or more sets of chips (e.g. two sizes around the same points), each with the
        :func:`reference_sums` (with gradients) of every reference channel. The products of
        the images are made once for all sets.
    gradients : list of (ndarray, ndarray), optional
        :func:`gradients_of` each reference channel, when already made.

    Returns
    -------
    list of Peak
        One per set: ``dx``/``dy``, residual shift (px), NaN where the chip has no texture in
        some direction; ``peak``: NCC of the aligned chips; ``snr``: NaN (not measured here);
        ``sigma_x``/``sigma_y``: standard errors (px) of ``dx``/``dy``; ``contrast``: the
        deformed secondary's standard deviation over the reference's in each chip.
    """
    shapes = [(w.n_rows, w.n_cols) for w, _ in chips]
    acc = [{k: np.zeros(shape) for k in ("hxx", "hxy", "hyy", "bx", "by", "num", "var_r", "var_s")} for shape in shapes]
    product = np.empty(reference[0].shape, dtype=np.float32)
    blocks = sorted({w.block for w, _ in chips})

    def sums(image: np.ndarray) -> list[np.ndarray]:
        tables = {g: block_table(image, g) for g in blocks}
        return [w.sums_from_table(tables[w.block], w.block) for w, _ in chips]

    for c, (ch_r, ch_s) in enumerate(zip(reference, secondary, strict=True)):
        gx, gy = gradients[c] if gradients is not None else gradients_of(ch_r)
        s_s = sums(ch_s)
        s_ss = sums(np.multiply(ch_s, ch_s, out=product))
        s_rs = sums(np.multiply(ch_r, ch_s, out=product))
        s_gxs = sums(np.multiply(gx, ch_s, out=product))
        s_gys = sums(np.multiply(gy, ch_s, out=product))
        for k, ((windows, ref_sums), a) in enumerate(zip(chips, acc, strict=True)):
            n = float(windows.size * windows.size)
            rsum = ref_sums[c]
            s_r, v_r = rsum.s, rsum.var
            v_s = s_ss[k] - s_s[k] * s_s[k] / n
            sd_r = np.sqrt(np.maximum(v_r, 1e-12) / n)
            sd_s = np.sqrt(np.maximum(v_s, 1e-12) / n)
            # sum(g (S/sd_s - R/sd_r)) - (mean_S/sd_s - mean_R/sd_r) sum(g), in units of R/sd_r.
            offset = s_s[k] / n / sd_s - s_r / n / sd_r
            for g_s, s_g, g_r, b in ((s_gxs[k], rsum.s_gx, rsum.gx_r, "bx"), (s_gys[k], rsum.s_gy, rsum.gy_r, "by")):
                a[b] += (g_s / sd_s - g_r / sd_r - offset * s_g) / sd_r
            a["hxx"] += rsum.hxx / sd_r**2
            a["hyy"] += rsum.hyy / sd_r**2
            a["hxy"] += rsum.hxy / sd_r**2
            a["num"] += s_rs[k] - s_r * s_s[k] / n
            a["var_r"] += v_r
            a["var_s"] += v_s
    return [_solve(a, float(w.size * w.size) * len(reference)) for (w, _), a in zip(chips, acc, strict=True)]


def _solve(a: dict[str, np.ndarray], n: float) -> Peak:
    """The gradient step and its standard error from the accumulated sums (``n`` pixels)."""
    hxx, hxy, hyy, bx, by = a["hxx"], a["hxy"], a["hyy"], a["bx"], a["by"]
    det = hxx * hyy - hxy * hxy
    # A chip with texture in one direction only (a straight streak) cannot fix both components.
    ok = det > 1e-6 * (hxx + hyy) ** 2
    safe = np.where(ok, det, 1.0)
    dx = -(hyy * bx - hxy * by) / safe
    dy = -(hxx * by - hxy * bx) / safe
    # The linearisation holds within about a pixel; beyond, the chip was not aligned.
    ok &= (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = a["num"] / np.sqrt(np.maximum(a["var_r"] * a["var_s"], 1e-30))
        explained = -(bx * dx + by * dy)  # b^T H^-1 b
        misfit = np.maximum(2.0 * n * (1.0 - peak) - explained, 0.0) / max(n - 3.0, 1.0)
        sigma_x = np.sqrt(misfit * hyy / safe)
        sigma_y = np.sqrt(misfit * hxx / safe)
    nan = np.full(dx.shape, np.nan, dtype=np.float32)
    return Peak(
        dy=np.where(ok, dy, np.nan),
        dx=np.where(ok, dx, np.nan),
        peak=peak.astype(np.float32),
        snr=nan,
        sigma_x=np.where(ok, sigma_x, np.nan).astype(np.float32),
        sigma_y=np.where(ok, sigma_y, np.nan).astype(np.float32),
        contrast=np.sqrt(a["var_s"] / np.maximum(a["var_r"], 1e-30)).astype(np.float32),
    )
