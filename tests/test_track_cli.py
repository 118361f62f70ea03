"""`glacier-velocity track` end to end, the velocity conversion and the output convention."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.correction import StableGroundWarning
from glacier_velocity.demo.synthetic import GlacierTongue, Misregistered, RotationShear, Translation, make_pair
from glacier_velocity.domain.offsets import OffsetField
from glacier_velocity.domain.velocity import DAYS_PER_YEAR, baseline_days, grid_transform, offsets_to_velocity
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.io.cog import read_velocity_cog
from glacier_velocity.io.raster import read_window

# A 10 m UTM 43N grid, north up (rows go south).
TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4010000.0)
CRS = "EPSG:32643"


def _write(path, array, transform=TRANSFORM, crs=CRS):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=array.shape[0],
        width=array.shape[1],
        count=1,
        dtype=array.dtype,
        transform=transform,
        crs=crs,
        nodata=0,
    ) as dst:
        dst.write(array, 1)
    return str(path)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    pair = make_pair((256, 256), Translation(2.5, -1.5), seed=21)
    return _write(d / "ref.tif", pair.reference), _write(d / "sec.tif", pair.secondary), pair


def test_track_cli_end_to_end(pair_files, tmp_path, capsys):
    ref, sec, _ = pair_files
    out = tmp_path / "velocity.tif"
    days = 10.5
    # The whole image moves: no stable ground, so the correction is off (a uniform motion and a
    # misregistration are the same thing to it).
    assert (
        main(
            [
                "track",
                ref,
                sec,
                "--dt-days",
                str(days),
                "--out",
                str(out),
                "--grid-spacing-px",
                "16",
                "--no-stable-correction",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "valid" in printed and "NOT applied" in printed
    with rasterio.open(out) as src:
        assert src.descriptions == ("vx", "vy", "v", "vx_error", "vy_error", "v_error", "dx", "dy", "peak", "snr")
        assert all(d == "float32" for d in src.dtypes)
        assert np.isnan(src.nodata)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.crs.to_epsg() == 32643
        tags = src.tags()
        assert float(tags["dt_days"]) == days
        assert tags["engine"] == "ncc"
        assert json.loads(tags["engine_params"])["grid_spacing_px"] == 16
        assert "ref.tif" in tags["reference_id"] and "sec.tif" in tags["secondary_id"]
        assert src.tags(1)["units"] == "m/yr" and src.tags(7)["units"] == "px"
        assert tags["stable_shift_method"] == "none" and "turned off" in tags["stable_shift_warning"]
    product = read_velocity_cog(out)
    assert np.isnan(product.vx_error).all()
    # 2.5 px east and 1.5 px north (dy = -1.5 rows) at 10 m in 10.5 days.
    per_year = 10.0 * DAYS_PER_YEAR / days
    assert np.nanmedian(product.vx) == pytest.approx(2.5 * per_year, rel=0.01)
    assert np.nanmedian(product.vy) == pytest.approx(1.5 * per_year, rel=0.01)
    assert np.nanmedian(product.v) == pytest.approx(np.hypot(2.5, 1.5) * per_year, rel=0.01)
    assert product.valid_fraction > 0.95


def test_track_cli_removes_the_misregistration_by_default(tmp_path, capsys):
    """A glacier tongue on stable ground, secondary misregistered by (0.6, -0.9) px."""
    tongue = GlacierTongue((384, 384), max_px=3.0)
    pair = make_pair((384, 384), Misregistered(tongue, 0.6, -0.9), seed=5)
    ref = _write(tmp_path / "r.tif", pair.reference)
    sec = _write(tmp_path / "s.tif", pair.secondary)
    out = tmp_path / "v.tif"
    assert main(["track", ref, sec, "--dt-days", "10", "--out", str(out)]) == 0
    assert "automatic: no glacier outlines" in capsys.readouterr().out
    product = read_velocity_cog(out)
    c = product.correction
    assert c["stable_shift_method"] == "automatic-mode" and c["stable_shift_applied"] is True
    assert c["stable_shift_dx_px"] == pytest.approx(0.6, abs=0.03)
    assert c["stable_shift_dy_px"] == pytest.approx(-0.9, abs=0.03)
    assert c["stable_count"] > 300
    # Stable ground now reads ~0; the raw offsets keep the misregistration.
    rows = np.arange(product.shape[0]) * 12 + 15.5
    cols = np.arange(product.shape[1]) * 12 + 15.5
    stable = ~tongue.ice_mask(rows[:, None], cols[None, :]) & np.isfinite(product.v)
    assert abs(np.median(product.vx[stable])) < 5.0 and abs(np.median(product.vy[stable])) < 5.0
    assert np.median(product.dx[stable]) == pytest.approx(0.6, abs=0.03)
    # Each point's error follows its match (issue 20); their level on stable ground is its NMAD.
    errors = product.vx_error[np.isfinite(product.vx)]
    assert np.all(errors > 0) and np.ptp(errors) > 0
    assert np.median(product.vx_error[stable]) == pytest.approx(c["stable_vx_nmad_m_per_yr"], rel=0.1)


def _track(tmp_path, field, shape=(512, 512), seed=5, max_velocity="2000"):
    """``glacier-velocity track`` on a synthetic pair of ``field`` (10 days, a point every 8 px)."""
    pair = make_pair(shape, field, seed=seed)
    out = tmp_path / "v.tif"
    argv = ["track", _write(tmp_path / "r.tif", pair.reference), _write(tmp_path / "s.tif", pair.secondary)]
    argv += ["--dt-days", "10", "--out", str(out), "--grid-spacing-px", "8", "--max-velocity-m-per-yr", max_velocity]
    assert main(argv) == 0
    return read_velocity_cog(out)


@pytest.mark.parametrize("half_width", [0.425, 0.45], ids=["85% ice", "89% ice"])
def test_a_scene_mostly_of_ice_keeps_its_ice_motion(tmp_path, capsys, half_width):
    """Issue 21: without outlines or SCL, a scene mostly of ice had the ice's motion taken for the
    misregistration (89 % ice: a shift of (2.97, 1.39) px removed from a 0.5 px misregistration)."""
    tongue = GlacierTongue((512, 512), max_px=4.0, half_width_frac=half_width, terminus_frac=1.2)
    rows = np.arange(512.0)[:, None]
    assert tongue.ice_mask(rows, rows.T).mean() >= 0.85
    product = _track(tmp_path, Misregistered(tongue, 0.3, 0.4))
    c = product.correction
    grid_rows = np.arange(product.shape[0]) * 8 + 15.5
    grid_cols = np.arange(product.shape[1]) * 8 + 15.5
    true_dx, true_dy = tongue.displacement(grid_rows[:, None], grid_cols[None, :])
    ice = tongue.ice_mask(grid_rows[:, None], grid_cols[None, :]) & np.isfinite(product.v)
    if c["stable_shift_applied"]:
        assert np.hypot(c["stable_shift_dx_px"] - 0.3, c["stable_shift_dy_px"] - 0.4) < 0.1
        # The corrected velocity is the ice's true motion, within 0.1 px.
        px_per_m_per_yr = 10.0 / DAYS_PER_YEAR / 10.0
        error = np.hypot(
            product.vx[ice] * px_per_m_per_yr - true_dx[ice], -product.vy[ice] * px_per_m_per_yr - true_dy[ice]
        )
        assert np.median(error) < 0.1
    else:
        assert "no stable-ground correction applied; give glacier outlines" in c["stable_shift_warning"]
        assert "NOT applied" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("motion_px", "applied"), [(2.9, False), (1.0, True)], ids=["2.9 px: beyond a misregistration", "1 px"]
)
def test_a_scene_moving_as_a_whole_is_never_corrected_to_zero_in_silence(tmp_path, capsys, motion_px, applied):
    """Issue 21: a uniform 2.9 px motion became 0 with no word. Beyond the largest documented
    Sentinel-2 misregistration (2.5 px) it is kept and the product says why; within it, the
    automatic mode cannot tell it from a misregistration, removes it and says so."""
    said = "every tracked point moves alike" if applied else "exceeds 2.5 px, more than a Sentinel-2 misregistration"
    with pytest.warns(StableGroundWarning, match=said):
        product = _track(tmp_path, Translation(0.6 * motion_px, 0.8 * motion_px), shape=(256, 256))
    c = product.correction
    printed = capsys.readouterr().out
    assert c["stable_shift_applied"] is applied
    warning = c["stable_shift_warning"]
    if applied:
        assert warning.startswith("every tracked point moves alike")
        assert "caution: every tracked point moves alike" in printed
        counts = re.match(r"every tracked point moves alike \((\d+) of (\d+) in one cluster\)", warning)
        assert counts is not None
        assert_documented(warning, *counts.groups())
    else:
        assert "exceeds 2.5 px, more than a Sentinel-2 misregistration" in warning
        shift = re.match(r"the stable-ground shift (\(.*?\)) px, ([\d.]+) px, exceeds ([\d.]+) px", warning)
        assert shift is not None
        assert_documented(warning, *shift.groups())
        assert "NOT applied" in printed
        per_year = 10.0 * DAYS_PER_YEAR / 10.0
        assert np.nanmedian(product.v) == pytest.approx(motion_px * per_year, rel=0.01)
        assert np.isnan(product.v_error).all()


def test_output_pixel_centres_are_measurement_positions(tmp_path):
    # A linear field (shear 0.05 px/px): each output pixel's dx must equal the truth at the
    # map position of that pixel's centre; a half-pixel misplacement biases it by 0.025 px.
    field = RotationShear(center=(0.0, 0.0), rotation_rad_per_px=0.0, shear=0.05)
    pair = make_pair((288, 288), field, seed=17)
    ref = _write(tmp_path / "r.tif", pair.reference)
    sec = _write(tmp_path / "s.tif", pair.secondary)
    out = tmp_path / "v.tif"
    assert (
        main(
            [
                "track",
                ref,
                sec,
                "--dt-days",
                "36.525",
                "--out",
                str(out),
                "--max-velocity-m-per-yr",
                "2000",
                "--no-stable-correction",
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        dx = src.read(src.descriptions.index("dx") + 1)
        rows, cols = np.meshgrid(np.arange(src.height), np.arange(src.width), indexing="ij")
        xs, ys = rasterio.transform.xy(src.transform, rows, cols, offset="center")
    # Map position -> reference pixel-centre coordinates.
    inv = ~TRANSFORM
    col_ref, row_ref = inv @ (np.asarray(xs), np.asarray(ys))
    true_dx, _ = field.displacement(row_ref - 0.5, col_ref - 0.5)
    err = dx - true_dx.reshape(dx.shape)
    assert np.isfinite(err).mean() > 0.8
    assert abs(np.nanmean(err)) < 0.008


def test_grid_transform_centres_pixels_on_grid_points():
    rows = np.array([15.5, 27.5, 39.5])
    cols = np.array([15.5, 27.5])
    t = grid_transform(TRANSFORM, rows, cols)
    assert t.a == 120.0 and t.e == -120.0
    # Centre of output pixel (0, 0) = map position of reference pixel-centre (15.5, 15.5),
    # i.e. of the pixel corner 16 px right and down of the image's corner.
    assert t @ (0.5, 0.5) == pytest.approx(TRANSFORM @ (16.0, 16.0))
    assert t @ (1.5, 2.5) == pytest.approx(TRANSFORM @ (28.0, 40.0))


def test_velocity_signs_and_fractional_days():
    field = OffsetField(
        rows=np.array([0.0]),
        cols=np.array([0.0]),
        dx=np.array([[1.0]], np.float32),
        dy=np.array([[2.0]], np.float32),
        peak=np.array([[0.9]], np.float32),
        snr=np.array([[5.0]], np.float32),
        engine="test",
    )
    product = offsets_to_velocity(field, TRANSFORM, CRS, 12.25, reference_id="a", secondary_id="b")
    per_year = 10.0 * 365.25 / 12.25
    assert product.vx[0, 0] == pytest.approx(1.0 * per_year, rel=1e-6)  # east
    assert product.vy[0, 0] == pytest.approx(-2.0 * per_year, rel=1e-6)  # rows down = south
    assert product.v[0, 0] == pytest.approx(np.hypot(1.0, 2.0) * per_year, rel=1e-6)
    # A south-up grid flips the north component, through the transform alone.
    south_up = Affine(10.0, 0.0, 0.0, 0.0, 10.0, 0.0)
    flipped = offsets_to_velocity(field, south_up, CRS, 12.25, reference_id="a", secondary_id="b")
    assert flipped.vy[0, 0] == pytest.approx(2.0 * per_year, rel=1e-6)
    with pytest.raises(InvalidParameter, match="dt_days"):
        offsets_to_velocity(field, TRANSFORM, CRS, 0.0, reference_id="a", secondary_id="b")


def test_baseline_is_never_truncated():
    t0 = datetime(2020, 9, 22, 5, 36, 29, tzinfo=UTC)
    t1 = datetime(2020, 10, 2, 5, 46, 31, tzinfo=UTC)
    assert baseline_days(t0, t1) == pytest.approx(10 + 602 / 86400, abs=1e-12)


@given(seconds=st.integers(1, 10**9))
def test_baseline_days_is_seconds_over_86400(seconds):
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    t1 = datetime.fromtimestamp(t0.timestamp() + seconds, tz=UTC)
    assert baseline_days(t0, t1) == pytest.approx(seconds / 86400.0, rel=1e-12)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("grid", "not on the same grid"),
        ("missing", "does not exist"),
        ("days0", "--dt-days: the baseline"),
        ("daysneg", "--dt-days: the baseline"),
        ("crs", "not on the same grid"),
    ],
)
def test_bad_inputs_give_a_clear_error_and_no_output(pair_files, tmp_path, capsys, case, message):
    ref, sec, pair = pair_files
    days = "10"
    if case == "grid":
        sec = _write(tmp_path / "shifted.tif", pair.secondary, transform=TRANSFORM @ Affine.translation(1, 0))
    elif case == "missing":
        sec = str(tmp_path / "nope.tif")
    elif case == "days0":
        days = "0"
    elif case == "daysneg":
        days = "-3"
    elif case == "crs":
        sec = _write(tmp_path / "crs.tif", pair.secondary, crs="EPSG:32644")
    out = tmp_path / "out.tif"
    assert main(["track", ref, sec, "--dt-days", days, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".*tif*"))


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["track", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dt-days",
        "--out",
        "--grid-spacing-px",
        "--chip-px",
        "--max-velocity-m-per-yr",
        "--engine",
        "--filter",
    ):
        assert option in text


YAHTSE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-l8-yahtse"
YAHTSE_REFERENCE = YAHTSE / "LC80630182016200LGN00_B8_yahtse.TIF"
YAHTSE_SECONDARY = YAHTSE / "LC80630182016216LGN00_B8_yahtse.TIF"


@pytest.mark.skipif(
    not YAHTSE_REFERENCE.is_file(), reason=f"the real Landsat-8 pair is not in {YAHTSE} (../shared is absent)"
)
def test_track_reads_a_landsat8_pair_without_a_nodata_value(tmp_path, capsys):
    """Landsat-8 band 8 (uint16, no nodata value, 15 m) goes through the one raster reader: every
    pixel is data, and the pair gives a velocity grid with the stable-ground scatter of the
    engine on that pair (NMAD 26.8/27.8 m/yr on CARST's slow points with issue 20's settings, tests/test_real_pair_yahtse.py)."""
    image = read_window(str(YAHTSE_REFERENCE))
    assert image.array.dtype == np.uint16 and image.shape == (1087, 1698) and image.valid.all()
    out = tmp_path / "yahtse.tif"
    code = main(
        ["track", str(YAHTSE_REFERENCE), str(YAHTSE_SECONDARY), "--dt-days", "16", "--out", str(out)]
        + ["--max-velocity-m-per-yr", "2000"]
    )
    assert code == 0, capsys.readouterr().err
    product = read_velocity_cog(out)
    assert product.shape == (88, 139)
    assert product.valid_fraction > 0.85
    assert product.correction["stable_shift_method"] == "automatic-mode"
    assert product.correction["stable_vx_nmad_m_per_yr"] < 50.0
    assert product.sources["reference"] == str(YAHTSE_REFERENCE.resolve())


def test_the_command_line_tunes_the_allocator_before_it_runs_anything(monkeypatch):
    """One malloc arena and fixed thresholds (io.memory.tune_allocator), set first thing: a
    thread that already has an arena keeps it. The time it saves is a benchmark figure
    (benchmarks/README.md), not a test."""
    import platform

    import glacier_velocity.cli as cli
    from glacier_velocity.io.memory import tune_allocator

    calls = []
    build_parser = cli.build_parser
    monkeypatch.setattr(cli, "tune_allocator", lambda: calls.append("allocator") or True)
    monkeypatch.setattr(cli, "build_parser", lambda *a: calls.append("parser") or build_parser(*a))
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    assert calls == ["allocator", "parser"]
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tune_allocator()
