"""Bad input gets a clear error and leaves nothing misleading behind.

Every row of the table in ``docs/reliability.md`` is a case here, run at the CLI: exit code 2,
the message (naming the parameter or the scene and saying what to change) on stderr, and no
output file. ``test_the_reliability_doc_table_holds_the_real_messages`` checks the doc table
against the messages actually produced; to rewrite it after changing a message run::

    GLACIER_VELOCITY_WRITE_DOCS=1 .venv/bin/pytest tests/test_bad_inputs.py -k doc_table

A few rows also run through the discovery notebook (papermill) and the discovery CWL tool
(cwltool); those take a few seconds each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from flaky_http import FlakyServer
from glacier_velocity.cli import main
from glacier_velocity.demo.stacserver import free_port
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.io.cog import COG_MEDIA_TYPE
from glacier_velocity.products.items import footprint_lonlat
from helpers import write_scene_cog

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"

AOI = ["74.40", "35.40", "74.60", "35.60"]
EPSG = 32643
SHAPE = (96, 96)
TRANSFORM = Affine(10.0, 0.0, 430_000.0, 0.0, -10.0, 4_000_000.0)
REF_TIME = datetime(2020, 6, 1, 5, 36, 29, tzinfo=UTC)
SEC_TIME = datetime(2020, 6, 17, 5, 36, 29, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    # Default attempts (so the messages read as in production), but short waits.
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    monkeypatch.delenv("GLACIER_VELOCITY_HTTP_ATTEMPTS", raising=False)


# --- Fixture files ---------------------------------------------------------------------------------


def _write_item(
    directory: Path,
    item_id: str,
    when: datetime,
    nir: str | None,
    *,
    transform: Affine = TRANSFORM,
    scl: str | None = None,
    tile: str = "43SEA",
    name: str | None = None,
) -> str:
    geometry = footprint_lonlat(transform, SHAPE, f"EPSG:{EPSG}", densify=1)
    lons = [p[0] for p in geometry["coordinates"][0]]
    lats = [p[1] for p in geometry["coordinates"][0]]
    assets = {"thumbnail": {"href": "./thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}}
    if nir is not None:
        assets["nir"] = {"href": nir, "type": COG_MEDIA_TYPE, "roles": ["data"]}
    if scl is not None:
        assets["scl"] = {"href": scl, "type": COG_MEDIA_TYPE, "roles": ["data"]}
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item_id,
        "geometry": geometry,
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": when.isoformat().replace("+00:00", "Z"),
            "eo:cloud_cover": 2.5,
            "grid:code": f"MGRS-{tile}",
            "proj:epsg": EPSG,
        },
        "assets": assets,
        "links": [],
    }
    path = directory / (name or f"{re.sub(r'[^A-Za-z0-9_]', '_', item_id)}.json")
    path.write_text(json.dumps(item))
    return str(path)


@dataclass
class Context:
    tmp: Path
    stac: str
    inputs: Path
    out: Path
    not_stac: str

    @property
    def pairs(self) -> str:
        return str(self.out / "pairs.json")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Item JSON files and COGs: a good pair and one broken variant per case."""
    d = tmp_path_factory.mktemp("inputs")
    pair = make_pair(SHAPE, Translation(1.5, -0.5), seed=3)
    write_scene_cog(d / "ref_B08.tif", pair.reference, TRANSFORM)
    write_scene_cog(d / "sec_B08.tif", pair.secondary, TRANSFORM)
    write_scene_cog(d / "zero_B08.tif", np.zeros(SHAPE, dtype=np.uint16), TRANSFORM)
    write_scene_cog(d / "cloud_SCL.tif", np.full(SHAPE, 9, dtype=np.uint8), TRANSFORM)
    (d / "truncated_B08.tif").write_bytes((d / "ref_B08.tif").read_bytes()[:3000])
    (d / "aoi.geojson").write_text("{ this is not json")
    far = Affine(10.0, 0.0, 630_000.0, 0.0, -10.0, 4_000_000.0)
    _write_item(d, "S2B_43SEA_20200601_0_L2A", REF_TIME, "./ref_B08.tif", name="ref.json")
    _write_item(d, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "./sec_B08.tif", name="sec.json")
    _write_item(d, "S2A_43SEA_20200617_0_L2A", SEC_TIME, None, name="no_nir.json")
    _write_item(d, "S2A_43SEB_20200617_0_L2A", SEC_TIME, "./sec_B08.tif", transform=far, name="far.json")
    _write_item(d, "S2B_43SEA_20200601_0_L2A", REF_TIME, "./truncated_B08.tif", name="truncated.json")
    _write_item(d, "S2B_43SEA_20200601_0_L2A", REF_TIME, "./zero_B08.tif", name="nodata.json")
    _write_item(d, "S2B_43SEA_20200601_0_L2A", REF_TIME, "./ref_B08.tif", scl="./cloud_SCL.tif", name="cloudy.json")
    _write_item(d, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ftp://example.org/B08.tif", name="ftp.json")
    _write_item(d, "../../S2B/43SEA 20200601", REF_TIME, "./ref_B08.tif", tile="../..", name="unsafe_ref.json")
    _write_item(d, "..\\S2A:43SEA|20200617", SEC_TIME, "./sec_B08.tif", tile="../..", name="unsafe_sec.json")
    return d


@pytest.fixture(scope="module")
def not_stac():
    """A server answering JSON that is not a STAC catalog."""
    with FlakyServer(files={"/": b'{"hello": "this is JSON but no STAC"}'}) as server:
        yield server.url + "/"


@pytest.fixture
def ctx(tmp_path, stac_api, scenes, not_stac):
    out = tmp_path / "out"
    out.mkdir()
    return Context(tmp=tmp_path, stac=stac_api, inputs=scenes, out=out, not_stac=not_stac)


def _discover(c: Context, *args: str, url: str | None = None) -> list[str]:
    return [
        "discover",
        "--stac-url",
        url or c.stac,
        "--start-year",
        "2020",
        "--end-year",
        "2020",
        *args,
        "--out",
        c.pairs,
    ]


def _correlate(c: Context, reference: str, secondary: str, *args: str) -> list[str]:
    return [
        "correlate",
        str(c.inputs / reference),
        str(c.inputs / secondary),
        "--out-dir",
        str(c.out / "products"),
        *args,
    ]


# --- The table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row: the bad input, where it is caught, the command, the expected message start."""

    id: str
    case: str
    where: str
    argv: Callable[[Context], list[str]]
    expect: str


CASES = [
    Case(
        "bbox-inverted",
        "inverted bbox",
        "`aoi.parse_aoi` (DiscoveryParams, CorrelationParams)",
        lambda c: _discover(c, "--aoi", "74.6,35.4,74.4,35.6"),
        "--aoi: west 74.6 is not less than east 74.4",
    ),
    Case(
        "bbox-range",
        "bbox out of range",
        "`aoi.parse_aoi`",
        lambda c: _discover(c, "--aoi", "74.4,35.4,194.6,35.6"),
        "--aoi: east longitude 194.6 is outside -180..180",
    ),
    Case(
        "bbox-correlate",
        "inverted bbox (correlate)",
        "`CorrelationParams` via `aoi.parse_aoi`",
        lambda c: _correlate(c, "ref.json", "sec.json", "--aoi", "74.6,35.4,74.4,35.6"),
        "--aoi: west 74.6",
    ),
    Case(
        "aoi-missing",
        "unreadable AOI file (missing)",
        "`aoi.parse_aoi` via `geojson.load_geojson`",
        lambda c: _discover(c, "--aoi", str(c.tmp / "missing.geojson")),
        "--aoi: no file",
    ),
    Case(
        "aoi-not-json",
        "unreadable AOI file (not GeoJSON)",
        "`aoi.parse_aoi` via `geojson.load_geojson`",
        lambda c: _discover(c, "--aoi", str(c.inputs / "aoi.geojson")),
        "aoi.geojson is not JSON",
    ),
    Case(
        "years",
        "start year after end year",
        "`DiscoveryParams`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--end-year", "2019"),
        "--start-year: 2020 is after the end year 2019",
    ),
    Case(
        "month-13",
        "month outside 1-12",
        "`pairing.season_months` (DiscoveryParams)",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--start-month", "13"),
        "--start-month: must be a month number 1-12",
    ),
    Case(
        "month-0",
        "month outside 1-12 (end)",
        "`pairing.season_months`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--end-month", "0"),
        "--end-month: must be a month number 1-12",
    ),
    Case(
        "cloud-high",
        "cloud cover above 100",
        "`DiscoveryParams`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--max-cloud-cover", "120"),
        "--max-cloud-cover: must be a percentage between 0 and 100",
    ),
    Case(
        "cloud-negative",
        "cloud cover below 0",
        "`DiscoveryParams`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--max-cloud-cover", "-5"),
        "--max-cloud-cover: must be a percentage",
    ),
    Case(
        "pairs-per-image",
        "pairs per image < 1",
        "`pairing.check_pairs_per_image`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--pairs-per-image", "0"),
        "--pairs-per-image: must be an integer >= 1",
    ),
    Case(
        "max-velocity",
        "non-positive max velocity",
        "`CorrelationParams`",
        lambda c: _correlate(c, "ref.json", "sec.json", "--max-velocity-m-per-yr", "0"),
        "--max-velocity-m-per-yr: must be a positive speed in m/yr",
    ),
    Case(
        "min-baseline",
        "non-positive baseline bound (min)",
        "`pairing.check_baseline_bounds`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--min-baseline-days", "0"),
        "--min-baseline-days: must be a positive number of days",
    ),
    Case(
        "max-baseline",
        "non-positive baseline bound (max)",
        "`pairing.check_baseline_bounds`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--max-baseline-days", "-3"),
        "--max-baseline-days: must be a positive number of days",
    ),
    Case(
        "baseline-order",
        "min baseline above max baseline",
        "`pairing.check_baseline_bounds`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--min-baseline-days", "40", "--max-baseline-days", "10"),
        "--min-baseline-days: 40.0 is larger than max_baseline_days 10.0",
    ),
    Case(
        "collection",
        "unknown collection",
        "`discovery._check_collection` (first request)",
        lambda c: _discover(c, "--aoi", ",".join(AOI), "--collection", "landsat-c2-l2"),
        "--collection: 'landsat-c2-l2' is not a collection of",
    ),
    Case(
        "stac-unreachable",
        "STAC URL unreachable",
        "`discovery.open_catalog` (after the retries)",
        lambda c: _discover(c, "--aoi", ",".join(AOI), url=f"http://127.0.0.1:{free_port()}"),
        "cannot reach the STAC API at",
    ),
    Case(
        "stac-not-api",
        "STAC URL that is not a STAC API",
        "`discovery.open_catalog`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), url=c.not_stac),
        "did not answer as a STAC API",
    ),
    Case(
        "stac-url-scheme",
        "STAC URL that is not http(s)",
        "`DiscoveryParams`",
        lambda c: _discover(c, "--aoi", ",".join(AOI), url="ftp://example.org/stac"),
        "--stac-url: must be an http(s) URL",
    ),
    Case(
        "no-nir",
        "item without the `nir` asset",
        "`scene.Scene.from_item`",
        lambda c: _correlate(c, "ref.json", "no_nir.json"),
        "item 'S2A_43SEA_20200617_0_L2A': assets: no 'nir' asset",
    ),
    Case(
        "asset-scheme",
        "asset href with another scheme (ftp:, data:, javascript:)",
        "`hrefs.check_asset_href` (Scene)",
        lambda c: _correlate(c, "ftp.json", "sec.json"),
        "scene 'S2B_43SEA_20200601_0_L2A' asset 'nir': unsupported URL scheme 'ftp'",
    ),
    Case(
        "no-overlap",
        "two scenes that do not overlap",
        "`correlate.choose_aoi`",
        lambda c: _correlate(c, "ref.json", "far.json"),
        "the footprints of 'S2B_43SEA_20200601_0_L2A' and 'S2A_43SEB_20200617_0_L2A' do not overlap",
    ),
    Case(
        "same-scene",
        "the same scene twice",
        "`pairing.Pair`",
        lambda c: _correlate(c, "ref.json", "ref.json"),
        "pair: the same scene 'S2B_43SEA_20200601_0_L2A' was given as reference and secondary",
    ),
    Case(
        "swapped",
        "secondary not later than reference",
        "`pairing.Pair`",
        lambda c: _correlate(c, "sec.json", "ref.json"),
        "pair: secondary 'S2B_43SEA_20200601_0_L2A'",
    ),
    Case(
        "truncated-cog",
        "truncated or corrupt COG",
        "`raster.read_window`",
        lambda c: _correlate(c, "truncated.json", "sec.json"),
        "cannot read raster",
    ),
    Case(
        "all-nodata",
        "window all nodata",
        "`correlate.correlate_pair` (before tracking)",
        lambda c: _correlate(c, "nodata.json", "sec.json"),
        "the reference 'S2B_43SEA_20200601_0_L2A' has no data",
    ),
    Case(
        "all-cloud",
        "window all cloud (`--mask-clouds`)",
        "`correlate.correlate_pair` (before tracking)",
        lambda c: _correlate(c, "cloudy.json", "sec.json", "--mask-clouds"),
        "the reference 'S2B_43SEA_20200601_0_L2A' is entirely cloud",
    ),
    Case(
        "out-dir",
        "pair list into a missing directory",
        "`cli.discover` (before the search)",
        lambda c: [
            "discover",
            "--stac-url",
            c.stac,
            "--start-year",
            "2020",
            "--end-year",
            "2020",
            "--aoi",
            ",".join(AOI),
            "--out",
            str(c.tmp / "no" / "pairs.json"),
        ],
        "out: directory",
    ),
]


