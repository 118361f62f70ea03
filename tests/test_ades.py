"""The package wrapped for an ADES (eoap-cwlwrap, deploy/ades/): stage-out to an S3 API on 127.0.0.1.

The stage-out (boto3) uploads a catalog to a local moto server: large files in parts, each
object with its media type, temporary credentials with their session token. The wrapped
package runs on the demo with cwltool, and the catalog with every asset must arrive in the
bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from glacier_velocity import demo
from glacier_velocity.demo.run import items_with_http_assets
from glacier_velocity.demo.scenes import DEMO_OUTLINES_FILE
from glacier_velocity.deploy import package as pkg
from glacier_velocity.deploy import s3upload
from glacier_velocity.deploy.containers import serve_files
from glacier_velocity.deploy.s3upload import catalog_files, s3_client
from glacier_velocity.errors import InputError
from glacier_velocity.workflow import runner
from helpers import moto_s3_server, wrap_package, write_development_package

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.deploy
ONE_PAIR = {"end_year": 2022, "end_month": 7}
#: Credentials the moto server takes (any).
KEYS = {
    "AWS_ACCESS_KEY_ID": "testing-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MIB = 1024 * 1024


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


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1, stopped afterwards."""
    with moto_s3_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The development package (repository notebooks, image as a hint) wrapped as make package-wrap does."""
    work = tmp_path_factory.mktemp("wrap")
    return wrap_package(write_development_package(work / "package.cwl"), work)


def _docker(process: dict) -> tuple[str | None, str | None]:
    """(where, image) of a process's DockerRequirement: 'requirements' or 'hints'."""
    for where in ("requirements", "hints"):
        for entry in process.get(where) or []:
            if entry["class"] == "DockerRequirement":
                return where, entry["dockerPull"]
    return None, None


def test_every_tool_of_the_wrapped_package_requires_the_packages_pinned_image(tmp_path: Path) -> None:
    """The stage tools named glacier-velocity:latest as a hint, a tag no registry has (issue 24, item 1)."""
    metadata = pkg.project_metadata(ROOT)
    image = f"registry.example.org/eo/glacier-velocity:{metadata.version}@sha256:{'0123456789abcdef' * 4}"
    package_file = pkg.write_package(
        pkg.build_package(ROOT / "cwl", image=image, metadata=metadata), tmp_path / "p.cwl"
    )
    wrapped = wrap_package(package_file, tmp_path)
    tools = [p for p in yaml.safe_load(wrapped.read_text())["$graph"] if p["class"] == "CommandLineTool"]
    assert {"stage-in", "file-stage-in", "stage-out"} <= {t["id"] for t in tools}
    assert {t["id"]: _docker(t) for t in tools} == {t["id"]: ("requirements", image) for t in tools}
    assert ":latest" not in wrapped.read_text()


def test_wrapped_package_is_self_contained(wrapped: Path) -> None:
    text = wrapped.read_text()
    assert "$import" not in text  # nothing to fetch from GitHub when a runner loads it
    graph = {p["id"]: p for p in yaml.safe_load(text)["$graph"]}
    assert {"main", "glacier-velocity", "stage-out", "collect"} <= set(graph)
    main = graph["main"]
    assert [o["id"] for o in main["outputs"]] == ["catalog"]
    # The File-or-string inputs each get a file stage-in (a URI fetched, a string passed on),
    # skipped when an optional one is null; nothing else is staged in.
    # The staged items, an optional Directory, get a directory stage-in (a URI of items fetched
    # into a STAC catalog), skipped when null.
    steps = {step["id"]: step for step in main["steps"]}
    assert sorted(steps) == [
        "app",
        "directory_stage_in_0",
        "file_stage_in_0",
        "file_stage_in_1",
        "file_stage_in_2",
        "stage_out_0",
    ]
    staged = {steps[f"file_stage_in_{i}"]["in"][0]["source"] for i in range(3)}
    assert staged == {"aoi", "glacier_outlines", "points_of_interest"}
    assert "when" not in steps["file_stage_in_0"] and "when" in steps["file_stage_in_1"]
    assert (
        steps["directory_stage_in_0"]["in"][0]["source"] == "staged_items" and "when" in steps["directory_stage_in_0"]
    )
    types = {i["id"]: i["type"] for i in main["inputs"]}
    uri = "https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI"
    assert types["aoi"] == [uri, "string"] and types["glacier_outlines"] == ["null", uri, "string"]
    assert types["staged_items"] == ["null", uri]
    assert not [name for name, kind in types.items() if "File" in str(kind) or "Directory" in str(kind)]
    inputs = {i["id"] for i in main["inputs"]}
    assert {
        "s3_bucket",
        "sub_path",
        "aws_access_key_id",
        "aws_secret_access_key",
        "region_name",
        "endpoint_url",
    } <= inputs


