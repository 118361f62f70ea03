"""The package's own tracking engine: pyramid NCC with iterative image deformation.

Outline (one call of :func:`track_ncc`):

1. Build an image pyramid (factor 2 per level) deep enough that the search range at the
   coarsest level is a few pixels, so the cost does not grow with the search range.
2. At the coarsest level, search the full range exhaustively on a grid of chips.
3. At every finer level, and in a few iterations at full resolution, deform the secondary
   image with the current displacement estimate (interpolated between grid points) and
   measure only the small residual shift: +-2 px with normalized cross-correlation, then,
   once the chips are aligned, with gradient (Lucas-Kanade) steps that are unbiased at
   zero residual.
   Deforming the image makes each chip of the secondary look like the reference chip even
   under strong velocity gradients (shear margins, several % strain), where plain block
   matching decorrelates; it is the iterative window-deformation scheme of particle image
   velocimetry (Scarano 2002, doi:10.1088/0957-0233/13/1/201).
4. Fit correlation peaks with a 2-D Gaussian (sub-pixel), reject outliers with the
   normalized median test and quality thresholds, and fill rejected points from their
   neighbours only to guide the next iteration. Rejected points are NaN in the output.

NCC for every chip and every shift comes from integral images (see
:mod:`.integral_ncc`), and image strips are processed in parallel threads (OpenCV and NumPy
release the GIL), so the cost is a small multiple of the number of pixels.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from ..domain.offsets import OffsetField
from ..errors import TrackingFailed
from ..io.memory import release_free_memory
from .field_solve import ChipMeasurement, solve_field
from .filters import ImageFilter, apply_filter
from .grid import ChipGrid, chip_fraction, make_grid
from .integral_ncc import (
    ChipWindows,
    Peak,
    ReferenceSums,
    correlate_shifts,
    find_peaks,
    gradient_residuals,
    gradients_of,
    reference_sums_of,
)
from .masks import PackedMask
from .outliers import fill_gaps, isolated_points, normalized_median_test, small_clusters
from .params import TrackingParams

log = logging.getLogger(__name__)

ENGINE_NAME = "ncc"

#: Largest exhaustive search radius (px) at the coarsest pyramid level.
COARSE_RADIUS_PX = 4
#: Residual search radius (px) at every refinement step; 2 px leaves room for the predictor's
#: error and gives the ring of correlations the peak-sharpness measure needs.
REFINE_RADIUS_PX = 2
#: Passes at full resolution, by search radius (px): three gradient (Lucas-Kanade) passes
#: (radius 0), the last on a Lanczos-deformed image, after the NCC passes of the pyramid.
#: Before round 2 a +-2 px NCC pass came first (2, 0, 0); it cost 25 full-resolution
#: correlations, about 40 % of the engine's time, and gained nothing measurable once the
#: half-resolution level has aligned the chips: 1000 px tongue, 20 DN noise, moving / stable
#: RMSE 0.0208 / 0.0082 px with it, 0.0209 / 0.0083 px with (0, 0, 0); 100 DN noise 0.0670 /
#: 0.0412 vs 0.0671 / 0.0413 px. Two gradient passes (0, 0) lost 0.001-0.008 px. The peak
#: sharpness of the last NCC pass (half resolution) is carried to the full-resolution grid.
FINAL_RADII = (0, 0, 0)
#: Gaussian smoothing (in grid cells) of the full-resolution predictor between passes, for
#: the stability of point-wise deformation (Schrijer & Scarano 2008,
#: doi:10.1007/s00348-008-0504-6). Measured on synthetic pairs: 1.0 cut the moving-ice RMSE
#: from 0.043 to 0.034 px (1000 px tongue) and from 0.108 to 0.075 px (512 px, 15 % strain
#: margins) against chip-mean estimates, at +0.001 px on stable ground.
PREDICTOR_SMOOTHING = 1.0
#: Displacement difference (px) at which the predictor smoothing weighs a neighbour by
#: exp(-1/2) (bilateral filter). Measured on 1000 px tongues against plain Gaussian smoothing
#: (stable RMSE within 24 px of the ice / moving-ice RMSE): 22 px margins 0.188 / 0.163 ->
#: 0.041 / 0.116 px, 44 px margins 0.036 / 0.052 -> 0.028 / 0.041 px, 88 px margins 0.012 /
#: 0.021 -> 0.011 / 0.023 px; 100 DN noise moving 0.067 -> 0.071 px; on the real pair the
#: residual scatter grew from 0.143 to 0.149 px (NMAD). 0.3 and 0.6 px kept less of the noise
#: smoothing (moving ice 0.030 and 0.028 px with 88 px margins). See docs/design/0004.
EDGE_RANGE_PX = 1.0
#: Chips of this many times ``chip_px`` are also measured around every grid point in the last
#: gradient pass, and kept where :func:`_adaptive_chips` finds them better. (In all three
#: full-resolution passes it cost 45 % more time there for no gain: Yahtse NMAD 26.8/27.8 against
#: 27.1/28.2 m/yr, S2 RMS against AROSICS 0.178 against 0.175 px.)
LARGE_CHIP_FACTOR = 2
#: A larger chip is a measurement of the same point only if it agrees with the chip of
#: ``chip_px`` within this many of their combined standard errors, in both components;
#: otherwise the motion is not uniform over it (a glacier margin) and the small chip stays.
CONSISTENCY_SIGMAS = 3.0
#: ... and only where the chip of ``chip_px`` correlates at least this share as well as the
#: larger one (for texture of the same quality the two peaks are alike; under a cloud the small
#: chip's is a fraction of it).
CORE_PEAK_SHARE = 0.5
#: Where the chip of ``chip_px`` fails the peak test (``min_peak``: its content changed between
#: the dates, e.g. a field ploughed within the 10 days of the S2 pair), the larger chip around it
#: is kept instead when that one passes the test (autoRIFT's progressive chips), but only where
#: both images still show texture of alike contrast over the small chip: the deformed
#: secondary's filtered standard deviation over the reference's, and its inverse, at least this
#: share. Under a cloud the secondary's chip is flat (the Wallis filter's contrast floor keeps it
#: flat) and the larger chip's match would come from the ground around it: on seven synthetic
#: cloud pairs 0.5 let 2 of 322 points under a cloud have a value, 0.6 and 0.7 none, no share
#: 113. On the real S2 pair every share from 0.4 to 0.7 keeps the same points (docs/design/0007
#: section 8).
RESCUE_CONTRAST_SHARE = 0.7
#: Where the chips of ``chip_px`` and of :data:`LARGE_CHIP_FACTOR` times it both fail the peak
#: test, the chip of this many times ``chip_px`` around the point (measured in the same last pass)
#: is kept when it passes, under the same contrast test (autoRIFT's chips also go up to 4x). On
#: the real S2 pair: tie points covered 91.4 -> 92.7 %, valid 71.4 -> 72.6 %, RMS against AROSICS
#: 0.182 -> 0.186 px (1.7 % of the valid points); 3x gave 92.4 % and 0.185 px (docs/design/0007
#: section 8).
RESCUE_CHIP_FACTOR = 4
#: Per-point 1-sigma error (px) of each component: ``sqrt((ERROR_AMBIGUITY_PX / snr)**2 +
#: ERROR_FLOOR_PX**2) * sqrt(ERROR_REFERENCE_CHIP_PX / chip)``, with ``snr`` the peak sharpness
#: and ``chip`` the side (px) of the chip the point was measured with. Fitted on the two real
#: pairs (docs/design/0007): the AROSICS Sentinel-2 pair's residuals about a smooth fit and
#: Yahtse's slow ground, so that 1 sigma covers 72 % and 65 % of their points, evenly across
#: error levels and chip sizes. The Lucas-Kanade standard error (texture, peak) predicted
#: less: its scale was 3.9 times too small on one pair and 5-6 times on the other. Refitted
#: the same way for the regularised final field (:data:`FIELD_SOLVE`), whose errors are smaller:
#: with the point-wise field's 0.4 and 0.04 px 1 sigma covered 87 / 85 % of the S2 residuals;
#: with 0.25 and 0.02 px 68 / 66 % (S2) and 70 / 65 % (Yahtse; docs/design/0007 section 7).
ERROR_AMBIGUITY_PX = 0.25
ERROR_FLOOR_PX = 0.02
ERROR_REFERENCE_CHIP_PX = 64
#: The final field is the regularised solve of the last pass's chip measurements
#: (:mod:`.field_solve`), not the point-wise estimate.
FIELD_SOLVE = True
#: Interpolation of the last deformation. Its kernel's attenuation varies with the sub-pixel
#: phase, which biases the final residual: moving-ice RMSE on a 1000 px tongue was 0.021 px
#: with Lanczos-4, 0.025 bilinear and 0.031 bicubic. Earlier passes only need to be close.
FINAL_INTERPOLATION = cv2.INTER_LANCZOS4
#: Largest ground footprint of a chip (in chips of ``chip_px`` at full resolution) whose
#: prediction the finer levels may merely refine. A chip of ``chip_px`` level pixels covers
#: ``scale`` times more ground at each coarser level: 256 px (3.8 km) at 1/8 resolution for
#: 32 px chips. Where one glacier moves fast next to slow, textured rock, such a chip matches
#: the rock, and the +-2 px searches of the finer levels can never reach the ice's motion
#: (Yahtse Glacier, 11-13 px over 16 days: not one fast point; docs/design/0007). So the
#: level where chips of ``WIDE_FOOTPRINT`` x ``chip_px`` full-resolution pixels still hold
#: :data:`MIN_WIDE_CHIP_PX` pixels searches the whole range again (the *wide* pass).
WIDE_FOOTPRINT = 2.0
#: Smallest chip (px of its level) of the wide pass: smaller chips of a reduced image hold too
#: little texture and match by chance.
MIN_WIDE_CHIP_PX = 16
#: A wide-pass peak farther than this (px of its level) from the prediction is a different
#: match, not a refinement of it: a candidate for the second hypothesis.
FAR_PX = 1.5
#: A candidate stands only if at least this many of its 8 neighbours agree with it within
#: :data:`SUPPORT_TOLERANCE_PX` (px of the level): a fast glacier is a coherent region, a chance
#: peak of small chips (farmland, cloud edges) is alone. autoRIFT's normalized displacement
#: coherence filter (Lei et al. 2021) tests the same in a 5 x 5 window. The same test confirms
#: the points where the second hypothesis wins at the next level.
SUPPORT_NEIGHBOURS = 3
SUPPORT_TOLERANCE_PX = 1.0
#: The next pass measures the second hypothesis only where it differs from the first by more
#: than this (px of that level): it is there to catch gross errors, not to re-measure noise.
HYPOTHESIS_DIFFERENCE_PX = 1.0
HYPOTHESIS_MARGIN = 0.05
#: OpenCV's remap quantizes coordinates to 1/32 px; we quantize first so that we know the
#: deformation that was actually applied and can add exactly that back.
_REMAP_STEPS = 32.0
#: Target number of image rows per strip (memory and parallelism granularity).
_STRIP_ROWS = 256
#: Largest number of correlation values (chips x shifts) a strip holds at once; strips of a
#: wide search are cut shorter to stay below it (16 MB of float32 correlations).
_STRIP_CORRELATIONS = 4_000_000


@dataclass(frozen=True)
class _Channels:
    """One image's filtered channels on a pyramid level, read by rows as float32: ``stored``, or
    filtered from ``image`` when read (``fitted``), which level 0 of a large pair is: its stored
    copy would double the memory of the images (:data:`FILTER_ON_READ_ABOVE_BYTES`)."""

    stored: list[np.ndarray] | None = None
    image: np.ndarray | None = None
    valid: PackedMask | None = None
    fitted: ImageFilter | None = None

    def rows(self, lo: int, hi: int) -> list[np.ndarray]:
        """Rows ``lo..hi`` of every channel, float32."""
        if self.stored is not None:
            return [_as_float32(channel[lo:hi]) for channel in self.stored]
        assert self.fitted is not None and self.image is not None and self.valid is not None
        return self.fitted.rows(self.image, self.valid, lo, hi)


@dataclass(frozen=True)
class _Level:
    """One pyramid level: filtered channels, validity, and its chip grid."""

    scale: int
    reference: _Channels
    reference_valid: PackedMask
    secondary: _Channels
    secondary_valid: PackedMask
    grid: ChipGrid

    @property
    def shape(self) -> tuple[int, int]:
        return self.reference_valid.shape


@dataclass
class _LevelCache:
    """What every pass over one level shares, per strip (keyed by its first grid row): the
    reference's chip sums (with or without gradients) and its chips' nodata fractions. Each
    strip is handled by one thread at a time, so no lock is needed."""

    sums: dict[tuple[int, bool, int], list[ReferenceSums]] = field(default_factory=dict)
    bad_reference: dict[object, np.ndarray] = field(default_factory=dict)


@dataclass
class _Estimate:
    """Displacement (px of the level) on a level's grid, with per-point quality; ``chip``: the
    chip side (px) each point was measured with, where a gradient pass chose it."""

    dx: np.ndarray
    dy: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    chip: np.ndarray | None = None
    residual_dx: np.ndarray | None = None
    residual_dy: np.ndarray | None = None
    sigma_x: np.ndarray | None = None
    sigma_y: np.ndarray | None = None


def _plan_levels(shape: tuple[int, int], params: TrackingParams) -> int:
    """Number of pyramid levels above full resolution."""
    levels = 0
    while params.search_px / 2**levels > COARSE_RADIUS_PX - 1:
        next_shape = (shape[0] >> (levels + 1), shape[1] >> (levels + 1))
        if min(next_shape) < 2 * params.chip_px:
            break
        levels += 1
    return levels


#: Rows processed at a time when building the pyramid (even, to keep pyrDown aligned).
_PYRAMID_BLOCK_ROWS = 1024


#: Bytes counted per correlation value (one chip at one shift) of a strip. Until issue 20,
#: :func:`~.integral_ncc.correlate_shifts` held seven float64 arrays of that size (56 B); it
#: now normalises shift by shift and holds the float32 result, and :func:`~.integral_ncc.find_peaks`
#: a float32 copy and masks (about 16 B). The bound stays at 56 B: it is what refuses an
#: absurd search range (hours of compute) before anything is allocated.
_BYTES_PER_CORRELATION = 56


def _strip_rows(grid_shape: tuple[int, int], spacing_px: int, radius: int, wide: bool) -> int:
    """Grid rows per strip: :data:`_STRIP_ROWS` image rows; in the wide pass fewer, so that a
    strip holds at most :data:`_STRIP_CORRELATIONS` correlations (never fewer than one row).

    The coarsest level's search keeps whole strips: the memory it needs is what refuses an
    absurd search range before anything is allocated (:func:`memory_needed_bytes`).
    """
    rows = max(1, _STRIP_ROWS // spacing_px)
    if wide:
        rows = min(rows, max(1, _STRIP_CORRELATIONS // max(1, grid_shape[1] * (2 * radius + 1) ** 2)))
    return rows


def memory_needed_bytes(shape: tuple[int, int], params: TrackingParams, threads: int | None = None) -> int:
    """Memory (bytes) the engine would allocate for images of ``shape`` px, before allocating it.

    The exhaustive searches dominate: at the coarsest pyramid level, and in the wide pass,
    every chip of a strip holds ``(2 r + 1)**2`` correlations at radius ``r`` (px of that
    level), and ``threads`` strips are correlated at once. The filtered pyramid of both images
    (float32, 4/3 of level 0) is added. The estimate is an upper bound of the engine's working
    set, not its exact peak.
    """
    n_levels = _plan_levels(shape, params)
    concurrent_threads = threads or os.cpu_count() or 1
    searches = []
    scale = 2**n_levels
    coarse_shape = (-(-shape[0] // scale), -(-shape[1] // scale))
    spacing = params.grid_spacing_px if n_levels == 0 else max(2, params.chip_px // 4)
    if min(coarse_shape) >= params.chip_px:
        radius = max(REFINE_RADIUS_PX, math.ceil(params.search_px / scale) + 1)
        searches.append((make_grid(coarse_shape, params.chip_px, spacing).shape, spacing, radius, False))
    wide = _wide_level_index(n_levels, params)
    if wide is not None:
        wide_scale = 2**wide
        wide_shape = (-(-shape[0] // wide_scale), -(-shape[1] // wide_scale))
        chip = _wide_chip_px(wide_scale, params)
        radius = max(REFINE_RADIUS_PX, math.ceil(params.search_px / wide_scale) + 1)
        searches.append((make_grid(wide_shape, chip, max(2, chip // 4)).shape, max(2, chip // 4), radius, True))
    correlations = 0
    for (n_rows, n_cols), spacing, radius, wide_pass in searches:
        step = _strip_rows((n_rows, n_cols), spacing, radius, wide_pass)
        concurrent = min(concurrent_threads, -(-n_rows // step))
        correlations = max(correlations, min(step, n_rows) * n_cols * (2 * radius + 1) ** 2 * concurrent)
    channels = 2 if params.filter == "oc" else 1
    pyramid = 2 * channels * shape[0] * shape[1] * 4 * 4 // 3
    return correlations * _BYTES_PER_CORRELATION + pyramid


def _pyr_down(image: np.ndarray, valid: PackedMask) -> tuple[np.ndarray, PackedMask]:
    """Half-resolution image (float32) and validity, in row blocks to bound memory.

    Nodata is replaced by the mean of the valid pixels before smoothing, so it does not
    darken its surroundings; a coarse pixel is valid only if every fine pixel under the
    5 x 5 kernel was.
    """
    rows = image.shape[0]
    fill = 0.0
    if not valid.all():
        total = sum(
            float(
                image[lo : lo + _PYRAMID_BLOCK_ROWS].sum(where=valid[lo : lo + _PYRAMID_BLOCK_ROWS], dtype=np.float64)
            )
            for lo in range(0, rows, _PYRAMID_BLOCK_ROWS)
        )
        count = valid.count()
        fill = total / count if count else 0.0
    out_img = np.empty(((rows + 1) // 2, (image.shape[1] + 1) // 2), dtype=np.float32)
    out_valid = np.empty(out_img.shape, dtype=bool) if not valid.all() else None
    margin = 4
    for lo in range(0, rows, _PYRAMID_BLOCK_ROWS):
        hi = min(rows, lo + _PYRAMID_BLOCK_ROWS)
        plo, phi = max(0, lo - margin), min(rows, hi + margin)
        block = image[plo:phi].astype(np.float32)
        block_valid = valid[plo:phi]
        if block_valid.all():
            small = cv2.pyrDown(block)
            small_valid = np.ones(small.shape, dtype=bool)
        else:
            block[~block_valid] = fill
            small = cv2.pyrDown(block)
            small_valid = cv2.pyrDown(block_valid.astype(np.float32)) > 0.999
        # cv2.pyrDown centres output row j on input row 2j: plo and lo are even.
        a, b = (lo - plo) // 2, (lo - plo) // 2 + (hi - lo + 1) // 2
        out_img[lo // 2 : lo // 2 + b - a] = small[a:b]
        if out_valid is not None:
            out_valid[lo // 2 : lo // 2 + b - a] = small_valid[a:b]
    shape = (int(out_img.shape[0]), int(out_img.shape[1]))
    return out_img, PackedMask(None, shape) if out_valid is None else PackedMask.of(out_valid)


#: Filtered images of a pair larger than this (bytes, as float32 channels) are not stored at
#: full resolution but filtered strip by strip as the passes read them (``_Channels``), and
#: their coarser levels are stored as float16: a full tile keeps about 0.15 GB of filtered
#: images instead of 1 GB. Filtering the strips again in each full-resolution pass costs a
#: little CPU (the tile's user time went from 27.9 to 28.8 s in one comparison, where the
#: float16 rows no longer need converting back); smaller pairs are stored as float32.
FILTER_ON_READ_ABOVE_BYTES = 512 * 2**20


def _large_pair(shape: tuple[int, int], params: TrackingParams) -> bool:
    """Whether both images' filtered channels at full resolution exceed
    :data:`FILTER_ON_READ_ABOVE_BYTES` as float32."""
    channels = 2 if params.filter == "oc" else 1
    return 2 * channels * shape[0] * shape[1] * 4 > FILTER_ON_READ_ABOVE_BYTES


def _channels(image: np.ndarray, valid: PackedMask, params: TrackingParams, store: type | None) -> _Channels:
    """The filtered channels of one image on one level: stored as ``store`` (float32 or
    float16), or, with ``store`` None, filtered when read."""
    if store is not None:
        return _Channels(stored=apply_filter(image, valid, params.filter, params.filter_width_px, store))
    fitted = ImageFilter.fit(image, valid, params.filter, params.filter_width_px)
    return _Channels(image=image, valid=valid, fitted=fitted)


def _build_levels(
    reference: np.ndarray,
    secondary: np.ndarray,
    ref_valid: PackedMask,
    sec_valid: PackedMask,
    params: TrackingParams,
    pool: ThreadPoolExecutor,
) -> list[_Level]:
    """Filtered pyramid levels; each raw level is dropped as soon as the next is made.

    The reference and the secondary are filtered and reduced in parallel threads. Level 0 of a
    large pair (:func:`_large_pair`) is filtered when read, from the images themselves; its
    coarser levels are stored as float16.
    """
    n = _plan_levels(reference.shape, params)
    large = _large_pair(reference.shape, params)
    ref, sec, rv, sv = reference, secondary, ref_valid, sec_valid
    levels = []
    for level in range(n + 1):
        spacing = params.grid_spacing_px if level == 0 else max(2, params.chip_px // 4)
        store = None if large and level == 0 else np.float16 if large else np.float32
        ref_f = pool.submit(_channels, ref, rv, params, store)
        sec_f = pool.submit(_channels, sec, sv, params, store)
        levels.append(
            _Level(
                scale=2**level,
                reference=ref_f.result(),
                reference_valid=rv,
                secondary=sec_f.result(),
                secondary_valid=sv,
                grid=make_grid(ref.shape, params.chip_px, spacing),
            )
        )
        if level < n:
            ref_d = pool.submit(_pyr_down, ref, rv)
            sec_d = pool.submit(_pyr_down, sec, sv)
            (ref, rv), (sec, sv) = ref_d.result(), sec_d.result()
    return levels


def _dense_field(values: np.ndarray, grid: ChipGrid, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear interpolation (float32) of a grid field at every pixel of ``ys`` x ``xs``
    (consecutive integer rows and columns), the edge values continued beyond the grid.

    Upsampling the grid rows the strip needs by the grid spacing with ``cv2.resize`` puts
    resized pixel ``k`` at grid coordinate ``(k - (s - 1) / 2) / s``: the pixels of the strip are
    then a slice of it whenever that offset is a whole number of pixels (chip and spacing both
    even or both odd), three times faster than a ``cv2.remap`` through coordinate maps.
    """
    s = grid.spacing_px
    off_r = float(grid.rows[0]) - (s - 1) / 2.0
    off_c = float(grid.cols[0]) - (s - 1) / 2.0
    if not (off_r.is_integer() and off_c.is_integer()):
        return _dense_field_remap(values, grid, ys, xs)
    n_r = values.shape[0]
    g0 = max(0, int(np.floor((float(ys[0]) - grid.rows[0]) / s)) - 1)
    g1 = min(n_r, int(np.ceil((float(ys[-1]) - grid.rows[0]) / s)) + 2)
    block = np.ascontiguousarray(values[g0:g1], dtype=np.float32)
    ry0, ry1 = int(ys[0]) - int(off_r) - g0 * s, int(ys[-1]) - int(off_r) - g0 * s
    rx0, rx1 = int(xs[0]) - int(off_c), int(xs[-1]) - int(off_c)
    # Pixels beyond the grid's first or last point continue its edge values: the block is
    # padded by whole grid cells (replicated), so that the strip is a slice of the upsampled
    # block and never a gather.
    top, left = max(0, -(ry0 // s)), max(0, -(rx0 // s))
    bottom = max(0, -(-(ry1 + 1) // s) - block.shape[0])
    right = max(0, -(-(rx1 + 1) // s) - block.shape[1])
    if top or bottom or left or right:
        block = np.asarray(cv2.copyMakeBorder(block, top, bottom, left, right, cv2.BORDER_REPLICATE), dtype=np.float32)
    up = cv2.resize(block, (block.shape[1] * s, block.shape[0] * s), interpolation=cv2.INTER_LINEAR)
    return up[ry0 + top * s : ry1 + top * s + 1, rx0 + left * s : rx1 + left * s + 1]


def _dense_field_remap(values: np.ndarray, grid: ChipGrid, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """:func:`_dense_field` through coordinate maps, for any grid offset."""
    gy = ((ys - grid.rows[0]) / grid.spacing_px).astype(np.float32)
    gx = ((xs - grid.cols[0]) / grid.spacing_px).astype(np.float32)
    map_y = np.ascontiguousarray(np.broadcast_to(gy[:, None], (len(ys), len(xs))))
    map_x = np.ascontiguousarray(np.broadcast_to(gx[None, :], (len(ys), len(xs))))
    return cv2.remap(values.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _track_strip(
    level: _Level,
    grid: ChipGrid,
    pred_dx: np.ndarray,
    pred_dy: np.ndarray,
    i0: int,
    i1: int,
    radius: int,
    max_nodata: float,
    interpolation: int,
    ref_cache: _LevelCache,
    monotone: bool,
    adaptive: bool = False,
    wide: bool = False,
    min_peak: float = -1.0,
) -> tuple[slice, _Estimate]:
    """Deform the secondary over one strip of grid rows and measure the residual shifts (to the
    whole pixel in a ``wide`` pass, whose peaks the next pass measures again).

    An ``adaptive`` gradient step also measures chips of :data:`LARGE_CHIP_FACTOR` and
    :data:`RESCUE_CHIP_FACTOR` times the size around the same points, and keeps them where
    :func:`_adaptive_chips` says so
    (``min_peak``: the peak test of the final validation).
    """
    chip = grid.chip_px
    rows, cols = level.shape
    row_starts = grid.row_starts[i0:i1]
    adaptive = adaptive and radius == 0 and LARGE_CHIP_FACTOR > 1
    # Margins (px) of the larger chips around the small one; the strip reads the widest.
    ext_large = (LARGE_CHIP_FACTOR - 1) * chip // 2 if adaptive else 0
    ext_rescue = (RESCUE_CHIP_FACTOR - 1) * chip // 2 if adaptive and RESCUE_CHIP_FACTOR > LARGE_CHIP_FACTOR else 0
    ext = max(ext_large, ext_rescue)
    y_lo = max(0, int(row_starts[0]) - ext)
    y_hi = min(rows, int(row_starts[-1]) + chip + ext)
    ys = np.arange(y_lo - radius, y_hi + radius, dtype=np.float32)
    xs = np.arange(-radius, cols + radius, dtype=np.float32)
    # Quantize the deformation to OpenCV's remap precision ourselves, so that the applied
    # displacement is known exactly and can be added back to the measured residual. The maps
    # are built in place: at full resolution every temporary costs as much as the remap.
    map_x = _quantized(_dense_field(pred_dx, grid, ys, xs))
    map_x += xs[None, :]
    map_y = _quantized(_dense_field(pred_dy, grid, ys, xs))
    map_y += ys[:, None]
    # Only the source rows this strip can reach are converted to float32 for remap; rows
    # outside the image stay outside the slice and meet the constant border as before.
    src_lo = max(0, int(np.floor(ys[0] + pred_dy.min())) - 4)
    src_hi = min(rows, int(np.ceil(ys[-1] + pred_dy.max())) + 5)
    map_y -= src_lo
    valid_w = _warped_validity(level.secondary_valid, src_lo, src_hi, map_x, map_y, monotone)
    warped = []
    for source in level.secondary.rows(src_lo, src_hi):
        w = cv2.remap(source, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if valid_w is not None:
            w[~valid_w] = 0.0
        warped.append(w)
    del source
    local_starts = row_starts - y_lo
    inner = (slice(radius, radius + y_hi - y_lo), slice(radius, radius + cols))
    # The residual is what remains of the chip's motion after the deformation; adding the
    # deformation applied at the chip centre (not its chip mean) makes the estimate converge
    # to the motion *at the grid point* instead of a chip average, which is what removes the
    # bias in curved velocity profiles (shear margins). The predictor is smoothed between
    # passes (PREDICTOR_SMOOTHING) because point-wise feedback otherwise amplifies noise.
    # Taken now, so that the full-size maps are freed before the correlation's own arrays exist.
    base_dx = _centre_mean(map_x[inner], local_starts, grid.col_starts, chip) - grid.cols[None, :]
    base_dy = _centre_mean(map_y[inner], local_starts, grid.col_starts, chip) + src_lo - grid.rows[i0:i1, None]
    del map_x, map_y
    windows = ChipWindows.of(local_starts, grid.col_starts, chip)
    large = _large_windows(windows, ext_large, (y_hi - y_lo, cols)) if adaptive else None
    rescue = _large_windows(windows, ext_rescue, (y_hi - y_lo, cols)) if ext_rescue else None
    usable = _usable(level, ref_cache, (i0, ext), windows, y_lo, valid_w, inner, max_nodata)
    large_usable, rescue_usable = (
        None
        if larger is None
        else usable[larger[1]] & _usable(level, ref_cache, (i0, name), larger[0], y_lo, valid_w, inner, max_nodata)
        for larger, name in ((large, "large"), (rescue, "rescue"))
    )
    del valid_w
    reference = level.reference.rows(y_lo, y_hi)
    # A gradient step needs the reference's gradients for its sums and for the step itself.
    gradients = [gradients_of(ch) for ch in reference] if radius == 0 else None
    # The reference's own chip sums are the same in every pass over this level: computed once,
    # for the chips of both sizes together; those of the adaptive (last) pass, the only one
    # with larger chips, are not kept.
    key = (i0, radius == 0, ext)
    ref_sums = ref_cache.sums.get(key)
    larger_sets = [w for w in (large, rescue) if w is not None]
    larger_sums: list[list[ReferenceSums]] = []
    if ref_sums is None:
        sets = [windows] + [w[0] for w in larger_sets]
        per_channel = [
            reference_sums_of(ch, sets, None if gradients is None else gradients[c]) for c, ch in enumerate(reference)
        ]
        ref_sums = [sums[0] for sums in per_channel]
        if not larger_sets:
            ref_cache.sums[key] = ref_sums
        larger_sums = [[sums[k + 1] for sums in per_channel] for k in range(len(larger_sets))]
    if radius == 0:
        chips = [(windows, ref_sums)] + [(w[0], sums) for w, sums in zip(larger_sets, larger_sums, strict=False)]
        measured = gradient_residuals(reference, warped, chips, gradients)
        peak = measured[0]
        if large is not None and large_usable is not None:
            third = (
                None
                if rescue is None or rescue_usable is None
                else (measured[2], rescue[1], rescue_usable, rescue[0].size)
            )
            peak = _adaptive_chips(peak, measured[1], large[1], large_usable, (chip, large[0].size), min_peak, third)
    else:
        peak = find_peaks(
            correlate_shifts(reference, warped, local_starts, grid.col_starts, chip, radius, ref_sums),
            sub_pixel=not wide,
        )
    dx = np.where(usable, base_dx + peak.dx, np.nan)
    dy = np.where(usable, base_dy + peak.dy, np.nan)
    return slice(i0, i1), _Estimate(
        dx=dx,
        dy=dy,
        peak=np.where(usable, peak.peak, np.nan).astype(np.float32),
        snr=np.where(usable, peak.snr, np.nan).astype(np.float32),
        chip=None if peak.chip is None else np.where(usable, peak.chip, 0).astype(np.int16),
        residual_dx=np.where(usable, peak.dx, np.nan),
        residual_dy=np.where(usable, peak.dy, np.nan),
        sigma_x=None if peak.sigma_x is None else np.where(usable, peak.sigma_x, np.nan),
        sigma_y=None if peak.sigma_y is None else np.where(usable, peak.sigma_y, np.nan),
    )


def _usable(
    level: _Level,
    ref_cache: _LevelCache,
    key: object,
    windows: ChipWindows,
    y_lo: int,
    valid_w: np.ndarray | None,
    inner: tuple[slice, slice],
    max_nodata: float,
) -> np.ndarray:
    """Chips whose share of nodata pixels, in the reference and in the deformed secondary, is
    at most ``max_nodata``. The reference's share is the same in every pass: cached by ``key``."""
    shape = (windows.n_rows, windows.n_cols)
    if key not in ref_cache.bad_reference:
        reach = windows.reach()
        ref_valid = level.reference_valid[y_lo : y_lo + reach[0]]
        ref_cache.bad_reference[key] = np.zeros(shape) if ref_valid.all() else _window_fraction(~ref_valid, windows)
    bad_sec = np.zeros(shape) if valid_w is None else _window_fraction(~valid_w[inner], windows)
    return (ref_cache.bad_reference[key] <= max_nodata) & (bad_sec <= max_nodata)


def _window_fraction(mask: np.ndarray, windows: ChipWindows) -> np.ndarray:
    """Share (0..1) of True pixels of ``mask`` in each window."""
    starts_r = windows.row0 + windows.step * np.arange(windows.n_rows)
    starts_c = windows.col0 + windows.step * np.arange(windows.n_cols)
    return chip_fraction(mask, starts_r, starts_c, windows.size)


def _large_windows(
    windows: ChipWindows, ext: int, strip_shape: tuple[int, int]
) -> tuple[ChipWindows, tuple[slice, slice]] | None:
    """Chips ``2 ext`` px larger around the same points, for the points where they fit in the
    strip, and where those points are among ``windows`` (rows, cols); None if nowhere."""
    starts_r = windows.row0 + windows.step * np.arange(windows.n_rows) - ext
    starts_c = windows.col0 + windows.step * np.arange(windows.n_cols) - ext
    size = windows.size + 2 * ext
    fit_r = np.nonzero((starts_r >= 0) & (starts_r + size <= strip_shape[0]))[0]
    fit_c = np.nonzero((starts_c >= 0) & (starts_c + size <= strip_shape[1]))[0]
    if fit_r.size == 0 or fit_c.size == 0:
        return None
    at = (slice(int(fit_r[0]), int(fit_r[-1]) + 1), slice(int(fit_c[0]), int(fit_c[-1]) + 1))
    return ChipWindows.of(starts_r[at[0]], starts_c[at[1]], size), at


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Rows of a stored level (float32, or float16 for a large pair) as float32; OpenCV converts
    float16 about twice as fast as NumPy, and exactly."""
    if values.dtype == np.float32:
        return values
    return np.asarray(cv2.add(values, 0.0, dtype=cv2.CV_32F))  # type: ignore[call-overload]  # scalar src2


def _quantized(values: np.ndarray) -> np.ndarray:
    """``values`` (float32) rounded in place to OpenCV's remap step (1/32 px)."""
    values *= _REMAP_STEPS
    np.rint(values, out=values)
    values /= _REMAP_STEPS
    return values


def _monotone(pred_dx: np.ndarray, pred_dy: np.ndarray, spacing_px: int) -> bool:
    """Whether the predictor (px) changes by less than a grid spacing between neighbouring grid
    points, so that the deformation maps grow along rows and down columns (see
    :func:`_warped_validity`)."""
    return (pred_dx.shape[1] < 2 or float(np.abs(np.diff(pred_dx, axis=1)).max()) < spacing_px) and (
        pred_dy.shape[0] < 2 or float(np.abs(np.diff(pred_dy, axis=0)).max()) < spacing_px
    )


def _warped_validity(
    valid: PackedMask, src_lo: int, src_hi: int, map_x: np.ndarray, map_y: np.ndarray, monotone: bool
) -> np.ndarray | None:
    """Which deformed pixels come from a valid source pixel (nearest) of rows ``src_lo..src_hi``
    of ``valid``; None if all do.

    A deformed pixel is valid if its nearest source pixel is: the interpolation kernel's reach
    into nodata is absorbed by the chip's nodata-fraction test. Where the source is entirely
    valid, only pixels mapped outside it can be invalid. When the predictor is ``monotone``
    (:func:`_monotone`), ``map_x`` grows along each row and ``map_y`` down each column, so their
    extremes lie on the strip's edges; if those are inside the source, the full-size remap of
    the mask is not needed (most strips of most pairs).
    """
    rows, cols = src_hi - src_lo, valid.shape[1]
    if (
        valid.all()
        and monotone
        and float(map_x[:, 0].min()) >= 0.0
        and float(map_x[:, -1].max()) <= cols - 1
        and float(map_y[0].min()) >= 0.0
        and float(map_y[-1].max()) <= rows - 1
    ):
        return None
    return cv2.remap(
        valid[src_lo:src_hi].view(np.uint8),
        map_x,
        map_y,
        cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    ).view(bool)


def _centre_mean(values: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray, chip: int) -> np.ndarray:
    """Mean of ``values`` over the 2 x 2 pixels around each (even) chip's centre."""
    ya = (row_starts + chip // 2 - 1)[:, None]
    xa = (col_starts + chip // 2 - 1)[None, :]
    # Gather first, convert after: the values are a full-resolution map.
    v = [values[ya + a, xa + b].astype(np.float64) for a in (0, 1) for b in (0, 1)]
    return (v[0] + v[1] + v[2] + v[3]) / 4.0


def _iterate(
    level: _Level,
    grid: ChipGrid,
    pred_dx: np.ndarray,
    pred_dy: np.ndarray,
    radius: int,
    params: TrackingParams,
    pool: ThreadPoolExecutor,
    bar: tqdm,
    interpolation: int,
    ref_cache: _LevelCache,
    rows_needed: np.ndarray | None = None,
    wide: bool = False,
    adaptive: bool = False,
) -> _Estimate:
    """One deformation-and-correlation pass over a whole level on ``grid``, strip by strip.

    ``ref_cache`` keeps the reference's chip sums of this grid between passes. With
    ``rows_needed`` (bool per grid row), strips without a needed row are not measured (NaN).
    """
    n_rows = grid.shape[0]
    step = _strip_rows(grid.shape, grid.spacing_px, radius, wide)
    bounds = [(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]
    if rows_needed is not None:
        bounds = [(i0, i1) for i0, i1 in bounds if rows_needed[i0:i1].any()]
    out = _Estimate(
        dx=np.full(grid.shape, np.nan),
        dy=np.full(grid.shape, np.nan),
        peak=np.full(grid.shape, np.nan, dtype=np.float32),
        snr=np.full(grid.shape, np.nan, dtype=np.float32),
        chip=np.zeros(grid.shape, dtype=np.int16) if radius == 0 else None,
        residual_dx=np.full(grid.shape, np.nan),
        residual_dy=np.full(grid.shape, np.nan),
        sigma_x=np.full(grid.shape, np.nan),
        sigma_y=np.full(grid.shape, np.nan),
    )
    monotone = _monotone(pred_dx, pred_dy, grid.spacing_px)
    futures = [
        pool.submit(
            _track_strip,
            level,
            grid,
            pred_dx,
            pred_dy,
            i0,
            i1,
            radius,
            params.max_nodata_fraction,
            interpolation,
            ref_cache,
            monotone,
            adaptive,
            wide,
            params.min_peak,
        )
        for i0, i1 in bounds
    ]
    for future in futures:
        sl, est = future.result()
        out.dx[sl], out.dy[sl], out.peak[sl], out.snr[sl] = est.dx, est.dy, est.peak, est.snr
        if out.chip is not None and est.chip is not None:
            out.chip[sl] = est.chip
        for name in ("residual_dx", "residual_dy", "sigma_x", "sigma_y"):
            part, whole = getattr(est, name), getattr(out, name)
            if part is not None and whole is not None:
                whole[sl] = part
        bar.update(sl.stop - sl.start)
    return out


def _validate(est: _Estimate, params: TrackingParams, limit_px: float, final: bool) -> _Estimate:
    """Quality thresholds, search limit and median test; rejected points become NaN."""
    bad = ~np.isfinite(est.dx) | ~np.isfinite(est.dy)
    with np.errstate(invalid="ignore"):
        bad |= est.peak < params.min_peak
        if final:
            bad |= ~(est.snr >= params.min_snr)
        bad |= np.maximum(np.abs(est.dx), np.abs(est.dy)) > limit_px
    dx = np.where(bad, np.nan, est.dx)
    dy = np.where(bad, np.nan, est.dy)
    # Two passes: a cluster of outliers can hide its members from a single pass.
    for _ in range(2):
        out = normalized_median_test(dx, dy, params.median_threshold)
        if not out.any():
            break
        dx = np.where(out, np.nan, dx)
        dy = np.where(out, np.nan, dy)
    if final and min(dx.shape) >= 3:
        lonely = isolated_points(np.isfinite(dx))
        lonely |= small_clusters(np.isfinite(dx) & ~lonely)
        dx = np.where(lonely, np.nan, dx)
        dy = np.where(lonely, np.nan, dy)
    return replace(est, dx=dx, dy=dy)


def _resample_predictor(
    est: _Estimate, coarse: ChipGrid, fine: ChipGrid, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Carry a filled coarse field to the next finer grid (positions x2, values x2)."""
    # cv2.pyrDown centres coarse pixel i on fine pixel 2i, so coordinates scale by exactly 2.
    gy = (fine.rows / factor - coarse.rows[0]) / coarse.spacing_px
    gx = (fine.cols / factor - coarse.cols[0]) / coarse.spacing_px
    coords = np.meshgrid(gy, gx, indexing="ij")
    out = []
    for comp in (est.dx, est.dy):
        filled = fill_gaps(comp)
        out.append(ndimage.map_coordinates(filled, coords, order=1, mode="nearest") * factor)
    return out[0], out[1]


def _resample_nearest(values: np.ndarray, coarse: ChipGrid, fine: ChipGrid, factor: float) -> np.ndarray:
    """A coarse grid's per-point quality at the nearest point of a finer grid (NaN kept)."""
    if factor == 1.0 and values.shape == fine.shape:
        return values
    gy = np.clip(np.rint((fine.rows / factor - coarse.rows[0]) / coarse.spacing_px), 0, coarse.shape[0] - 1)
    gx = np.clip(np.rint((fine.cols / factor - coarse.cols[0]) / coarse.spacing_px), 0, coarse.shape[1] - 1)
    return values[np.ix_(gy.astype(int), gx.astype(int))]


def _smooth_predictor(dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge-preserving smoothing of a full-resolution predictor (px) between passes.

    A Gaussian of :data:`PREDICTOR_SMOOTHING` grid cells in space, weighted by a Gaussian of
    the displacement difference (:data:`EDGE_RANGE_PX`) between the two points: noise
    (hundredths of a px) is smoothed as before, while a jump of pixels across a sharp
    glacier margin is not carried onto the stable ground next to it.
    """
    stack = np.dstack([dx, dy, np.zeros_like(dx)]).astype(np.float32)
    out = cv2.bilateralFilter(
        stack,
        2 * math.ceil(2 * PREDICTOR_SMOOTHING) + 1,
        EDGE_RANGE_PX,
        PREDICTOR_SMOOTHING,
        borderType=cv2.BORDER_REPLICATE,
    )
    return out[..., 0].astype(np.float64), out[..., 1].astype(np.float64)


@dataclass(frozen=True)
class _Pass:
    """One pass of the schedule: a level, the chip grid on it, and the residual search radius
    (px of the level; 0 = a gradient step). The wide pass makes a second hypothesis."""

    index: int
    grid: ChipGrid
    radius: int
    wide: bool = False


def _supported(candidates: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Candidates whose displacement (px) is within :data:`SUPPORT_TOLERANCE_PX` of that of at
    least :data:`SUPPORT_NEIGHBOURS` of their 8 neighbours, in both components."""
    n_r, n_c = dx.shape
    pdx = np.pad(dx, 1, constant_values=np.nan)
    pdy = np.pad(dy, 1, constant_values=np.nan)
    count = np.zeros(dx.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        for a in (0, 1, 2):
            for b in (0, 1, 2):
                if a != 1 or b != 1:
                    near_x = np.abs(pdx[a : a + n_r, b : b + n_c] - dx) <= SUPPORT_TOLERANCE_PX
                    count += near_x & (np.abs(pdy[a : a + n_r, b : b + n_c] - dy) <= SUPPORT_TOLERANCE_PX)
    return candidates & (count >= SUPPORT_NEIGHBOURS)


def _wide_level_index(top: int, params: TrackingParams) -> int | None:
    """Pyramid level (index; its scale is ``2**index``) of the wide pass when the coarsest is
    ``top``, or None when the coarsest chips are small enough.

    The wide pass runs at the coarsest level whose :data:`WIDE_FOOTPRINT` chip still holds
    :data:`MIN_WIDE_CHIP_PX` level pixels, and never at full resolution.
    """
    if 2**top <= WIDE_FOOTPRINT:
        return None
    index = 1
    while index < top and WIDE_FOOTPRINT * params.chip_px / 2 ** (index + 1) >= MIN_WIDE_CHIP_PX:
        index += 1
    return index


def _wide_chip_px(scale: int, params: TrackingParams) -> int:
    """Chip (px of a level of ``scale``) covering :data:`WIDE_FOOTPRINT` x ``chip_px``
    full-resolution pixels, at least :data:`MIN_WIDE_CHIP_PX` and at most ``chip_px``."""
    chip = int(WIDE_FOOTPRINT * params.chip_px / scale) // 2 * 2
    return max(MIN_WIDE_CHIP_PX, min(chip, params.chip_px))


def _wide_grid(level: _Level, params: TrackingParams) -> ChipGrid:
    """The wide pass's chips, every quarter chip like the other coarse grids."""
    chip = _wide_chip_px(level.scale, params)
    return make_grid(level.shape, chip, max(2, chip // 4))


def _schedule(levels: list[_Level], params: TrackingParams) -> list[_Pass]:
    """The passes, coarsest first.

    An exhaustive search of the whole range at the coarsest level, a +-2 px search at every
    finer level, then the gradient steps at full resolution. Where the coarsest chips cover
    more than :data:`WIDE_FOOTPRINT` chips of ground, the level chosen by
    :func:`_wide_level_index` adds a wide pass after its +-2 px pass: smaller chips search the
    whole range again.
    """
    top = len(levels) - 1
    wide = _wide_level_index(top, params)
    passes = [_Pass(top, levels[top].grid, max(REFINE_RADIUS_PX, math.ceil(params.search_px / levels[top].scale) + 1))]
    for index in range(top, 0, -1):
        passes.append(_Pass(index, levels[index].grid, REFINE_RADIUS_PX))
        if index == wide:
            radius = max(REFINE_RADIUS_PX, math.ceil(params.search_px / levels[index].scale) + 1)
            passes.append(_Pass(index, _wide_grid(levels[index], params), radius, wide=True))
    passes += [_Pass(0, levels[0].grid, radius) for radius in FINAL_RADII]
    return passes


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def track_ncc(
    reference: np.ndarray,
    secondary: np.ndarray,
    params: TrackingParams,
    *,
    reference_mask: np.ndarray | None = None,
    secondary_mask: np.ndarray | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> OffsetField:
    """Track features with pyramid NCC and iterative image deformation.

    Parameters
    ----------
    reference, secondary : ndarray, shape (rows, cols)
        Images on the same grid; DN 0 is nodata.
    params : TrackingParams
        Grid spacing, chip size, search range (px), filter, thresholds.
    reference_mask, secondary_mask : ndarray of bool, optional
        True where pixels must not be used (cloud, shadow).
    progress : bool, optional
        Progress bar; default: only when stderr is a terminal.
    threads : int, optional
        Worker threads (default: the number of CPUs). Results do not depend on it.

    Returns
    -------
    OffsetField
        ``dx``/``dy`` (px) at chip centres, NaN where rejected; ``peak`` and ``snr``.
    """
    ref_valid, sec_valid = (
        _validity(image, mask) for image, mask in ((reference, reference_mask), (secondary, secondary_mask))
    )
    if not ref_valid.any() or not sec_valid.any():
        which = "reference" if not ref_valid.any() else "secondary"
        raise TrackingFailed(f"the {which} image holds no valid pixel (all nodata or masked)")
    n_threads = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        levels = _build_levels(reference, secondary, ref_valid, sec_valid, params, pool)
        est = _run_schedule(levels, params, pool, progress)
    grid = levels[0].grid
    if not np.isfinite(est.dx).any():
        log.warning("no grid point could be matched; check the overlap, clouds and the search range")
    chip = np.where(np.isfinite(est.dx), params.chip_px if est.chip is None else est.chip, 0).astype(np.int16)
    error = np.where(np.isfinite(est.dx), point_error_px(est.snr, chip), np.nan).astype(np.float32)
    return OffsetField(
        rows=grid.rows.astype(np.float64),
        cols=grid.cols.astype(np.float64),
        dx=est.dx.astype(np.float32),
        dy=est.dy.astype(np.float32),
        peak=est.peak.astype(np.float32),
        snr=est.snr.astype(np.float32),
        engine=ENGINE_NAME,
        params={**params.as_dict(), "pyramid_levels": len(levels) - 1, "passes": len(_schedule(levels, params))},
        dx_error=error,
        dy_error=error.copy(),
        chip_px=chip,
    )


def _validity(image: np.ndarray, mask: np.ndarray | None) -> PackedMask:
    """Pixels with data (DN not 0) and not masked, packed."""

    def rows(lo: int, hi: int) -> np.ndarray:
        valid = image[lo:hi] != 0
        if mask is not None:
            valid &= ~np.asarray(mask[lo:hi], dtype=bool)
        return valid

    return PackedMask.from_rows((int(image.shape[0]), int(image.shape[1])), rows)


def point_error_px(snr: np.ndarray, chip_px: np.ndarray) -> np.ndarray:
    """1-sigma error (px) of each offset component from its match's peak sharpness and chip size.

    See :data:`ERROR_AMBIGUITY_PX`; NaN where ``snr`` is NaN or ``chip_px`` is 0. Chips larger
    than :data:`ERROR_REFERENCE_CHIP_PX` count as that size: they are kept only where the smaller
    ones failed the peak test (:data:`RESCUE_CHIP_FACTOR`), and on the real S2 pair their own
    size made 1 sigma cover 56 / 57 % of their residuals, against 73 / 72 % counted at 64 px.

    >>> float(point_error_px(np.array([4.0]), np.array([64]))[0])  # doctest: +ELLIPSIS
    0.0656...
    """
    snr = np.maximum(np.asarray(snr, dtype=np.float64), 1.0)
    chip = np.minimum(np.asarray(chip_px, dtype=np.float64), ERROR_REFERENCE_CHIP_PX)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.hypot(ERROR_AMBIGUITY_PX / snr, ERROR_FLOOR_PX) * np.sqrt(ERROR_REFERENCE_CHIP_PX / chip)
    return np.where(chip > 0, error, np.nan).astype(np.float32)


def _run_schedule(
    levels: list[_Level], params: TrackingParams, pool: ThreadPoolExecutor, progress: bool | None
) -> _Estimate:
    """Run every pass of the schedule, coarse to fine; the estimate of the last pass."""
    schedule = _schedule(levels, params)
    total = sum(p.grid.shape[0] for p in schedule)
    pred_dx = np.zeros(schedule[0].grid.shape)
    pred_dy = np.zeros(schedule[0].grid.shape)
    est: _Estimate | None = None
    hypothesis: tuple[_Estimate, ChipGrid, int] | None = None
    snr: np.ndarray | None = None
    previous = schedule[0]
    caches: dict[tuple[int, int, int], _LevelCache] = {}
    with tqdm(total=total, desc="tracking", unit="grid row", disable=not _show_progress(progress), leave=False) as bar:
        for step, this in enumerate(schedule):
            level = levels[this.index]
            final = step == len(schedule) - 1
            if est is not None and this.grid is not previous.grid:
                factor = levels[previous.index].scale / level.scale
                pred_dx, pred_dy = _resample_predictor(est, previous.grid, this.grid, factor)
            interpolation = FINAL_INTERPOLATION if final else cv2.INTER_CUBIC
            cache = caches.setdefault((this.index, this.grid.chip_px, this.grid.spacing_px), _LevelCache())
            release_free_memory()  # what the last pass freed, before this one's strips (other sizes)
            raw = _iterate(
                level,
                this.grid,
                pred_dx,
                pred_dy,
                this.radius,
                params,
                pool,
                bar,
                interpolation,
                cache,
                wide=this.wide,
                adaptive=final,
            )
            if final:
                caches.clear()  # the reference sums of every level: no pass needs them now
            limit = params.search_px / level.scale + 1.0
            if this.wide:
                alt = _wide_hypothesis(raw, pred_dx, pred_dy, params, limit)
                hypothesis = None if alt is None else (alt, this.grid, level.scale)
                continue  # the estimate stays; the next pass tests the hypothesis
            if hypothesis is not None:
                alt, alt_grid, alt_scale = hypothesis
                alt_dx, alt_dy = _resample_predictor(alt, alt_grid, this.grid, alt_scale / level.scale)
                raw = _test_hypothesis(
                    raw, (alt_dx, alt_dy), (pred_dx, pred_dy), level, this, params, pool, bar, interpolation, cache
                )
                hypothesis = None
            if this.radius >= 2:
                snr, snr_grid, snr_scale = raw.snr, this.grid, level.scale
            if final and snr is not None:
                raw = replace(raw, snr=_resample_nearest(snr, snr_grid, this.grid, snr_scale / level.scale))
            est = _validate(raw, params, limit, final)
            if final and FIELD_SOLVE:
                est = _solve_final(est, raw, pred_dx, pred_dy, this.grid)
            if not final:
                pred_dx, pred_dy = fill_gaps(est.dx), fill_gaps(est.dy)
                if this.index == 0:
                    pred_dx, pred_dy = _smooth_predictor(pred_dx, pred_dy)
            previous = this
            log.debug("level %d radius %d: %.1f %% valid", this.index, this.radius, 100 * np.isfinite(est.dx).mean())
    assert est is not None
    return est


def _solve_final(est: _Estimate, raw: _Estimate, pred_dx: np.ndarray, pred_dy: np.ndarray, grid: ChipGrid) -> _Estimate:
    """The last pass's point-wise estimate replaced by the regularised solve of its chips'
    measurements (:func:`.field_solve.solve_field`), at the same valid points."""
    assert raw.residual_dx is not None and raw.residual_dy is not None
    assert raw.sigma_x is not None and raw.sigma_y is not None and est.chip is not None
    measured = ChipMeasurement(
        residual_dx=raw.residual_dx,
        residual_dy=raw.residual_dy,
        predictor_dx=pred_dx,
        predictor_dy=pred_dy,
        sigma_x=raw.sigma_x,
        sigma_y=raw.sigma_y,
        chip=np.where(np.isfinite(est.dx), est.chip, 0),
    )
    dx, dy = solve_field(measured, (est.dx, est.dy), grid.spacing_px)
    return replace(est, dx=dx, dy=dy)


def _wide_hypothesis(
    raw: _Estimate, pred_dx: np.ndarray, pred_dy: np.ndarray, params: TrackingParams, limit_px: float
) -> _Estimate | None:
    """The second hypothesis from a wide pass: the prediction, except where the wide pass
    found a supported peak farther than :data:`FAR_PX` from it; None if it found none."""
    with np.errstate(invalid="ignore"):
        far = np.maximum(np.abs(raw.dx - pred_dx), np.abs(raw.dy - pred_dy)) > FAR_PX
    far = _supported(far, raw.dx, raw.dy)
    log.debug("wide pass: %d supported far peaks of %d points", int(far.sum()), far.size)
    if not far.any():
        return None
    hypothesis = _Estimate(
        dx=np.where(far, raw.dx, pred_dx),
        dy=np.where(far, raw.dy, pred_dy),
        # the prediction was accepted by the previous pass; only the far peaks are judged here
        peak=np.where(far, raw.peak, np.float32(1.0)),
        snr=raw.snr,
    )
    return _validate(hypothesis, params, limit_px, False)


def _test_hypothesis(
    raw: _Estimate,
    alt: tuple[np.ndarray, np.ndarray],
    pred: tuple[np.ndarray, np.ndarray],
    level: _Level,
    this: _Pass,
    params: TrackingParams,
    pool: ThreadPoolExecutor,
    bar: tqdm,
    interpolation: int,
    cache: _LevelCache,
) -> _Estimate:
    """``raw`` (this pass, from the prediction ``pred``), replaced by this pass's measurement
    from the second hypothesis ``alt`` (px of this level) where ``alt`` differs from ``pred``
    by more than :data:`HYPOTHESIS_DIFFERENCE_PX`, correlates better, and is supported by its
    neighbours (:func:`_supported`). Only the strips holding such points are measured again."""
    differs = np.hypot(alt[0] - pred[0], alt[1] - pred[1]) > HYPOTHESIS_DIFFERENCE_PX
    if not differs.any():
        return raw
    other = _iterate(
        level, this.grid, alt[0], alt[1], this.radius, params, pool, bar, interpolation, cache, differs.any(axis=1)
    )
    take = differs & (np.nan_to_num(other.peak, nan=-2.0) > np.nan_to_num(raw.peak, nan=-2.0) + HYPOTHESIS_MARGIN)
    take = _supported(take, np.where(take, other.dx, raw.dx), np.where(take, other.dy, raw.dy))
    log.debug("second hypothesis kept at %d of %d points", int(take.sum()), take.size)
    return _Estimate(
        dx=np.where(take, other.dx, raw.dx),
        dy=np.where(take, other.dy, raw.dy),
        peak=np.where(take, other.peak, raw.peak),
        snr=np.where(take, other.snr, raw.snr),
    )


def _adaptive_chips(
    small: Peak,
    large: Peak,
    at: tuple[slice, slice],
    large_usable: np.ndarray,
    sizes: tuple[int, int],
    min_peak: float = -1.0,
    rescue: tuple[Peak, tuple[slice, slice], np.ndarray, int] | None = None,
) -> Peak:
    """Per point, the gradient step of the small chip or of the larger one around it.

    The larger chip (``at``: where it fits) is kept where its standard error is smaller and it
    agrees with the small chip within :data:`CONSISTENCY_SIGMAS` combined standard errors (the
    motion is uniform over it), the small chip correlates at least :data:`CORE_PEAK_SHARE` as
    well, and it passes the peak test ``min_peak`` if the small chip does; and where the small chip's peak is below ``min_peak`` but the larger one's is not,
    if both images show texture over the small chip (:data:`RESCUE_CONTRAST_SHARE`; autoRIFT
    enlarges failing chips the same way). Where the larger chip fails the peak test too, the
    ``rescue`` chip (its Peak, where it fits, where it is usable, its size) is kept under the same
    conditions. Every kept value is the kept chip's own match.
    """
    n_r, n_c = small.dx.shape
    full = {}
    for name in ("dx", "dy", "peak", "sigma_x", "sigma_y"):
        values = np.full((n_r, n_c), np.nan, dtype=np.float64)
        values[at] = np.where(large_usable, getattr(large, name), np.nan)
        full[name] = values
    sx, sy = small.sigma_x, small.sigma_y
    assert sx is not None and sy is not None, "gradient steps give standard errors"
    with np.errstate(invalid="ignore"):
        agree = (np.abs(full["dx"] - small.dx) <= CONSISTENCY_SIGMAS * np.hypot(sx, full["sigma_x"])) & (
            np.abs(full["dy"] - small.dy) <= CONSISTENCY_SIGMAS * np.hypot(sy, full["sigma_y"])
        )
        take = agree & (np.hypot(full["sigma_x"], full["sigma_y"]) < np.hypot(sx, sy))
        # The point's own chip must correlate at least CORE_PEAK_SHARE as well as the larger one:
        # otherwise the larger chip's match comes from its outer ring (around a cloud, a lake),
        # not from the point.
        take &= small.peak >= CORE_PEAK_SHARE * full["peak"]
        # Nor where it fails the peak test and the small chip passes it: the point would be lost.
        take &= (full["peak"] >= min_peak) | ~(small.peak >= min_peak)
        if small.contrast is not None:
            with np.errstate(divide="ignore"):
                alike = np.minimum(small.contrast, 1.0 / small.contrast) >= RESCUE_CONTRAST_SHARE
            failed = ~(small.peak >= min_peak) & alike
            take |= failed & (full["peak"] >= min_peak) & np.isfinite(full["dx"])
    chip = np.where(take, sizes[1], sizes[0]).astype(np.int16)
    out = Peak(
        dx=np.where(take, full["dx"], small.dx),
        dy=np.where(take, full["dy"], small.dy),
        peak=np.where(take, full["peak"], small.peak).astype(np.float32),
        snr=small.snr,
        chip=chip,
        sigma_x=np.where(take, full["sigma_x"], sx),
        sigma_y=np.where(take, full["sigma_y"], sy),
    )
    if rescue is None or small.contrast is None:
        return out
    third, third_at, third_usable, third_size = rescue
    rescued: dict[str, np.ndarray] = {}
    for name in ("dx", "dy", "peak", "sigma_x", "sigma_y"):
        v = np.full((n_r, n_c), np.nan, dtype=np.float64)
        v[third_at] = np.where(third_usable, getattr(third, name), np.nan)
        rescued[name] = v
    with np.errstate(invalid="ignore"):
        last = failed & ~take & (rescued["peak"] >= min_peak) & np.isfinite(rescued["dx"])
    return Peak(
        dx=np.where(last, rescued["dx"], out.dx),
        dy=np.where(last, rescued["dy"], out.dy),
        peak=np.where(last, rescued["peak"], out.peak).astype(np.float32),
        snr=small.snr,
        chip=np.where(last, third_size, chip).astype(np.int16),
        sigma_x=np.where(last, rescued["sigma_x"], full["sigma_x"] if out.sigma_x is None else out.sigma_x),
        sigma_y=np.where(last, rescued["sigma_y"], full["sigma_y"] if out.sigma_y is None else out.sigma_y),
    )
