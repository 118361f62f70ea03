"""A private STAC API (issue 11, finding 6): the token reaches the item fetches of the
correlation step (the API's origin only), and a run in which every pair failed ends non-zero.

The private API is the local STAC API behind :class:`flaky_http.FlakyServer` with ``token``
set: a request without ``Authorization: Bearer <token>`` gets 401, as a real private
catalogue answers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.errors import AllPairsFailed, InputError, InvalidParameter
from glacier_velocity.products.runreport import PairStatus, read_run_report, write_status
from glacier_velocity.workflow.aggregate import aggregate_run
from glacier_velocity.workflow.correlate import CorrelationParams, load_scene

SECRET = "gv-test-secret-7f3a9c"
ITEM_ID = "S2A_43SEA_20200603_0_L2A"


@pytest.fixture
def private_api(stac_api, monkeypatch):
    """URL of the local STAC API behind a proxy that requires the token; the token is set."""
    monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", SECRET)
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    with FlakyServer(upstream=stac_api, token=SECRET) as server:
        yield server


def _item_url(api: FlakyServer, item_id: str = ITEM_ID) -> str:
    return f"{api.url}/collections/sentinel-2-l2a/items/{item_id}"


def test_item_fetch_of_the_correlation_step_carries_the_token_to_the_api(private_api):
    scene = load_scene(_item_url(private_api), "reference", stac_url=private_api.url)
    assert scene.id == ITEM_ID
    assert [r.headers.get("Authorization") for r in private_api.requests] == [f"Bearer {SECRET}"]


@pytest.mark.usefixtures("loopback_allowed")
def test_item_fetch_without_the_api_is_refused_with_a_hint_and_no_token(private_api):
    # The origin is not the API's (no stac_url): the token is not sent, and the 401 says why.
    # (127.0.0.1 is allowed by the operator here; without it the fetch is not even made.)
    with pytest.raises(InputError) as caught:
        load_scene(_item_url(private_api), "reference")
    message = str(caught.value)
    assert "(HTTP 401); a private catalogue: set GLACIER_VELOCITY_STAC_TOKEN and give the API's stac_url" in message
    assert SECRET not in message
    assert_documented(message, repr(_item_url(private_api)))
    assert "Authorization" not in private_api.requests[0].headers


def test_the_token_never_goes_to_an_item_on_another_host(private_api):
    item = json.loads(Path(__file__).with_name("data").joinpath("stac", "sentinel-2-l2a-items.json").read_text())[
        "features"
    ][0]
    with FlakyServer(files={"/items/a.json": json.dumps(item).encode()}) as other:
        scene = load_scene(f"{other.url}/items/a.json", "secondary", stac_url=private_api.url)
    assert scene.id == ITEM_ID
    assert "Authorization" not in other.requests[0].headers
    assert private_api.requests == []


def test_correlation_params_take_the_api_and_check_it():
    assert CorrelationParams().stac_url == "https://earth-search.aws.element84.com/v1"
    with pytest.raises(InvalidParameter, match=r"^stac_url: must be an http\(s\) URL of a STAC API root"):
        CorrelationParams(stac_url="ftp://example.org/stac")


# --- every pair failed ---------------------------------------------------------------------------


def _failed(pair_id: str, reason: str) -> PairStatus:
    return PairStatus.failed(pair_id, f"/items/{pair_id}_ref.json", f"/items/{pair_id}_sec.json", InputError(reason))


def test_a_run_whose_every_pair_failed_fails_with_each_reason(tmp_path):
    reasons = {"a": "reference: cannot fetch the STAC item 'x' (HTTP 401)", "b": "cannot read raster 'b_B08.tif'"}
    statuses = [write_status(_failed(p, r), tmp_path / f"status_{p}.json") for p, r in reasons.items()]
    out = tmp_path / "out"
    with pytest.raises(AllPairsFailed) as caught:
        aggregate_run([None, None], out, statuses=statuses, message="2 pairs")
    message = str(caught.value)
    assert message == (
        "every pair attempted failed (0 succeeded / 2 failed), so the run has no velocity product: "
        f"a: {reasons['a']}; b: {reasons['b']}; fix the cause and run again (run report: {out / 'run-report.json'})"
    )
    assert_documented(
        message, "0 succeeded / 2 failed", f"a: {reasons['a']}; b: {reasons['b']}", str(out / "run-report.json")
    )
    # The report and the empty catalog are still written, for a look at what went wrong.
    assert read_run_report(out / "run-report.json").summary_line() == "0 succeeded / 2 failed"
    assert (out / "catalog" / "catalog.json").is_file()


def test_a_run_without_pairs_still_succeeds(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    result = aggregate_run([], tmp_path / "out", statuses=[], message="no pairs found: 0 scenes")
    assert result.report.summary_line() == "0 succeeded / 0 failed"
    assert result.message == "no velocity products to aggregate (no pairs found: 0 scenes); 0 succeeded / 0 failed"


# --- the whole Workflow with cwltool on the demo behind the private API ---------------------------


def _run_private_demo(tmp_path: Path, data, api: FlakyServer, name: str):
    from glacier_velocity.demo.run import DEMO_PARAMS
    from glacier_velocity.workflow.runner import WORKFLOW, find_project_root, run_workflow, write_job

    root = find_project_root()
    # 2023 May-August only: three scenes, a short run.
    job = write_job(
        root / DEMO_PARAMS,
        tmp_path / f"{name}.yml",
        data_location=data.root,
        stac_url=api.url,
        start_year=2023,
        end_month=8,
    )
    return run_workflow(
        root / WORKFLOW,
        job,
        tmp_path / name,
        extra_args=["--preserve-environment", "GLACIER_VELOCITY_STAC_TOKEN"],
        quiet=True,
    )


@pytest.mark.integration
def test_workflow_on_a_private_catalogue(tmp_path, monkeypatch):
    """cwltool on the demo behind a token-only API: every pair succeeds and the token leaks
    nowhere; with every scene corrupt, the run fails and names each pair's reason."""
    from glacier_velocity import demo
    from glacier_velocity.demo.stacserver import serve_stac
    from glacier_velocity.errors import WorkflowFailed
    from glacier_velocity.products.runcatalog import read_run_catalog

    monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", SECRET)
    data = demo.generate_demo_data(tmp_path / "data")
    with serve_stac([data.collection, data.items]) as upstream, FlakyServer(upstream=upstream, token=SECRET) as api:
        outputs, log = _run_private_demo(tmp_path, data, api, "ok")
        run = read_run_catalog(outputs["catalog"]["path"])
        assert run.run_report is not None
        report = read_run_report(run.run_report)
        assert len(report.pairs) >= 2 and report.failed == (), report.describe()
        item_fetches = [r for r in api.requests if "/items/" in r.path and r.method == "GET"]
        assert len(item_fetches) >= 2 * len(report.pairs)  # both items of each pair, through the API
        assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in api.requests)
        leaks = [str(p) for p in (tmp_path / "ok").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
        assert leaks == [] and SECRET not in log

        for scene in (data.root / "scenes").glob("*_B08.tif"):
            with open(scene, "r+b") as stream:
                stream.truncate(scene.stat().st_size // 2)
        with pytest.raises(WorkflowFailed) as caught:
            _run_private_demo(tmp_path, data, api, "broken")
    message = str(caught.value)
    assert f"every pair attempted failed (0 succeeded / {len(report.pairs)} failed)" in message
    for status in report.pairs:
        assert f"{status.pair_id}: cannot read raster" in message
    assert SECRET not in message
