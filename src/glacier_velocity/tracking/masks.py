"""Validity masks of the engine's images, stored 8 pixels a byte.

A full Sentinel-2 tile (10980 x 10980 px) has 120 MB of validity per image and pyramid level
0 as NumPy booleans; every user of it reads rows (a strip, a block), so the engine keeps it
packed (15 MB) and unpacks the rows it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Rows packed at a time when a mask is made from an image.
_PACK_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class PackedMask:
    """A boolean image, 8 pixels a byte; ``mask[lo:hi]`` is rows lo..hi as a bool array.

    Attributes
    ----------
    bits : ndarray of uint8, shape (rows, ceil(cols / 8)), or None
        The rows packed along columns (:func:`numpy.packbits`); None exactly when every pixel
        is True.
    shape : (int, int)
        Rows and columns of the mask.
    """

    bits: np.ndarray | None
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        if self.bits is not None and np.bitwise_count(self.bits).sum(dtype=np.int64) == self.shape[0] * self.shape[1]:
            object.__setattr__(self, "bits", None)

    @classmethod
    def of(cls, mask: np.ndarray) -> PackedMask:
        """The packed form of a bool array."""
        mask = np.asarray(mask, dtype=bool)
        return cls(np.packbits(mask, axis=1), (int(mask.shape[0]), int(mask.shape[1])))

    @classmethod
    def from_rows(cls, shape: tuple[int, int], rows: Callable[[int, int], np.ndarray]) -> PackedMask:
        """The mask whose rows ``lo..hi`` are ``rows(lo, hi)`` (bool), made a block at a time so
        that the whole mask never exists unpacked."""
        bits = np.empty((shape[0], -(-shape[1] // 8)), dtype=np.uint8)
        for lo in range(0, shape[0], _PACK_BLOCK_ROWS):
            hi = min(shape[0], lo + _PACK_BLOCK_ROWS)
            bits[lo:hi] = np.packbits(rows(lo, hi), axis=1)
        return cls(bits, (int(shape[0]), int(shape[1])))

    def __getitem__(self, rows: slice) -> np.ndarray:
        """Rows of the mask (a slice with step 1), unpacked."""
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("a PackedMask is read by row slices, e.g. mask[lo:hi]")
        lo, hi, _ = rows.indices(self.shape[0])
        if self.bits is None:
            return np.ones((max(0, hi - lo), self.shape[1]), dtype=bool)
        return np.unpackbits(self.bits[lo:hi], axis=1, count=self.shape[1]).view(bool)

    def all(self) -> bool:
        """Whether every pixel is True."""
        return self.bits is None

    def any(self) -> bool:
        """Whether some pixel is True."""
        return self.bits is None or bool(self.bits.any())

    def count(self) -> int:
        """Number of True pixels."""
        if self.bits is None:
            return self.shape[0] * self.shape[1]
        # Bits past the last column are 0 (packbits pads with zeros).
        return int(np.bitwise_count(self.bits).sum(dtype=np.int64))


#: A validity mask as the engine's stages take it: a bool array, or its packed form (both are
#: read by row slices: ``valid[lo:hi]``).
Validity = np.ndarray | PackedMask
