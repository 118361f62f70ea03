"""Image pre-filters that make optical images comparable under changing illumination.

Every filter gives float32 (or float16) channels in which invalid pixels (DN 0 or masked) are
exactly 0, and uses *masked* local statistics so that nodata does not bleed into its
neighbourhood.

A filter is fitted once to a whole image (:meth:`ImageFilter.fit`: the one image-wide number it
needs, from sample rows), then applied to any rows of it (:meth:`ImageFilter.rows`): the whole
image block by block (:func:`apply_filter`), or only the rows a strip of the tracking engine
reads, when it reads them (level 0 of a full tile, which would otherwise be a second copy of
both images). A row comes out the same either way: it is computed from ``margin`` rows of
context on each side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .masks import Validity
from .params import Filter

#: Contrast floor of the Wallis filter, as a fraction of the image's median local contrast.
#: Without it, featureless areas (cloud, fresh snow) are stretched into unit-variance noise
#: that can correlate by chance.
WALLIS_CONTRAST_FLOOR = 0.25
#: Gradient-magnitude floor of orientation correlation, as a fraction of the median magnitude.
ORIENTATION_FLOOR = 0.05

#: Rows filtered at a time: bounds the temporaries (a few float32 blocks) to ~20 MB each for a
#: full Sentinel-2 tile, below the size from which the C allocator maps fresh, zeroed pages for
#: every temporary (it reuses memory below about 32 MB).
_BLOCK_ROWS = 512
#: Rows filtered at a time when a strip of the tracking engine reads filtered rows (level 0 of a
#: full tile, filtered as it is read): the filter's four float32 temporaries of a whole strip
#: (about 390 rows of a 10980 px tile in the last pass) were 70 MB in each worker thread, at the
#: moment the thread also holds its deformation maps; of 128 rows, 24 MB. Each block filters
#: ``margin`` rows of context again (5 rows each side at the default width).
_READ_BLOCK_ROWS = 128
#: Rows of each of the 8 evenly spread blocks that image-wide levels are sampled from.
_SAMPLE_ROWS = 64


def _blocks(rows: int) -> Iterator[tuple[int, int]]:
    """Row blocks ``(lo, hi)`` of :data:`_BLOCK_ROWS` rows."""
    for lo in range(0, rows, _BLOCK_ROWS):
        yield lo, min(rows, lo + _BLOCK_ROWS)


def _local_stats(image: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block as float32 (0 where invalid), and its masked local mean and standard deviation
    over ``width`` x ``width`` windows."""
    k = (width, width)
    img = image.astype(np.float32)
    if valid.all():
        mean = cv2.boxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
        # From uint16 DN directly when it is that: the same values as from float32 (checked up to
        # DN 65535), 20 % faster.
        var = cv2.sqrBoxFilter(image if image.dtype == np.uint16 else img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
    else:
        weight = valid.astype(np.float32)
        w = np.maximum(cv2.boxFilter(weight, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT), 1e-6)
        img *= weight
        mean = np.divide(cv2.boxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT), w)
        var = np.divide(cv2.sqrBoxFilter(img, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT), w)
    # In place: these are full-size float32 blocks, and temporaries cost as much as the math.
    np.subtract(var, cv2.multiply(mean, mean), out=var)
    np.maximum(var, 0.0, out=var)
    return img, mean, cv2.sqrt(var, dst=var)


def _sample_rows(rows: int) -> list[slice]:
    """At most 8 evenly spread blocks of :data:`_SAMPLE_ROWS` rows: 8 x 256 rows cost a third of
    the filter itself on a 5490 px image, and 8 x 64 rows still sample ~20 000 points per 1000
    columns."""
    starts = np.unique(np.linspace(0, max(0, rows - _SAMPLE_ROWS), num=8).astype(int))
    return [slice(int(lo), min(rows, int(lo) + _SAMPLE_ROWS)) for lo in starts]


