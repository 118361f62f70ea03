"""The local OGC API - Processes (pygeoapi + the glacier-velocity process plugin).

The end-to-end test starts the server on a free port of 127.0.0.1 and talks to it over HTTP
as an ADES client would: process description, synchronous execution, asynchronous execution
(``Prefer: respond-async``) with job polling and results, the STAC catalog fetched from the
result links, and a bad request. To keep CI time reasonable it runs the package with
``cwltool --no-container`` on the one-pair demo season (a development build of the package
whose notebooks are the repository's); the containerized run of the package is
tests/test_container.py's.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from glacier_velocity.deploy import ogc
from glacier_velocity.deploy import package as pkg
from glacier_velocity.errors import InvalidParameter
from helpers import free_port, running_server, write_development_package

ROOT = Path(__file__).resolve().parents[1]
#: The one-pair demo season (2022-06-10 -> 2022-07-05), as tests/test_cwl.py uses.
ONE_PAIR = {"end_year": 2022, "end_month": 7}


@pytest.fixture(scope="module")
def description() -> dict:
    return json.loads((ROOT / "deploy" / "ogc" / "process-description.json").read_text())


def test_cwl_job_from_execute_inputs(description: dict) -> None:
    job = ogc.cwl_job(
        {
            "stac_url": "http://127.0.0.1:1234",
            "aoi": "1,2,3,4",
            "max_cloud_cover": {"value": 20.0, "mediaType": "application/json"},
            "tile": None,
        },
        description["inputs"],
    )
    assert job == {
        "stac_url": "http://127.0.0.1:1234",
        "aoi": "1,2,3,4",
        "max_cloud_cover": 20.0,
        "tile": None,
    }


def test_file_or_string_inputs_take_text_by_value_and_a_file_by_reference(description: dict) -> None:
    outlines = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'
    job = ogc.cwl_job(
        {
            "aoi": {"href": "https://example.org/aoi.geojson"},
            "glacier_outlines": outlines,
            "points_of_interest": "https://example.org/points.geojson",
        },
        description["inputs"],
    )
    assert job == {
        "aoi": {"class": "File", "location": "https://example.org/aoi.geojson"},
        "glacier_outlines": outlines,
        # A URL as a string: the step reads it itself.
        "points_of_interest": "https://example.org/points.geojson",
    }
    with pytest.raises(InvalidParameter) as info:
        ogc.cwl_job({"glacier_outlines": {"href": ""}}, description["inputs"])
    assert info.value.parameter == "glacier_outlines"


#: A process with a File-only input.
FILE_INPUT = {"outlines_file": {"metadata": [{"title": "cwl:type", "value": "[ null, File ]"}]}}


@pytest.mark.parametrize(
    ("inputs", "parameter", "file_process"),
    [
        ({"start_yaer": 2020}, "start_yaer", False),
        ({"geometry": {"href": "https://example.org/aoi.geojson"}}, "geometry", False),
        ({"outlines_file": {"value": 1}}, "outlines_file", True),
        ({"outlines_file": {"href": ""}}, "outlines_file", True),
    ],
)
def test_cwl_job_rejects_unknown_inputs_and_files_without_href(
    description: dict, inputs: dict, parameter: str, file_process: bool
) -> None:
    with pytest.raises(InvalidParameter) as info:
        ogc.cwl_job(inputs, FILE_INPUT if file_process else description["inputs"])
    assert info.value.parameter == parameter
    assert ogc.cwl_job({"outlines_file": {"href": "https://example.org/o.geojson"}}, FILE_INPUT) == {
        "outlines_file": {"class": "File", "location": "https://example.org/o.geojson"}
    }


def test_results_link_every_output_under_the_job_url(tmp_path: Path) -> None:
    job = tmp_path / "job-1"
    (job / "outputs" / "catalog").mkdir(parents=True)
    outputs = {
        "catalog": {"class": "Directory", "path": str(job / "outputs" / "catalog"), "basename": "catalog"},
        "quicklooks": [{"class": "File", "path": str(job / "outputs" / "a.png"), "basename": "a.png"}],
        "summary_figure": None,
    }
    results = ogc.results_document(outputs, job, "http://h:1/outputs/job-1")
    assert results["stac_catalog"]["href"] == "http://h:1/outputs/job-1/outputs/catalog/catalog.json"
    assert results["catalog"]["href"] == "http://h:1/outputs/job-1/outputs/catalog/"
    assert results["quicklooks"] == [
        {"href": "http://h:1/outputs/job-1/outputs/a.png", "type": "image/png", "title": "a.png"}
    ]
    assert results["summary_figure"] is None
    only = ogc.results_document(outputs, job, "http://h:1/outputs/job-1", requested=["catalog"])
    assert set(only) == {"stac_catalog", "catalog"}


def test_committed_pygeoapi_config_is_valid_and_current() -> None:
    from pygeoapi.config import validate_config

    version = pkg.project_metadata(ROOT).version
    committed = yaml.safe_load((ROOT / ogc.DEFAULT_CONFIG).read_text())
    assert validate_config(committed)
    assert committed == ogc.pygeoapi_config(package=f"dist/glacier-velocity.{version}.cwl")
    processor = committed["resources"]["glacier-velocity"]["processor"]
    assert (
        processor["name"] == "glacier_velocity.deploy.ogc.GlacierVelocityProcessor" and processor["containers"] is True
    )


def _request(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            payload = response.read()
            status, response_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        payload, status, response_headers = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, response_headers, json.loads(payload) if payload else None
    except ValueError:  # not JSON (or not text): the raw bytes
        return status, response_headers, payload


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The OGC API on a free port, running a development package without containers."""
    work = tmp_path_factory.mktemp("ogc")
    package_file = write_development_package(work / "glacier-velocity.cwl")
    port = free_port()
    config = ogc.pygeoapi_config(package=str(package_file), port=port, workdir=str(work / "state"), containers=False)
    (work / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "glacier_velocity", "ogc-serve", "--config", str(work / "config.yml")]
    with running_server(
        command, lambda: _request(f"{url}/processes?f=json")[0] == 200, work / "server.log", startup_s=120, cwd=ROOT
    ):
        yield url