def _files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def _run(case: Case, c: Context, capsys) -> tuple[int, str]:
    code = main(case.argv(c))
    captured = capsys.readouterr()
    assert captured.out == "", "nothing may be printed as if it had worked"
    return code, captured.err.strip()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_a_clear_message_and_no_output(case, ctx, capsys):
    code, err = _run(case, ctx, capsys)
    assert code == 2
    command = case.argv(ctx)[0]
    assert err.startswith(f"glacier-velocity {command}: error: "), err
    assert case.expect in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert _files_under(ctx.out) == [], "a failed run left files behind"
    assert not (ctx.tmp / "no").exists()


def test_unsafe_item_ids_never_reach_file_names(ctx, capsys):
    """Ids and tiles with '/', '..', '\\', ':' and '|' are data: products get safe names inside --out-dir."""
    out = ctx.out / "products"
    code = main(
        _correlate(
            ctx,
            "unsafe_ref.json",
            "unsafe_sec.json",
            "--grid-spacing-px",
            "16",
            "--max-velocity-m-per-yr",
            "1000",
            "--no-stable-correction",  # a uniform shift: no stable ground
        )
    )
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in _files_under(ctx.tmp))
    assert names == [
        "S2_scene_20200601_20200617.json",
        "S2_scene_20200601_20200617.tif",
        "S2_scene_20200601_20200617_quicklook.png",
    ]
    assert all(p.parent == out for p in _files_under(ctx.tmp))
    item = json.loads((out / "S2_scene_20200601_20200617.json").read_text())
    assert item["properties"]["gv:reference_id"] == "../../S2B/43SEA 20200601"  # kept as data, not as a path


