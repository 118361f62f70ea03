"""The OGC API - Processes server (pygeoapi + the glacier-velocity job routes), as clients see it.

The server runs on a free port of 127.0.0.1 with two API keys (alice, bob), at most 2 jobs at
once and 1 per key, and is driven over HTTP with OWSLib's client and plain requests: keys and
ownership, client inputs that are values (never the server's files), the outbound-address
policy on the URLs a client gives, the request-size limit, the queue, dismissal that stops a
running job's processes, and OGC API - Processes Part 1: Core (201 with statusInfo and
Location, accepted -> running -> successful/failed, unwrapped results, JSON to ``Accept: */*``,
links that resolve, failures as failed jobs with OGC exception types). To keep CI time
reasonable the workflow runs are a development build of the package (``cwltool
--no-container``) on the one-pair demo season; the package in containers is
tests/test_container.py's. Issue 22 (findings 1-4) and issue 24 (item 6).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.deploy import ogc
from glacier_velocity.deploy import package as pkg
from glacier_velocity.deploy.ogc_access import ApiKeys
from glacier_velocity.deploy.ogc_api import clean_message
from glacier_velocity.deploy.ogc_inputs import value_forms
from glacier_velocity.errors import InvalidParameter
from helpers import free_port, running_server, write_development_package

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.deploy
#: The one-pair demo season (2022-06-10 -> 2022-07-05), as tests/test_cwl.py uses.
ONE_PAIR = {"end_year": 2022, "end_month": 7}
KEY_A, KEY_B = "alice-" + "a" * 40, "bob-" + "b" * 40
#: The demo's STAC API, allowed by the operator on this one port (the test starts it when needed).
DEMO_PORT = free_port()
OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
VALUES_ONLY = (
    "give the value itself - {forms} - or an http(s) URL; this service reads no file of its own, so paths and "
    "file: URLs are refused"
)


@pytest.fixture(scope="module")
def description() -> dict:
    return json.loads((ROOT / "deploy" / "ogc" / "process-description.json").read_text())


# --- Without a server ------------------------------------------------------------------------------


def test_cwl_job_from_execute_inputs(description: dict) -> None:
    job = ogc.cwl_job({"stac_url": "http://127.0.0.1:1234", "aoi": "1,2,3,4", "tile": None}, description["inputs"])
    assert job == {"stac_url": "http://127.0.0.1:1234", "aoi": "1,2,3,4", "tile": None}


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


def test_results_link_every_output_and_the_catalog_to_its_catalog_json(tmp_path: Path) -> None:
    job = tmp_path / "job-1"
    (job / "outputs" / "catalog").mkdir(parents=True)
    (job / "outputs" / "catalog" / "catalog.json").write_text("{}")
    outputs = {
        "catalog": {"class": "Directory", "path": str(job / "outputs" / "catalog"), "basename": "catalog"},
        "quicklooks": [{"class": "File", "path": str(job / "outputs" / "a.png"), "basename": "a.png"}],
        "summary_figure": None,
    }
    results = ogc.results_document(outputs, job, "http://h:1/outputs/job-1")
    assert results["stac_catalog"]["href"] == "http://h:1/outputs/job-1/outputs/catalog/catalog.json"
    assert results["catalog"] == {
        "href": "http://h:1/outputs/job-1/outputs/catalog/catalog.json",
        "type": "application/json",
        "title": "catalog",
    }
    assert results["quicklooks"] == [
        {"href": "http://h:1/outputs/job-1/outputs/a.png", "type": "image/png", "title": "a.png"}
    ]
    only = ogc.results_document(outputs, job, "http://h:1/outputs/job-1", requested=["catalog"])
    assert set(only) == {"stac_catalog", "catalog"}


def test_a_failed_run_gives_one_line_without_colours_paths_or_traceback() -> None:
    log = (
        "\x1b[1;30mINFO\x1b[0m [workflow ] start\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/glacier-velocity/.venv/lib/python3.11/site-packages/papermill/execute.py", line 131\n'
        "PapermillExecutionError: \n"
        "---------------------------------------------------------------------------\n"
        "\x1b[0;31mInputError\x1b[0m: cannot read raster reference 'S2B' nir ('/srv/jobs/7/in/B08.tif'): truncated\n"
        "\x1b[0;31mInvalidParameter\x1b[0m: collection: 'x' is not a collection of http://10.0.0.5:8080/stac\n"
        "\x1b[33mWARNING\x1b[0m Final process status is permanentFail\n"
    )
    assert (
        ogc.failure_message(log) == "collection: 'x' is not a collection of http://10.0.0.5:8080/stac"
    )  # the last error of the package; the URL kept, it is no server path
    assert ogc.failure_message(log.rsplit("\x1b[0;31mInvalid", 1)[0]) == (
        "cannot read raster reference 'S2B' nir ('B08.tif'): truncated"
    )
    fallback = ogc.failure_message("Traceback (most recent call last):\n  File \"/x.py\"\nKeyError: 'a'\n")
    assert fallback == "the workflow failed; the server's operator has its log"
    assert_documented(fallback)
    assert clean_message("\x1b[31mno file /home/op/secret/keys.txt\x1b[0m\n there") == "no file keys.txt there"


def test_api_keys_from_a_file_and_the_environment(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# who, key\nalice {KEY_A}\n")
    keys = ApiKeys.load(keys_file, environ={"GLACIER_VELOCITY_OGC_KEYS": f"bob={KEY_B}"})
    assert keys.owner(f"Bearer {KEY_A}", None) == "alice" and keys.owner(None, KEY_B) == "bob"
    assert keys.owner(f"Bearer {KEY_A}x", None) is None and keys.owner(None, None) is None
    assert KEY_A.encode() not in repr(keys).encode()  # digests only
    for bad, match in [
        ("alice short\n", "at least 24 characters"),
        (f"alice {KEY_A}\nalice {KEY_B}\n", "given twice"),
        (f"ali ce {KEY_A}\n", "at least 24 characters, no spaces"),
    ]:
        keys_file.write_text(bad)
        with pytest.raises(InvalidParameter, match=match):
            ApiKeys.load(keys_file, environ={})
    with pytest.raises(InvalidParameter, match=r"no API key: give --keys-file"):
        ApiKeys.load(None, environ={})
    assert ApiKeys.load(None, insecure_local=True, environ={}).owner(None, None) == "local"


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


# --- The server ------------------------------------------------------------------------------------


class StuckApi:
    """A 'STAC API' that takes connections and never answers: a job using it runs until stopped."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture(scope="module")