@pytest.fixture(scope="module")
def demo_stac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from glacier_velocity.demo.scenes import generate_demo_data
    from glacier_velocity.demo.stacserver import serve_stac

    data = generate_demo_data(tmp_path_factory.mktemp("demo") / "data")
    with serve_stac([data.collection, data.items]) as url:
        yield url


def _execute_body(stac_url: str) -> dict:
    body = json.loads((ROOT / "deploy" / "ogc" / "execute-demo.json").read_text())
    body["inputs"].update(stac_url=stac_url, **ONE_PAIR)
    return body


def _check_catalog(results: dict) -> dict[str, tuple[str, dict]]:
    """Fetch the catalog and its items over HTTP; return {item id: (item URL, item)}."""
    status, _, catalog = _request(results["stac_catalog"]["href"])
    assert status == 200 and catalog["type"] == "Catalog", catalog
    links = [link for link in catalog["links"] if link["rel"] == "item"]
    base = results["stac_catalog"]["href"].rsplit("/", 1)[0]
    items = {}
    for link in links:
        url = f"{base}/{link['href'].removeprefix('./')}"
        status, _, item = _request(url)
        assert status == 200 and item["type"] == "Feature"
        items[item["id"]] = (url, item)
    # the one pair, the summary and the run's provenance (its executed notebooks)
    assert sorted(items) == ["S2_99XXX_20220610_20220705", "run-provenance", "velocity-summary"]
    return items


def _asset_url(item_url: str, item: dict, key: str) -> str:
    return f"{item_url.rsplit('/', 1)[0]}/{item['assets'][key]['href'].removeprefix('./')}"


@pytest.fixture
def client(server: str) -> Any:
    """OWSLib's OGC API - Processes client, asking for JSON."""
    from owslib.ogcapi.processes import Processes

    return Processes(server, headers={"Accept": "application/json"}, timeout=900)


