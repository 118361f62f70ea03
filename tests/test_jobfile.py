"""Job files checked and resolved before the runner starts (``glacier-velocity run``).

A bad value gave 42 lines of notebook traceback from the runner's log (issue 24, item 8); a
relative path was looked for in the steps' temporary directories (issue 23, finding 3); GeoJSON
text over 128 KiB broke the steps' command lines (issue 23, finding 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import shapely
import yaml
from shapely.geometry import mapping, shape

from doc_rows import assert_documented
from glacier_velocity import demo
from glacier_velocity.cli import main
from glacier_velocity.demo.scenes import DEMO_OUTLINES_FILE, demo_glacier_outlines
from glacier_velocity.errors import InputError
from glacier_velocity.workflow import jobfile, runner

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "stac_url": "http://127.0.0.1:9",
    "aoi": "76.1165,36.1895,76.1618,36.2261",
    "start_year": 2022,
    "end_year": 2022,
}


def _job(directory: Path, **values: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "job.yml"
    path.write_text(yaml.safe_dump({**GOOD, **values}, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"start_month": 13}, "start_month: must be a month number 1-12, got 13"),
        (
            {"aoi": "76.1165,36.1895,76.1618"},
            "aoi: must be 4 finite numbers W S E N (lon/lat degrees), got [76.1165, 36.1895, 76.1618]",
        ),
        ({"chip_px": 7}, "chip_px: must be an even number of pixels"),
        ({"min_count": 0}, "min_count: must be a whole number of maps >= 1, got 0"),
        (
            {"points_of_interest": "200,36"},
            "points_of_interest: point P1: (200, 36) is not longitude, latitude; give lon first, then lat, in degrees",
        ),
        ({"start_yaer": 2022}, "the Workflow has no input 'start_yaer' (did you mean 'start_year'?)"),
        ({"end_year": None}, "end_year: required, and not given"),
        ({"item_urls": ["items/a.json"]}, "item_urls: 'items/a.json' is not an http(s) URL of a STAC item"),
        ({"staged_items": {"class": "Directory", "path": "."}}, "staged_items: "),
    ],
)
def test_run_refuses_a_bad_job_in_one_line_before_any_runner_starts(
    values: dict, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path / "jobs", **values)
    runs = tmp_path / "runs"
    assert main(["run", str(job), "--out-dir", str(runs), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"glacier-velocity run: error: job file {job}: {expected}"), captured.err
    assert not runs.exists()  # no run directory, no `latest`, no runner


def test_relative_paths_are_read_from_the_job_files_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = tmp_path / "jobs"
    (jobs / "shapes").mkdir(parents=True)
    outlines = json.dumps(demo_glacier_outlines().to_geojson())
    (jobs / "outlines.geojson").write_text(outlines)
    (jobs / "shapes" / "area.geojson").write_text(outlines)
    points = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [76.14, 36.21]}, "properties": {}}
    (jobs / "points.geojson").write_text(json.dumps(points))
    job = _job(
        jobs,
        aoi="shapes/area.geojson",
        glacier_outlines="outlines.geojson",
        points_of_interest={"class": "File", "path": "points.geojson"},
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # what the steps saw: another directory than the job file's
    resolved = jobfile.prepare_job(job, ROOT / runner.WORKFLOW)
    assert resolved["aoi"] == {"class": "File", "path": str(jobs / "shapes" / "area.geojson")}
    assert resolved["glacier_outlines"] == {"class": "File", "path": str(jobs / "outlines.geojson")}
    assert resolved["points_of_interest"] == {"class": "File", "path": str(jobs / "points.geojson")}
    # Strings that are no file stay what they are.
    assert jobfile.resolve_paths({"aoi": GOOD["aoi"], "points_of_interest": "76.1,36.2; 76.2,36.3"}, jobs) == {
        "aoi": GOOD["aoi"],
        "points_of_interest": "76.1,36.2; 76.2,36.3",
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    written = yaml.safe_load(jobfile.write_run_job(resolved, run_dir).read_text())
    assert written == resolved and written["start_year"] == 2022


def test_a_missing_relative_file_is_named_where_it_was_looked_for(tmp_path: Path) -> None:
    job = _job(tmp_path / "jobs", glacier_outlines="outlines.geojson")
    with pytest.raises(InputError) as raised:
        jobfile.prepare_job(job, ROOT / runner.WORKFLOW)
    message = str(raised.value)
    missing = tmp_path / "jobs" / "outlines.geojson"
    assert message == (
        f"job file {job}: glacier_outlines: no file '{missing}'; "
        "give an existing GeoJSON file, an http(s) URL or inline GeoJSON text"
    )
    assert_documented(message, str(job), str(missing))


def test_geojson_files_are_bounded_before_they_are_read(tmp_path: Path) -> None:
    big = tmp_path / "jobs" / "rgi.geojson"
    big.parent.mkdir()
    with big.open("wb") as f:  # sparse: 513 MB on paper, nothing on disk
        f.truncate(513 * 1024 * 1024)
    job = _job(tmp_path / "jobs", glacier_outlines="rgi.geojson")
    with pytest.raises(InputError) as raised:
        jobfile.prepare_job(job, ROOT / runner.WORKFLOW)
    message = str(raised.value)
    assert message == f"job file {job}: glacier_outlines: '{big}' is larger than 512 MB; clip it to the area first"
    assert_documented(message, str(job), str(big))


def _large_outlines(min_bytes: int) -> str:
    """The demo glacier's outlines as GeoJSON text of at least ``min_bytes``, as RGI's are for a
    large glacier: the same polygons, their edges cut into ever shorter segments."""
    collection = demo_glacier_outlines().to_geojson()
    step = 1e-4
    while True:
        dense = {
            **collection,
            "features": [
                {**f, "geometry": mapping(shapely.segmentize(shape(f["geometry"]), step))}
                for f in collection["features"]
            ],
        }
        text = json.dumps(dense)
        if len(text) >= min_bytes:
            return text
        step /= 2


@pytest.mark.integration
def test_a_run_with_large_inline_outlines_and_a_relative_aoi_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.4 MB of inline GeoJSON outlines (an argument may have 128 KiB) and ``aoi: area.geojson``
    beside the job file: before, the run failed in discovery (no file 'area.geojson'), and with
    the job file resolved but not the Workflow, in the correlation step ("[Errno 7] Argument list
    too long: 'papermill'")."""
    from glacier_velocity.demo.stacserver import serve_stac
    from glacier_velocity.domain.aoi import AOI
    from glacier_velocity.products.runcatalog import read_run_catalog

    data = demo.generate_demo_data(tmp_path / "data")
    outlines = _large_outlines(1_400_000)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    area = AOI.from_bbox([float(v) for v in GOOD["aoi"].split(",")]).geometry
    (jobs / "area.geojson").write_text(json.dumps(area))
    with serve_stac([data.collection, data.items]) as stac_url:
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS,
            jobs / "job.yml",
            stac_url=stac_url,
            aoi="area.geojson",
            glacier_outlines=outlines,
            end_year=2022,
            end_month=7,
        )
        monkeypatch.chdir(tmp_path / "data")
        assert main(["run", str(job), "--out-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 1 succeeded / 0 failed" in out, out
    run_dir = (tmp_path / "runs" / "latest").resolve()
    ran = yaml.safe_load((run_dir / jobfile.RUN_JOB).read_text())
    assert ran["aoi"] == {"class": "File", "path": str(jobs / "area.geojson")}
    (pair,) = read_run_catalog(run_dir / "catalog").pairs
    settings = json.loads(pair.item.read_text())["properties"]
    # The outlines reached the correlation step as a file the runner wrote, not as an argument.
    recorded = json.dumps(settings)
    assert f"{os.sep}{DEMO_OUTLINES_FILE}" in recorded and "inline GeoJSON" not in recorded