def stuck_api() -> Iterator[StuckApi]:
    api = StuckApi()
    yield api
    api.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stuck_api: StuckApi) -> Iterator[tuple[str, int]]:
    """The OGC API on a free port with keys for alice and bob: (URL, server pid)."""
    work = tmp_path_factory.mktemp("ogc")
    package_file = write_development_package(work / "glacier-velocity.cwl")
    port = free_port()
    config = ogc.pygeoapi_config(package=str(package_file), port=port, workdir=str(work / "state"), containers=False)
    (work / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (work / "keys.txt").write_text(f"alice {KEY_A}\nbob {KEY_B}\n")
    url = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "glacier_velocity", "ogc-serve", "--config", str(work / "config.yml")),
        *("--keys-file", str(work / "keys.txt"), "--max-jobs", "2", "--max-jobs-per-key", "1"),
    ]
    # The operator allows the demo's STAC API and the stuck one, on their ports only.
    env = {**os.environ, "GLACIER_VELOCITY_ALLOW_ADDRESSES": f"127.0.0.1:{DEMO_PORT},127.0.0.1:{stuck_api.port}"}
    ready = lambda: _request(f"{url}/processes")[0] == 200  # noqa: E731
    with running_server(command, ready, work / "server.log", startup_s=120, cwd=ROOT, env=env) as process:
        yield url, process.pid


def _request(
    url: str, body: Any = None, *, key: str | None = KEY_A, method: str | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], Any]:
    sent = {"Authorization": f"Bearer {key}"} if key else {}
    answer = requests.request(
        method or ("POST" if body is not None else "GET"),
        url,
        data=body if isinstance(body, bytes) else None if body is None else json.dumps(body),
        headers={**sent, **(headers or {})},
        timeout=900,
    )
    try:
        payload = answer.json()
    except ValueError:
        payload = answer.content
    return answer.status_code, dict(answer.headers), payload


def _execute(url: str, inputs: dict, *, key: str = KEY_A, asynchronous: bool = True) -> tuple[int, dict, Any]:
    headers = {"Prefer": "respond-async"} if asynchronous else {}
    return _request(f"{url}/processes/glacier-velocity/execution", {"inputs": inputs}, key=key, headers=headers)