def _job_id(client: Any) -> str:
    """The job id from the Location header of the last execute (OWSLib keeps the headers)."""
    location = client.response_headers["Location"]
    assert location.startswith(f"{client.url}jobs/"), location
    return location.rsplit("/", 1)[1]


def test_process_is_listed_and_described(client: Any) -> None:
    assert [p["id"] for p in client.processes()] == ["glacier-velocity"]
    process = client.process("glacier-velocity")
    assert set(process["jobControlOptions"]) == {"sync-execute", "async-execute"}
    assert "stac_catalog" in process["outputs"] and "catalog" in process["outputs"]
    assert process["inputs"]["max_velocity_m_per_yr"]["schema"]["type"] == "number"
    # departure from OGC API - Processes 1.0: pygeoapi replaces the process's
    # outputTransmission ["value", "reference"] by ["value"] (docs/deployment.md)
    assert process["outputTransmission"] == ["value"]


@pytest.mark.slow
def test_sync_execution_returns_the_stac_catalog(client: Any, demo_stac: str) -> None:
    body = _execute_body(demo_stac)
    document = client.execute("glacier-velocity", body["inputs"], outputs=body["outputs"], response="document")
    # departure: the results document is wrapped, {"outputs": [{<output id>: ...}]}, where
    # OGC API - Processes 1.0 has {<output id>: ...}
    [results] = document["outputs"]
    assert set(results) == {"stac_catalog", "catalog"}  # the execute request asks for the catalog only
    _check_catalog(results)
    assert client.response_headers["Content-Type"].startswith("application/json")
    _job_id(client)  # a synchronous job is recorded too


@pytest.mark.slow
def test_async_execution_job_polling_and_results(client: Any, server: str, demo_stac: str) -> None:
    body = _execute_body(demo_stac)
    accepted = client.execute(
        "glacier-velocity", body["inputs"], outputs={}, response="document", async_=True
    )  # all outputs
    # departure: the 201 answer has an empty body where OGC API - Processes 1.0 returns the
    # job's statusInfo; the job is found through the Location header only
    assert accepted == {}
    assert client.response_headers["Preference-Applied"] == "respond-async"
    job_id = _job_id(client)
    # OWSLib 0.35 has no job or results methods: its generic request does the GETs
    deadline = time.monotonic() + 900
    states = []
    while True:
        job = client._request(path=f"jobs/{job_id}")
        states.append(job["status"])
        if job["status"] in ("successful", "failed", "dismissed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert job["status"] == "successful", job
    assert job["jobID"] == job_id and ("running" in states or "accepted" in states)
    document = client._request(path=f"jobs/{job_id}/results")
    assert client.response_headers["Content-Type"].startswith("application/json")
    [results] = document["outputs"]  # wrapped, as the synchronous answer
    assert set(results) == {"stac_catalog", "catalog"}  # the Workflow's one output
    items = _check_catalog(results)
    pair_url, pair = items["S2_99XXX_20220610_20220705"]
    status, _, cog = _request(_asset_url(pair_url, pair, "velocity"))
    assert status == 200 and cog[:4] == b"II*\x00"  # a little-endian TIFF
    status, _, png = _request(_asset_url(*items["velocity-summary"], "summary_figure"))
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    status, _, notebook = _request(_asset_url(*items["run-provenance"], "aggregation"))
    assert status == 200 and notebook["nbformat"] == 4
    # the raw 201 exchange (a job that fails at once on its input): no body at all
    status, headers, raw = _request(
        f"{server}/processes/glacier-velocity/execution", {"inputs": {"no_such_input": 1}}, {"Prefer": "respond-async"}
    )
    assert status == 201 and raw is None and "/jobs/" in headers["Location"]


def test_bad_input_is_a_client_error_naming_it(server: str) -> None:
    status, _, error = _request(
        f"{server}/processes/glacier-velocity/execution",
        {"inputs": {"start_year": 2022, "end_year": 2022, "no_such_input": 1}},
    )
    assert status == 400
    assert "no_such_input" in error["description"]


def test_outputs_route_stays_inside_the_job_directory(server: str) -> None:
    status, _, _ = _request(f"{server}/outputs/..%2F..%2Fconfig.yml")
    assert status == 404
