"""The package wrapped for an ADES (eoap-cwlwrap, deploy/ades/): stage-out to an S3 API on 127.0.0.1.

The stage-out signs its requests (AWS Signature Version 4, standard library): checked against
AWS's published example. The wrapped package runs on the demo with cwltool, and the catalog
with every asset must arrive in a bucket of a local moto server.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from glacier_velocity import demo
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.deploy.s3upload import Credentials, catalog_files, sign_v4
from glacier_velocity.errors import InputError
from glacier_velocity.workflow import runner
from helpers import free_port, running_server, write_development_package

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".venv" / "tools"
CWLWRAP_PYTHON = TOOLS / "cwlwrap" / "bin" / "python"
MOTO_SERVER = TOOLS / "moto" / "bin" / "moto_server"
ONE_PAIR = {"end_year": 2022, "end_month": 7}
KEYS = Credentials("testing-key", "testing-secret", "us-east-1")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_signature_v4_matches_the_aws_example() -> None:
    # AWS General Reference, "Signature Version 4 signing process", GET ListUsers example.
    headers = sign_v4(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        EMPTY_SHA256,
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        service="iam",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert headers["x-amz-date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def test_stage_out_refuses_a_catalog_pointing_outside_its_directory(tmp_path: Path) -> None:
    (tmp_path / "outside.tif").write_bytes(b"x")
    root = tmp_path / "catalog"
    (root / "a").mkdir(parents=True)
    (root / "catalog.json").write_text(
        json.dumps({"type": "Catalog", "links": [{"rel": "item", "href": "./a/a.json"}]})
    )
    (root / "a" / "a.json").write_text(
        json.dumps({"type": "Feature", "links": [], "assets": {"v": {"href": "../../outside.tif"}}})
    )
    with pytest.raises(InputError, match="does not resolve to a file inside"):
        catalog_files(root)
    (root / "a" / "a.tif").write_bytes(b"x")
    (root / "a" / "a.json").write_text(
        json.dumps({"type": "Feature", "links": [], "assets": {"v": {"href": "./a.tif"}}})
    )
    assert [p.name for p in catalog_files(root)] == ["a.json", "a.tif", "catalog.json"]


def _s3(method: str, url: str) -> bytes:
    headers = sign_v4(method, url, {"x-amz-content-sha256": EMPTY_SHA256}, EMPTY_SHA256, KEYS)
    with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=30) as answer:
        return answer.read()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1, stopped afterwards."""
    if not MOTO_SERVER.exists():
        pytest.fail(f"{MOTO_SERVER} missing: run `make ades-setup` (make test does)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
        return True

    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with running_server([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], ready, log):
        yield url


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The development package (repository notebooks, image as a hint) wrapped as make package-wrap does."""
    if not CWLWRAP_PYTHON.exists():
        pytest.fail(f"{CWLWRAP_PYTHON} missing: run `make ades-setup` (make test does)")
    work = tmp_path_factory.mktemp("wrap")
    package_file = write_development_package(work / "package.cwl")
    ades = ROOT / "deploy" / "ades"
    completed = subprocess.run(
        [
            str(CWLWRAP_PYTHON),
            str(ades / "wrap.py"),
            "--workflow",
            f"{package_file}#glacier-velocity",
            "--directory-stage-in",
            str(ades / "stage-in.cwl"),
            "--directory-stage-out",
            str(ades / "stage-out.cwl"),
            "--output",
            str(work / "wrapped.cwl"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return work / "wrapped.cwl"


def test_wrapped_package_is_self_contained(wrapped: Path) -> None:
    text = wrapped.read_text()
    assert "$import" not in text  # nothing to fetch from GitHub when a runner loads it
    graph = {p["id"]: p for p in yaml.safe_load(text)["$graph"]}
    assert {"main", "glacier-velocity", "stage-out", "collect"} <= set(graph)
    main = graph["main"]
    assert [o["id"] for o in main["outputs"]] == ["catalog"]
    # Every input is passed by value (the AOI and the outlines are strings): no stage-in step runs.
    assert [step["id"] for step in main["steps"]] == ["app", "stage_out_0"]
    assert not [i["id"] for i in main["inputs"] if "File" in str(i["type"]) or "Directory" in str(i["type"])]
    inputs = {i["id"] for i in main["inputs"]}
    assert {
        "s3_bucket",
        "sub_path",
        "aws_access_key_id",
        "aws_secret_access_key",
        "region_name",
        "endpoint_url",
    } <= inputs


@pytest.mark.slow
def test_wrapped_package_stages_the_catalog_out_to_s3(wrapped: Path, s3_endpoint: str, tmp_path: Path) -> None:
    bucket, prefix = "results", "job-1"
    _s3("PUT", f"{s3_endpoint}/{bucket}")
    data = demo.generate_demo_data(tmp_path / "data")
    with serve_stac([data.collection, data.items]) as stac_url:
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS,
            tmp_path / "job.yml",
            data_location=data.root,
            stac_url=stac_url,
            s3_bucket=bucket,
            sub_path=prefix,
            aws_access_key_id=KEYS.access_key,
            aws_secret_access_key=KEYS.secret_key,
            region_name=KEYS.region,
            endpoint_url=s3_endpoint,
            **ONE_PAIR,
        )
        outputs, _ = runner.run_cwltool(f"{wrapped}#main", job, tmp_path / "out", quiet=True)
    assert outputs["catalog"]["value"] == f"s3://{bucket}/{prefix}/catalog.json"
    listing = ET.fromstring(_s3("GET", f"{s3_endpoint}/{bucket}?list-type=2&prefix={prefix}/"))
    keys = {e.text for e in listing.iter() if e.tag.endswith("}Key")}
    base = f"{s3_endpoint}/{bucket}/{prefix}"
    catalog = json.loads(_s3("GET", f"{base}/catalog.json"))
    items = [link["href"].removeprefix("./") for link in catalog["links"] if link["rel"] == "item"]
    assert sorted(h.split("/")[0] for h in items) == [
        "S2_99XXX_20220610_20220705",
        "run-provenance",
        "velocity-summary",
    ]
    expected = {f"{prefix}/catalog.json"}
    for href in items:
        item = json.loads(_s3("GET", f"{base}/{href}"))
        folder = href.rsplit("/", 1)[0]
        expected.add(f"{prefix}/{href}")
        for asset in item["assets"].values():
            expected.add(str(Path(prefix, folder, asset["href"])).replace(f"{folder}/../", ""))
    assert expected <= keys, sorted(expected - keys)
    provenance = {k.rsplit("/", 1)[1] for k in keys if "/run-provenance/" in k}
    assert {
        "discovery.ipynb",
        "aggregation.ipynb",
        "correlation_99XXX_20220610_20220705.ipynb",
        "pairs.json",
    } <= provenance
    velocity = _s3("GET", f"{base}/S2_99XXX_20220610_20220705/S2_99XXX_20220610_20220705.tif")
    assert velocity[:4] == b"II*\x00"