def _client(url: str, key: str) -> Any:
    """OWSLib's OGC API - Processes client with a key, asking for JSON."""
    from owslib.ogcapi import REQUEST_HEADERS
    from owslib.ogcapi.processes import Processes

    headers = {"Accept": "application/json", "Authorization": f"Bearer {key}"}
    client = Processes(url, headers=headers, timeout=900)
    # OWSLib 0.35 updates one module-wide dict with every client's headers (the last key would
    # be every client's): this client gets a dict of its own, and the shared one its defaults.
    client.headers = {**REQUEST_HEADERS, **headers}
    for name in headers:
        REQUEST_HEADERS.pop(name, None)
    return client


def test_every_request_needs_a_key(server: tuple[str, int]) -> None:
    url, _ = server
    for key in (None, "not-a-key-of-this-server-at-all-xxxxxx"):
        status, headers, error = _request(f"{url}/processes", key=key)
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="glacier-velocity"'
        assert error == {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "this server needs an API key: send it as 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')",
        }
    assert_documented(error["detail"])
    assert _request(f"{url}/processes", key=None, headers={"X-API-Key": KEY_B})[0] == 200
    for path in ("/", "/conformance", "/jobs", "/outputs/x/outputs/catalog.json"):
        assert _request(f"{url}{path}", key=None)[0] == 401


def test_process_description_declares_defaults_ranges_and_the_catalog_schema(server: tuple[str, int]) -> None:
    client = _client(server[0], KEY_A)
    assert [p["id"] for p in client.processes()] == ["glacier-velocity"]
    process = client.process("glacier-velocity")
    assert set(process["jobControlOptions"]) == {"sync-execute", "async-execute"}
    # departure left to pygeoapi: it replaces the process's ["value", "reference"] (docs/deployment.md)
    assert process["outputTransmission"] == ["value"]
    inputs = process["inputs"]
    required = sorted(name for name, d in inputs.items() if d["minOccurs"] == 1)
    assert required == ["aoi", "end_year", "start_year"]  # every other input has a default
    assert inputs["aoi_cloud_cover"]["schema"]["default"] is False
    for month in ("start_month", "end_month"):
        assert (inputs[month]["schema"]["minimum"], inputs[month]["schema"]["maximum"]) == (1, 12)
    catalog_schema = "https://schemas.stacspec.org/v1.0.0/catalog-spec/json-schema/catalog.json"
    for output in ("catalog", "stac_catalog"):
        assert process["outputs"][output]["schema"]["allOf"] == [{"$ref": catalog_schema}]


@pytest.mark.parametrize("name", ["aoi", "glacier_outlines", "points_of_interest"])
def test_client_inputs_are_values_and_the_servers_files_are_never_read(server: tuple[str, int], name: str) -> None:
    url, _ = server
    forms = value_forms(name)
    details = set()
    for given in ("/etc/shadow", "/proc/self/environ", "/no/such/file.geojson", "/tmp", "file:///etc/passwd",
                  "ftp://example.org/a.geojson", "../outlines.geojson", {"href": "/etc/shadow"}):  # fmt: skip
        inputs = {"aoi": "1,2,3,4", "start_year": 2022, "end_year": 2022, name: given}
        status, _, error = _execute(url, inputs)
        assert status == 400 and error["type"] == OGC + "invalid-parameter", error
        details.add(error["detail"])
    # One message, whether the path exists, is a directory, a file or not JSON: nothing is looked up.
    assert details == {f"{name}: " + VALUES_ONLY.format(forms=forms)}
    assert_documented(details.pop(), name, forms)


def test_a_url_to_this_machine_or_its_network_is_refused_and_never_contacted(server: tuple[str, int]) -> None:
    url, _ = server
    details = []
    with FlakyServer(files={"/": b"{}"}) as internal:
        closed = free_port()
        for port in (int(internal.url.rsplit(":", 1)[1]), closed):
            for name, value in (("stac_url", f"http://127.0.0.1:{port}"), ("aoi", f"http://127.0.0.1:{port}/a")):
                inputs = {"aoi": "1,2,3,4", "start_year": 2022, "end_year": 2022, name: value}
                status, _, error = _execute(url, inputs)
                assert status == 400, error
                details.append(error["detail"].replace(str(port), "<port>"))
        inputs = {"aoi": "1,2,3,4", "start_year": 2022, "end_year": 2022}
        status, _, error = _execute(url, {**inputs, "glacier_outlines": "http://169.254.169.254/latest/meta-data/"})
        assert status == 400 and "169.254.169.254" in error["detail"]
        assert internal.requests == []
    assert details[:2] == details[2:]  # a listening service and a closed port read the same
    refused = (
        "{url} resolves to a non-public address (loopback, link-local, private or reserved) and was not contacted; "
        "only public addresses are fetched from, and what the operator allows in GLACIER_VELOCITY_ALLOW_ADDRESSES"
    )
    assert details[0] == "stac_url: " + refused.format(url="http://127.0.0.1:<port>")
    assert_documented(details[0], "stac_url", "http://127.0.0.1:<port>")