def test_product_paths_refuse_names_that_leave_the_directory(tmp_path):
    from glacier_velocity.errors import InputError
    from glacier_velocity.products.naming import path_in, product_paths, safe_name

    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("..") == "unnamed" and safe_name("a\\b:c|d e") == "a-b-c-d-e"
    assert product_paths(tmp_path, "S2_43SEA_20200601_20200617")[0] == tmp_path / "S2_43SEA_20200601_20200617.tif"
    for bad in ("../x", "/etc/x", "a/b", "..", ".hidden", ""):
        with pytest.raises(InputError, match="not a safe file name"):
            path_in(tmp_path, bad)
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(InputError, match="resolves outside the output directory"):
        path_in(tmp_path, "link")


# --- The doc table ---------------------------------------------------------------------------------


def _normalise(message: str, c: Context) -> str:
    message = message.replace(str(c.inputs), "<inputs>").replace(str(c.tmp), "<tmp>").replace(c.stac, "<stac>")
    message = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:<port>", message)
    return message


def _table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| case | where it is checked | message (stderr, exit code 2) |", "| --- | --- | --- |"]
    for case, where, message in rows:
        lines.append(f"| {case} | {where} | `{message.replace('|', '¦').replace('`', '')}` |")
    return "\n".join(lines)


def test_the_reliability_doc_table_holds_the_real_messages(ctx, capsys):
    rows = []
    for case in CASES:
        code, err = _run(case, ctx, capsys)
        assert code == 2
        rows.append((case.case, case.where, _normalise(err, ctx)))
    table = _table(rows)
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text
    current = text.split(START, 1)[1].split(END, 1)[0].strip()
    if os.environ.get("GLACIER_VELOCITY_WRITE_DOCS") == "1" and current != table:
        DOC.write_text(
            text.split(START, 1)[0] + START + "\n" + table + "\n" + END + text.split(END, 1)[1], encoding="utf-8"
        )
        current = table
    assert current == table, "docs/reliability.md is out of date: GLACIER_VELOCITY_WRITE_DOCS=1 pytest -k doc_table"