def _gradient_magnitude(block: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sobel gradients (x, y) of a block smoothed by a Gaussian of ``sigma`` px, and their length."""
    img = block.astype(np.float32)
    smooth = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return gx, gy, np.hypot(gx, gy)


@dataclass(frozen=True)
class ImageFilter:
    """A pre-filter fitted to one image.

    Attributes
    ----------
    kind : {"wallis", "hps", "oc", "none"}
        ``wallis``: local mean removed and local contrast normalised over ``width`` px; gain and
        offset changes between acquisitions cancel. ``hps``: image minus its local mean
        (autoRIFT's high-pass filter). ``oc``: orientation correlation, the unit gradient vector
        (cos, sin) of the image smoothed over ``width`` px (Fitch et al. 2002,
        doi:10.5244/C.16.14; Heid & Kääb 2012, doi:10.1016/j.rse.2012.01.013): insensitive to
        illumination and contrast. ``none``: the image minus its mean.
    width : int
        Window of the local statistics (px).
    level : float
        The image-wide number the filter needs: the Wallis contrast floor
        (:data:`WALLIS_CONTRAST_FLOOR` of the median local contrast; it keeps flat areas such as
        cloud and fresh snow flat), the high-pass output's scale (NCC ignores it; it keeps values
        near 1 for float32 sums), the orientation filter's gradient floor
        (:data:`ORIENTATION_FLOOR` of the median gradient), or the image mean (DN).
    """

    kind: Filter
    width: int
    level: float

    @classmethod
    def fit(cls, image: np.ndarray, valid: Validity, kind: Filter, width: int) -> ImageFilter:
        """The filter for ``image``, its level taken from :func:`_sample_rows` (the mean of
        ``none``: from every valid pixel)."""
        if kind not in ("wallis", "hps", "oc", "none"):
            raise ValueError(f"unknown filter {kind!r}")
        samples: list[np.ndarray] = []
        if kind == "none":
            total, count = 0.0, 0
            for lo, hi in _blocks(image.shape[0]):
                block_valid = valid[lo:hi]
                total += float(image[lo:hi].sum(where=block_valid, dtype=np.float64))
                count += int(block_valid.sum())
            return cls(kind, width, total / count if count else 0.0)
        for sl in _sample_rows(image.shape[0]):
            block_valid = valid[sl]
            if kind == "oc":
                _, _, mag = _gradient_magnitude(image[sl], width / 5.0)
                samples.append(mag[block_valid])
            else:
                img, mean, std = _local_stats(image[sl], block_valid, width)
                if kind == "wallis":
                    samples.append(std[::4, ::4][block_valid[::4, ::4]])
                else:
                    samples.append(((img - mean) * block_valid)[::4, ::4].ravel())
        values = np.concatenate(samples) if samples else np.empty(0, dtype=np.float32)
        if kind == "wallis":
            level = max(WALLIS_CONTRAST_FLOOR * (float(np.median(values)) if values.size else 1.0), 1e-3)
        elif kind == "hps":
            scale = float(np.std(values)) if values.size else 1.0
            level = scale if scale > 0 else 1.0
        else:
            level = max(ORIENTATION_FLOOR * float(np.median(values)) if values.size else 1.0, 1e-6)
        return cls(kind, width, level)

    @property
    def channels(self) -> int:
        """Channels the filter makes: 2 for orientation correlation, else 1."""
        return 2 if self.kind == "oc" else 1

    @property
    def margin(self) -> int:
        """Rows of context a filtered row depends on, on each side."""
        if self.kind == "oc":
            return int(3 * self.width / 5.0) + 2
        return 0 if self.kind == "none" else self.width

    def rows(
        self, image: np.ndarray, valid: Validity, lo: int, hi: int, out: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Rows ``lo..hi`` of the filtered image, one array per channel.

        Parameters
        ----------
        image : ndarray, shape (rows, cols)
            The raw image (DN) the filter was fitted to.
        valid : ndarray of bool or PackedMask, shape (rows, cols)
            False for nodata / masked pixels.
        lo, hi : int
            The rows.
        out : list of ndarray, shape (hi - lo, cols), optional
            Where to write each channel (float32, or float16: rounded once from float32);
            default new float32 arrays, filled :data:`_READ_BLOCK_ROWS` rows at a time.
        """
        if out is None and hi - lo > _READ_BLOCK_ROWS:
            # A row's value does not depend on the block it is filtered in (see the module's
            # docstring), so the blocks only bound the temporaries.
            out = [np.empty((hi - lo, image.shape[1]), dtype=np.float32) for _ in range(self.channels)]
            for b_lo in range(lo, hi, _READ_BLOCK_ROWS):
                b_hi = min(hi, b_lo + _READ_BLOCK_ROWS)
                self.rows(image, valid, b_lo, b_hi, out=[channel[b_lo - lo : b_hi - lo] for channel in out])
            return out
        rows = image.shape[0]
        plo, phi = max(0, lo - self.margin), min(rows, hi + self.margin)
        sl = slice(lo - plo, hi - plo)
        block_valid = valid[plo:phi]
        inner_valid = block_valid[sl]
        if self.kind == "oc":
            gx, gy, mag = _gradient_magnitude(image[plo:phi], self.width / 5.0)
            # Pixels next to nodata have gradients of the nodata edge, not of the surface.
            inner = cv2.erode(block_valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            scale = np.where(inner, 1.0 / np.maximum(mag, self.level), 0.0).astype(np.float32)
            channels = [(gx * scale)[sl], (gy * scale)[sl]]
        elif self.kind == "none":
            channels = [((image[lo:hi].astype(np.float32) - np.float32(self.level)) * inner_valid).astype(np.float32)]
        else:
            img, mean, std = _local_stats(image[plo:phi], block_valid, self.width)
            # Invalid pixels of img are 0 where a mask was applied; (0 - mean) must be 0 too.
            centred = np.subtract(img[sl], mean[sl], out=mean[sl])
            if not inner_valid.all():
                centred *= inner_valid
            if self.kind == "hps":
                channels = [np.divide(centred, np.float32(self.level), out=centred)]
            else:
                std += self.level
                if out is not None:
                    depth = cv2.CV_16F if out[0].dtype == np.float16 else cv2.CV_32F
                    cv2.divide(centred, std[sl], dst=out[0], dtype=depth)
                    return out
                channels = [np.divide(centred, std[sl], out=centred)]
        if out is None:
            return channels
        for target, channel in zip(out, channels, strict=True):
            target[...] = channel
        return out


def apply_filter(
    image: np.ndarray, valid: Validity, kind: Filter, width: int, dtype: type = np.float32
) -> list[np.ndarray]:
    """Filter a whole image for matching; returns a list of channels (1 or 2) of ``dtype``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Raw image (DN).
    valid : ndarray of bool, shape (rows, cols), or PackedMask
        False for nodata / masked pixels; they come out as 0 in every channel.
    kind : {"wallis", "hps", "oc", "none"}
        The filter (see :class:`ImageFilter`).
    width : int
        Window of the local statistics (px).
    dtype : type
        float32, or float16 to store a large pair in half the memory (the values are computed
        in float32 and rounded once), block by block: no full-size float32 copy is made.
    """
    fitted = ImageFilter.fit(image, valid, kind, width)
    out: list[np.ndarray] = [np.empty(image.shape, dtype=dtype) for _ in range(fitted.channels)]
    for lo, hi in _blocks(image.shape[0]):
        fitted.rows(image, valid, lo, hi, out=[channel[lo:hi] for channel in out])
    return out


__all__ = ["ORIENTATION_FLOOR", "WALLIS_CONTRAST_FLOOR", "ImageFilter", "apply_filter"]
