"""Tests of the synthetic pair generator: its truth must be right, or every engine test lies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

from glacier_velocity.demo.synthetic import (
    CLOUD_EDGE_PX,
    GlacierTongue,
    RotationShear,
    Translation,
    UniformStrain,
    make_pair,
    make_texture,
    source_positions,
    warp_image,
)
from glacier_velocity.errors import InvalidParameter

SHAPE = (160, 200)


def analytic(rows, cols):
    """Smooth band-limited test image: a sum of low-frequency sinusoids (wavelengths 14-40 px)."""
    return (
        100.0 * np.sin(2 * np.pi * cols / 23.0 + 0.3)
        + 80.0 * np.cos(2 * np.pi * rows / 31.0 - 1.0)
        + 50.0 * np.sin(2 * np.pi * (rows + 0.7 * cols) / 14.0)
        + 30.0 * np.cos(2 * np.pi * (0.4 * rows - cols) / 40.0)
    )


def grid(shape):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return rows.astype(float), cols.astype(float)


def interior(shape, border):
    return (slice(border, shape[0] - border), slice(border, shape[1] - border))


@pytest.fixture(scope="module")
def tongue():
    return GlacierTongue((256, 256), max_px=4.0)


# ------------------------------------------------------------------------------ flow fields


@pytest.mark.parametrize(
    "field",
    [
        Translation(0.3, -1.7),
        Translation(0.0, 0.0),
        GlacierTongue((256, 256), max_px=4.0),
        GlacierTongue((300, 200), max_px=3.0, flow_angle_deg=-70.0, bend_frac=-0.1),
        RotationShear((80.0, 100.0), rotation_rad_per_px=0.01, shear=0.02),
        UniformStrain(0.04, center=(80.0, 100.0)),
        UniformStrain(0.04, center=(80.0, 100.0), axis="row"),
    ],
    ids=lambda f: type(f).__name__,
)
def test_is_moving_is_exactly_where_displacement_is_nonzero(field):
    rows, cols = grid((256, 256))
    dx, dy = field.displacement(rows, cols)
    assert_array_equal(field.is_moving(rows, cols), (dx != 0) | (dy != 0))
    # ... and scaling keeps the pattern, multiplying every displacement.
    dx2, dy2 = field.scaled(2.5).displacement(rows, cols)
    assert_allclose(dx2, 2.5 * dx, rtol=1e-12, atol=1e-12)
    assert_allclose(dy2, 2.5 * dy, rtol=1e-12, atol=1e-12)


def test_displacement_broadcasts_rows_against_cols(tongue):
    rows = np.array([10.0, 128.0, 200.0])[:, None]
    cols = np.arange(0.0, 256.0, 32.0)[None, :]
    dx, dy = tongue.displacement(rows, cols)
    assert dx.shape == dy.shape == (3, 8)
    assert_allclose(dx[1, 3], tongue.displacement(128.0, 96.0)[0])


def test_translation_is_uniform_and_signed():
    dx, dy = Translation(0.3, -1.7).displacement(np.arange(5.0), 7.0)
    assert_array_equal(dx, np.full(5, 0.3))
    assert_array_equal(dy, np.full(5, -1.7))
    assert not Translation(0.0, 0.0).is_moving(3.0, 4.0)
    assert Translation(0.0, 1e-3).is_moving(3.0, 4.0)


def test_tongue_has_plug_flow_margins_and_exactly_stable_ground(tongue):
    rows, cols = grid(tongue.shape)
    dx, dy = tongue.displacement(rows, cols)
    speed = np.hypot(dx, dy)
    moving = tongue.is_moving(rows, cols)
    # A glacier, not the whole image: stable ground all around, exactly zero.
    assert 0.2 < moving.mean() < 0.6
    assert np.all(dx[~moving] == 0.0) and np.all(dy[~moving] == 0.0)
    assert speed.max() == pytest.approx(4.0, rel=0.03)
    # Across the flow (fixed along-flow position), a flat plug with zero at the margins.
    a = math.radians(tongue.flow_angle_deg)
    t = np.arange(-120.0, 120.0, 0.5)
    s_across = np.hypot(
        *tongue.displacement(127.5 - 60 * math.sin(a) + t * math.cos(a), 127.5 - 60 * math.cos(a) - t * math.sin(a))
    )
    plug = s_across > 0.9999 * s_across.max()
    assert plug.sum() >= 0.3 * (s_across > 0).sum()  # a flat plug, not a parabola
    assert s_across[0] == 0.0 and s_across[-1] == 0.0
    # Flow is downstream: roughly along +col, tilted towards +row (flow_angle_deg = 20).
    mean_dir = math.degrees(math.atan2(dy[moving].mean(), dx[moving].mean()))
    assert 5.0 < mean_dir < 35.0
    # Speed decays towards the terminus along the centreline.
    u = np.linspace(-150.0, 150.0, 301)
    s_line = np.hypot(*tongue.displacement(127.5 + u * math.sin(a), 127.5 + u * math.cos(a)))
    first_zero = np.flatnonzero(s_line == 0.0)
    first_zero = first_zero[first_zero > 150][0]
    assert np.all(np.diff(s_line[:first_zero]) < 0)
    assert s_line[first_zero - 1] < 0.01


def test_tongue_is_c1_across_margins_and_terminus(tongue):
    # Sample densely across the glacier and along its centreline: the first derivative of the
    # displacement must not jump (a kink in the margins would jump by ~ max_px / margin_px).
    h = 0.01
    t = np.arange(-140.0, 140.0, h)
    kink = tongue.max_px / tongue.margin_px
    for rows, cols in ((128.0 + t, np.full_like(t, 60.0)), (128.0 + 0.36 * t, 128.0 + t)):
        dx, dy = tongue.displacement(rows, cols)
        for d in (dx, dy):
            deriv = np.diff(d) / h
            # Smooth: consecutive slopes differ by h * (second derivative), never by a jump.
            assert np.abs(np.diff(deriv)).max() < 0.01 * kink
        # The line really crosses a steep part (margin or terminal zone) and stable ground.
        speed = np.hypot(dx, dy)
        assert np.abs(np.diff(speed) / h).max() > 0.02 * kink
        assert speed.min() == 0.0 and speed.max() > 1.0


def test_uniform_strain_gradient_is_the_strain():
    rows, cols = grid((64, 80))
    field = UniformStrain(0.04, center=(32.0, 40.0))
    dx, dy = field.displacement(rows, cols)
    assert_allclose(np.gradient(dx, axis=1), 0.04, rtol=1e-12)
    assert_allclose(np.gradient(dx, axis=0), 0.0, atol=1e-15)
    assert np.all(dy == 0.0)
    assert np.all(dx[:, 40] == 0.0) and dx[0, 79] == pytest.approx(0.04 * 39)
    dx, dy = UniformStrain(0.04, center=(32.0, 40.0), axis="row").displacement(rows, cols)
    assert_allclose(np.gradient(dy, axis=0), 0.04, rtol=1e-12)
    assert np.all(dx == 0.0)
    # At 45 degrees the stretching along the diagonal is still 4 %.
    diag = UniformStrain(0.04, center=(0.0, 0.0), axis=45.0)
    s = np.array([0.0, 10.0])
    ddx, ddy = diag.displacement(s / math.sqrt(2), s / math.sqrt(2))
    assert np.hypot(ddx[1], ddy[1]) == pytest.approx(0.4)


def test_rotation_shear_matches_its_jacobian():
    field = RotationShear((50.0, 60.0), rotation_rad_per_px=0.01, shear=0.03)
    rows, cols = grid((100, 120))
    dx, dy = field.displacement(rows, cols)
    jac = field.jacobian()
    assert_allclose(np.gradient(dx, axis=1), jac[0, 0], atol=1e-12)
    assert_allclose(np.gradient(dx, axis=0), jac[0, 1])
    assert_allclose(np.gradient(dy, axis=1), jac[1, 0])
    assert_allclose(np.gradient(dy, axis=0), jac[1, 1], atol=1e-12)
    assert field.displacement(50.0, 60.0) == (0.0, 0.0)
    # Counter-clockwise as displayed north-up: a point east of the centre moves north (-row).
    assert field.displacement(50.0, 70.0)[1] == pytest.approx(-0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GlacierTongue((256, 256), margin_frac=0.0),
        lambda: GlacierTongue((4, 256)),
        lambda: GlacierTongue((256, 256), half_width_frac=0.0),
        lambda: GlacierTongue((256, 256), terminus_frac=0.3, terminal_zone_frac=0.3),
        lambda: UniformStrain(0.04, axis="diagonal"),
        lambda: RotationShear((0.0, 0.0), rotation_rad_per_px=float("inf")),
        lambda: Translation(float("nan"), 0.0),
    ],
)
def test_bad_field_parameters_are_rejected(make):
    with pytest.raises(InvalidParameter):
        make()


# ------------------------------------------------------------------------------ warping


def test_source_positions_invert_the_tongue(tongue):
    rows, cols = grid(tongue.shape)
    pr, pc = source_positions(tongue, rows, cols)
    dx, dy = tongue.displacement(pr, pc)
    assert np.abs(pr + dy - rows).max() < 1e-3
    assert np.abs(pc + dx - cols).max() < 1e-3
    moved = np.hypot(pr - rows, pc - cols)
    assert moved.max() > 3.5  # the test is not vacuous


@pytest.mark.parametrize("dx, dy", [(0.3, -1.7), (-2.25, 0.5), (0.0, 0.0)])
def test_warp_translation_matches_the_analytic_image(dx, dy):
    rows, cols = grid(SHAPE)
    image = analytic(rows, cols)
    warped = warp_image(image, Translation(dx, dy))
    # The feature at p appears at p + d, so the warped image at q shows the original at q - d.
    expected = analytic(rows - dy, cols - dx)
    inner = interior(SHAPE, 12)
    # Amplitude ~260: 0.05 is 2e-4 of it (cubic B-spline on wavelengths >= 14 px).
    assert np.abs(warped - expected)[inner].max() < 0.05


def test_warp_direction_for_a_sharp_feature():
    image = np.zeros((40, 40))
    image[10, 20] = 1000.0
    warped = warp_image(image, Translation(3.0, 5.0))
    assert np.unravel_index(np.argmax(warped), warped.shape) == (15, 23)


def test_warp_tongue_matches_the_analytic_image(tongue):
    rows, cols = grid(tongue.shape)
    warped = warp_image(analytic(rows, cols), tongue)
    pr, pc = source_positions(tongue, rows, cols)
    inner = interior(tongue.shape, 12)
    assert np.abs(warped - analytic(pr, pc))[inner].max() < 0.05
    # Stable ground keeps its pixels exactly (up to float32).
    stable = ~tongue.is_moving(rows, cols)
    assert_allclose(warped[stable], analytic(rows, cols)[stable], atol=0.01)


@pytest.mark.parametrize("order", ["cv2-cubic", "linear"])
def test_fast_warps_are_close_but_coarser(order):
    rows, cols = grid(SHAPE)
    image = analytic(rows, cols)
    expected = analytic(rows + 1.7, cols - 0.3)
    inner = interior(SHAPE, 12)
    err = np.abs(warp_image(image, Translation(0.3, -1.7), order=order) - expected)[inner].max()
    assert 0.1 < err < 6.0  # within ~2 % of the amplitude, but far from the exact spline


def test_warp_rejects_bad_order_and_uninvertible_fields():
    image = analytic(*grid((32, 32)))
    with pytest.raises(InvalidParameter, match="order"):
        warp_image(image, Translation(0.3, -1.7), order="quintic")
    with pytest.raises(InvalidParameter, match="field"):
        warp_image(image, UniformStrain(-1.5, center=(16.0, 16.0)))


# ------------------------------------------------------------------------------ texture


def test_texture_is_deterministic_and_dn_like():
    a = make_texture((256, 300), seed=3)
    assert a.dtype == np.float32 and a.shape == (256, 300)
    assert_array_equal(a, make_texture((256, 300), seed=3))
    assert not np.array_equal(a, make_texture((256, 300), seed=4))
    # 200 m pixels: many km-sized ice and rock patches fit, so ice_fraction shows up.
    a = make_texture((256, 300), seed=3, pixel_size_m=200.0, ice_fraction=0.35)
    lo, hi = np.percentile(a, [0.1, 99.9])
    assert 500.0 < lo < 2000.0 and 5500.0 < hi < 9500.0
    assert (a > 4000.0).mean() == pytest.approx(0.35, abs=0.1)


def test_texture_is_band_limited_with_energy_at_several_scales():
    a = make_texture((512, 512), seed=1).astype(np.float64)
    window = np.outer(np.hanning(512), np.hanning(512))  # no leakage from the wrap-around edges
    power = np.abs(np.fft.fft2((a - a.mean()) * window)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(512), np.fft.fftfreq(512), indexing="ij"))
    near_nyquist = power[f > 0.4].sum()
    fine = power[(f > 0.05) & (f <= 0.4)].sum()
    assert near_nyquist < 1e-3 * fine  # band-limited: no white noise
    # Energy in every octave of wavelength from 4 px to 256 px.
    for lo_f, hi_f in ((1 / 256, 1 / 128), (1 / 64, 1 / 32), (1 / 16, 1 / 8), (1 / 8, 1 / 4)):
        band = power[(f > lo_f) & (f <= hi_f)].sum()
        assert band > 1e-3 * power.sum()


def test_ice_is_brighter_and_smoother_than_rock():
    rows, cols = grid((256, 256))
    ice = (cols > 96) & (cols < 192)
    a = make_texture((256, 256), seed=2, ice_fraction=0.0, ice_mask=ice)
    core_ice = (cols > 110) & (cols < 178)
    core_rock = (cols < 80) | (cols > 208)
    assert np.median(a[core_ice]) > np.median(a[core_rock]) + 2000.0
    # Fine-scale roughness (high-pass) is larger on rock; crevasses make ice heavy-tailed.
    hp = a - ndimage.gaussian_filter(a, 3.0)
    assert np.std(hp[core_rock]) > np.median(np.abs(hp[core_ice])) * 1.4826 * 1.5


# ------------------------------------------------------------------------------ pairs


def test_make_pair_is_deterministic():
    p1 = make_pair((128, 160), seed=5, nodata_holes=True, cloud=True)
    p2 = make_pair((128, 160), seed=5, nodata_holes=True, cloud=True)
    for name in ("reference", "secondary", "nodata", "cloud"):
        assert_array_equal(getattr(p1, name), getattr(p2, name))
    assert p1.field == p2.field
    p3 = make_pair((128, 160), seed=6, nodata_holes=True, cloud=True)
    assert not np.array_equal(p1.reference, p3.reference)
    assert not np.array_equal(p1.secondary, p3.secondary)


def test_make_pair_does_not_depend_on_threads(monkeypatch):
    import glacier_velocity.demo.synthetic as synthetic

    two = make_pair((300, 90), seed=7, cloud=True)  # several strips of STRIP_ROWS
    monkeypatch.setattr(synthetic, "WORKERS", 1)
    one = make_pair((300, 90), seed=7, cloud=True)
    assert_array_equal(one.reference, two.reference)
    assert_array_equal(one.secondary, two.secondary)
    assert_array_equal(one.cloud, two.cloud)


def test_pair_dtypes_and_no_accidental_nodata():
    pair = make_pair((128, 128), seed=0)
    for image in (pair.reference, pair.secondary):
        assert image.dtype == np.uint16 and image.shape == (128, 128)
        assert image.min() >= 1  # 0 is reserved for nodata
    assert pair.nodata is None and pair.cloud is None
    assert pair.pixel_size_m == 10.0
    assert isinstance(pair.field, GlacierTongue)
    dx, dy = pair.truth(*grid((128, 128)))
    assert 0.5 < np.hypot(dx, dy).max() <= 5.0


def test_default_pair_has_three_to_five_px_glacier_motion():
    pair = make_pair((512, 512))
    rows, cols = grid((512, 512))
    speed = np.hypot(*pair.truth(rows, cols))
    assert speed.max() == pytest.approx(5.0, rel=0.03)
    plug = speed[speed > 0.98 * np.percentile(speed[speed > 0], 90)]
    assert plug.min() > 3.0
    assert pair.is_moving(rows, cols).mean() > 0.2


def test_secondary_is_the_reference_moved_by_the_truth():
    # Integer motion, no noise and no illumination change: pixels must match exactly, also at
    # the image edges, because the texture is drawn with a border for the incoming ground.
    pair = make_pair((96, 112), Translation(3.0, -2.0), seed=1, noise_dn=0.0, gain=1.0, offset_dn=0.0)
    ref = pair.reference.astype(int)
    sec = pair.secondary.astype(int)
    # Reference (r, c) appears at (r - 2, c + 3).
    assert np.abs(sec[0:-2, 3:] - ref[2:, :-3]).max() <= 1
    # Illumination change, and only the glacier moves: stable ground keeps its pixels.
    field = GlacierTongue((96, 112), max_px=2.5)
    pair = make_pair((96, 112), field, seed=1, noise_dn=0.0, gain=1.2, offset_dn=100.0)
    still = make_pair((96, 112), field.scaled(0.0), seed=1, noise_dn=0.0, gain=1.0, offset_dn=0.0)
    assert_array_equal(pair.reference, still.reference)  # same scene whatever the speed
    assert np.abs(still.secondary.astype(int) - still.reference).max() <= 1  # float rounding
    moving = field.is_moving(*grid((96, 112)))
    expected = 1.2 * still.reference.astype(float) + 100.0
    assert np.abs(pair.secondary[~moving] - expected[~moving]).max() <= 1
    assert np.abs(pair.secondary[moving] - expected[moving]).max() > 100


def test_secondary_matches_the_warped_texture_at_sub_pixel_motion():
    shape = (96, 112)
    field = GlacierTongue(shape, max_px=2.5)
    pair = make_pair(shape, field, seed=2, noise_dn=0.0, gain=1.0, offset_dn=0.0)
    texture = make_texture(
        shape,
        seed=2,
        ice_fraction=0.15,
        ice_mask=field.ice_mask(*grid(shape)),
        crevasse_angle_deg=field.flow_angle_deg,
    )
    # The texture make_pair draws is make_texture's, apart from the mask's blur at the edges.
    inner = interior(shape, 10)
    assert np.abs(pair.reference[inner] - np.rint(texture[inner])).max() <= 1
    expected = warp_image(texture, field)
    assert np.abs(pair.secondary[inner] - expected[inner]).max() <= 1


def test_noise_and_illumination_change():
    field = Translation(0.0, 0.0)
    clean = make_pair((128, 128), field, seed=2, noise_dn=0.0, gain=1.0, offset_dn=0.0)
    noisy = make_pair((128, 128), field, seed=2, noise_dn=20.0, gain=1.05, offset_dn=150.0)
    ref_noise = noisy.reference.astype(float) - clean.reference
    sec_noise = noisy.secondary - (1.05 * clean.reference.astype(float) + 150.0)
    assert ref_noise.std() == pytest.approx(20.0, rel=0.05)
    assert sec_noise.std() == pytest.approx(20.0, rel=0.05)
    assert abs(sec_noise.mean()) < 1.0
    # Independent noise in the two images.
    assert abs(np.corrcoef(ref_noise.ravel(), sec_noise.ravel())[0, 1]) < 0.05


def test_nodata_holes_are_zero_exactly_where_promised():
    pair = make_pair((200, 240), seed=3, nodata_holes=True)
    zero = (pair.reference == 0) | (pair.secondary == 0)
    assert_array_equal(pair.nodata, zero)
    assert 0.03 < pair.nodata.mean() < 0.3
    # Holes in both images: a wedge in the secondary, a rectangle and a stripe in the reference.
    assert (pair.reference == 0).sum() > 100 and (pair.secondary == 0).sum() > 100
    edge_cols = np.flatnonzero((pair.secondary == 0).any(axis=0))
    assert edge_cols.min() == 0 or edge_cols.max() == 239


def test_cloud_is_bright_featureless_and_only_in_the_secondary():
    plain = make_pair((256, 256), seed=4)
    cloudy = make_pair((256, 256), seed=4, cloud=True)
    mask = cloudy.cloud
    assert mask is not None and mask.dtype == bool
    assert 0.03 < mask.mean() < 0.4
    assert_array_equal(cloudy.reference, plain.reference)
    core = ndimage.distance_transform_edt(mask) > CLOUD_EDGE_PX + 1
    assert core.sum() > 200
    sec = cloudy.secondary.astype(float)
    assert sec[core].mean() > 7000.0
    hp = sec - ndimage.gaussian_filter(sec, 2.0)
    plain_hp = plain.secondary - ndimage.gaussian_filter(plain.secondary.astype(float), 2.0)
    assert hp[core].std() < 30.0 < plain_hp[core].std()  # only the sensor noise is left
    far = ndimage.distance_transform_edt(~mask) > CLOUD_EDGE_PX + 1
    assert_array_equal(cloudy.secondary[far], plain.secondary[far])


def test_bad_pair_parameters_are_rejected():
    with pytest.raises(InvalidParameter, match="noise_dn"):
        make_pair((64, 64), noise_dn=-1.0)
    with pytest.raises(InvalidParameter, match="gain"):
        make_pair((64, 64), gain=0.0)
    with pytest.raises(InvalidParameter, match="field"):
        make_pair((64, 64), field=(1.0, 2.0))
