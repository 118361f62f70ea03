"""Image pre-filters that make optical images comparable under changing illumination.

Every filter returns float32 channels in which invalid pixels (DN 0 or masked) are exactly 0,
and uses *masked* local statistics so that nodata does not bleed into its neighbourhood.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Contrast floor of the Wallis filter, as a fraction of the image's median local contrast.
#: Without it, featureless areas (cloud, fresh snow) are stretched into unit-variance noise
#: that can correlate by chance.
WALLIS_CONTRAST_FLOOR = 0.25


def _box_mean(image: np.ndarray, weight: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Masked box mean of ``image`` over ``width`` x ``width`` windows, and the window weight."""
    k = (width, width)
    total = cv2.boxFilter(image * weight, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_REFLECT)
    w = cv2.boxFilter(weight, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_REFLECT)
    return total / np.maximum(w, 1e-6), w


def high_pass(image: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Image minus its masked local mean over ``width`` px (autoRIFT's ``hps`` filter)."""
    img = image.astype(np.float32)
    weight = valid.astype(np.float32)
    mean, _ = _box_mean(img, weight, width)
    out = (img - mean) * weight
    scale = float(np.std(out[valid])) if valid.any() else 1.0
    return (out / (scale if scale > 0 else 1.0)).astype(np.float32)


def wallis(image: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Wallis filter: local mean removed and local contrast normalised over ``width`` px.

    Gain and offset changes between acquisitions cancel; a contrast floor
    (:data:`WALLIS_CONTRAST_FLOOR` of the median local contrast) keeps flat areas flat.
    """
    img = image.astype(np.float32)
    weight = valid.astype(np.float32)
    mean, _ = _box_mean(img, weight, width)
    mean_sq, _ = _box_mean(img * img, weight, width)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    floor = WALLIS_CONTRAST_FLOOR * float(np.median(std[valid])) if valid.any() else 1.0
    out = (img - mean) / (std + max(floor, 1e-3)) * weight
    return out.astype(np.float32)


def orientation(image: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Orientation-correlation channels: the unit gradient vector (cos, sin) at each pixel.

    Only the direction of intensity change is kept, which is insensitive to illumination
    and contrast (Fitch et al. 2002, doi:10.5244/C.16.14; Heid & Kääb 2012,
    doi:10.1016/j.rse.2012.01.013). The image is smoothed over ``width`` px first so that
    the gradient of sensor noise does not dominate.
    """
    img = image.astype(np.float32)
    sigma = width / 5.0
    img = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    floor = 0.05 * float(np.median(mag[valid])) if valid.any() else 1.0
    # Pixels next to nodata have gradients of the nodata edge, not of the surface.
    inner = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    scale = np.where(inner, 1.0 / np.maximum(mag, max(floor, 1e-6)), 0.0).astype(np.float32)
    return gx * scale, gy * scale


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