def _catalog_with_a_large_asset(root: Path, size: int) -> Path:
    """A catalog of one item whose asset (``big.tif``) has ``size`` bytes of a known pattern."""
    (root / "a").mkdir(parents=True)
    (root / "catalog.json").write_text(
        json.dumps({"type": "Catalog", "links": [{"rel": "item", "href": "./a/a.json"}]})
    )
    (root / "a" / "a.json").write_text(
        json.dumps({"type": "Feature", "links": [], "assets": {"v": {"href": "./big.tif"}}})
    )
    (root / "a" / "big.tif").write_bytes(bytes(range(256)) * (size // 256))
    return root


def _object(client: Any, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    answer = client.get_object(Bucket=bucket, Key=key)
    return answer["Body"].read(), answer


def test_stage_out_uploads_large_files_in_parts_with_their_media_types(s3_endpoint: str, tmp_path: Path) -> None:
    client = s3_client(s3_endpoint, KEYS)
    client.create_bucket(Bucket="parts")
    root = _catalog_with_a_large_asset(tmp_path / "catalog", 12 * MIB)
    uri = s3upload.upload(root, "parts", "/job-2/", client, multipart_threshold=5 * MIB)
    assert uri == "s3://parts/job-2/catalog.json"
    listed = client.list_objects_v2(Bucket="parts", Prefix="job-2/")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["job-2/a/a.json", "job-2/a/big.tif", "job-2/catalog.json"]
    body, answer = _object(client, "parts", "job-2/a/big.tif")
    assert body == (root / "a" / "big.tif").read_bytes()
    # A multipart upload's ETag is the MD5 of the parts' MD5s, suffixed by their number: 5 + 5 + 2 MiB.
    assert answer["ETag"].strip('"').endswith("-3")
    assert answer["ContentType"] == "image/tiff"
    assert _object(client, "parts", "job-2/catalog.json")[1]["ContentType"] == "application/json"


def test_stage_out_takes_a_session_token_and_treats_empty_variables_as_unset() -> None:
    temporary = s3_client("http://127.0.0.1:9", {**KEYS, "AWS_SESSION_TOKEN": "session-token"})
    assert temporary._request_signer._credentials.token == "session-token"
    # The CWL tool sets every variable, empty when an input is not given: no empty token is sent.
    permanent = s3_client("http://127.0.0.1:9", {**KEYS, "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": ""})
    assert permanent._request_signer._credentials.token is None
    assert permanent.meta.region_name == "us-east-1"


def test_stage_out_without_credentials_says_what_to_give(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing for boto3's chain to find: no variables, no profile file, no instance metadata.
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = s3_client("http://127.0.0.1:9", {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    root = _catalog_with_a_large_asset(tmp_path / "catalog", 256)
    with pytest.raises(InputError, match="^no S3 credentials; give aws_access_key_id and aws_secret_access_key"):
        s3upload.upload(root, "bucket", "job", client)


@pytest.mark.integration
def test_wrapped_package_stages_the_catalog_out_to_s3(wrapped: Path, s3_endpoint: str, tmp_path: Path) -> None:
    bucket, prefix = "results", "job-1"
    client = s3_client(s3_endpoint, KEYS)
    client.create_bucket(Bucket=bucket)
    data = demo.generate_demo_data(tmp_path / "data")
    # The outlines by reference (a URI the file stage-in fetches), the AOI by value (a string
    # it passes on), the scenes staged in from an ItemCollection (the stage-in fetches the items
    # and their assets into a STAC catalog Directory), as an ADES hands them over: no search, the
    # STAC API URL answers nothing.
    with serve_files(data.root) as files_url:
        items_with_http_assets(data.items, data.root, files_url, data.items.with_name("items-http.json"))
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS,
            tmp_path / "job.yml",
            glacier_outlines={"value": f"{files_url}/{DEMO_OUTLINES_FILE}"},
            staged_items={"value": f"{files_url}/stac/items-http.json"},
            stac_url="http://127.0.0.1:9",
            s3_bucket=bucket,
            sub_path=prefix,
            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
            region_name=KEYS["AWS_DEFAULT_REGION"],
            endpoint_url=s3_endpoint,
            **ONE_PAIR,
        )
        outputs, log = runner.run_cwltool(f"{wrapped}#main", job, tmp_path / "out", quiet=True)
    assert f"stage-in: 11 item(s) from {files_url}/stac/items-http.json" in log
    assert f"file-stage-in: {files_url}/{DEMO_OUTLINES_FILE} (" in log
    assert "file-stage-in: a string, passed on as it is" in log
    assert log.count("completed skipped") == 1  # the stage-in of the null points_of_interest
    assert outputs["catalog"]["value"] == f"s3://{bucket}/{prefix}/catalog.json"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
    catalog = json.loads(_object(client, bucket, f"{prefix}/catalog.json")[0])
    items = [link["href"].removeprefix("./") for link in catalog["links"] if link["rel"] == "item"]
    assert sorted(h.split("/")[0] for h in items) == [
        "S2_99XXX_20220610_20220705",
        "run-provenance",
        "velocity-summary",
    ]
    expected = {f"{prefix}/catalog.json"}
    for href in items:
        item = json.loads(_object(client, bucket, f"{prefix}/{href}")[0])
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
    velocity, answer = _object(client, bucket, f"{prefix}/S2_99XXX_20220610_20220705/S2_99XXX_20220610_20220705.tif")
    assert velocity[:4] == b"II*\x00"
    assert answer["ContentType"] == "image/tiff"
