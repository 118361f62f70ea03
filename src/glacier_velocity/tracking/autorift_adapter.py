"""Run NASA JPL's autoRIFT on the same inputs and grid as our engine, for comparison.

autoRIFT (https://github.com/nasa-jpl/autoRIFT, Lei et al. 2021) is the feature tracker behind
ITS_LIVE and hyp3-autorift. It is not on PyPI and is never a dependency of this package:
install it from conda-forge (``mamba install -c conda-forge autorift``) into the same
environment to use ``engine="autorift"``. It is imported only when this engine is called.

The adapter reproduces the optical settings of ITS_LIVE's ``testautoRIFT.py`` for Sentinel-2:
high-pass pre-filter, 8-bit rescaling, nested chip sizes from ``chip_px`` to ``4 * chip_px``,
ChipSize-dependent oversampling ``{1x: 16, 2x: 32, 4x: 64, 8x: 64}``, a constant search range
and no a-priori offsets (no Geogrid). Differences from the native tool are listed in
:func:`track_autorift`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
from typing import Any

import cv2
import numpy as np

from ..domain.offsets import OffsetField
from ..errors import EngineUnavailable, InvalidParameter, TrackingFailed
from .grid import chip_fraction, make_grid
from .params import TrackingParams

log = logging.getLogger(__name__)

ENGINE_NAME = "autorift"

#: Largest chip autoRIFT may fall back to, as a multiple of the smallest one (ITS_LIVE
#: Sentinel-2: 240 m .. 960 m at 10 m, i.e. 24 .. 96 px). Smaller grids get less (see
#: :func:`_max_chip_factor`).
MAX_CHIP_FACTOR = 4

#: autoRIFT's coarse search samples every ``SPARSE_SEARCH_RATE * chip/spacing`` grid points
#: (its ``sparseSearchSampleRate`` default).
SPARSE_SEARCH_RATE = 4

#: Oversampling of the correlation surface per chip-size multiple (``testautoRIFT.py``, optical).
OVERSAMPLE_BY_FACTOR = {1: 16, 2: 32, 4: 64, 8: 64}

INSTALL_HINT = (
    "autoRIFT is not installed in this Python environment; install it from conda-forge "
    "(`mamba install -c conda-forge autorift`, it is not on PyPI) or use --engine ncc"
)


def _load_autorift() -> tuple[type, str]:
    """Import autoRIFT on demand; return its class and version string."""
    try:
        module = importlib.import_module("autoRIFT")
        autorift_cls = module.autoRIFT
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    return autorift_cls, str(getattr(module, "__version__", "unknown"))


def _grid_spacing_for_autorift(chip_px: int, spacing_px: int) -> int:
    """autoRIFT's ``GridSpacingX``: it only accepts a chip that is a whole multiple of it.

    autoRIFT uses ``ChipSize0X / GridSpacingX`` (the chip-to-grid oversampling ratio) to scale
    its coarse-search sampling and filter widths in grid units; the grid itself is given by
    ``xGrid``/``yGrid``. The ratio is rounded down to a divisor of the chip size, e.g. chip 32
    at spacing 12 (ratio 2.67) runs as ratio 2; chip 24 at spacing 12 is exact.
    """
    if spacing_px >= chip_px:
        return spacing_px
    ratio = chip_px // spacing_px
    while chip_px % ratio:
        ratio -= 1
    return chip_px // ratio


def _max_chip_factor(grid_shape: tuple[int, int], chip_px: int, autorift_spacing_px: int) -> int:
    """Largest chip multiple (4, 2 or 1) whose nested grid autoRIFT can still coarse-search.

    At chip multiple ``f`` autoRIFT works on a grid ``f`` times coarser and samples every
    ``4 * chip/spacing``-th point of it for its coarse search. With a single sample per side
    it aborts (``SearchLimit must be float``), so each level needs two. (With fewer samples
    than its consistency-filter width, 5 or 9, a level finds nothing and autoRIFT skips it,
    as it does natively.) At chip 32 px and spacing 12 px, grids of 64+ points per side
    (~800 px) get the full factor 4.
    """
    step = SPARSE_SEARCH_RATE * max(chip_px // autorift_spacing_px, 1)
    for factor in (MAX_CHIP_FACTOR, 2, 1):
        if min(grid_shape) // factor >= 2 * step:
            return factor
    raise TrackingFailed(
        f"a {grid_shape[0]} x {grid_shape[1]} point grid is too small for autoRIFT's coarse search "
        f"(it needs at least {2 * step} points per side); use a larger area or a smaller grid spacing"
    )


def track_autorift(
    reference: np.ndarray,
    secondary: np.ndarray,
    params: TrackingParams,
    *,
    reference_mask: np.ndarray | None = None,
    secondary_mask: np.ndarray | None = None,
    progress: bool | None = None,
) -> OffsetField:
    """Measure offsets with autoRIFT, on the same grid and in the same conventions as ``ncc``.

    Parameters
    ----------
    reference, secondary : ndarray, shape (rows, cols)
        Co-registered single-band images (e.g. uint16 Sentinel-2 B08); DN 0 is nodata.
    params : TrackingParams
        ``chip_px`` is autoRIFT's smallest chip (``ChipSizeMinX``, a multiple of 4 px); it may
        enlarge chips up to ``4 * chip_px`` where the small chip fails. ``grid_spacing_px``
        (px) spaces the grid, ``search_px`` (px, rounded up) is the search half-width in both
        directions, ``filter_width_px`` (px) the high-pass window. ``max_nodata_fraction``
        skips chips with more nodata than that. ``filter`` "wallis" or "hps" both run
        autoRIFT's high-pass filter (what ITS_LIVE uses for Sentinel-2; autoRIFT's own Wallis
        filter is meant for Landsat 7 scan gaps); "none" skips filtering; "oc" is not offered.
    reference_mask, secondary_mask : ndarray of bool, shape (rows, cols), optional
        True where a pixel must not be used; such pixels are set to DN 0 (nodata).
    progress : bool, optional
        Ignored: autoRIFT runs its search in one C++ call without progress hooks.

    Returns
    -------
    OffsetField
        ``dx`` (+ towards increasing column) and ``dy`` (+ towards increasing row) in px, the
        displacement of the reference chip to where it lies in the secondary; NaN where
        autoRIFT returned nothing. The grid is :func:`glacier_velocity.tracking.grid.make_grid`
        (the one ``ncc`` uses): grid point ``(i, j)`` is the centre of the chip whose pixels
        are exactly those of the ``ncc`` chip. ``peak`` and ``snr`` are NaN: autoRIFT does not
        expose its correlation values. ``params`` records the autoRIFT settings used.

    Raises
    ------
    EngineUnavailable
        If autoRIFT cannot be imported.
    InvalidParameter
        If ``chip_px`` is not a multiple of 4 or ``filter`` is "oc".
    TrackingFailed
        If the images are smaller than one chip or autoRIFT aborts.

    Notes
    -----
    autoRIFT's chip for a grid value ``X`` (0-based) covers pixels ``X + 1 - chip/2 ..
    X + chip/2`` (its ``+0.5`` shifts in ``runAutorift`` and ``arImgDisp``), so the adapter
    passes ``X = chip_start + chip/2 - 1``; the chip centre is then ``X + 0.5``, the grid's
    ``cols[j]``. autoRIFT reports ``Dy`` positive *up*; it is negated here.

    Differences from the native tool: nested chips need a grid whose sides are multiples of
    ``4`` points, so autoRIFT drops up to 3 trailing rows/columns of the grid (as
    ``testautoRIFT.py`` does); they are NaN here. A constant search range replaces Geogrid's
    per-point one, and the a-priori offsets ``Dx0``/``Dy0`` are zero.

    References
    ----------
    Lei, Y., Gardner, A. and Agram, P. (2021). Autonomous Repeat Image Feature Tracking
    (autoRIFT) and its application for tracking ice displacement. Remote Sensing 13(4), 749.
    https://doi.org/10.3390/rs13040749
    """
    if params.chip_px % 4:
        raise InvalidParameter(
            "chip_size", f"autoRIFT needs a chip size that is a multiple of 4 px, got {params.chip_px}"
        )
    if params.filter == "oc":
        raise InvalidParameter("filter", "autoRIFT has no orientation-correlation filter; use hps, wallis or none")
    autorift_cls, version = _load_autorift()
    reference = np.asarray(reference)
    secondary = np.asarray(secondary)

    grid = make_grid(reference.shape, params.chip_px, params.grid_spacing_px)
    invalid = (reference == 0) | (secondary == 0)
    if reference_mask is not None:
        invalid |= np.asarray(reference_mask, dtype=bool)
    if secondary_mask is not None:
        invalid |= np.asarray(secondary_mask, dtype=bool)

    # Grid points whose centre pixel is nodata are skipped (testautoRIFT.py's noDataMask),
    # and so are chips with more nodata than our engine accepts.
    centre_rows = grid.row_starts + params.chip_px // 2 - 1
    centre_cols = grid.col_starts + params.chip_px // 2 - 1
    skip = invalid[np.ix_(centre_rows, centre_cols)] | (
        chip_fraction(invalid, grid.row_starts, grid.col_starts, grid.chip_px) > params.max_nodata_fraction
    )
    if skip.all():
        raise TrackingFailed("every grid point lies in nodata (DN 0 or masked); nothing to track")

    chip0 = params.chip_px
    search = int(math.ceil(params.search_px))
    autorift_spacing = _grid_spacing_for_autorift(chip0, params.grid_spacing_px)
    chip_factor = _max_chip_factor(grid.shape, chip0, autorift_spacing)
    obj = autorift_cls()
    obj.I1 = np.where(invalid, 0, reference).astype(np.float32)
    obj.I2 = np.where(invalid, 0, secondary).astype(np.float32)
    x_grid, y_grid = np.meshgrid(centre_cols.astype(np.float32), centre_rows.astype(np.float32))
    obj.xGrid = x_grid
    obj.yGrid = y_grid
    obj.Dx0 = np.zeros(grid.shape, np.float32)
    obj.Dy0 = np.zeros(grid.shape, np.float32)
    obj.SearchLimitX = np.where(skip, 0, search).astype(np.float32)
    obj.SearchLimitY = obj.SearchLimitX.copy()
    obj.ChipSize0X = chip0
    obj.ChipSizeMinX = chip0
    obj.ChipSizeMaxX = chip0 * chip_factor
    obj.GridSpacingX = autorift_spacing
    obj.WallisFilterWidth = params.filter_width_px
    obj.OverSampleRatio = {chip0 * f: ratio for f, ratio in OVERSAMPLE_BY_FACTOR.items()}
    preprocess = "none" if params.filter == "none" else "hps"

    # autoRIFT prints progress to stdout and calls sys.exit() on bad input; keep both in the
    # library's logging and error types. Its filters divide by zero search limits (skipped
    # points) on purpose, so those numpy warnings are noise.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), np.errstate(divide="ignore", invalid="ignore"):
            if preprocess == "hps":
                obj.preprocess_filt_hps()
            obj.DataType = 0
            obj.zeroMask = None
            obj.uniform_data_type()
            obj.runAutorift()
    except SystemExit as exc:
        raise TrackingFailed(f"autoRIFT aborted: {exc}") from exc
    finally:
        if captured.getvalue():
            log.debug("autoRIFT output:\n%s", captured.getvalue().rstrip())

    dx = np.full(grid.shape, np.nan, np.float32)
    dy = np.full(grid.shape, np.nan, np.float32)
    n_r, n_c = obj.Dx.shape
    dx[:n_r, :n_c] = obj.Dx
    dy[:n_r, :n_c] = -obj.Dy
    # testautoRIFT.py's post-processing: nothing where no search was made, and the nodata
    # mask grown by one grid point.
    no_search = cv2.dilate(skip.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    no_search |= np.pad(
        obj.SearchLimitX == 0, ((0, grid.shape[0] - n_r), (0, grid.shape[1] - n_c)), constant_values=True
    )
    dx[no_search] = np.nan
    dy[no_search] = np.nan
    bad = ~(np.isfinite(dx) & np.isfinite(dy))
    dx[bad] = np.nan
    dy[bad] = np.nan

    settings: dict[str, Any] = {
        **params.as_dict(),
        "autorift_version": version,
        "autorift_preprocess": preprocess,
        "autorift_chip_sizes_px": [chip0, chip0 * chip_factor],
        "autorift_grid_spacing_x": obj.GridSpacingX,
        "autorift_search_limit_px": search,
        "autorift_oversample": {str(k): v for k, v in obj.OverSampleRatio.items()},
    }
    log.info(
        "autoRIFT %s: %d x %d grid points, %.1f %% valid",
        version,
        grid.shape[0],
        grid.shape[1],
        100.0 * float((~bad).mean()),
    )
    nan = np.full(grid.shape, np.nan, np.float32)
    return OffsetField(
        rows=grid.rows,
        cols=grid.cols,
        dx=dx,
        dy=dy,
        peak=nan,
        snr=nan.copy(),
        engine=ENGINE_NAME,
        params=settings,
    )
