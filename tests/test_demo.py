"""The embedded demo: generated stack, STAC items, truth, and its agreement with params/demo.yml."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from glacier_velocity import demo
from glacier_velocity.cli import main
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.cog import write_cog
from glacier_velocity.products.runcatalog import RunCatalog
from glacier_velocity.stac.discovery import DiscoveryParams, discover_pairs
from glacier_velocity.stac.scene import Scene
from glacier_velocity.workflow import runner

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoData:
    return demo.generate_demo_data(tmp_path_factory.mktemp("demo"))


def test_scenes_are_uint16_nir_cogs_on_the_10m_utm_grid(demo_data: demo.DemoData) -> None:
    tifs = sorted((demo_data.root / "scenes").glob("*_B08.tif"))
    assert len(tifs) == len(demo.DEMO_SCENES) == 11
    with rasterio.open(tifs[0]) as src:
        assert src.dtypes == ("uint16",)
        assert src.crs.to_epsg() == 32643
        assert src.res == (10.0, 10.0)
        assert (src.height, src.width) == demo.DEMO_SHAPE
        assert src.nodata == 0
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        image = src.read(1)
    assert image.min() >= 1  # no accidental nodata
    assert 500 < np.median(image) < 9000  # B08-like digital numbers


def test_each_scene_has_a_20m_scene_classification_marking_the_glacier_and_its_clouds(
    demo_data: demo.DemoData,
) -> None:
    features = {f["id"]: f for f in json.loads(demo_data.items.read_text())["features"]}
    for index, scene in enumerate(demo.DEMO_SCENES):
        asset = features[scene.item_id]["assets"]["scl"]
        assert asset["gsd"] == 20.0 and asset["proj:shape"] == [240, 240]
        assert Scene.from_item(features[scene.item_id]).classification_href == asset["href"]
        with rasterio.open(asset["href"]) as src:
            assert src.dtypes == ("uint8",) and src.res == (20.0, 20.0) and src.crs.to_epsg() == 32643
            assert src.bounds.left == demo.DEMO_ORIGIN[0] and src.bounds.top == demo.DEMO_ORIGIN[1]
            scl = src.read(1)
        assert np.array_equal(scl, demo.scene_scl(scene, index))
    # Snow and ice (11) on the glacier, bare ground (5) around it and on the debris-covered
    # terminus, which moves; the 2022-09-08 scene has a cloud (8, 9) over rock.
    index = 4
    scene = demo.DEMO_SCENES[index]
    scl = demo.scene_scl(scene, index)
    rows, cols = np.mgrid[0:240, 0:240] * 2.0 + 0.5  # 20 m cell centres on the 10 m grid
    glacier = demo.velocity_field(2022)
    ice = glacier.ice_mask(rows, cols)
    debris = glacier.debris_mask(rows, cols, demo.DEBRIS_ZONE_FRACTION)
    cloud = np.isin(scl, (8, 9))
    assert (scl[ice & ~debris & ~cloud] == 11).all() and (scl[~ice & ~cloud] == 5).all()
    assert (scl[debris] == 5).all() and 0.05 < debris.mean() < 0.15
    assert demo.true_speed(2022, rows[debris], cols[debris]).max() > 80.0  # it moves
    assert 0.02 < cloud.mean() < 0.08 and not (cloud & ice).any()
    # The cloud is in the image too: brighter than the same rock in the scene before.
    cloudy, clear = (demo.scene_image(demo.DEMO_SCENES[k], k)[::2, ::2].astype(float) for k in (index, 0))
    assert np.median(cloudy[scl == 9] - clear[scl == 9]) > 2000
    assert not np.isin(demo.scene_scl(demo.DEMO_SCENES[0], 0), (8, 9)).any()


def test_items_look_like_earth_search(demo_data: demo.DemoData) -> None:
    features = json.loads(demo_data.items.read_text())["features"]
    first = features[0]
    assert first["id"] == "S2A_99XXX_20220610_0_L2A"
    props = first["properties"]
    assert props["grid:code"] == "MGRS-99XXX"
    assert props["proj:epsg"] == 32643 and props["proj:code"] == "EPSG:32643"
    assert props["s2:product_uri"].startswith("S2A_MSIL2A_20220610T") and "_T99XXX_" in props["s2:product_uri"]
    assert Path(first["assets"]["nir"]["href"]).is_absolute()
    scene = Scene.from_item(first)
    assert (scene.tile, scene.epsg, scene.cloud_cover) == ("99XXX", 32643, 2.1)
    roles = [f["properties"]["glacier_velocity:demo_role"] for f in features]
    assert roles.count("cloudy") == 2 and roles.count("same-month") == 1 and roles.count("off-season") == 1


def test_the_stack_is_deterministic() -> None:
    scene = demo.DEMO_SCENES[3]
    assert np.array_equal(demo.scene_image(scene, 3), demo.scene_image(scene, 3))


def test_the_glacier_moves_by_velocity_times_baseline() -> None:
    # A patch on the fast upstream ice must be found shifted by the known displacement
    # between two scenes of 2023 (25 days), using plain integer-shift correlation.
    used = [s for s in demo.DEMO_SCENES if s.role == "used" and s.datetime.year == 2023]
    reference, secondary = used[1], used[2]
    ref = demo.scene_image(reference, demo.DEMO_SCENES.index(reference)).astype(float)
    sec = demo.scene_image(secondary, demo.DEMO_SCENES.index(secondary)).astype(float)
    row, col = 150, 90
    dt_years = (secondary.datetime - reference.datetime).total_seconds() / 86400 / 365.25
    dx, dy = demo.velocity_field(2023).scaled(dt_years / demo.FIELD_YEARS).displacement(row, col)
    # Plus the pair's misregistration: the two scenes' geolocation errors differ.
    (rx, ry), (sx, sy) = (demo.geolocation_error(demo.DEMO_SCENES.index(s)) for s in (reference, secondary))
    dx, dy = dx + sx - rx, dy + sy - ry
    chip = ref[row - 16 : row + 16, col - 16 : col + 16]
    best, best_score = (0, 0), -np.inf
    for sr in range(-8, 9):
        for sc in range(-8, 9):
            window = sec[row - 16 + sr : row + 16 + sr, col - 16 + sc : col + 16 + sc]
            score = np.corrcoef(chip.ravel(), window.ravel())[0, 1]
            if score > best_score:
                best, best_score = (sr, sc), score
    assert np.hypot(dx, dy) > 2.0  # the test point really moves
    assert best == (round(float(dy)), round(float(dx)))


def test_discovery_picks_the_expected_scenes_and_pairs(demo_data: demo.DemoData) -> None:
    with serve_stac([demo_data.collection, demo_data.items]) as url:
        result = discover_pairs(
            DiscoveryParams(
                stac_url=url,
                aoi=demo_data.bbox,
                start_year=2022,
                end_year=2023,
                start_month=demo.DEMO_START_MONTH,
                end_month=demo.DEMO_END_MONTH,
                max_cloud_cover=demo.DEMO_MAX_CLOUD_COVER,
                pairs_per_image=demo.DEMO_PAIRS_PER_IMAGE,
                max_baseline_days=demo.DEMO_MAX_BASELINE_DAYS,
            )
        )
    assert [s.id for s in result.scenes_selected] == [s.item_id for s in demo.DEMO_SCENES if s.role == "used"]
    assert [(p.reference.id, p.secondary.id) for p in result.pairs] == demo.expected_pairs()
    assert [round(p.dt_days, 6) for p in result.pairs] == [25.0, 65.0, 50.0, 25.0, 50.0, 25.0]


def test_params_demo_yml_matches_the_demo_constants() -> None:
    job = yaml.safe_load((ROOT / "params" / "demo.yml").read_text())
    assert parse_aoi(job["aoi"]).bbox == demo.demo_bbox()
    assert (job["start_year"], job["end_year"]) == (2022, 2023)
    assert (job["start_month"], job["end_month"]) == (demo.DEMO_START_MONTH, demo.DEMO_END_MONTH)
    assert job["max_cloud_cover"] == demo.DEMO_MAX_CLOUD_COVER
    assert job["pairs_per_image"] == demo.DEMO_PAIRS_PER_IMAGE
    assert job["max_baseline_days"] == demo.DEMO_MAX_BASELINE_DAYS


def test_truth_records_year_speeds_and_expected_pairs(demo_data: demo.DemoData) -> None:
    truth = json.loads(demo_data.truth.read_text())
    assert [(p["reference"], p["secondary"]) for p in truth["pairs"]] == demo.expected_pairs()
    assert [p["year"] for p in truth["pairs"]] == [2022, 2022, 2023, 2023, 2023, 2023]
    assert truth["glacier_median_speed_m_per_yr"]["2023"] > truth["glacier_median_speed_m_per_yr"]["2022"]
    fastest = {}
    for year in (2022, 2023):
        with rasterio.open(demo_data.root / f"truth_speed_{year}.tif") as src:
            speed = src.read(1)
        fastest[year] = float(speed.max())
        assert float(speed.min()) == 0.0  # stable ground
    # The same flow pattern at 250 and 400 m/yr at the upstream edge (pixel centres lie inside).
    assert fastest[2023] / fastest[2022] == pytest.approx(400 / 250, rel=1e-5)
    assert fastest[2023] == pytest.approx(400.0, rel=0.05)
    # Four of the six pairs are from 2023: the per-pixel median is the 2023 speed.
    with (
        rasterio.open(demo_data.root / truth["median_speed_map"]) as a,
        rasterio.open(demo_data.root / "truth_speed_2023.tif") as b,
    ):
        np.testing.assert_allclose(a.read(1), b.read(1))


def test_every_scene_has_its_own_recorded_geolocation_error(demo_data: demo.DemoData) -> None:
    truth = json.loads(demo_data.truth.read_text())
    errors = [demo.geolocation_error(i) for i in range(len(demo.DEMO_SCENES))]
    lengths = [float(np.hypot(*e)) for e in errors]
    # Sub-pixel to about 1 px, a different one per acquisition, deterministic.
    assert all(0.25 <= n <= 1.0 for n in lengths) and len(set(errors)) == len(errors)
    assert errors == [demo.geolocation_error(i) for i in range(len(demo.DEMO_SCENES))]
    recorded = truth["geolocation_error_px"]
    for scene, (dx, dy) in zip(demo.DEMO_SCENES, errors, strict=True):
        assert recorded[scene.item_id] == {"dx": dx, "dy": dy}
    # Each pair records secondary minus reference; some pairs are off by more than 1 px.
    shifts = []
    for pair in truth["pairs"]:
        ref, sec = recorded[pair["reference"]], recorded[pair["secondary"]]
        assert pair["misregistration_px"] == {
            "dx": round(sec["dx"] - ref["dx"], 4),
            "dy": round(sec["dy"] - ref["dy"], 4),
        }
        shifts.append(np.hypot(pair["misregistration_px"]["dx"], pair["misregistration_px"]["dy"]))
    assert max(shifts) > 1.0 and min(shifts) > 0.2


def test_the_truth_check_is_3_percent_and_10_m_per_yr() -> None:
    def comparison(relative: float, mae: float) -> demo.TruthComparison:
        return demo.TruthComparison(243.6 * (1 + relative), 243.6, 243.6 * relative, relative, mae, 459, 1.0)

    assert comparison(-0.029, 9.9).passed and comparison(0.03, 10.0).passed
    assert not comparison(-0.031, 4.0).passed
    # With the correction off the demo's median stays close (the pairs' shifts cancel in the
    # median) but the per-point error does not: 14.3 m/yr measured (design 0006).
    assert not comparison(-0.009, 14.3).passed
    assert "FAILS the check" in comparison(-0.009, 14.3).describe()


def test_compare_with_truth_measures_the_error(demo_data: demo.DemoData, tmp_path: Path) -> None:
    truth = json.loads(demo_data.truth.read_text())
    with rasterio.open(demo_data.root / truth["median_speed_map"]) as src:
        true_map, transform, crs = src.read(1), src.transform, src.crs
    # Sample every 12th pixel, like a tracking grid, and make the recovered map 10 % too fast.
    coarse = true_map[6::12, 6::12] * 1.1
    grid = transform @ rasterio.Affine.scale(12)
    write_cog(tmp_path / "median.tif", {"v": coarse}, grid, crs)
    result = demo.compare_with_truth(tmp_path / "median.tif", demo_data.truth)
    assert result.relative_error == pytest.approx(0.1, abs=0.01)
    assert result.coverage == pytest.approx(1.0)
    assert result.n_points > 200


def test_compare_with_truth_reads_a_pair_products_speed_band(demo_data: demo.DemoData, tmp_path: Path) -> None:
    # A pair's velocity COG holds vx first: its speed is the band named v (east alone read 30 % slow).
    truth = json.loads(demo_data.truth.read_text())
    with rasterio.open(demo_data.root / truth["median_speed_map"]) as src:
        true_map, transform, crs = src.read(1), src.transform, src.crs
    coarse, grid = true_map[6::12, 6::12], transform @ rasterio.Affine.scale(12)
    write_cog(tmp_path / "pair.tif", {"vx": 0.7 * coarse, "vy": 0.7 * coarse, "v": 1.05 * coarse}, grid, crs)
    assert demo.compare_with_truth(tmp_path / "pair.tif", demo_data.truth).relative_error == pytest.approx(
        0.05, abs=0.01
    )
    write_cog(tmp_path / "parts.tif", {"vx": coarse, "vy": coarse}, grid, crs)
    with pytest.raises(InputError, match=r"2 bands \('vx', 'vy'\) and none is the speed 'v'"):
        demo.compare_with_truth(tmp_path / "parts.tif", demo_data.truth)


def test_compare_with_truth_refuses_an_empty_map(demo_data: demo.DemoData, tmp_path: Path) -> None:
    empty = np.full((10, 10), np.nan, dtype=np.float32)
    write_cog(tmp_path / "empty.tif", {"v": empty}, demo.demo_transform() @ rasterio.Affine.scale(48), "EPSG:32643")
    with pytest.raises(InputError, match="no valid speed"):
        demo.compare_with_truth(tmp_path / "empty.tif", demo_data.truth)


def test_write_job_fills_in_the_stac_url(tmp_path: Path) -> None:
    job = runner.write_job(ROOT / "params" / "demo.yml", tmp_path / "job.yml", stac_url="http://127.0.0.1:4321")
    loaded = yaml.safe_load(job.read_text())
    assert loaded["stac_url"] == "http://127.0.0.1:4321"
    assert parse_aoi(loaded["aoi"]).bbox == demo.demo_bbox()


def test_workflow_env_puts_this_interpreter_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert runner.workflow_env()["PATH"].split(":")[:2] == [str(Path(sys.executable).parent), "/usr/bin"]


def test_demo_subcommand_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    assert "synthetic" in capsys.readouterr().out


def test_demo_report_lines_say_where_what_and_how_right(tmp_path):
    comparison = demo.TruthComparison(
        recovered_m_per_yr=240.5,
        true_m_per_yr=243.6,
        error_m_per_yr=-3.1,
        relative_error=-3.1 / 243.6,
        pixel_mae_m_per_yr=4.6,
        n_points=459,
        coverage=1.0,
    )
    outputs = {"catalog": {"path": str(tmp_path / "catalog")}}
    run = RunCatalog(catalog=tmp_path / "catalog" / "catalog.json", summary_figure=tmp_path / "s.png")
    result = demo.DemoResult(
        outdir=tmp_path,
        outputs=outputs,
        message="6 succeeded / 0 failed",
        stats={},
        comparison=comparison,
        truth=tmp_path / "truth.json",
        run=run,
    )
    lines = result.report_lines()
    assert lines[0] == f"results: {tmp_path}"
    assert lines[1] == f"STAC catalog: {tmp_path / 'catalog' / 'catalog.json'}"
    assert lines[2] == f"summary figure: {tmp_path / 's.png'}"
    assert lines[3] == "summary: 6 succeeded / 0 failed"
    assert lines[4].startswith("truth: median glacier speed 240.5 m/yr recovered vs 243.6 m/yr true")
    empty = demo.DemoResult(
        outdir=tmp_path, outputs={}, message="no pairs", stats={}, comparison=None, truth=tmp_path / "truth.json"
    )
    assert empty.report_lines()[-1] == "truth: no median speed map was produced, nothing to compare"


def test_a_larger_stack_keeps_the_glaciers_speeds_and_pairs_by_the_same_rule() -> None:
    # The workflow benchmark's kind of stack: one scene a month, May to October, 1000 px.
    scenes = tuple(
        demo.DemoScene(datetime(2023, month, 10, 5, 52, 31, tzinfo=UTC), "S2A", 1.0, "used") for month in range(5, 11)
    )
    stack = demo.DemoStack(scenes=scenes, shape=(1000, 1000))
    pairs = demo.expected_pairs(stack)
    # 2 pairs per image, baselines up to 70 days: each scene with the next two (30 and 61 days).
    assert pairs == [(a.item_id, b.item_id) for i, a in enumerate(scenes) for b in scenes[i + 1 : i + 3]]
    assert len(pairs) == 9
    rows, cols = np.mgrid[0:1000:4, 0:1000:4].astype(float)
    small_rows, small_cols = np.mgrid[0:480:4, 0:480:4].astype(float)
    fastest = demo.true_speed(2023, rows, cols, stack.shape).max()
    assert fastest == pytest.approx(demo.true_speed(2023, small_rows, small_cols).max(), rel=0.02)
    image = demo.scene_image(scenes[0], 0, stack.shape)
    assert image.shape == (1000, 1000) and image.dtype == np.uint16 and image.min() >= 1
    west, south, east, north = demo.demo_bbox(stack.shape)
    small = demo.demo_bbox()
    # The same upper-left corner, a box about 1000/480 times as large.
    assert (east - west) / (small[2] - small[0]) == pytest.approx(1000 / 480, rel=0.01)


def test_a_stack_outside_the_velocity_fields_is_refused() -> None:
    scene = demo.DemoScene(datetime(2021, 7, 1, tzinfo=UTC), "S2A", 1.0, "used")
    with pytest.raises(InvalidParameter, match="scenes"):
        demo.DemoStack(scenes=(scene,))
    with pytest.raises(InvalidParameter, match="shape"):
        demo.DemoStack(shape=(64, 64))


@pytest.mark.deploy  # toil_command finds toil-cwl-runner, of the deploy extra
def test_toil_command_per_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    cwl, job, out = tmp_path / "wf.cwl", tmp_path / "job.yml", tmp_path / "out"
    slurm = runner.toil_command(cwl, job, out, runner="toil-slurm", work_dir=tmp_path)
    assert slurm[0].endswith("toil-cwl-runner")
    assert slurm[1:] == [
        "--no-container",
        "--batchSystem",
        "slurm",
        "--preserve-entire-environment",  # of toil_env(): only what Toil and the steps need
        "--jobStore",
        f"file:{tmp_path / 'jobstore'}",
        "--workDir",
        str(tmp_path / "work"),
        "--logFile",
        str(tmp_path / runner.TOIL_LOG),
        "--outdir",
        str(out),
        str(cwl),
        str(job),
    ]
    single = runner.toil_command(cwl, job, out, runner="toil", work_dir=tmp_path, max_cores=2)
    assert single[1:6] == ["--no-container", "--batchSystem", "single_machine", "--maxCores", "2"]
    with pytest.raises(InvalidParameter, match="runner"):
        runner.toil_command(cwl, job, out, runner="slurm", work_dir=tmp_path)
    with pytest.raises(InvalidParameter, match="work_dir"):
        runner.run_workflow(cwl, job, out, runner="toil")
