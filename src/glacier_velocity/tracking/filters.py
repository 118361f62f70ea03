"""Image pre-filters that make optical images comparable under changing illumination.

Every filter returns float32 channels in which invalid pixels (DN 0 or masked) are exactly 0,
and uses *masked* local statistics so that nodata does not bleed into its neighbourhood.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

#: Contrast floor of the Wallis filter, as a fraction of the image's median local contrast.
#: Without it, featureless areas (cloud, fresh snow) are stretched into unit-variance noise
#: that can correlate by chance.
WALLIS_CONTRAST_FLOOR = 0.25


#: Rows filtered at a time: bounds the temporaries of a full Sentinel-2 tile to ~100 MB.
_BLOCK_ROWS = 1024


def _blocks(rows: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
    """Row blocks ``(lo, hi, pad_lo, pad_hi)``: output rows lo..hi read from pad_lo..pad_hi."""
    for lo in range(0, rows, _BLOCK_ROWS):
        hi = min(rows, lo + _BLOCK_ROWS)
        yield lo, hi, max(0, lo - margin), min(rows, hi + margin)


def _local_stats(image: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Masked local mean and standard deviation over ``width`` x ``width`` windows."""
    k = (width, width)
    img = image.astype(np.float32)
    if valid.all():
        mean = cv2.boxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
        var = cv2.sqrBoxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
    else:
        weight = valid.astype(np.float32)
        w = np.maximum(cv2.boxFilter(weight, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT), 1e-6)
        img *= weight
        mean = cv2.boxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT) / w
        var = cv2.sqrBoxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT) / w
    # In place: these are full-size float32 blocks, and temporaries cost as much as the math.
    np.subtract(var, cv2.multiply(mean, mean), out=var)
    np.maximum(var, 0.0, out=var)
    return mean, cv2.sqrt(var, dst=var)


#: Rows of each block sampled for the median local contrast.
_CONTRAST_SAMPLE_ROWS = 64


def _median_contrast(image: np.ndarray, valid: np.ndarray, width: int) -> float:
    """Median local standard deviation, from at most 8 evenly spread row blocks.

    Blocks of :data:`_CONTRAST_SAMPLE_ROWS` rows: 8 x 256 rows cost a third of the filter
    itself on a 5490 px image, and 8 x 64 rows still sample ~20 000 points per 1000 columns.
    """
    rows = image.shape[0]
    starts = np.unique(np.linspace(0, max(0, rows - _CONTRAST_SAMPLE_ROWS), num=8).astype(int))
    samples = []
    for lo in starts:
        sl = slice(lo, min(rows, lo + _CONTRAST_SAMPLE_ROWS))
        _, std = _local_stats(image[sl], valid[sl], width)
        samples.append(std[::4, ::4][valid[sl][::4, ::4]])
    values = np.concatenate(samples) if samples else np.empty(0)
    return float(np.median(values)) if values.size else 1.0


def high_pass(image: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Image minus its masked local mean over ``width`` px (autoRIFT's ``hps`` filter)."""
    out = np.zeros(image.shape, dtype=np.float32)
    for lo, hi, plo, phi in _blocks(image.shape[0], width):
        mean, _ = _local_stats(image[plo:phi], valid[plo:phi], width)
        sl = slice(lo - plo, hi - plo)
        out[lo:hi] = (image[lo:hi].astype(np.float32) - mean[sl]) * valid[lo:hi]
    # NCC ignores the scale; it only keeps values near 1 for the float32 sums.
    scale = float(np.std(out[::4, ::4])) if out.size else 1.0
    out /= scale if scale > 0 else 1.0
    return out


def wallis(image: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Wallis filter: local mean removed and local contrast normalised over ``width`` px.

    Gain and offset changes between acquisitions cancel; a contrast floor
    (:data:`WALLIS_CONTRAST_FLOOR` of the median local contrast) keeps flat areas flat.
    """
    floor = max(WALLIS_CONTRAST_FLOOR * _median_contrast(image, valid, width), 1e-3)
    out = np.zeros(image.shape, dtype=np.float32)
    for lo, hi, plo, phi in _blocks(image.shape[0], width):
        mean, std = _local_stats(image[plo:phi], valid[plo:phi], width)
        sl = slice(lo - plo, hi - plo)
        block = out[lo:hi]
        block[...] = image[lo:hi]
        block -= mean[sl]
        std += floor
        block /= std[sl]
        if not valid[lo:hi].all():
            block *= valid[lo:hi]
    return out


def orientation(image: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Orientation-correlation channels: the unit gradient vector (cos, sin) at each pixel.

    Only the direction of intensity change is kept, which is insensitive to illumination
    and contrast (Fitch et al. 2002, doi:10.5244/C.16.14; Heid & Kääb 2012,
    doi:10.1016/j.rse.2012.01.013). The image is smoothed over ``width`` px first so that
    the gradient of sensor noise does not dominate.
    """
    sigma = width / 5.0
    margin = int(3 * sigma) + 2
    gx_out = np.zeros(image.shape, dtype=np.float32)
    gy_out = np.zeros(image.shape, dtype=np.float32)
    floor = None
    for lo, hi, plo, phi in _blocks(image.shape[0], margin):
        img = image[plo:phi].astype(np.float32)
        smooth = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy)
        if floor is None:
            v = valid[plo:phi]
            floor = max(0.05 * float(np.median(mag[v])) if v.any() else 1.0, 1e-6)
        # Pixels next to nodata have gradients of the nodata edge, not of the surface.
        inner = cv2.erode(valid[plo:phi].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        scale = np.where(inner, 1.0 / np.maximum(mag, floor), 0.0).astype(np.float32)
        sl = slice(lo - plo, hi - plo)
        gx_out[lo:hi] = (gx * scale)[sl]
        gy_out[lo:hi] = (gy * scale)[sl]
    return gx_out, gy_out


def apply_filter(image: np.ndarray, valid: np.ndarray, kind: str, width: int) -> list[np.ndarray]:
    """Filter an image for matching; returns a list of float32 channels (1 or 2).

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Raw image (DN).
    valid : ndarray of bool, shape (rows, cols)
        False for nodata / masked pixels; they come out as 0 in every channel.
    kind : {"wallis", "hps", "oc", "none"}
        The filter (see :class:`~glacier_velocity.tracking.params.TrackingParams`).
    width : int
        Window of the local statistics (px).
    """
    if kind == "wallis":
        return [wallis(image, valid, width)]
    if kind == "hps":
        return [high_pass(image, valid, width)]
    if kind == "oc":
        return list(orientation(image, valid, width))
    if kind == "none":
        img = image.astype(np.float32)
        mean = float(img[valid].mean()) if valid.any() else 0.0
        return [((img - mean) * valid).astype(np.float32)]
    raise ValueError(f"unknown filter {kind!r}")
