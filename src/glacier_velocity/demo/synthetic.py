"""Synthetic Sentinel-2-like image pairs with a known displacement field.

Tests and benchmarks of the tracking engines need pairs whose true motion is known at every
point. This module builds them in three steps:

1. :func:`make_texture` draws a band-limited, multi-scale texture in Sentinel-2 B08 digital
   numbers: dark rough rock, bright smooth ice with crevasse-like streaks.
2. A :class:`FlowField` says how far each reference feature moves (px): a uniform
   :class:`Translation`, a :class:`GlacierTongue` (plug flow, shear margins, stable ground),
   a linear :class:`RotationShear` or a :class:`UniformStrain`.
3. :func:`warp_image` renders the image "after the motion" with sub-pixel interpolation, and
   :func:`make_pair` adds an illumination change, sensor noise, nodata holes and a cloud.

Coordinates are reference-image pixel centres ``(row, col)``: ``(0.0, 0.0)`` is the centre of
the top-left pixel. A displacement ``(dx, dy)`` moves the feature at ``(row, col)`` of the
reference to ``(row + dy, col + dx)`` in the secondary: ``dx`` along columns (+ east for a
north-up image), ``dy`` along rows (+ south). This is the sign convention of
:class:`~glacier_velocity.tracking.OffsetField`, so ``pair.truth(field.rows[:, None],
field.cols[None, :])`` is directly comparable with a tracking result.

Large images are processed in row strips, on two threads: a 10980 x 10980 pair (a full
Sentinel-2 tile) peaks at about 1.5 GB.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np
import scipy.fft
import scipy.sparse
from numpy.typing import ArrayLike
from scipy import ndimage
from scipy.special import ndtri

from ..errors import InvalidParameter

__all__ = [
    "CLOUD_EDGE_PX",
    "INTERPOLATIONS",
    "FlowField",
    "GlacierTongue",
    "Interpolation",
    "Misregistered",
    "RotationShear",
    "SyntheticPair",
    "Translation",
    "UniformStrain",
    "make_pair",
    "make_texture",
    "source_positions",
    "warp_image",
]

log = logging.getLogger(__name__)

#: Rows processed at once; fixed so that results never depend on how the work is split.
STRIP_ROWS = 128

#: Threads working on strips in parallel (the results do not depend on it).
WORKERS = min(2, os.cpu_count() or 1)

#: Interpolation used by :func:`warp_image`: ``"cubic"`` is a cubic B-spline evaluated at the
#: exact sub-pixel position (scipy); ``"cv2-cubic"`` is OpenCV's bicubic remap, about 10x
#: faster but with positions rounded to 1/32 px and a softer kernel; ``"linear"`` is bilinear.
Interpolation = Literal["cubic", "cv2-cubic", "linear"]
INTERPOLATIONS: tuple[str, ...] = ("cubic", "cv2-cubic", "linear")

_FIXED_POINT_TOL_PX = 1e-5
_FIXED_POINT_MAX_ITER = 100


def _as_float_arrays(rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.broadcast_arrays(np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64))
    return r, c


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """C1 ramp: 0 for t <= 0, 1 for t >= 1, ``3t^2 - 2t^3`` between (zero slope at both ends)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _check_finite(name: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)):
        raise InvalidParameter(name, f"must be a finite number, got {value!r}")


def _check_shape(shape: Sequence[Any]) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidParameter("shape", f"must be (rows, cols), got {shape!r}") from None
    if rows < 8 or cols < 8:
        raise InvalidParameter("shape", f"must be at least (8, 8) px, got {shape!r}")
    return rows, cols


# --------------------------------------------------------------------------------------------
# Flow fields
# --------------------------------------------------------------------------------------------