# --- Through the notebook (papermill) and the CWL tool (cwltool) -----------------------------------

NOTEBOOK_CASES = [
    ({"max_cloud_cover": 120.0}, "max_cloud_cover: must be a percentage between 0 and 100"),
    ({"start_year": 2021, "end_year": 2020}, "start_year: 2021 is after the end year 2020"),
    ({"stac_url": "UNREACHABLE"}, "cannot reach the STAC API at http://127.0.0.1:"),
]


@pytest.mark.parametrize("changes, expect", NOTEBOOK_CASES, ids=["cloud", "years", "unreachable"])
def test_discovery_notebook_fails_with_our_message(tmp_path, run_notebook, changes, expect):
    if changes.get("stac_url") == "UNREACHABLE":
        changes = {**changes, "stac_url": f"http://127.0.0.1:{free_port()}"}
    parameters = {
        "stac_url": "http://127.0.0.1:9",
        "aoi": ",".join(AOI),
        "start_year": 2020,
        "end_year": 2020,
        "pairs_json": str(tmp_path / "pairs.json"),
        **changes,
    }
    done = run_notebook("01-discovery.ipynb", tmp_path / "executed.ipynb", parameters)
    assert done.returncode != 0 and "PapermillExecutionError" in done.stderr
    assert expect in done.stderr
    assert "InvalidParameter" in done.stderr or "CatalogError" in done.stderr
    assert not (tmp_path / "pairs.json").exists()


