"""Pre-filters by rows, and packed validity masks (glacier_velocity.tracking.filters, .masks).

The engine filters level 0 of a full tile strip by strip, as its passes read it, instead of
keeping a filtered copy of both images; any rows must come out as the whole image's rows do.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.tracking import TrackingParams, track_offsets
from glacier_velocity.tracking import ncc as ncc_engine
from glacier_velocity.tracking.filters import ImageFilter, apply_filter
from glacier_velocity.tracking.masks import PackedMask

SHAPE = (97, 61)


def _image_with_gaps() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    image = (3000 + 800 * rng.random(SHAPE)).astype(np.uint16)
    image[:, :7] = 0  # a nodata edge
    valid = image != 0
    valid[40:55, 20:33] = False  # a masked cloud
    return image, valid


IMAGE, VALID = _image_with_gaps()


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["wallis", "hps", "oc", "none"]),
    lo=st.integers(0, SHAPE[0] - 1),
    length=st.integers(1, SHAPE[0]),
    packed=st.booleans(),
)
def test_any_rows_are_the_whole_images_rows(kind, lo, length, packed):
    hi = min(SHAPE[0], lo + length)
    whole = apply_filter(IMAGE, VALID, kind, 5)
    valid = PackedMask.of(VALID) if packed else VALID
    rows = ImageFilter.fit(IMAGE, valid, kind, 5).rows(IMAGE, valid, lo, hi)
    assert len(rows) == len(whole) == (2 if kind == "oc" else 1)
    for part, channel in zip(rows, whole, strict=True):
        assert part.dtype == np.float32
        np.testing.assert_array_equal(part, channel[lo:hi])
        assert not part[~VALID[lo:hi]].any()  # invalid pixels are exactly 0


def test_a_float16_level_is_the_float32_level_rounded_once():
    exact = apply_filter(IMAGE, VALID, "wallis", 5)[0]
    half = apply_filter(IMAGE, PackedMask.of(VALID), "wallis", 5, np.float16)[0]
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, exact.astype(np.float16))


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 37),
    density=st.floats(0, 1),
    seed=st.integers(0, 2**16),
    lo=st.integers(0, 40),
    hi=st.integers(0, 45),
)
def test_a_packed_mask_reads_back_its_rows(rows, cols, density, seed, lo, hi):
    mask = np.random.default_rng(seed).random((rows, cols)) < density
    for packed in (PackedMask.of(mask), PackedMask.from_rows(mask.shape, lambda a, b: mask[a:b])):
        assert packed.shape == mask.shape
        np.testing.assert_array_equal(packed[lo:hi], mask[lo:hi])
        assert packed.all() == bool(mask.all())
        assert packed.any() == bool(mask.any())
        assert packed.count() == int(mask.sum())
        assert (packed.bits is None) == bool(mask.all())


def test_a_packed_mask_is_read_by_row_slices_only():
    with pytest.raises(TypeError, match="row slices"):
        PackedMask.of(np.ones((3, 3), bool))[::2]


def test_level_0_filtered_when_read_measures_as_the_stored_level(monkeypatch):
    """A pair large enough to be filtered strip by strip (here: any pair, the threshold set to
    0) gives the motion of the stored level; only its coarser levels are float16."""
    pair = make_pair((320, 320), Translation(2.3, -1.6), seed=5)
    params = TrackingParams(search_px=6, grid_spacing_px=12)
    stored = track_offsets(pair.reference, pair.secondary, params)
    monkeypatch.setattr(ncc_engine, "FILTER_ON_READ_ABOVE_BYTES", 0)
    assert ncc_engine._large_pair(pair.reference.shape, params)
    read = track_offsets(pair.reference, pair.secondary, params)
    np.testing.assert_array_equal(np.isfinite(read.dx), np.isfinite(stored.dx))
    assert np.isfinite(read.dx).mean() > 0.95
    # A point may choose the other chip size (32 or 64 px) on a difference of 1e-4 px.
    for a, b in ((read.dx, stored.dx), (read.dy, stored.dy)):
        assert np.sqrt(np.nanmean((a - b) ** 2)) < 0.003 and np.nanmax(np.abs(a - b)) < 0.05
    assert np.nanmedian(read.dx) == pytest.approx(2.3, abs=0.02)
    assert np.nanmedian(read.dy) == pytest.approx(-1.6, abs=0.02)


@pytest.mark.parametrize("kind", ["wallis", "hps", "oc", "none"])
def test_rows_read_in_blocks_are_the_rows_read_at_once(kind, monkeypatch):
    """More rows than :data:`filters._READ_BLOCK_ROWS` are filtered block by block, each with its
    own context rows: the same values, to the bit, as one block (7-row blocks, 97 rows)."""
    from glacier_velocity.tracking import filters

    fitted = ImageFilter.fit(IMAGE, VALID, kind, 5)
    monkeypatch.setattr(filters, "_READ_BLOCK_ROWS", 1000)
    at_once = fitted.rows(IMAGE, VALID, 3, 90)
    monkeypatch.setattr(filters, "_READ_BLOCK_ROWS", 7)
    in_blocks = fitted.rows(IMAGE, VALID, 3, 90)
    for block, whole in zip(in_blocks, at_once, strict=True):
        assert block.dtype == np.float32
        np.testing.assert_array_equal(block, whole)


def test_reading_many_rows_holds_temporaries_of_one_block():
    """Rows a tracking strip reads (here 1000 rows of 512 px, 2 MB filtered) cost the output and
    the temporaries of a 128-row block: under 4 MB at the peak, where one block of all the rows
    held four float32 temporaries of 8.3 MB together."""
    import tracemalloc

    rng = np.random.default_rng(5)
    image = (3000 + 800 * rng.random((1000, 512))).astype(np.uint16)
    valid = PackedMask.of(image != 0)
    fitted = ImageFilter.fit(image, valid, "wallis", 5)
    tracemalloc.start()
    try:
        (rows,) = fitted.rows(image, valid, 0, 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows.nbytes == 1000 * 512 * 4
    assert peak < 4_000_000


def test_the_engine_returns_free_heap_memory_before_every_pass(monkeypatch):
    """io.memory.release_free_memory is called once before each pass of the schedule (a pass's
    strips have sizes of their own and cannot reuse all the last one's freed heap), and on glibc
    it returns freed heap pages."""
    import platform

    from glacier_velocity.io.memory import release_free_memory

    calls = []
    monkeypatch.setattr(ncc_engine, "release_free_memory", lambda: calls.append(1) or True)
    pair = make_pair((320, 320), Translation(2.3, -1.6), seed=5)
    params = TrackingParams(search_px=6, grid_spacing_px=12)
    offsets = track_offsets(pair.reference, pair.secondary, params)
    assert np.nanmedian(offsets.dx) == pytest.approx(2.3, abs=0.02)
    levels = ncc_engine._plan_levels(pair.reference.shape, params)
    passes = len(ncc_engine.FINAL_RADII) + levels + 1  # the final passes, one per level above, the search
    assert len(calls) == passes
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        freed = [np.ones(8192) for _ in range(400)]  # 64 kB arrays: from the heap, 26 MB
        del freed
        assert release_free_memory()