class FlowField(ABC):
    """A known displacement field in reference pixel coordinates.

    Concrete fields are frozen dataclasses, so they can be compared, hashed and stored as
    the truth of a :class:`SyntheticPair`.
    """

    @abstractmethod
    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Displacement of the reference feature centred at ``(rows, cols)``.

        Parameters
        ----------
        rows, cols : array_like of float
            Reference pixel-centre coordinates (px); broadcast against each other.

        Returns
        -------
        dx, dy : ndarray of float64
            Displacement (px): ``dx`` along columns (+ towards increasing column, east),
            ``dy`` along rows (+ towards increasing row, south). The feature at
            ``(row, col)`` appears at ``(row + dy, col + dx)`` in the secondary.
        """

    def is_moving(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        """True on moving ice, False on stable ground (displacement exactly zero).

        Parameters
        ----------
        rows, cols : array_like of float
            Reference pixel-centre coordinates (px); broadcast against each other.

        Returns
        -------
        ndarray of bool
        """
        dx, dy = self.displacement(rows, cols)
        return (dx != 0.0) | (dy != 0.0)

    @abstractmethod
    def scaled(self, factor: float) -> FlowField:
        """The same pattern with every displacement multiplied by ``factor``.

        Multiplying a velocity pattern by a time span gives the displacement of a pair with
        that baseline, e.g. ``field.scaled(dt_days / 10.0)`` for a field defined per 10 days.
        """


@dataclass(frozen=True)
class Translation(FlowField):
    """Uniform motion of the whole image.

    Attributes
    ----------
    dx, dy : float
        Displacement (px) along columns (+ east) and rows (+ south).
    """

    dx: float
    dy: float

    def __post_init__(self) -> None:
        _check_finite("dx", self.dx)
        _check_finite("dy", self.dy)

    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r, _ = _as_float_arrays(rows, cols)
        return np.full(r.shape, float(self.dx)), np.full(r.shape, float(self.dy))

    def scaled(self, factor: float) -> Translation:
        _check_finite("factor", factor)
        return Translation(self.dx * factor, self.dy * factor)


@dataclass(frozen=True)
class Misregistered(FlowField):
    """A flow field seen through the secondary's geolocation error.

    Every feature, moving or not, appears displaced by ``(dx, dy)`` more, the way an
    inter-orbit misregistration of Sentinel-2 shows up in feature tracking.

    Attributes
    ----------
    base : FlowField
        The true surface motion (px).
    dx, dy : float
        Misregistration (px) along columns (+ east) and rows (+ south).
    """

    base: FlowField
    dx: float
    dy: float

    def __post_init__(self) -> None:
        _check_finite("dx", self.dx)
        _check_finite("dy", self.dy)

    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = self.base.displacement(rows, cols)
        return dx + float(self.dx), dy + float(self.dy)

    def is_moving(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        return self.base.is_moving(rows, cols)

    def scaled(self, factor: float) -> Misregistered:
        _check_finite("factor", factor)
        return Misregistered(self.base.scaled(factor), self.dx * factor, self.dy * factor)


@dataclass(frozen=True)
class RotationShear(FlowField):
    """Linear field: a small rotation plus a simple shear about ``center``.

    With ``r = row - center[0]`` and ``c = col - center[1]``::

        dx = (rotation_rad_per_px + shear) * r
        dy = -rotation_rad_per_px * c

    A positive rotation turns the image counter-clockwise as displayed north-up (the
    linearised rotation by that angle in radians, i.e. px of displacement per px of
    distance). The shear displaces columns in proportion to the row offset.

    Attributes
    ----------
    center : (float, float)
        ``(row, col)`` of the point that does not move (px).
    rotation_rad_per_px : float
        Rotation angle (rad) = displacement gradient of the rotation part (px/px).
    shear : float
        Simple shear ``d(dx)/d(row)`` (px/px).
    """

    center: tuple[float, float]
    rotation_rad_per_px: float = 0.005
    shear: float = 0.0

    def __post_init__(self) -> None:
        _check_finite("rotation_rad_per_px", self.rotation_rad_per_px)
        _check_finite("shear", self.shear)
        if len(self.center) != 2:
            raise InvalidParameter("center", f"must be (row, col), got {self.center!r}")

    def jacobian(self) -> np.ndarray:
        """Displacement gradient ``[[ddx/dcol, ddx/drow], [ddy/dcol, ddy/drow]]`` (px/px)."""
        w, g = float(self.rotation_rad_per_px), float(self.shear)
        return np.array([[0.0, w + g], [-w, 0.0]])

    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r, c = _as_float_arrays(rows, cols)
        r = r - float(self.center[0])
        c = c - float(self.center[1])
        w, g = float(self.rotation_rad_per_px), float(self.shear)
        return (w + g) * r, -w * c

    def scaled(self, factor: float) -> RotationShear:
        _check_finite("factor", factor)
        return replace(self, rotation_rad_per_px=self.rotation_rad_per_px * factor, shear=self.shear * factor)


@dataclass(frozen=True)
class UniformStrain(FlowField):
    """Pure linear extension along one axis: displacement grows by ``strain`` px per px.

    The line through ``center`` perpendicular to the axis does not move; a point at distance
    ``s`` (px, signed, along the axis) from it moves by ``strain * s`` along the axis. With
    ``strain=0.04`` that is 4 % strain: a 32 px chip is stretched by 1.3 px.

    Attributes
    ----------
    strain : float
        Displacement gradient along the axis (px/px). Warping needs ``|strain|`` well
        below 1.
    center : (float, float)
        ``(row, col)`` of a point on the line that does not move (px).
    axis : "col", "row" or float
        Direction of extension: along columns (``dx = strain * (col - center_col)``), along
        rows, or an angle in degrees from the +col axis towards the +row axis.
    """

    strain: float = 0.04
    center: tuple[float, float] = (0.0, 0.0)
    axis: Literal["col", "row"] | float = "col"

    def __post_init__(self) -> None:
        _check_finite("strain", self.strain)
        if len(self.center) != 2:
            raise InvalidParameter("center", f"must be (row, col), got {self.center!r}")
        _ = self.axis_rad  # raises on a bad axis

    @property
    def axis_rad(self) -> float:
        """Direction of extension (rad) from +col towards +row."""
        if self.axis == "col":
            return 0.0
        if self.axis == "row":
            return math.pi / 2
        if isinstance(self.axis, (int, float)) and not isinstance(self.axis, bool) and math.isfinite(self.axis):
            return math.radians(self.axis)
        raise InvalidParameter("axis", f'must be "col", "row" or an angle in degrees, got {self.axis!r}')

    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r, c = _as_float_arrays(rows, cols)
        a = self.axis_rad
        # Exact 0/1 components for the named axes keep the other component exactly zero.
        ex, ey = (1.0, 0.0) if self.axis == "col" else (0.0, 1.0) if self.axis == "row" else (math.cos(a), math.sin(a))
        s = (c - float(self.center[1])) * ex + (r - float(self.center[0])) * ey
        d = float(self.strain) * s
        return d * ex, d * ey

    def scaled(self, factor: float) -> UniformStrain:
        _check_finite("factor", factor)
        return replace(self, strain=self.strain * factor)


@dataclass(frozen=True)
class _TongueGeometry:
    """Numbers derived once from a GlacierTongue's parameters (px, in the flow frame)."""

    ca: float
    sa: float
    row_c: float
    col_c: float
    k: float  # centreline v = k u^2
    u_entry: float  # most upstream point of the ice inside the image
    u_zone: float  # start of the terminal zone
    u_term: float  # terminus
    decay: float  # exponential slow-down rate (1/px)