def test_bad_values_and_bodies_are_client_errors_naming_them(server: tuple[str, int]) -> None:
    url, _ = server
    base = {"aoi": "1,2,3,4", "start_year": 2022, "end_year": 2022}
    for inputs, detail in [
        ({**base, "start_month": 13}, "start_month: must be a month number 1-12, got 13"),
        ({**base, "no_such_input": 1}, "no_such_input: glacier-velocity has no input 'no_such_input'"),
        ({"aoi": "1,2,3,4", "start_year": 2022}, "end_year: is required: give it in 'inputs'"),
        ({**base, "aoi": '{"type": "Point"'}, "aoi: "),
    ]:
        status, _, error = _execute(url, inputs)
        assert status == 400 and error["type"] == OGC + "invalid-parameter" and error["detail"].startswith(detail)
    status, _, error = _request(f"{url}/processes/glacier-velocity/execution", b"x" * (3 * 1024 * 1024))
    assert (status, error["type"], error["title"]) == (413, "about:blank", "Request Entity Too Large")
    assert error["detail"] == "the request body is larger than 2097152 bytes, this server's limit"
    assert_documented(error["detail"], "2097152")
    status, _, error = _request(f"{url}/processes/nope/execution", {"inputs": base})
    assert (status, error["type"]) == (404, OGC + "no-such-process")
    for path in ("/jobs/nope", "/jobs/nope/results"):
        status, _, error = _request(f"{url}{path}")
        assert (status, error["type"], error["detail"]) == (404, OGC + "no-such-job", "there is no job 'nope'")


def _processes() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    return found


def _descendants(root: int) -> set[int]:
    parents = _processes()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def _status(url: str, job_id: str, key: str = KEY_A) -> str:
    return _request(f"{url}/jobs/{job_id}", key=key)[2]["status"]


@pytest.mark.integration  # four runs started (about 35 s)
def test_jobs_queue_per_key_and_in_all_and_dismissal_stops_the_whole_run(
    server: tuple[str, int], stuck_api: StuckApi
) -> None:
    """At most 1 job of a key and 2 in all run; the rest wait (accepted). Dismissing a running job
    ends every process of its run (cwltool, papermill, the kernel waiting on the stuck API),
    removes its files, frees its slot; another key cannot dismiss it."""
    url, server_pid = server
    stuck = {"stac_url": f"http://127.0.0.1:{stuck_api.port}", "aoi": "1,2,3,4", "start_year": 2022, "end_year": 2022}
    before = _descendants(server_pid)
    a1 = _execute(url, stuck)[2]["jobID"]
    _wait_for(lambda: len(stuck_api.connections) >= 1)  # a1's discovery step waits on the API
    run_a1 = _descendants(server_pid) - before
    a2 = _execute(url, stuck)[2]["jobID"]
    b1 = _execute(url, stuck, key=KEY_B)[2]["jobID"]
    b2 = _execute(url, stuck, key=KEY_B)[2]["jobID"]
    assert [_status(url, a1), _status(url, a2)] == ["running", "accepted"]  # alice's limit
    assert [_status(url, b1, KEY_B), _status(url, b2, KEY_B)] == ["running", "accepted"]  # and bob's
    assert len(run_a1) >= 3  # cwltool, papermill, the kernel (at least)
    status, _, error = _request(f"{url}/jobs/{a1}", key=KEY_B, method="DELETE")
    assert (status, error["type"]) == (404, OGC + "no-such-job")  # not bob's to dismiss, nor to see
    status, _, dismissed = _request(f"{url}/jobs/{a1}", method="DELETE")
    assert status == 200 and dismissed["status"] == "dismissed" and dismissed["jobID"] == a1
    _wait_for(lambda: not (run_a1 & set(_processes())), timeout_s=30)
    assert _request(f"{url}/jobs/{a1}")[0] == 404
    _wait_for(lambda: _status(url, a2) == "running")  # a1's slot is a2's now
    assert _status(url, b2, KEY_B) == "accepted"  # 2 running in all: bob's second still waits
    for job, key in ((a2, KEY_A), (b1, KEY_B), (b2, KEY_B)):
        assert _request(f"{url}/jobs/{job}", key=key, method="DELETE")[0] == 200
    _wait_for(lambda: not (_descendants(server_pid) - before), timeout_s=30)
    for key in (KEY_A, KEY_B):
        listed = {j["jobID"] for j in _request(f"{url}/jobs", key=key)[2]["jobs"]}
        assert not listed & {a1, a2, b1, b2}  # dismissed jobs are gone