CWL_CASES = [
    ({"pairs_per_image": 0}, "pairs_per_image: must be an integer >= 1"),
    ({"aoi": "74.6,35.4,74.4,35.6"}, "aoi: west 74.6 is not less than east 74.4"),
]


@pytest.mark.parametrize("changes, expect", CWL_CASES, ids=["pairs", "aoi"])
def test_discovery_cwl_tool_fails_with_our_message(tmp_path, changes, expect):
    cwltool = Path(sys.executable).parent / "cwltool"
    if not cwltool.exists():
        pytest.skip("cwltool is not installed")
    from glacier_velocity.workflow.runner import workflow_env

    job = {
        "stac_url": "http://127.0.0.1:9",
        "aoi": ",".join(AOI),
        "start_year": 2020,
        "end_year": 2020,
        **changes,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    out = tmp_path / "out"
    completed = subprocess.run(
        [
            str(cwltool),
            "--no-container",
            # The steps import this checkout's package, as the demo runner has them do.
            *(["--preserve-environment", "PYTHONPATH"] if os.environ.get("PYTHONPATH") else []),
            "--outdir",
            str(out),
            str(ROOT / "cwl" / "discover.cwl"),
            str(tmp_path / "job.json"),
        ],
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode != 0
    assert expect in completed.stderr
    assert not out.exists() or _files_under(out) == []
