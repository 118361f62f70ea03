"""Stage 3 once: the aggregation notebook and ``glacier-velocity aggregate`` write the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.products.runreport import PairStatus, read_run_report, write_status
from glacier_velocity.workflow import extract_pairs as scrap
from glacier_velocity.workflow.aggregate import AggregationParams, aggregate_run, resolve_products
from helpers import write_pair_products

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _status(pair_id: str, product: str | None = None, reason: str | None = None) -> PairStatus:
    return PairStatus(
        pair_id=pair_id,
        reference_id=f"{pair_id}_ref",
        secondary_id=f"{pair_id}_sec",
        reference_href=f"{pair_id}_ref.json",
        secondary_href=f"{pair_id}_sec.json",
        status="failed" if reason else "succeeded",
        error_type="InputError" if reason else None,
        reason=reason,
        product=product,
    )


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    """Three pair product directories as the correlation step writes them, and four statuses (one failed)."""
    tmp = tmp_path_factory.mktemp("pairs")
    items = write_pair_products(tmp)
    dirs = []
    for k, item in enumerate(items):
        directory = tmp / f"p{k}"
        directory.mkdir()
        for path in (item, item.with_suffix(".tif")):
            shutil.move(path, directory / path.name)
        dirs.append(directory)
    statuses = [write_status(_status(d.name, next(d.glob("*.tif")).stem), tmp / f"status_{d.name}.json") for d in dirs]
    statuses.append(write_status(_status("bad", reason="cannot read raster 'bad_B08.tif'"), tmp / "status_bad.json"))
    return dirs, statuses


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".ipynb")


def test_notebook_and_cli_write_the_same_files(run_inputs, tmp_path):
    dirs, statuses = run_inputs
    cli_out = tmp_path / "cli"
    argv = ["aggregate", *map(str, dirs)]
    assert (
        main(
            [
                *argv,
                "--statuses",
                *map(str, statuses),
                "--out-dir",
                str(cli_out),
                "--min-count",
                "2",
                "--resampling",
                "bilinear",
                "--message",
                "4 pairs",
            ]
        )
        == 0
    )

    nb_out = tmp_path / "notebook"
    nb_out.mkdir()
    parameters = {
        "products": [str(dirs[0]), None, str(dirs[1]), str(dirs[2])],
        "statuses": list(map(str, statuses)),
        "message": "4 pairs",
        "min_count": 2,
        "resampling": "bilinear",
    }
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(BIN / "papermill"),
            str(ROOT / "notebooks" / "03-aggregation.ipynb"),
            "aggregation.ipynb",
            "--kernel",
            "python3",
            "--no-progress-bar",
            "-y",
            json.dumps(parameters),
        ],
        cwd=nb_out,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    assert _tree(cli_out) == _tree(nb_out)
    assert "summary/summary_median_v.tif" in _tree(cli_out) and "catalog/catalog.json" in _tree(cli_out)
    for out in (cli_out, nb_out):
        report = read_run_report(out / "run-report.json")
        assert report.summary_line() == "3 succeeded / 1 failed" and report.message == "4 pairs"
        with rasterio.open(out / "summary" / "summary_median_v.tif") as src:
            assert src.tags()["min_count"] == "2"
            median = src.read(1)
        # Speeds 100, 120, 80 m/yr, pixel (k, k) missing in pair k: two valid maps there, three elsewhere.
        assert median[0, 1] == 100.0 and median[0, 0] == 100.0 and median[1, 1] == 90.0
    assert read_run_report(cli_out / "run-report.json") == read_run_report(nb_out / "run-report.json")
    scraps = scrap.read_scraps(nb_out / "aggregation.ipynb")
    assert (
        scraps["message"] == "3 succeeded / 1 failed: 3 pairs aggregated, median speed over moving ground (speed above "
        "3 times its error; no glacier outlines given) (20 cells): 2021 110.0 +/- 7.1 m/yr (2 pairs), "
        "2022 80.0 +/- 10.0 m/yr (1 pair), 100 % of the grid measured"
    )
    assert scraps["stats"]["pairs"][1]["median_v_m_per_yr"] == 120.0


def test_min_count_masks_pixels_measured_by_fewer_pairs_but_counts_them(run_inputs, tmp_path):
    dirs, _ = run_inputs
    result = aggregate_run(dirs, tmp_path, AggregationParams(min_count=3))
    assert result.summary is not None
    median, count = result.summary.median_v, result.summary.count
    # Pixel (k, k) is missing in pair k: two maps there, fewer than 3, so no median; three elsewhere.
    assert [int(count[k, k]) for k in range(3)] == [2, 2, 2] and int(count[0, 1]) == 3
    assert all(np.isnan(median[k, k]) for k in range(3)) and median[0, 1] == 100.0
    assert result.stats()["pairs_succeeded"] == 3
    # Products alone: each directory is a pair that succeeded, named after it.
    assert [p.pair_id for p in result.report.pairs] == ["p0", "p1", "p2"]


def test_nothing_to_aggregate_writes_the_report_and_an_empty_catalog(tmp_path):
    result = aggregate_run([None, ""], tmp_path, message="no pairs found: 0 scenes")
    assert result.summary is None and not (tmp_path / "summary").exists()
    assert result.message == "no velocity products to aggregate (no pairs found: 0 scenes); 0 succeeded / 0 failed"
    assert json.loads(result.catalog.read_text())["title"] == "Glacier surface velocity: no products"
    assert result.stats()["pair_count"] == 0


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"min_count": 0}, "min_count"),
        ({"min_count": True}, "min_count"),
        ({"min_count": 1.5}, "min_count"),
        ({"resampling": "cubic"}, "resampling"),
    ],
)
def test_bad_settings_name_the_parameter(changes, parameter):
    with pytest.raises(InvalidParameter) as info:
        AggregationParams(**changes)
    assert info.value.parameter == parameter and str(info.value).startswith(f"{parameter}: ")


def test_a_directory_without_a_product_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="holds no velocity COG"):
        resolve_products([tmp_path])


def _write_pairs(tmp_path: Path, products) -> list[str]:
    """Each product as a pair product directory ``p<k>`` holding its velocity COG."""
    from glacier_velocity.io.cog import write_velocity_cog

    dirs = []
    for k, product in enumerate(products):
        directory = tmp_path / f"p{k}"
        directory.mkdir()
        write_velocity_cog(product, directory / f"pair{k}.tif")
        dirs.append(str(directory))
    return dirs


def test_outlines_points_and_the_error_threshold_reach_the_summary_and_the_run_report(tmp_path, capsys):
    """Through the CLI: the headline is over the outlines (given as GeoJSON text), the noisy pair
    is left out and the run report says so, the points of interest get their own time series."""
    from glacier_velocity.io.outlines import read_glacier_outlines
    from helpers import ICE, ice_and_rock, pair_series

    # Pair errors 30, 40 and 150 m/yr: the last is above max_pair_error_m_per_yr = 100.
    products = pair_series([ice_and_rock(), ice_and_rock(), ice_and_rock(900.0)], [30.0, 40.0, 150.0])
    dirs = _write_pairs(tmp_path, products)
    outlines = json.dumps(ICE.to_geojson())
    assert read_glacier_outlines(outlines).geometry.area > 0
    out = tmp_path / "out"
    code = main(
        [
            "aggregate",
            *dirs,
            "--out-dir",
            str(out),
            "--glacier-outlines",
            outlines,
            "--points-of-interest",
            "15.0027,63.1331",
            "--max-pair-error-m-per-yr",
            "100",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 pairs aggregated, 1 left out (" in printed
    assert "median speed 200.0 +/- " in printed and "m/yr over glacier outlines (12 cells)" in printed
    report = read_run_report(out / "run-report.json")
    assert [p.pair_id for p in report.left_out] == ["p2"]
    assert report.left_out[0].v_error_m_per_yr == pytest.approx(150.0)
    assert "exceeds max_pair_error_m_per_yr = 100 m/yr" in report.left_out[0].reason
    assert json.loads((out / "run-report.json").read_text())["pairs_left_out"][0]["pair_id"] == "p2"
    # The same, through the library with the threshold raised: nothing left out.
    result = aggregate_run(
        dirs, tmp_path / "lib", AggregationParams(max_pair_error_m_per_yr=200.0, glacier_outlines=outlines)
    )
    assert result.report.left_out == () and result.summary is not None and result.summary.product_count == 3
    assert result.stats()["headline_region"] == "glacier outlines" and result.stats()["pairs_left_out"] == []
    # And through the CLI with no threshold at all.
    assert main(["aggregate", *dirs, "--out-dir", str(tmp_path / "all"), "--max-pair-error-m-per-yr", "none"]) == 0
    assert "3 pairs aggregated" in capsys.readouterr().out
    assert read_run_report(tmp_path / "all" / "run-report.json").left_out == ()


def test_a_bad_outlines_file_stops_aggregation_before_anything_is_written(tmp_path, run_inputs):
    dirs, statuses = run_inputs
    with pytest.raises(InvalidParameter, match="^glacier_outlines: "):
        aggregate_run(
            dirs,
            tmp_path / "out",
            AggregationParams(glacier_outlines=str(tmp_path / "missing.geojson")),
            statuses=statuses,
        )
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidParameter, match="^max_pair_error_m_per_yr: "):
        AggregationParams(max_pair_error_m_per_yr=0.0)


def _uncorrected_products(n: int):
    """``n`` pairs whose stable-ground correction could not run (raw speeds, no errors)."""
    from dataclasses import replace
    from datetime import timedelta

    from helpers import T0, ice_and_rock, make_product

    warning = "only 12 stable points (at least 100 needed): no stable-ground correction applied; give glacier outlines"
    record = {"stable_shift_method": "none", "stable_shift_applied": False, "stable_shift_warning": warning}
    return [
        replace(
            make_product(
                ice_and_rock(380.0),
                reference_datetime=T0 + timedelta(days=300 + 40 * k),
                name=f"raw{k}",
                error_m_per_yr=None,
            ),
            correction=dict(record),
        )
        for k in range(n)
    ]


def test_uncorrected_pairs_are_left_out_and_listed_in_the_run_report_and_the_notebook(tmp_path, capsys):
    from helpers import ice_and_rock, pair_series

    products = pair_series([ice_and_rock(260.0)], [30.0]) + _uncorrected_products(2)
    dirs = _write_pairs(tmp_path, products)
    result = aggregate_run(dirs, tmp_path / "out")
    assert result.summary is not None and result.summary.product_count == 1
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert [(p["pair_id"], p["cause"], p["v_error_m_per_yr"]) for p in report["pairs_left_out"]] == [
        ("p1", "not_corrected", None),
        ("p2", "not_corrected", None),
    ]
    reason = report["pairs_left_out"][0]["reason"]
    assert "only 12 stable points" in reason
    assert_documented(reason, _uncorrected_products(1)[0].correction["stable_shift_warning"])
    table = result.left_out_table().splitlines()
    assert table[0] == "2 pair(s) left out of the summary:"
    assert table[1].startswith("  p1 [not_corrected]: no stable-ground correction (only 12 stable points")
    assert "median speed 260.0 +/- 30.0 m/yr" in result.message and "2 left out" in result.message
    # min_count 2 with one pair left: the step fails naming the option, the run report lists the pairs.
    assert main(["aggregate", *dirs, "--out-dir", str(tmp_path / "cli"), "--min-count", "2"]) == 2
    err = capsys.readouterr().err
    assert "--min-count: 2 is more than the 1 pair(s) left after 2 of 3 were left out" in err
    message = err.split("error: ", 1)[1].strip()
    pairs = message.split("were left out (", 1)[1].split("), so no pixel", 1)[0]
    assert_documented(message, "2", "1", "3", pairs, str(tmp_path / "cli" / "run-report.json"))
    assert [p.cause for p in read_run_report(tmp_path / "cli" / "run-report.json").left_out] == ["not_corrected"] * 2
    # --keep-uncorrected-pairs keeps them: no +/- then, and the headline says why.
    assert main(["aggregate", *dirs, "--out-dir", str(tmp_path / "kept"), "--keep-uncorrected-pairs"]) == 0
    assert "no +/-: 2 of the 3 pairs aggregated have no error estimate" in capsys.readouterr().out
    kept = aggregate_run(dirs, tmp_path / "lib", AggregationParams(keep_uncorrected_pairs=True)).summary
    assert kept is not None and kept.product_count == 3
    ids = ", ".join(x.pair_id for x in result.summary.excluded)
    # The pairs span two years (one per year in the headline): 2021 with its error, 2022 without.
    years = ", ".join(y.describe() for y in kept.years)
    assert years == "2021 260.0 +/- 30.0 m/yr (1 pair), 2022 380.0 m/yr (2 pairs)"
    assert_documented(kept.headline(), kept.region_name, str(kept.region_cells), years, "2", "3", ids)


def test_the_datacube_flags_every_layer_the_summary_left_out(tmp_path):
    import xarray as xr

    from helpers import ice_and_rock, pair_series

    # One corrected pair (2021-06-03), two the correction could not run on (2022-03-30, 2022-05-09),
    # and one whose error (150 m/yr) exceeds max_pair_error_m_per_yr (2022-07-18).
    products = pair_series([ice_and_rock(260.0)], [30.0]) + _uncorrected_products(2)
    noisy = pair_series([ice_and_rock(250.0)] * 12, [150.0] * 12)[-1]
    dirs = _write_pairs(tmp_path, [*products, noisy])
    result = aggregate_run(dirs, tmp_path / "out")
    assert result.summary is not None and [x.cause for x in result.summary.excluded] == [
        "not_corrected",
        "not_corrected",
        "error_above_threshold",
    ]
    reasons = {x.pair_id: x.reason for x in result.summary.excluded}
    with xr.open_dataset(tmp_path / "out" / "summary" / "velocity_datacube.nc") as cube:
        assert cube.sizes["mid_date"] == 4  # every pair is in the cube
        assert list(cube.in_summary.values) == [1, 0, 0, 0]
        ids = [f"{a}__{b}" for a, b in zip(cube.id_img1.values, cube.id_img2.values, strict=True)]
        assert list(cube.summary_exclusion_reason.values) == ["", *(reasons[i] for i in ids[1:])]
        assert "max_pair_error_m_per_yr = 100 m/yr" in str(cube.summary_exclusion_reason.values[3])


def test_a_run_whose_every_pair_is_uncorrected_fails_after_writing_the_run_report(tmp_path):
    from glacier_velocity.errors import PairsLeftOut

    dirs = _write_pairs(tmp_path, _uncorrected_products(2))
    with pytest.raises(
        PairsLeftOut, match="^keep_uncorrected_pairs: every pair was left out of the summary: 2 not corrected"
    ) as caught:
        aggregate_run(dirs, tmp_path / "out")
    message = str(caught.value)
    pairs = message.split("summary: ", 1)[1].split("; nothing", 1)[0]
    assert_documented(message, pairs, str(tmp_path / "out" / "run-report.json"))
    report = read_run_report(tmp_path / "out" / "run-report.json")
    assert [p.pair_id for p in report.left_out] == ["p0", "p1"]
    assert (tmp_path / "out" / "catalog" / "catalog.json").is_file()
    assert not (tmp_path / "out" / "summary").exists()