# --- Whole runs (slow) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_stac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from glacier_velocity.demo.scenes import generate_demo_data
    from glacier_velocity.demo.stacserver import serve_stac

    data = generate_demo_data(tmp_path_factory.mktemp("demo") / "data")
    with serve_stac([data.collection, data.items], port=DEMO_PORT) as url:
        yield url


def _demo_inputs(stac_url: str) -> dict:
    body = json.loads((ROOT / "deploy" / "ogc" / "execute-demo.json").read_text())
    return {**body["inputs"], "stac_url": stac_url, **ONE_PAIR}


def _check_catalog(catalog_url: str, key: str = KEY_A) -> dict[str, tuple[str, dict]]:
    """Fetch the catalog and its items over HTTP; return {item id: (item URL, item)}."""
    status, _, catalog = _request(catalog_url, key=key)
    assert status == 200 and catalog["type"] == "Catalog", catalog
    base = catalog_url.rsplit("/", 1)[0]
    items = {}
    for link in (link for link in catalog["links"] if link["rel"] == "item"):
        item_url = f"{base}/{link['href'].removeprefix('./')}"
        status, _, item = _request(item_url, key=key)
        assert status == 200 and item["type"] == "Feature"
        items[item["id"]] = (item_url, item)
    # the one pair, the summary and the run's provenance (its executed notebooks)
    assert sorted(items) == ["S2_99XXX_20220610_20220705", "run-provenance", "velocity-summary"]
    return items


def _asset_url(item_url: str, item: dict, key: str) -> str:
    return f"{item_url.rsplit('/', 1)[0]}/{item['assets'][key]['href'].removeprefix('./')}"


@pytest.mark.integration
def test_owslib_async_execution_is_owned_by_its_key(server: tuple[str, int], demo_stac: str) -> None:
    url, _ = server
    alice, bob = _client(url, KEY_A), _client(url, KEY_B)
    accepted = alice.execute("glacier-velocity", _demo_inputs(demo_stac), outputs={}, async_=True)
    # 201 with the job's statusInfo, and its Location
    assert accepted["status"] in ("accepted", "running") and accepted["processID"] == "glacier-velocity"
    job_id = accepted["jobID"]
    assert alice.response_headers["Location"] == f"{url}/jobs/{job_id}"
    assert alice.response_headers["Preference-Applied"] == "respond-async"
    states = [accepted["status"]]
    deadline = time.monotonic() + 900
    while states[-1] not in ("successful", "failed") and time.monotonic() < deadline:
        time.sleep(1)
        states.append(alice._request(path=f"jobs/{job_id}")["status"])  # OWSLib 0.35 has no job methods
    assert states[-1] == "successful" and "running" in states, states
    assert set(states) <= {"accepted", "running", "successful"}
    # The results document itself (not wrapped in outputs[...]), JSON whatever the Accept.
    results = alice._request(path=f"jobs/{job_id}/results")
    assert set(results) == {"stac_catalog", "catalog"}
    status, headers, raw = _request(f"{url}/jobs/{job_id}/results", headers={"Accept": "*/*"})
    assert status == 200, raw
    assert headers["Content-Type"] == "application/json" and raw == results
    assert results["catalog"]["href"] == results["stac_catalog"]["href"]  # the catalog's link resolves
    items = _check_catalog(results["catalog"]["href"])
    pair_url, pair = items["S2_99XXX_20220610_20220705"]
    status, _, cog = _request(_asset_url(pair_url, pair, "velocity"))
    assert status == 200 and cog[:4] == b"II*\x00"  # a little-endian TIFF
    # Bob sees nothing of it: not its status, results, files, nor in his list; nor can he dismiss it.
    for path in (f"jobs/{job_id}", f"jobs/{job_id}/results"):
        with pytest.raises(RuntimeError, match="no-such-job"):
            bob._request(path=path)
    assert job_id not in [j["jobID"] for j in bob._request(path="jobs")["jobs"]]
    assert _request(results["catalog"]["href"], key=KEY_B)[0] == 404
    assert _request(f"{url}/jobs/{job_id}", key=KEY_B, method="DELETE")[0] == 404
    assert job_id in [j["jobID"] for j in alice._request(path="jobs")["jobs"]]
    assert _request(f"{url}/outputs/{job_id}/job.json")[0] == 404  # inputs and logs are not outputs