@dataclass(frozen=True)
class GlacierTongue(FlowField):
    """A valley-glacier tongue crossing the image, surrounded by stable ground.

    The glacier follows a (possibly bent) centreline that enters the image at its upstream
    side and ends at a terminus inside the image. Its speed is the product of

    - an across-flow profile: plug flow (constant) in the centre and shear margins where the
      speed falls to zero with a C1 ramp (``3t^2 - 2t^3``) over ``margin_px``;
    - an along-flow profile: ``max_px`` where the ice enters the image, slowing
      exponentially to ``terminal_speed_frac * max_px`` where the terminal zone starts, then
      to zero at the terminus with the same C1 ramp.

    Motion is along the centreline's tangent. Outside the tongue (and beyond the terminus)
    the displacement is exactly 0. The field is C1 everywhere, with gradients up to about
    ``1.5 * max_px / margin_px`` (px/px) in the margins.

    Attributes
    ----------
    shape : (int, int)
        Image shape ``(rows, cols)`` the tongue is laid out in (px).
    max_px : float
        Plug-flow displacement where the ice enters the image (px): the largest
        displacement in the image.
    flow_angle_deg : float
        Mean flow direction, degrees from +col (east) towards +row (south).
    half_width_frac : float
        Half-width of the ice (centre to outer edge of the margin), fraction of the shorter
        image side.
    margin_frac : float
        Width of each shear margin, fraction of the half-width (0..1].
    bend_frac : float
        Curvature: lateral offset of the centreline at the image ends relative to its middle,
        fraction of the shorter image side (0 = straight).
    terminus_frac : float
        Position of the terminus along the flow, fraction of the image extent along it
        (0 = upstream image corner, 1 = downstream corner).
    terminal_zone_frac : float
        Length of the zone in which the speed falls to zero, fraction of that extent.
    terminal_speed_frac : float
        Speed where the terminal zone starts, as a fraction of ``max_px`` (0..1].

    Examples
    --------
    >>> tongue = GlacierTongue((512, 512), max_px=5.0)
    >>> round(tongue.margin_px, 1), bool(tongue.is_moving(0.0, 0.0))
    (45.1, False)
    """

    shape: tuple[int, int]
    max_px: float = 4.0
    flow_angle_deg: float = 20.0
    half_width_frac: float = 0.22
    margin_frac: float = 0.4
    bend_frac: float = 0.06
    terminus_frac: float = 0.85
    terminal_zone_frac: float = 0.3
    terminal_speed_frac: float = 0.6
    # Derived from the fields above in __post_init__ (a frozen dataclass caches it with object.__setattr__).
    _geometry: _TongueGeometry = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _check_shape(self.shape))
        for name in (
            "max_px",
            "flow_angle_deg",
            "half_width_frac",
            "margin_frac",
            "bend_frac",
            "terminus_frac",
            "terminal_zone_frac",
            "terminal_speed_frac",
        ):
            _check_finite(name, getattr(self, name))
        if not 0.0 < self.half_width_frac <= 1.0:
            raise InvalidParameter("half_width_frac", f"must be in (0, 1], got {self.half_width_frac}")
        if not 0.0 < self.margin_frac <= 1.0:
            raise InvalidParameter("margin_frac", f"must be in (0, 1], got {self.margin_frac}")
        if not 0.0 < self.terminal_speed_frac <= 1.0:
            raise InvalidParameter("terminal_speed_frac", f"must be in (0, 1], got {self.terminal_speed_frac}")
        if not 0.0 < self.terminal_zone_frac < self.terminus_frac <= 1.5:
            raise InvalidParameter(
                "terminal_zone_frac",
                f"need 0 < terminal_zone_frac < terminus_frac <= 1.5, got {self.terminal_zone_frac} "
                f"and {self.terminus_frac}",
            )
        object.__setattr__(self, "_geometry", self._make_geometry())

    def _make_geometry(self) -> _TongueGeometry:
        n_rows, n_cols = self.shape
        a = math.radians(self.flow_angle_deg)
        ca, sa = math.cos(a), math.sin(a)
        row_c, col_c = (n_rows - 1) / 2.0, (n_cols - 1) / 2.0
        half_extent = abs(col_c * ca) + abs(row_c * sa) + 0.5
        k = self.bend_frac * min(self.shape) / half_extent**2

        # The ice enters the image where its footprint first meets the image border: the
        # smallest along-flow coordinate of the border inside the glacier's width.
        step = 0.25
        r_edge = np.arange(-0.5, n_rows - 0.5 + step, step)
        c_edge = np.arange(-0.5, n_cols - 0.5 + step, step)
        border_r = np.concatenate([r_edge, r_edge, np.full(c_edge.size, -0.5), np.full(c_edge.size, n_rows - 0.5)])
        border_c = np.concatenate([np.full(r_edge.size, -0.5), np.full(r_edge.size, n_cols - 0.5), c_edge, c_edge])
        x, y = border_c - col_c, border_r - row_c
        u = x * ca + y * sa
        n = -x * sa + y * ca - k * u * u
        on_ice = np.abs(n) < self.half_width_px
        if not on_ice.any():
            raise InvalidParameter(
                "bend_frac",
                "the glacier does not cross the image border; use a smaller |bend_frac| or a wider glacier",
            )
        u_entry = float(u[on_ice].min())
        u_term = -half_extent + self.terminus_frac * 2.0 * half_extent
        u_zone = u_term - self.terminal_zone_frac * 2.0 * half_extent
        if u_zone <= u_entry:
            raise InvalidParameter(
                "terminal_zone_frac",
                "the terminal zone starts upstream of where the glacier enters the image; use a "
                "larger terminus_frac or a smaller terminal_zone_frac",
            )
        decay = -math.log(self.terminal_speed_frac) / (u_zone - u_entry)
        return _TongueGeometry(ca, sa, row_c, col_c, k, u_entry, u_zone, u_term, decay)

    def outline_px(self, step_px: float = 1.0) -> np.ndarray:
        """The glacier's outline: the polygon outside which the displacement is exactly 0.

        The ice is where the across-flow offset from the centreline is below
        ``half_width_px`` and the along-flow coordinate is upstream of the terminus. Its sides
        are sampled every ``step_px`` along the flow; the polygon is not clipped to the image.

        Returns
        -------
        ndarray, shape (n, 2)
            Closed ring of ``(col, row)`` pixel-centre coordinates (px).
        """
        g: _TongueGeometry = self._geometry
        # Start upstream of the image (the ice enters across its border).
        u_start = -2.0 * max(self.shape) - self.half_width_px
        u = np.append(np.arange(u_start, g.u_term, step_px), g.u_term)
        sides = []
        for n in (self.half_width_px, -self.half_width_px):
            v = n + g.k * u * u
            x = u * g.ca - v * g.sa
            y = u * g.sa + v * g.ca
            sides.append(np.column_stack([x + g.col_c, y + g.row_c]))
        ring = np.vstack([sides[0], sides[1][::-1], sides[0][:1]])
        return ring

    @property
    def half_width_px(self) -> float:
        """Half-width of the ice from the centreline to the outer edge of a margin (px)."""
        return self.half_width_frac * min(self.shape)

    @property
    def margin_px(self) -> float:
        """Width of each shear margin (px)."""
        return self.margin_frac * self.half_width_px

    def _flow_coordinates(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g: _TongueGeometry = self._geometry
        # No explicit broadcasting: a (rows, 1) x (1, cols) grid costs one full-size product.
        x = np.asarray(cols, dtype=np.float64) - g.col_c
        y = np.asarray(rows, dtype=np.float64) - g.row_c
        u = x * g.ca + y * g.sa
        v = y * g.ca - x * g.sa
        u, v = np.broadcast_arrays(u, v)
        n = v - g.k * u * u  # across-flow offset from the centreline
        slope = (2.0 * g.k) * u  # dv/du of the centreline: its tangent
        return u, n, slope

    def _shape_factor(self, u: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Speed relative to max_px (0..1): margins times the along-flow profile."""
        g: _TongueGeometry = self._geometry
        across = _smoothstep((self.half_width_px - np.abs(n)) / self.margin_px)
        along = np.exp(-g.decay * (u - g.u_entry)) * _smoothstep((g.u_term - u) / (g.u_term - g.u_zone))
        return across * along

    def _on_ice(self, u: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Cheap test for where the speed can be non-zero (inside the outline)."""
        return (np.abs(n) < self.half_width_px) & (u < self._geometry.u_term)

    def displacement(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        g: _TongueGeometry = self._geometry
        u, n, slope = self._flow_coordinates(rows, cols)
        dx = np.zeros(u.shape)
        dy = np.zeros(u.shape)
        # Evaluate the profile only on the ice: most of a big image is stable ground.
        on = self._on_ice(u, n)
        u, n, slope = u[on], n[on], slope[on]
        speed = float(self.max_px) * self._shape_factor(u, n)
        norm = np.sqrt(1.0 + slope * slope)
        # Tangent (1, slope) of the (u, v) frame, rotated back to (col, row).
        dx[on] = speed * (g.ca - slope * g.sa) / norm
        dy[on] = speed * (g.sa + slope * g.ca) / norm
        return dx, dy

    def ice_mask(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        """True inside the glacier outline, whatever ``max_px`` is (even 0).

        Parameters
        ----------
        rows, cols : array_like of float
            Reference pixel-centre coordinates (px); broadcast against each other.

        Returns
        -------
        ndarray of bool
        """
        u, n, _ = self._flow_coordinates(rows, cols)
        return self._on_ice(u, n)  # the speed profile is > 0 exactly there

    def debris_mask(self, rows: ArrayLike, cols: ArrayLike, fraction: float) -> np.ndarray:
        """True on the ice of the lowest ``fraction`` (0..1) of the terminal zone, by the terminus.

        Where a real tongue is often under debris: it still moves (slowly, down to zero at the
        terminus) but looks like the rock around it.

        Parameters
        ----------
        rows, cols : array_like of float
            Reference pixel-centre coordinates (px); broadcast against each other.
        fraction : float
            Share of the terminal zone's length, from the terminus upwards (0..1).

        Returns
        -------
        ndarray of bool
        """
        if not 0.0 <= fraction <= 1.0:
            raise InvalidParameter("fraction", f"must be between 0 and 1, got {fraction!r}")
        g: _TongueGeometry = self._geometry
        u, n, _ = self._flow_coordinates(rows, cols)
        return self._on_ice(u, n) & (u >= g.u_term - fraction * (g.u_term - g.u_zone))

    def is_moving(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        if self.max_px == 0:
            r, _ = _as_float_arrays(rows, cols)
            return np.zeros(r.shape, dtype=bool)
        return self.ice_mask(rows, cols)

    def scaled(self, factor: float) -> GlacierTongue:
        _check_finite("factor", factor)
        return replace(self, max_px=self.max_px * factor)


# --------------------------------------------------------------------------------------------
# Warping
# --------------------------------------------------------------------------------------------


def source_positions(
    field: FlowField, rows: ArrayLike, cols: ArrayLike, *, tol_px: float = _FIXED_POINT_TOL_PX
) -> tuple[np.ndarray, np.ndarray]:
    """Reference positions ``p`` whose features land on the given secondary positions ``q``.

    Solves ``p + d(p) = q`` with the fixed-point iteration ``p <- q - d(p)``, which converges
    when the displacement gradient is below 1 px/px, fast when it is small (a few tenths at
    most for realistic fields). Points stop iterating once they move less than ``tol_px``.

    Parameters
    ----------
    field : FlowField
        The displacement field (px).
    rows, cols : array_like of float
        Secondary pixel-centre coordinates ``q`` (px); broadcast against each other.
    tol_px : float
        Convergence tolerance (px); the residual ``|p + d(p) - q|`` ends up below it.

    Returns
    -------
    rows, cols : ndarray of float64
        Reference coordinates ``p`` (px).

    Raises
    ------
    InvalidParameter
        If the iteration does not converge (a field with too steep gradients).
    """
    qr, qc = _as_float_arrays(rows, cols)
    qr, qc = qr.ravel(), qc.ravel()
    dx, dy = field.displacement(qr, qc)
    pr, pc = qr - dy, qc - dx
    # Most pixels (stable ground, uniform motion) converge in one or two steps; iterate only
    # the rest so big images stay fast.
    active = np.flatnonzero((dx != 0.0) | (dy != 0.0))
    for _ in range(_FIXED_POINT_MAX_ITER):
        if active.size == 0:
            break
        dx, dy = field.displacement(pr[active], pc[active])
        nr, nc = qr[active] - dy, qc[active] - dx
        change = np.maximum(np.abs(nr - pr[active]), np.abs(nc - pc[active]))
        pr[active], pc[active] = nr, nc
        active = active[~(change < tol_px)]  # NaN (divergence) stays active
    if active.size:
        raise InvalidParameter(
            "field",
            f"inverting the warp did not converge for {active.size} px; displacement gradients "
            "must stay well below 1 px/px",
        )
    shape = np.broadcast_shapes(np.shape(rows), np.shape(cols))
    return pr.reshape(shape), pc.reshape(shape)


def _strips(n_rows: int) -> Iterator[tuple[int, int]]:
    for r0 in range(0, n_rows, STRIP_ROWS):
        yield r0, min(n_rows, r0 + STRIP_ROWS)


def _for_each_strip(n_rows: int, work: Callable[[int, int], None]) -> None:
    """Run ``work(r0, r1)`` for every strip, on up to two threads.

    numpy, scipy.ndimage and OpenCV release the GIL in their loops, so two threads use two
    cores; each strip writes only its own rows, so the result does not depend on the order.
    """
    strips = list(_strips(n_rows))
    if len(strips) == 1 or WORKERS == 1:
        for r0, r1 in strips:
            work(r0, r1)
        return
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(work, r0, r1) for r0, r1 in strips]:
            future.result()


#: B-spline basis at integer positions: a spline's value at a knot is (c[i-1] + 4 c[i] + c[i+1]) / 6.
_KNOT_KERNEL = np.array([1.0, 4.0, 1.0], dtype=np.float32) / 6.0


def _warp_into(
    out: np.ndarray,
    source: np.ndarray,
    field: FlowField,
    *,
    offset_px: int,
    order: str,
    post: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
) -> None:
    """Fill ``out`` (reference coordinates) from ``source`` (reference coords + offset_px).

    ``source`` holds cubic B-spline coefficients when ``order == "cubic"``. ``post`` turns a
    float32 strip into the values stored in ``out`` (gain, noise, quantisation).
    """
    n_rows, n_cols = out.shape
    cols = np.arange(n_cols, dtype=np.float64)

    def work(r0: int, r1: int) -> None:
        rows = np.arange(r0, r1, dtype=np.float64)
        pr, pc = source_positions(field, rows[:, None], cols[None, :])
        pr += offset_px
        pc += offset_px
        # Only the source rows this strip can reach (plus the interpolation support).
        lo = max(0, int(math.floor(pr.min())) - 3)
        hi = min(source.shape[0], int(math.ceil(pr.max())) + 4)
        block = source[lo:hi]
        if order == "cubic":
            # Pixels that did not move sit on the knots, where the spline is a 3x3 filter of
            # its coefficients: interpolate only the moving ones (the slow part).
            moving = (pr != rows[:, None] + offset_px) | (pc != cols[None, :] + offset_px)
            a, b = max(0, r0 + offset_px - 1), min(source.shape[0], r1 + offset_px + 1)
            c, d = max(0, offset_px - 1), min(source.shape[1], offset_px + n_cols + 1)
            # Reflect-101 at the source's edges is scipy's "mirror" mode.
            knots = cv2.sepFilter2D(
                np.ascontiguousarray(source[a:b, c:d]),
                cv2.CV_32F,
                _KNOT_KERNEL,
                _KNOT_KERNEL,
                borderType=cv2.BORDER_REFLECT_101,
            )
            strip = knots[r0 + offset_px - a : r1 + offset_px - a, offset_px - c : offset_px - c + n_cols]
            strip = np.ascontiguousarray(strip)
            strip[moving] = ndimage.map_coordinates(
                block,
                [pr[moving] - lo, pc[moving]],
                order=3,
                prefilter=False,
                mode="mirror",
                output=np.float32,
            )
        else:
            interp = cv2.INTER_CUBIC if order == "cv2-cubic" else cv2.INTER_LINEAR
            strip = cv2.remap(
                np.ascontiguousarray(block, dtype=np.float32),
                pc.astype(np.float32),
                (pr - lo).astype(np.float32),
                interp,
                borderMode=cv2.BORDER_REFLECT_101,
            )
        out[r0:r1] = post(strip, r0, r1) if post is not None else strip

    _for_each_strip(n_rows, work)


def _check_order(order: str) -> None:
    if order not in INTERPOLATIONS:
        raise InvalidParameter("order", f"must be one of {', '.join(INTERPOLATIONS)}, got {order!r}")


def warp_image(image: np.ndarray, field: FlowField, *, order: Interpolation = "cubic") -> np.ndarray:
    """The image as it looks after the motion ``field``.

    The feature at reference ``(r, c)`` appears at ``(r + dy, c + dx)`` of the result. Each
    output pixel ``q`` is sampled from the reference at ``p`` with ``p + d(p) = q`` (see
    :func:`source_positions`), with sub-pixel interpolation. Positions beyond the image
    edge are mirrored, so a border as wide as the largest displacement is not trustworthy;
    :func:`make_pair` avoids this by drawing a larger texture.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Reference image (any real dtype).
    field : FlowField
        Displacement (px) in reference pixel coordinates.
    order : {"cubic", "cv2-cubic", "linear"}
        Interpolation: exact-position cubic B-spline (default, scipy), OpenCV bicubic
        (faster; positions rounded to 1/32 px) or bilinear.

    Returns
    -------
    ndarray of float32, shape (rows, cols)

    Examples
    --------
    >>> img = np.add.outer(np.arange(8.0), np.zeros(8))  # value = row
    >>> float(warp_image(img, Translation(0.0, 1.0))[4, 4])  # content moved one row south
    3.0
    """
    _check_order(order)
    if not isinstance(field, FlowField):
        raise InvalidParameter("field", f"must be a FlowField, got {type(field).__name__}")
    image = np.asarray(image)
    if image.ndim != 2:
        raise InvalidParameter("image", f"must be 2-D (rows, cols), got shape {image.shape}")
    source = image.astype(np.float32)
    if order == "cubic":
        ndimage.spline_filter(source, order=3, output=source, mode="mirror")
    out = np.empty(image.shape, dtype=np.float32)
    _warp_into(out, source, field, offset_px=0, order=order)
    return out


# --------------------------------------------------------------------------------------------
# Texture
# --------------------------------------------------------------------------------------------


def _bspline_weights(coords: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
    """Sparse matrix evaluating a cubic B-spline with ``n`` coefficients at ``coords``.

    ``coords`` are in coefficient index units and must lie within ``[1, n - 3]``.
    """
    i = np.floor(coords).astype(np.int64)
    t = coords - i
    t2, t3 = t * t, t * t * t
    weights = np.stack(
        [(1 - t) ** 3 / 6.0, (3 * t3 - 6 * t2 + 4) / 6.0, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6.0, t3 / 6.0],
        axis=1,
    )
    cols = i[:, None] + np.arange(-1, 3)[None, :]
    rows = np.repeat(np.arange(coords.size), 4)
    return scipy.sparse.csr_matrix((weights.ravel(), (rows, cols.ravel())), shape=(coords.size, n))


class _CoarseLayer:
    """Smooth random field with correlation length ``scale_px``, on reference coordinates.

    A cubic B-spline whose random coefficients sit every ``scale_px`` px over the image plus
    ``border_px`` on every side. B-splines are C2, so the spectrum falls off like sinc^4 and
    the layer adds no energy near the Nyquist frequency (cubic convolution would). Sampling
    on a rows x cols grid is separable: two sparse matrix products.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], scale_px: float, border_px: int):
        self.scale = max(float(scale_px), 1.0)
        self.border = border_px
        n_r = int(math.ceil((shape[0] + 2 * border_px) / self.scale)) + 4
        n_c = int(math.ceil((shape[1] + 2 * border_px) / self.scale)) + 4
        coef = rng.standard_normal((n_r, n_c), dtype=np.float32)
        # Normalise to unit variance of the spline (sum of squared weights, averaged over t).
        self.coef = (coef - coef.mean()) / math.sqrt(0.4793650793650794)
        self._col_weights: dict[tuple, scipy.sparse.csr_matrix] = {}

    def _weights(self, ref: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
        return _bspline_weights((ref + self.border + 0.5) / self.scale + 1.0, n)

    def sample(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Values at the outer product of reference ``rows`` x ``cols`` (1-D, px)."""
        key = (cols.size, float(cols[0]), float(cols[-1]))
        col_weights = self._col_weights.get(key)
        if col_weights is None:  # every strip shares the columns; a race only recomputes
            col_weights = self._col_weights[key] = self._weights(cols, self.coef.shape[1])
        by_rows = self._weights(rows, self.coef.shape[0]) @ self.coef  # (n_rows, n_coef_cols)
        return np.asarray((col_weights @ by_rows.T).T, dtype=np.float32)


class _TileLayer:
    """Periodic tile with a prescribed spectrum, repeated over the image (fine scales).

    ``shape_values``, if given, is applied to the normalised tile (e.g. to turn a field into
    sparse streaks); the result is low-passed again (``sigma_px``) so the nonlinearity does
    not leak energy towards the Nyquist frequency.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        tile_px: int,
        transfer: Callable[[np.ndarray, np.ndarray], np.ndarray],
        shape_values: Callable[[np.ndarray], np.ndarray] | None = None,
        sigma_px: float = 1.0,
    ):
        noise = rng.standard_normal((tile_px, tile_px), dtype=np.float32)
        fy = scipy.fft.fftfreq(tile_px).astype(np.float32)[:, None]
        fx = scipy.fft.rfftfreq(tile_px).astype(np.float32)[None, :]
        tile = scipy.fft.irfft2(scipy.fft.rfft2(noise) * transfer(fx, fy), s=noise.shape)
        tile = (tile - tile.mean()) / max(float(tile.std()), 1e-12)
        if shape_values is not None:
            tile = shape_values(tile)
            tile = scipy.fft.irfft2(scipy.fft.rfft2(tile) * _gaussian_lowpass(sigma_px)(fx, fy), s=noise.shape)
        self.tile = tile.astype(np.float32)
        self.offset = rng.integers(0, tile_px, size=2)

    def sample(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Values at the outer product of integer reference ``rows`` x ``cols`` (1-D, px)."""
        t = self.tile.shape[0]
        ri = (rows.astype(np.int64) + self.offset[0]) % t
        ci = (cols.astype(np.int64) + self.offset[1]) % t
        return self.tile[np.ix_(ri, ci)]


def _gaussian_lowpass(sigma_px: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Transfer function of a Gaussian blur of ``sigma_px`` (frequencies in cycles/px)."""
    k = 2.0 * math.pi**2 * sigma_px**2
    return lambda fx, fy: np.exp(-k * (fx * fx + fy * fy))


def _crevasse_transfer(angle_rad: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Narrow along the flow, long across it: streaks transverse to the flow."""
    ca, sa = math.cos(angle_rad), math.sin(angle_rad)

    def transfer(fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
        fa = fx * ca + fy * sa  # along flow
        fc = -fx * sa + fy * ca  # across flow
        band = np.exp(-0.5 * (fa / 0.09) ** 2) * (1.0 - np.exp(-0.5 * (fa / 0.02) ** 2))
        return band * np.exp(-0.5 * (fc / 0.01) ** 2)

    return transfer


def _streaks(z: np.ndarray) -> np.ndarray:
    """Sparse positive streaks where a unit-variance field exceeds 1 (a smooth ReLU)."""
    t = z - 1.0
    return 0.5 * (t + np.sqrt(t * t + 0.05))


IceMask = np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ice_mask_strip(ice_mask: IceMask, rows: np.ndarray, cols: np.ndarray, r0: int, sigma_px: float) -> np.ndarray:
    """Blurred (soft-edged) forced-ice weight at reference ``rows`` x ``cols``.

    A callable mask is evaluated with a halo all around, so the result does not depend on how
    the image is split into strips or padded; an array mask (indexed from ``r0``) is mirrored
    at its edges.
    """
    halo = int(math.ceil(3 * sigma_px))
    ksize = 2 * halo + 1
    if callable(ice_mask):
        r = np.arange(rows[0] - halo, rows[-1] + halo + 1, dtype=np.float64)[:, None]
        c = np.arange(cols[0] - halo, cols[-1] + halo + 1, dtype=np.float64)[None, :]
        weight = np.asarray(ice_mask(r, c), dtype=np.float32)
        block = cv2.GaussianBlur(weight, (ksize, ksize), sigma_px, borderType=cv2.BORDER_REFLECT_101)
        return block[halo:-halo, halo:-halo]
    n = rows.size
    lo, hi = max(0, r0 - halo), min(ice_mask.shape[0], r0 + n + halo)
    block = cv2.GaussianBlur(
        ice_mask[lo:hi].astype(np.float32), (ksize, ksize), sigma_px, borderType=cv2.BORDER_REFLECT_101
    )
    return block[r0 - lo : r0 - lo + n]


def _texture_into(
    out: np.ndarray,
    seed: int,
    *,
    base_shape: tuple[int, int],
    origin_px: int,
    pixel_size_m: float,
    ice_fraction: float,
    ice_mask: IceMask | None,
    crevasse_angle_deg: float | None,
) -> None:
    """Draw the texture into ``out``, whose pixel (i, j) is reference (i - origin, j - origin).

    The texture is a function of reference coordinates, seed and ``base_shape`` only, so a
    border of any width up to 256 px (the room left for incoming ground) does not change it.
    """
    n_rows, n_cols = out.shape
    rng = np.random.default_rng([int(seed), 0x7E87])
    border = max(256, origin_px) + 8
    # Ground sizes (m) of the texture's scales, so the look does not depend on resolution;
    # the finest scale is set by the sensor (about 2 px) instead.
    px = 1.0 / pixel_size_m
    region = _CoarseLayer(rng, base_shape, 2500.0 * px, border)
    albedo = _CoarseLayer(rng, base_shape, 700.0 * px, border)
    mid = _CoarseLayer(rng, base_shape, max(150.0 * px, 4.0), border)
    small = _CoarseLayer(rng, base_shape, max(50.0 * px, 3.0), border)
    # A tile as large as the image (up to 2048 px) keeps small images free of repetition.
    tile_px = int(scipy.fft.next_fast_len(min(2048, max(64, *base_shape)), real=True))
    fine = _TileLayer(rng, tile_px, _gaussian_lowpass(1.1))
    if crevasse_angle_deg is None:
        crevasse_angle_deg = float(rng.uniform(0.0, 180.0))
    crevasses = _TileLayer(rng, tile_px, _crevasse_transfer(math.radians(crevasse_angle_deg)), _streaks, 0.9)
    threshold = (
        float(ndtri(1.0 - ice_fraction)) if 0.0 < ice_fraction < 1.0 else (np.inf if ice_fraction <= 0 else -np.inf)
    )
    edge_sigma_px = max(2.0, 30.0 * px)

    cols = np.arange(n_cols, dtype=np.float64) - origin_px
    for layer in (region, albedo, mid, small):
        layer.sample(cols[:1], cols)  # fill the column-weight cache before threads share it

    def work(r0: int, r1: int) -> None:
        rows = np.arange(r0, r1, dtype=np.float64) - origin_px
        alb = albedo.sample(rows, cols)
        m = mid.sample(rows, cols)
        s = small.sample(rows, cols)
        f = fine.sample(rows, cols)
        crev = crevasses.sample(rows, cols)
        with np.errstate(over="ignore"):
            ice = 1.0 / (1.0 + np.exp(-(region.sample(rows, cols) - threshold) / 0.12))
        crevassed = ice
        if ice_mask is not None:
            forced = _ice_mask_strip(ice_mask, rows, cols, r0, edge_sigma_px)
            ice = np.maximum(ice, forced)
            crevassed = forced
        # Reflectance-like (log-normal) variation keeps DN positive and skewed like real scenes.
        # Rock: dark and rough, ridge-like at mid scales (a smooth |m|, no kinks).
        ridge = 1.6 * (np.sqrt(m * m + 0.1) - 0.85)
        rock = 2000.0 * np.exp(0.28 * (0.6 * alb + 0.4 * ridge + 0.5 * s + 0.6 * f))
        # Ice: bright and smoother, with dark crevasse streaks.
        snow = 5600.0 * np.exp(0.1 * alb + 0.02 * m + 0.025 * s + 0.03 * f) - 700.0 * crevassed * crev
        out[r0:r1] = np.clip(ice * snow + (1.0 - ice) * rock, 1.0, 65535.0)

    _for_each_strip(n_rows, work)


def make_texture(
    shape: tuple[int, int],
    seed: int = 0,
    *,
    pixel_size_m: float = 10.0,
    ice_fraction: float = 0.35,
    ice_mask: np.ndarray | None = None,
    crevasse_angle_deg: float | None = None,
) -> np.ndarray:
    """A Sentinel-2 B08-like scene: rock and ice with realistic, band-limited texture.

    The image is a soft-edged mix of two surfaces, each a sum of smooth random fields at
    several scales (about 2.5 km, 700 m, 150 m, 50 m and 2 px):

    - rock: darker (DN about 900..3500) and rough, with ridge-like mid-scale relief;
    - ice/snow: brighter (DN about 4000..8000) and smoother, with thin dark crevasse-like
      streaks transverse to ``crevasse_angle_deg``.

    Every scale is band-limited (no energy near the Nyquist frequency), so the image can be
    shifted by sub-pixel amounts without aliasing.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` in px.
    seed : int
        Random seed; the same seed and arguments give an identical image.
    pixel_size_m : float
        Ground size of a pixel (m); sets the pixel size of the coarse scales.
    ice_fraction : float
        Fraction (0..1) of the area covered by randomly placed ice/snow patches.
    ice_mask : ndarray of bool, shape (rows, cols), optional
        Where ice must be (e.g. a glacier's moving area), added to the random patches with a
        soft edge. Crevasses appear only on this ice when it is given.
    crevasse_angle_deg : float, optional
        Flow direction across which crevasses run (degrees from +col towards +row); random
        when not given.

    Returns
    -------
    ndarray of float32, shape (rows, cols)
        DN values within 1..65535.
    """
    shape = _check_shape(shape)
    _check_finite("pixel_size_m", pixel_size_m)
    if pixel_size_m <= 0:
        raise InvalidParameter("pixel_size_m", f"must be > 0 m, got {pixel_size_m}")
    _check_finite("ice_fraction", ice_fraction)
    if not 0.0 <= ice_fraction <= 1.0:
        raise InvalidParameter("ice_fraction", f"must be in [0, 1], got {ice_fraction}")
    if ice_mask is not None:
        ice_mask = np.asarray(ice_mask, dtype=bool)
        if ice_mask.shape != shape:
            raise InvalidParameter("ice_mask", f"must have the image shape {shape}, got {ice_mask.shape}")
    out = np.empty(shape, dtype=np.float32)
    _texture_into(
        out,
        seed,
        base_shape=shape,
        origin_px=0,
        pixel_size_m=float(pixel_size_m),
        ice_fraction=float(ice_fraction),
        ice_mask=ice_mask,
        crevasse_angle_deg=crevasse_angle_deg,
    )
    return out


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticPair:
    """A reference/secondary image pair with known motion.

    Attributes
    ----------
    reference, secondary : ndarray of uint16, shape (rows, cols)
        DN images; 0 only where ``nodata`` is True.
    field : FlowField
        The true displacement (px) of reference features.
    pixel_size_m : float
        Ground size of a pixel (m).
    nodata : ndarray of bool or None
        Pixels set to 0 in either image, or None when there are none.
    cloud : ndarray of bool or None
        The cloud-like patch in the secondary (opacity >= 0.5; its soft edge reaches
        ``CLOUD_EDGE_PX`` px further out), or None.
    """

    reference: np.ndarray
    secondary: np.ndarray
    field: FlowField
    pixel_size_m: float
    nodata: np.ndarray | None = None
    cloud: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(rows, cols)`` (px)."""
        return self.reference.shape

    def truth(self, rows: ArrayLike, cols: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """True displacement ``(dx, dy)`` (px) of the reference feature at ``(rows, cols)``."""
        return self.field.displacement(rows, cols)

    def is_moving(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        """True on moving ice, False on stable ground, at reference ``(rows, cols)``."""
        return self.field.is_moving(rows, cols)


#: Half-width (px) of the soft edge of the cloud patch around its mask outline.
CLOUD_EDGE_PX = 6.0


def _max_displacement_px(field: FlowField, shape: tuple[int, int]) -> float:
    """Largest |d| (px) over the image, sampled every few px (the fields are smooth)."""
    step = max(1, min(shape) // 256)
    rows = np.r_[np.arange(0, shape[0], step), shape[0] - 1].astype(np.float64)
    cols = np.r_[np.arange(0, shape[1], step), shape[1] - 1].astype(np.float64)
    dx, dy = field.displacement(rows[:, None], cols[None, :])
    return float(np.sqrt(dx * dx + dy * dy).max())


def _cloud_alpha_fn(rng: np.random.Generator, shape: tuple[int, int]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Opacity (0..1) of a blob-shaped cloud with a wavy soft edge, as a function of position.

    The outline is a circle of radius R whose radius varies with the polar angle; the opacity
    ramps from 0 to 1 over ``2 * CLOUD_EDGE_PX`` px measured radially across it, so it is 0.5
    on the outline and exactly 0 farther than ``CLOUD_EDGE_PX`` outside it.
    """
    n_rows, n_cols = shape
    center = (rng.uniform(0.35, 0.65) * n_rows, rng.uniform(0.35, 0.65) * n_cols)
    radius = rng.uniform(0.13, 0.2) * min(shape)
    orders = np.arange(2, 7)
    amplitudes = rng.normal(0.0, 0.05, size=orders.size)
    phases = rng.uniform(0.0, 2 * math.pi, size=orders.size)

    def alpha(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        y = rows - center[0]
        x = cols - center[1]
        theta = np.arctan2(y, x)
        outline = radius * (
            1.0 + sum(a * np.cos(k * theta + p) for k, a, p in zip(orders, amplitudes, phases, strict=True))
        )
        inside_px = outline - np.hypot(x, y)
        return _smoothstep((inside_px + CLOUD_EDGE_PX) / (2 * CLOUD_EDGE_PX))

    return alpha


def _nodata_masks(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Zero areas of the reference (a rectangle and a stripe) and the secondary (an edge wedge)."""
    n_rows, n_cols = shape
    rows = np.arange(n_rows)[:, None]
    cols = np.arange(n_cols)[None, :]
    # Swath edge: a slanted line near the left or right side, as at a Sentinel-2 orbit edge.
    top = rng.uniform(0.03, 0.08) * n_cols
    slope = rng.uniform(0.06, 0.12)
    wedge = cols < top + slope * rows
    if rng.random() < 0.5:
        wedge = wedge[:, ::-1]
    secondary = np.ascontiguousarray(wedge)
    reference = np.zeros(shape, dtype=bool)
    h, w = int(0.08 * n_rows) + 1, int(0.12 * n_cols) + 1
    r0 = int(rng.uniform(0.15, 0.75) * n_rows)
    c0 = int(rng.uniform(0.3, 0.6) * n_cols)
    reference[r0 : r0 + h, c0 : c0 + w] = True
    stripe_rows = max(2, n_rows // 200)
    s0 = int(rng.uniform(0.1, 0.9) * n_rows)
    sc0 = int(rng.uniform(0.1, 0.4) * n_cols)
    reference[s0 : s0 + stripe_rows, sc0 : sc0 + n_cols // 2] = True
    return reference, secondary


def make_pair(
    shape: tuple[int, int] = (512, 512),
    field: FlowField | None = None,
    *,
    seed: int = 0,
    noise_dn: float = 20.0,
    gain: float = 1.05,
    offset_dn: float = 150.0,
    nodata_holes: bool = False,
    cloud: bool = False,
    pixel_size_m: float = 10.0,
    order: Interpolation = "cubic",
) -> SyntheticPair:
    """A Sentinel-2-like reference/secondary pair whose true motion is ``field``.

    The reference is :func:`make_texture` (ice where the field moves) plus noise. The
    secondary is the same texture warped by ``field`` (:func:`warp_image`; the texture is drawn
    with a border as wide as the largest displacement, so new ground enters honestly at the
    edges), then ``gain * warped + offset_dn`` (an illumination change), plus independent noise.
    Both are rounded to uint16 and kept within 1..65535; 0 appears only in the nodata areas.

    The work runs in row strips on up to :data:`WORKERS` threads; a 10980 x 10980 pair (a
    Sentinel-2 tile) peaks at about 1.5 GB.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` in px.
    field : FlowField, optional
        True displacement (px). Default: ``GlacierTongue(shape, max_px=5.0)``, whose plug flows
        5 px at the upstream edge and 3 px where the terminal zone starts (for images smaller
        than about 300 px, ``max_px`` is reduced to a quarter of the margin width).
    seed : int
        Random seed; the same seed and arguments give identical arrays.
    noise_dn : float
        Standard deviation (DN) of Gaussian noise added to each image independently.
    gain, offset_dn : float
        Illumination change of the secondary: ``gain * DN + offset_dn``.
    nodata_holes : bool
        Set a Sentinel-2-like swath-edge wedge of the secondary and a rectangle and a stripe of
        the reference to 0 (nodata).
    cloud : bool
        Put a bright, nearly featureless, soft-edged cloud-like patch into the secondary.
    pixel_size_m : float
        Ground size of a pixel (m).
    order : {"cubic", "cv2-cubic", "linear"}
        Interpolation of the warp (see :func:`warp_image`).

    Returns
    -------
    SyntheticPair

    Examples
    --------
    >>> pair = make_pair((128, 128), Translation(0.5, -1.25), seed=1)
    >>> pair.reference.dtype.name, pair.truth(10.0, 20.0)
    ('uint16', (array(0.5), array(-1.25)))
    """
    shape = _check_shape(shape)
    _check_order(order)
    for name, value in (
        ("noise_dn", noise_dn),
        ("gain", gain),
        ("offset_dn", offset_dn),
        ("pixel_size_m", pixel_size_m),
    ):
        _check_finite(name, value)
    if noise_dn < 0:
        raise InvalidParameter("noise_dn", f"must be >= 0 DN, got {noise_dn}")
    if gain <= 0:
        raise InvalidParameter("gain", f"must be > 0, got {gain}")
    if pixel_size_m <= 0:
        raise InvalidParameter("pixel_size_m", f"must be > 0 m, got {pixel_size_m}")
    if field is None:
        # 5 px unless the image is so small that its margins could not take that much shear.
        field = GlacierTongue(shape, max_px=1.0)
        field = field.scaled(min(5.0, 0.25 * field.margin_px))
    if not isinstance(field, FlowField):
        raise InvalidParameter("field", f"must be a FlowField, got {type(field).__name__}")

    # Room for the ground that moves into view. The texture depends on reference coordinates
    # only, so it is the same for any field with up to 248 px of motion (stacks stay coherent).
    margin = int(math.ceil(_max_displacement_px(field, shape))) + 8
    padded = (shape[0] + 2 * margin, shape[1] + 2 * margin)
    log.debug("make_pair: shape %s, texture border %d px", shape, margin)

    tongue = field if isinstance(field, GlacierTongue) else None
    texture = np.empty(padded, dtype=np.float32)
    _texture_into(
        texture,
        seed,
        base_shape=shape,
        origin_px=margin,
        pixel_size_m=float(pixel_size_m),
        # Ice where the glacier flows, fewer snow patches on the stable ground around it.
        ice_fraction=0.15 if tongue is not None else 0.35,
        ice_mask=tongue.ice_mask if tongue is not None else None,
        crevasse_angle_deg=tongue.flow_angle_deg if tongue is not None else None,
    )

    seq = np.random.SeedSequence([int(seed), 0x5EC0])
    noise_seed, nodata_seed, cloud_seed = seq.spawn(3)

    def noisy(strip: np.ndarray, r0: int, which: int) -> np.ndarray:
        if noise_dn > 0:
            # One generator per (image, strip) keeps results independent of evaluation order.
            rng = np.random.default_rng([*noise_seed.generate_state(2), which, r0])
            strip = strip + rng.standard_normal(strip.shape, dtype=np.float32) * np.float32(noise_dn)
        return np.rint(np.clip(strip, 1.0, 65535.0)).astype(np.uint16)

    reference = np.empty(shape, dtype=np.uint16)

    def make_reference(r0: int, r1: int, source: np.ndarray = texture) -> None:
        reference[r0:r1] = noisy(source[r0 + margin : r1 + margin, margin : margin + shape[1]], r0, 0)

    _for_each_strip(shape[0], make_reference)

    cloud_alpha = _cloud_alpha_fn(np.random.default_rng(cloud_seed), shape) if cloud else None
    cloud_dn = 7800.0
    cloud_mask = np.zeros(shape, dtype=bool) if cloud else None

    def finish_secondary(strip: np.ndarray, r0: int, r1: int) -> np.ndarray:
        strip = strip * np.float32(gain) + np.float32(offset_dn)
        if cloud_alpha is not None and cloud_mask is not None:
            rows = np.arange(r0, r1, dtype=np.float64)[:, None]
            cols = np.arange(shape[1], dtype=np.float64)[None, :]
            a = cloud_alpha(rows, cols)
            # Nearly featureless: a faint, very smooth brightness ramp inside the cloud.
            body = cloud_dn + 150.0 * np.sin(rows / 97.0) * np.cos(cols / 131.0)
            strip = ((1.0 - a) * strip + a * body).astype(np.float32)
            cloud_mask[r0:r1] = a >= 0.5
        return noisy(strip, r0, 1)

    # In place: the texture becomes its own cubic B-spline coefficients (saves a full copy).
    if order == "cubic":
        ndimage.spline_filter(texture, order=3, output=texture, mode="mirror")
    secondary = np.empty(shape, dtype=np.uint16)
    _warp_into(secondary, texture, field, offset_px=margin, order=order, post=finish_secondary)
    del texture, make_reference  # free the padded texture before the nodata masks

    nodata = None
    if nodata_holes:
        ref_hole, sec_hole = _nodata_masks(np.random.default_rng(nodata_seed), shape)
        reference[ref_hole] = 0
        secondary[sec_hole] = 0
        nodata = ref_hole | sec_hole
    return SyntheticPair(
        reference=reference,
        secondary=secondary,
        field=field,
        pixel_size_m=float(pixel_size_m),
        nodata=nodata,
        cloud=cloud_mask,
    )
