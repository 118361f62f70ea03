"""One failing pair does not sink the batch: failed pairs are recorded with their reason,
the rest is aggregated, and the run says "N succeeded / M failed" - while bugs still fail.

Fast tests cover the status records, the run report and its schema, the catalog entry and
both notebooks under papermill; the slow one runs the whole Workflow with cwltool on the demo
stack with one scene's COG truncated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pystac
import pytest
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity import demo
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.errors import InputError
from glacier_velocity.products.catalog import check_catalog, write_catalog
from glacier_velocity.products.runreport import (
    RUN_REPORT_SCHEMA,
    PairStatus,
    RunReport,
    build_run_report,
    read_run_report,
    read_status,
    write_run_report,
    write_status,
)
from glacier_velocity.tracking import TrackingParams
from glacier_velocity.workflow import extract_pairs as scrap
from glacier_velocity.workflow import measure as measure_module
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair
from helpers import REF_TIME, SEC_TIME, X0, Y0, summary_files, write_pair_products, write_scene_cog, write_scene_item

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHAPE = (128, 128)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
# The pairs are a uniform shift: no stable ground to correct on.
PARAMS = CorrelationParams(grid_spacing_px=16, stable_correction=False)
REF_ID, SEC_ID = "S2B_43SEA_20200601_0_L2A", "S2A_43SEA_20200617_0_L2A"


@pytest.fixture
def pair_items(tmp_path):
    synthetic = make_pair(SHAPE, Translation(2.5, -1.5), seed=7)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp_path / "sec_B08.tif", synthetic.secondary, TRANSFORM)
    ref = write_scene_item(tmp_path, REF_ID, REF_TIME, "ref_B08.tif", TRANSFORM, SHAPE)
    sec = write_scene_item(tmp_path, SEC_ID, SEC_TIME, "sec_B08.tif", TRANSFORM, SHAPE)
    return ref, sec, tmp_path


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


# --- attempt_pair: data problems are recorded, bugs propagate ------------------------------------


def test_a_corrupt_scene_fails_the_pair_with_a_reason_naming_the_file(pair_items):
    ref, sec, tmp_path = pair_items
    _truncate(tmp_path / "sec_B08.tif")
    attempt = attempt_pair(ref, sec, tmp_path / "p1", PARAMS, pair_id="p1")
    status = attempt.status
    assert not attempt.succeeded and attempt.products is None
    assert (status.status, status.error_type) == ("failed", "InputError")
    assert "sec_B08.tif" in status.reason
    assert (status.reference_id, status.secondary_id) == (REF_ID, SEC_ID)
    assert status.product is None and status.median_v_m_per_yr is None
    assert not (tmp_path / "p1").exists()  # nothing that looks like a product


def test_an_unreadable_item_fails_the_pair_with_ids_from_the_hrefs(pair_items):
    ref, _, tmp_path = pair_items
    missing = str(tmp_path / "S2A_43SEA_20200701_0_L2A.json")
    status = attempt_pair(ref, missing, tmp_path / "p2", PARAMS).status
    assert status.pair_id == "p2" and status.error_type == "InputError"
    assert status.secondary_id == "S2A_43SEA_20200701_0_L2A" and status.reference_id == REF_ID
    assert "S2A_43SEA_20200701_0_L2A.json" in status.reason


@pytest.mark.parametrize("case", ["uniform cloud over both", "saturated secondary"])
def test_nothing_trackable_fails_the_pair_and_keeps_the_earlier_products(pair_items, case):
    """Real featureless images through the real engine: the pair fails, writes nothing, and
    leaves the earlier run's products as they were (issue 11, finding 9), saying so."""
    ref, sec, tmp_path = pair_items
    out = tmp_path / "p3"
    good = attempt_pair(ref, sec, out, PARAMS)
    assert good.succeeded and len(list(out.iterdir())) == 3
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert good.status.product == "S2_43SEA_20200601_20200617"
    assert good.status.median_v_m_per_yr == pytest.approx(good.products.median_v_m_per_yr)

    # Fresh snow or a uniform cloud: one DN everywhere; saturation: the sensor's maximum.
    flat = np.full(SHAPE, 65535 if case == "saturated secondary" else 8000, dtype="uint16")
    write_scene_cog(tmp_path / "sec_B08.tif", flat, TRANSFORM)
    if case == "uniform cloud over both":
        write_scene_cog(tmp_path / "ref_B08.tif", flat, TRANSFORM)
    failed = attempt_pair(ref, sec, out, PARAMS)
    assert failed.status.error_type == "TrackingFailed"
    assert failed.status.reason.startswith("nothing trackable: none of the 49 grid points matched")
    assert failed.status.reason.endswith(
        f"; the products S2_43SEA_20200601_20200617.* of an earlier run in {str(out)!r} were kept unchanged"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_track_of_featureless_images_exits_non_zero_without_output(tmp_path, capsys):
    from glacier_velocity.cli import main

    synthetic = make_pair(SHAPE, Translation(2.5, -1.5), seed=7)
    write_scene_cog(tmp_path / "ref.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp_path / "flat.tif", np.full(SHAPE, 8000, dtype="uint16"), TRANSFORM)
    code = main(
        [
            "track",
            str(tmp_path / "ref.tif"),
            str(tmp_path / "flat.tif"),
            "--dt-days",
            "16",
            "--out",
            str(tmp_path / "v.tif"),
            "--grid-spacing-px",
            "16",
        ]
    )
    assert code != 0
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("glacier-velocity track: error: nothing trackable: none of the 49 grid points matched")
    defaults = TrackingParams()
    assert_documented(
        message.split("error: ", 1)[1],
        "49",
        f"{defaults.min_peak:g}",
        f"{defaults.min_snr:g}",
        f"{1000 * 16 / 365.25 / 10:.2f}",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.tif", "ref.tif"]  # no v.tif


def test_a_programming_error_is_not_recorded_but_raised(pair_items, monkeypatch):
    ref, sec, tmp_path = pair_items

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(measure_module, "track_offsets", bug)
    with pytest.raises(ZeroDivisionError):
        attempt_pair(ref, sec, tmp_path / "p4", PARAMS)
    with pytest.raises(TypeError):
        PairStatus.failed("p4", "a", "b", ZeroDivisionError("a bug"))  # type: ignore[arg-type]


# --- the run report ------------------------------------------------------------------------------


def _ok(pair_id: str, speed: float = 250.0) -> PairStatus:
    return PairStatus(
        pair_id,
        f"{pair_id}_ref",
        f"{pair_id}_sec",
        f"/items/{pair_id}_ref.json",
        f"/items/{pair_id}_sec.json",
        "succeeded",
        product=f"S2_{pair_id}",
        median_v_m_per_yr=speed,
        valid_fraction=0.9,
    )


def _failed(pair_id: str, reason: str) -> PairStatus:
    return PairStatus.failed(pair_id, f"/items/{pair_id}_ref.json", f"/items/{pair_id}_sec.json", InputError(reason))


def test_run_report_counts_reasons_schema_and_round_trip(tmp_path):
    statuses = [_ok("a"), _failed("b", "cannot read raster 'b_B08.tif': Read failed"), _ok("c", 300.0)]
    paths = [write_status(s, tmp_path / f"status_{s.pair_id}.json") for s in statuses]
    assert read_status(paths[1]) == statuses[1]
    (tmp_path / "a").mkdir()
    (tmp_path / "c").mkdir()
    report = build_run_report(paths, [tmp_path / "a", None, tmp_path / "c"], message="3 pairs from 4 selected")
    assert report.summary_line() == "2 succeeded / 1 failed"
    assert [p.pair_id for p in report.failed] == ["b"]
    assert "failed: b (InputError): cannot read raster 'b_B08.tif'" in report.describe()
    data = report.to_dict()
    jsonschema.validate(data, RUN_REPORT_SCHEMA)
    assert (data["pairs_attempted"], data["pairs_succeeded"], data["pairs_failed"]) == (3, 2, 1)
    assert data["pairs"][1] == {
        "pair_id": "b",
        "reference_id": "b_ref",
        "secondary_id": "b_sec",
        "reference_href": "/items/b_ref.json",
        "secondary_href": "/items/b_sec.json",
        "status": "failed",
        "error_type": "InputError",
        "reason": "cannot read raster 'b_B08.tif': Read failed",
        "product": None,
        "median_v_m_per_yr": None,
        "valid_fraction": None,
    }
    path = write_run_report(report, tmp_path / "run-report.json")
    assert read_run_report(path) == report
    # The schema rejects a failure without a reason and a success without a product.
    broken = json.loads(path.read_text())
    broken["pairs"][1]["reason"] = None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, RUN_REPORT_SCHEMA)


def test_run_report_refuses_inconsistent_inputs(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match=r"\['x'\] have no succeeded pair status"):
        build_run_report([_ok("a")], [tmp_path / "x"])
    with pytest.raises(InputError, match=r"pairs \['a'\] succeeded but their product directories"):
        build_run_report([_ok("a"), _failed("b", "no overlap")], [])
    with pytest.raises(InputError, match="more than once"):
        RunReport((_ok("a"), _ok("a")))
    # Products alone (aggregation run without statuses): each directory is a success.
    alone = build_run_report([], [tmp_path / "x"])
    assert alone.summary_line() == "1 succeeded / 0 failed" and alone.pairs[0].pair_id == "x"
    assert build_run_report([], []).summary_line() == "0 succeeded / 0 failed"


def test_catalog_carries_the_run_report_and_the_counts(tmp_path):

    item_paths = write_pair_products(tmp_path)
    files = summary_files(tmp_path, item_paths)
    statuses = [_ok(f"p{k}") for k in range(len(item_paths))] + [_failed("bad", "cannot read raster 'bad_B08.tif'")]
    report = RunReport(tuple(statuses), "4 pairs")
    catalog_path = write_catalog(tmp_path / "catalog", item_paths, files, run_report=report)
    catalog = pystac.Catalog.from_file(str(catalog_path))
    summary = next(catalog.get_items("velocity-summary"))
    props = summary.properties
    assert props["gv:run_summary"] == "3 succeeded / 1 failed"
    assert (props["gv:pairs_attempted"], props["gv:pairs_succeeded"], props["gv:pairs_failed"]) == (4, 3, 1)
    assert props["gv:product_count"] == 3
    assert props["gv:failed_pairs"] == [
        {"pair_id": "bad", "error_type": "InputError", "reason": "cannot read raster 'bad_B08.tif'"}
    ]
    asset = summary.assets["run_report"]
    assert asset.href == "../run-report.json" and "metadata" in asset.roles
    assert read_run_report(asset.get_absolute_href()) == report
    [link] = [link for link in json.loads(catalog_path.read_text())["links"] if link["rel"] == "describedby"]
    assert link["href"] == "./run-report.json" and link["title"] == "Run report: 3 succeeded / 1 failed"
    assert Path(asset.get_absolute_href()) in check_catalog(catalog_path)


def test_catalog_of_a_run_where_every_pair_failed(tmp_path):
    report = RunReport((_failed("a", "no overlap"), _failed("b", "no overlap")))
    catalog_path = write_catalog(tmp_path / "catalog", [], None, run_report=report)
    catalog = json.loads(catalog_path.read_text())
    assert [link["rel"] for link in catalog["links"] if link["rel"] in ("item", "describedby")] == ["describedby"]
    assert read_run_report(tmp_path / "catalog" / "run-report.json").summary_line() == "0 succeeded / 2 failed"


# --- the notebooks under papermill ----------------------------------------------------------------


def test_correlation_notebook_records_a_failed_pair_and_exits_0(pair_items, run_notebook):
    ref, sec, tmp_path = pair_items
    _truncate(tmp_path / "ref_B08.tif")
    out = tmp_path / "correlation_bad.ipynb"
    parameters = {"reference_href": ref, "secondary_href": sec, "pair_id": "bad", "aoi": None}
    done = run_notebook("02-correlation.ipynb", out, parameters)
    assert done.returncode == 0, done.stderr[-2000:]
    status = read_status(tmp_path / "status_bad.json")
    assert (status.status, status.error_type) == ("failed", "InputError") and "ref_B08.tif" in status.reason
    scraps = scrap.read_scraps(out)
    assert set(scraps) == set(scrap.CORRELATION_SCRAPS)
    assert scraps["status"] == status.to_dict() and scraps["velocity"] == "" and scraps["stats"]["status"] == "failed"
    assert not (tmp_path / "bad").exists()


def test_correlation_notebook_still_fails_on_a_bug(pair_items, run_notebook):
    ref, _, tmp_path = pair_items
    # An href that is no string is a caller's bug (TypeError), not a data problem of the pair.
    done = run_notebook(
        "02-correlation.ipynb",
        tmp_path / "correlation_bug.ipynb",
        {"reference_href": ref, "secondary_href": 12345, "pair_id": "bug", "aoi": None},
    )
    assert done.returncode != 0
    assert "TypeError" in done.stderr
    assert not (tmp_path / "status_bug.json").exists()


def test_aggregation_notebook_fails_with_the_reasons_when_every_pair_failed(tmp_path, run_notebook):
    paths = [write_status(_failed(p, f"cannot read raster '{p}_B08.tif'"), tmp_path / f"status_{p}.json") for p in "ab"]
    out = tmp_path / "aggregation.ipynb"
    done = run_notebook(
        "03-aggregation.ipynb",
        out,
        {
            "products": [None, None],
            "statuses": [str(p) for p in paths],
            "message": "2 pairs from 3 selected of 3 scenes found, tile 43SEA",
        },
    )
    # A run with nothing but failures is a failed run (issue 11, finding 6): non-zero, with the reasons.
    assert done.returncode != 0
    assert "AllPairsFailed" in done.stderr and "every pair attempted failed (0 succeeded / 2 failed)" in done.stderr
    assert "a: cannot read raster 'a_B08.tif'" in done.stderr and "b: cannot read raster 'b_B08.tif'" in done.stderr
    assert read_run_report(tmp_path / "run-report.json").summary_line() == "0 succeeded / 2 failed"
    assert not (tmp_path / "summary").exists()  # no summary maps
    assert (tmp_path / "catalog" / "run-report.json").is_file()


# --- the whole Workflow with one corrupted scene ---------------------------------------------------


@pytest.mark.integration
def test_workflow_completes_with_one_corrupted_scene(tmp_path):
    # 2023 only: four pairs, two of them with the 12 September scene, whose COG is truncated.
    data = demo.generate_demo_data(tmp_path / "data")
    bad_id = "S2A_99XXX_20230912_0_L2A"
    _truncate(data.root / "scenes" / f"{bad_id}_B08.tif")
    result = demo.run_demo(
        tmp_path / "demo", data=data, overrides={"start_year": 2023}, quiet=True
    )  # raises unless exit 0
    outputs, report = result.outputs, result.report

    expected = [pair for pair in demo.expected_pairs() if pair[0].split("_")[2].startswith("2023")]
    assert len(expected) == 4
    assert report is not None and len(report.pairs) == 4
    failed = {(p.reference_id, p.secondary_id) for p in report.failed}
    assert failed == {pair for pair in expected if bad_id in pair}
    assert {(p.reference_id, p.secondary_id) for p in report.succeeded} == {
        pair for pair in expected if bad_id not in pair
    }
    for status in report.failed:
        assert status.error_type == "InputError" and f"{bad_id}_B08.tif" in status.reason
    assert report.summary_line() == "2 succeeded / 2 failed"
    run = result.run
    assert run is not None and run.run_report is not None
    jsonschema.validate(json.loads(run.run_report.read_text()), RUN_REPORT_SCHEMA)

    # Every pair has its notebook and status; only the successes have products.
    assert len(run.correlation_notebooks) == len(run.pair_statuses) == 4
    assert len(run.pairs) == 2 and all(p.quicklook is not None for p in run.pairs)
    assert result.stats["pair_count"] == 2 and result.stats["pairs_failed"] == 2
    assert result.message.startswith("2 succeeded / 2 failed: 2 pairs aggregated")

    import rasterio

    count_map = run.summary_cogs["count"]
    with rasterio.open(count_map) as src:
        assert src.tags()["product_count"] == "2"
        assert int(src.read(1).max()) == 2
    catalog = pystac.Catalog.from_file(str(Path(outputs["catalog"]["path"]) / "catalog.json"))
    summary = next(catalog.get_items("velocity-summary"))
    assert summary.properties["gv:run_summary"] == "2 succeeded / 2 failed"
    assert summary.properties["gv:product_count"] == 2
    assert read_run_report(summary.assets["run_report"].get_absolute_href()) == report
    assert len(list(catalog.get_items())) == 4  # two pairs, the summary and the provenance
    # The recovered speed from the surviving pairs still matches the 2023 truth.
    comparison = demo.compare_with_truth(demo.median_speed_map(outputs), result.truth, truth_map="truth_speed_2023.tif")
    assert abs(comparison.relative_error) < 0.08, comparison.describe()