@pytest.mark.integration
def test_sync_execution_answers_the_results_document(server: tuple[str, int], demo_stac: str) -> None:
    """Plain HTTP, as curl would: no Prefer header, response raw (the default)."""
    url, _ = server
    body = {"inputs": _demo_inputs(demo_stac), "outputs": {"catalog": {"transmissionMode": "reference"}}}
    status, headers, results = _request(
        f"{url}/processes/glacier-velocity/execution", {**body, "response": "raw"}, key=KEY_B
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert set(results) == {"stac_catalog", "catalog"}  # departure: raw answers the results document too
    _check_catalog(results["catalog"]["href"], key=KEY_B)
    job_id = headers["Location"].rsplit("/", 1)[1]
    assert _request(f"{url}/jobs/{job_id}", key=KEY_B)[2]["status"] == "successful"


@pytest.mark.integration
def test_a_runtime_failure_is_a_failed_job_with_one_clear_line(server: tuple[str, int], demo_stac: str) -> None:
    url, _ = server
    inputs = {**_demo_inputs(demo_stac), "collection": "landsat-c2-l2"}  # no such collection: found at run time
    status, headers, error = _execute(url, inputs, asynchronous=False)
    detail = f"collection: 'landsat-c2-l2' is not a collection of {demo_stac}; available: sentinel-2-l2a"
    assert (status, error["type"], error["detail"]) == (500, OGC + "failed", detail)
    job_id = headers["Location"].rsplit("/", 1)[1]
    assert _status(url, job_id) == "failed"
    assert _request(f"{url}/jobs/{job_id}")[2]["message"] == detail
    status, _, again = _request(f"{url}/jobs/{job_id}/results")
    assert status == 500 and again == error


@pytest.mark.integration
def test_owslib_sees_client_errors_and_a_failed_job_in_one_line(server: tuple[str, int], demo_stac: str) -> None:
    """OWSLib's client, as a user drives it: a bad value is refused at once (400, naming the
    input); a run that fails at run time is an accepted job whose status turns failed, with
    the one line of why in its status and its results (issue 24, item 6)."""
    url, _ = server
    alice = _client(url, KEY_A)
    with pytest.raises(RuntimeError) as refused:  # OWSLib 0.35 raises with the response body
        alice.execute("glacier-velocity", {**_demo_inputs(demo_stac), "start_month": 13}, outputs={}, async_=True)
    error = json.loads(str(refused.value))
    assert (error["status"], error["type"]) == (400, OGC + "invalid-parameter")
    assert error["detail"].startswith("start_month: must be a month number 1-12, got 13")
    inputs = {**_demo_inputs(demo_stac), "collection": "landsat-c2-l2"}  # no such collection: found at run time
    accepted = alice.execute("glacier-velocity", inputs, outputs={}, async_=True)
    assert accepted["status"] in ("accepted", "running")
    job_id = accepted["jobID"]
    _wait_for(lambda: alice._request(path=f"jobs/{job_id}")["status"] not in ("accepted", "running"), timeout_s=300)
    status = alice._request(path=f"jobs/{job_id}")
    detail = f"collection: 'landsat-c2-l2' is not a collection of {demo_stac}; available: sentinel-2-l2a"
    assert (status["status"], status["message"]) == ("failed", detail)
    with pytest.raises(RuntimeError) as failed:
        alice._request(path=f"jobs/{job_id}/results")
    error = json.loads(str(failed.value))
    assert (error["status"], error["type"], error["detail"]) == (500, OGC + "failed", detail)
