"""The CWL tools and Workflow: validation, metadata conventions, inputs mirroring the library,
and real cwltool runs (one pair alone, a scatter over one pair, zero pairs, the full demo)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml
from shapely.geometry import Point, box

from glacier_velocity import demo
from glacier_velocity.demo.scenes import demo_glacier_outlines
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.workflow import runner
from glacier_velocity.workflow.progress import PairProgress
from helpers import cf_compliance_failures

ROOT = Path(__file__).resolve().parents[1]
CWL = ROOT / "cwl"
CWL_FILES = sorted(CWL.glob("*.cwl"))
TOOLS = [p for p in CWL_FILES if p.name != "glacier-velocity.cwl"]
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

#: Tolerance of the single-pair runs: one 2022 pair's median glacier speed within 8 % of the truth.
MEDIAN_TOLERANCE = 0.08


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _ids(section) -> dict:
    return section if isinstance(section, dict) else {entry["id"]: entry for entry in section}


def test_there_are_the_expected_cwl_files() -> None:
    assert [p.name for p in CWL_FILES] == [
        "aggregate.cwl",
        "collect.cwl",
        "correlate.cwl",
        "discover.cwl",
        "extract_pairs.cwl",
        "glacier-velocity.cwl",
    ]


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_every_tool_is_a_notebook_or_a_subcommand(path: Path) -> None:
    """One launch style per kind of step: papermill runs a notebook, or the console script runs a
    registered subcommand (never ``python -m``, which skips the CLI's one-line errors)."""
    from glacier_velocity.cli import COMMANDS

    command = _load(path)["baseCommand"]
    command = [command] if isinstance(command, str) else command
    if command != ["papermill"]:
        assert command[0] == "glacier-velocity" and len(command) == 2, command
        assert command[1].replace("-", "_") in COMMANDS, command


@pytest.mark.parametrize("path", CWL_FILES, ids=lambda p: p.name)
def test_cwltool_validates(path: Path) -> None:
    from cwltool.main import main as cwltool_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cwltool_main(["--quiet", "--validate", str(path)], stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()


def test_workflow_metadata_and_naming() -> None:
    workflow = _load(CWL / "glacier-velocity.cwl")
    assert workflow["id"] == "glacier-velocity"
    assert workflow["label"] and workflow["doc"]
    for section in ("inputs", "outputs", "steps"):
        for name, entry in _ids(workflow[section]).items():
            assert SNAKE.match(name), name
            assert entry.get("label") and entry.get("doc"), f"{section}/{name} needs label and doc"
    assert all(name.startswith("node_") for name in workflow["steps"])
    # One output, the catalog of the run: what an ADES stages out as one Directory.
    output_types = {name: entry["type"] for name, entry in workflow["outputs"].items()}
    assert output_types == {"catalog": "Directory"}
    assert workflow["outputs"]["catalog"]["outputSource"] == "node_collect/catalog"
    collect = workflow["steps"]["node_collect"]["in"]
    assert collect["aggregation_catalog"] == "node_aggregate/catalog"
    assert collect["notebooks"]["source"] == [
        "node_discover/executed_notebook",
        "node_correlate/executed_notebook",
        "node_aggregate/executed_notebook",
    ]
    assert collect["records"]["source"] == ["node_discover/pairs_json", "node_correlate/status"]


def test_a_failed_pair_yields_a_status_and_null_products() -> None:
    # The correlation tool's products are optional (a failed pair has none) and its status is
    # not; the Workflow drops the nulls before aggregation and in its outputs.
    outputs = _load(CWL / "correlate.cwl")["outputs"]
    assert {name: outputs[name]["type"] for name in ("product", "velocity", "quicklook", "item", "status")} == {
        "product": "Directory?",
        "velocity": "File?",
        "quicklook": "File?",
        "item": "File?",
        "status": "File",
    }
    workflow = _load(CWL / "glacier-velocity.cwl")
    products = workflow["steps"]["node_aggregate"]["in"]["products"]
    assert products["pickValue"] == "all_non_null" and products["source"] == ["node_correlate/product"]
    assert workflow["steps"]["node_aggregate"]["in"]["statuses"] == "node_correlate/status"


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_tools_carry_requirements_hints_and_docs(path: Path) -> None:
    tool = _load(path)
    assert tool["class"] == "CommandLineTool"
    assert tool["id"] == path.stem and SNAKE.match(tool["id"])
    assert tool["label"] and tool["doc"]
    assert "DockerRequirement" in tool["hints"] and "DockerRequirement" not in tool["requirements"]
    assert {"ResourceRequirement", "NetworkAccess"} <= set(tool["requirements"])
    for section in ("inputs", "outputs"):
        for name, entry in tool[section].items():
            assert SNAKE.match(name), name
            assert entry.get("label") and entry.get("doc"), f"{path.name} {section}/{name} needs label and doc"


def test_the_correlation_step_sets_the_command_lines_malloc_settings() -> None:
    # The notebook's kernel never runs the command line's tune_allocator; the step's environment
    # carries the same settings, which glibc reads at process start.
    from glacier_velocity.io.memory import ALLOCATOR_ENVIRONMENT

    env = _load(CWL / "correlate.cwl")["requirements"]["EnvVarRequirement"]["envDef"]
    assert (
        env
        == ALLOCATOR_ENVIRONMENT
        == {
            "MALLOC_ARENA_MAX": "1",
            "MALLOC_MMAP_THRESHOLD_": "33554432",
            "MALLOC_TRIM_THRESHOLD_": "536870912",
        }
    )


@pytest.mark.parametrize("name", ["discover.cwl", "correlate.cwl", "aggregate.cwl"])
def test_notebook_tools_run_papermill_with_the_registered_engine(name: str) -> None:
    from importlib.metadata import entry_points

    from glacier_velocity.workflow.notebook_engine import ENGINE_NAME, NotebookEngine

    tool = _load(CWL / name)
    assert tool["baseCommand"] == "papermill"
    engines = [a["valueFrom"] for a in tool["arguments"] if isinstance(a, dict) and a.get("prefix") == "--engine"]
    assert engines == [ENGINE_NAME]
    (registered,) = [e for e in entry_points(group="papermill.engine") if e.name == ENGINE_NAME]
    assert registered.load() is NotebookEngine


@pytest.mark.parametrize(
    "order",
    ["glacier_velocity.workflow.notebook_engine, papermill", "papermill, glacier_velocity.workflow.notebook_engine"],
)
def test_papermill_imports_beside_the_engine_in_either_order(order: str) -> None:
    # papermill loads every registered engine while it imports itself: the engine's module must
    # not import papermill back (a fresh interpreter, so nothing is imported yet).
    import subprocess
    import sys

    from glacier_velocity.workflow.notebook_engine import ENGINE_NAME

    code = f"import {order}; import papermill.engines as e; print(e.papermill_engines.get_engine({ENGINE_NAME!r}).__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "NotebookEngine"


def test_pair_record_fields_match_the_scrap_record() -> None:
    from glacier_velocity.workflow.extract_pairs import PairRecord

    pairs = _load(CWL / "extract_pairs.cwl")["outputs"]["pairs"]["type"]["items"]
    assert list(pairs["fields"]) == [f.name for f in dataclasses.fields(PairRecord)]


# --- Real runs ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_correlation_tool_alone_on_one_pair(tmp_path: Path) -> None:
    data = demo.generate_demo_data(tmp_path / "data")
    job = demo.write_pair_job(data, tmp_path / "pair.yml")
    outputs, _ = runner.run_cwltool(CWL / "correlate.cwl", job, tmp_path / "out", quiet=True)
    assert outputs["executed_notebook"]["basename"] == "correlation_99XXX_20220610_20220705.ipynb"
    assert outputs["velocity"]["basename"] == "S2_99XXX_20220610_20220705.tif"
    with rasterio.open(outputs["velocity"]["path"]) as src:
        assert src.descriptions[:3] == ("vx", "vy", "v")
    comparison = demo.compare_with_truth(outputs["velocity"]["path"], data.truth, truth_map="truth_speed_2022.tif")
    assert abs(comparison.relative_error) < MEDIAN_TOLERANCE, comparison.describe()


@pytest.mark.integration
def test_workflow_scatter_over_a_single_pair(tmp_path: Path) -> None:
    # June and July 2022 only: the 10 June - 5 July pair (20 July is the second July scene).
    result = demo.run_demo(tmp_path, overrides={"end_year": 2022, "end_month": 7}, quiet=True)
    outputs, run = result.outputs, result.run
    assert sorted(outputs) == ["catalog"] and run is not None
    assert [p.velocity.name for p in run.pairs] == ["S2_99XXX_20220610_20220705.tif"]
    assert [p.name for p in run.correlation_notebooks] == ["correlation_99XXX_20220610_20220705.ipynb"]
    assert sorted(run.notebooks) == ["aggregation", "correlation_99XXX_20220610_20220705", "discovery"]
    assert sorted(run.records) == ["pairs", "status_99XXX_20220610_20220705"]
    assert result.stats["pair_count"] == 1
    comparison = demo.compare_with_truth(demo.median_speed_map(outputs), result.truth, truth_map="truth_speed_2022.tif")
    assert abs(comparison.relative_error) < MEDIAN_TOLERANCE, comparison.describe()
    assert "extract-pairs: 1 pair(s)" in result.log


@pytest.mark.integration
def test_a_glacier_outline_as_aoi_bounds_every_stage(tmp_path: Path) -> None:
    """Issue 11, finding 3: the outline (inline GeoJSON, as an ADES passes it) bounds discovery
    (intersects), each pair's grid (its bounding box) and the summary: no value outside it."""
    # The glacier inside the central 70 % of the demo area: a third of the scene, a quarter of its
    # bounding box off the ice (where the pair's stable-ground correction finds its ground).
    west, south, east, north = demo.demo_bbox()
    dx, dy = 0.35 * (east - west), 0.35 * (north - south)
    centre = ((west + east) / 2, (south + north) / 2)
    crop = box(centre[0] - dx, centre[1] - dy, centre[0] + dx, centre[1] + dy)
    outline = GlacierOutlines(demo_glacier_outlines().geometry.intersection(crop), "EPSG:4326")
    aoi = json.dumps(outline.to_geojson())
    # The outline's bounding box holds about 40 stable points, too few for the correction: the
    # pair is not corrected and, kept in on purpose, is what the summary holds (issue 21).
    overrides = {"end_year": 2022, "end_month": 7, "aoi": aoi, "keep_uncorrected_pairs": True}
    result = demo.run_demo(tmp_path, overrides=overrides, quiet=True)
    run = result.run
    assert run is not None and [p.velocity.name for p in run.pairs] == ["S2_99XXX_20220610_20220705.tif"]
    ice = outline.in_crs(f"EPSG:{demo.DEMO_EPSG}")
    west, south, east, north = ice.bounds
    scene = demo.DEMO_SHAPE[0] * demo.DEMO_PIXEL_M
    assert (east - west) * (north - south) < 0.5 * scene * scene  # the outline is much smaller than the scene
    for path in (run.pairs[0].velocity, demo.median_speed_map(result.outputs)):
        with rasterio.open(path) as src:
            speed = src.read(3 if path == run.pairs[0].velocity else 1, masked=True).filled(np.nan)
            cell = src.transform.a
            left, bottom, right, top = src.bounds
            centres = [
                [Point(*(src.transform @ (c + 0.5, r + 0.5))) for c in range(src.width)] for r in range(src.height)
            ]
        assert west - cell <= left and right <= east + cell and south - cell <= bottom and top <= north + cell, path
        inside = np.array([[ice.buffer(-cell / 4).contains(p) for p in row] for row in centres])
        outside = np.array([[not ice.buffer(cell / 4).contains(p) for p in row] for row in centres])
        assert outside.any() and not np.isfinite(speed[outside]).any(), path
        assert np.isfinite(speed[inside]).mean() > 0.8, path


@pytest.mark.integration
def test_workflow_with_zero_pairs_ends_with_a_clear_message(tmp_path: Path) -> None:
    result = demo.run_demo(tmp_path, overrides={"min_baseline_days": 100.0, "max_baseline_days": 200.0}, quiet=True)
    outputs, run = result.outputs, result.run
    assert run is not None and run.pairs == [] and run.correlation_notebooks == []
    assert run.summary_cogs == {} and run.summary_figure is None
    assert sorted(run.notebooks) == ["aggregation", "discovery"] and run.run_report is not None
    assert result.comparison is None
    assert result.message.startswith("no velocity products to aggregate (no pairs found:")
    assert "baseline" in result.message and result.message.endswith("0 succeeded / 0 failed")
    assert result.report is not None and result.report.pairs == ()
    assert "no pairs to correlate" in result.log and "Traceback" not in result.log
    catalog = json.loads((Path(outputs["catalog"]["path"]) / "catalog.json").read_text())
    # only the provenance item: the notebooks of a run that found nothing are still kept
    assert [link["href"] for link in catalog["links"] if link["rel"] == "item"] == [
        "./run-provenance/run-provenance.json"
    ]


@pytest.mark.integration
def test_end_to_end_demo_recovers_the_known_median_speed(tmp_path: Path) -> None:
    seen: list[PairProgress] = []
    log_file = tmp_path / "demo" / "workflow.log"
    result = demo.run_demo(tmp_path / "demo", log_file=log_file, on_progress=seen.append)
    outputs, run = result.outputs, result.run
    # The progress view's counts, followed from cwltool's log while it ran: every pair, and
    # pairs side by side (cwltool --parallel, one core per pair: at most as many as there are
    # cores, fewer when memory runs short).
    assert seen[-1].total == 6 and (seen[-1].succeeded, seen[-1].failed, seen[-1].running) == (6, 0, 0)
    assert 2 <= max(p.running for p in seen) <= (os.cpu_count() or 1) or (os.cpu_count() or 1) == 1
    assert (
        log_file.read_text(encoding="utf-8") == result.log and "[job node_correlate_6] completed success" in result.log
    )
    assert run is not None
    assert len(run.pairs) == len(demo.expected_pairs()) == 6
    assert all(p.quicklook is not None and p.item.is_file() for p in run.pairs)
    assert {path.name for path in run.summary_cogs.values()} == {
        "summary_median_v.tif",
        "summary_median_vx.tif",
        "summary_median_vy.tif",
        "summary_std_v.tif",
        "summary_count.tif",
        "summary_v_error.tif",
        "summary_vx_error.tif",
        "summary_vy_error.tif",
    }
    assert run.summary_figure is not None and run.summary_figure.name == "summary_figure.png"
    assert run.time_series_figure is not None and run.time_series_figure.name == "time_series.png"
    assert len(run.correlation_notebooks) == len(run.pair_statuses) == 6
    catalog = json.loads((Path(outputs["catalog"]["path"]) / "catalog.json").read_text())
    assert len([link for link in catalog["links"] if link["rel"] == "item"]) == 8  # 6 pairs, summary, provenance
    # The datacube: ITS_LIVE's names, every pair in the summary, CF-1.8 by the IOOS checker.
    assert run.datacube is not None
    with xr.open_dataset(run.datacube) as cube:
        assert dict(cube.sizes) == {"mid_date": 6, "y": 32, "x": 32}
        assert list(cube.in_summary.values) == [1] * 6 and set(cube.satellite_img1.values) <= {"2A", "2B"}
        assert cube.v.attrs["units"] == "meter/year" and bool((cube.date_dt > 0).all())
    assert cf_compliance_failures(run.datacube) == []
    assert result.stats["pair_count"] == 6
    assert result.report is not None and result.report.summary_line() == "6 succeeded / 0 failed"
    assert result.message.startswith("6 succeeded / 0 failed: 6 pairs aggregated")
    comparison = result.comparison
    assert comparison is not None
    # The demo's truth check: within 3 % and <= 10 m/yr per point, with misregistered scenes.
    assert abs(comparison.relative_error) <= demo.MEDIAN_TOLERANCE == 0.03, comparison.describe()
    assert comparison.pixel_mae_m_per_yr <= demo.PIXEL_MAE_TOLERANCE_M_PER_YR == 10.0, comparison.describe()
    assert comparison.passed and comparison.coverage > 0.9, comparison.describe()
