"""The OGC EO Application Package: structure, metadata, cwltool and eoap-validator, OGC documents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from glacier_velocity.demo.scenes import demo_glacier_outlines
from glacier_velocity.deploy import package as pkg
from glacier_velocity.errors import InputError, InvalidParameter
from helpers import require_tool

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "registry.example.org/eo/glacier-velocity:0.1.0"
EOAP_VALIDATOR = ROOT / ".venv" / "tools" / "eoap" / "bin" / "eoap-validator"
AP_VALIDATOR = ROOT / ".venv" / "tools" / "apval" / "bin" / "ap-validator"
CWLTOOL = Path(sys.executable).parent / "cwltool"


@pytest.fixture(scope="module")
def metadata() -> pkg.PackageMetadata:
    return pkg.project_metadata(ROOT)


@pytest.fixture(scope="module")
def document(metadata: pkg.PackageMetadata) -> dict:
    return pkg.build_package(ROOT / "cwl", image=IMAGE, metadata=metadata)


@pytest.fixture(scope="module")
def package_file(document: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pkg.write_package(document, tmp_path_factory.mktemp("package") / "glacier-velocity.0.1.0.cwl")


def _tools(document: dict) -> list[dict]:
    return [p for p in document["$graph"] if p["class"] == "CommandLineTool"]


def _requirements(process: dict) -> dict[str, dict]:
    return {r["class"]: r for r in process.get("requirements", [])}


def test_one_graph_with_the_workflow_first(document: dict) -> None:
    graph = document["$graph"]
    assert graph[0]["class"] == "Workflow" and graph[0]["id"] == "glacier-velocity"
    assert [p["id"] for p in graph[1:]] == ["discover", "extract_pairs", "correlate", "aggregate", "collect"]
    assert {step["run"] for step in graph[0]["steps"].values()} == {
        "#discover",
        "#extract_pairs",
        "#correlate",
        "#aggregate",
        "#collect",
    }
    assert document["cwlVersion"] == "v1.2"


def test_every_tool_requires_the_image_resources_and_network(document: dict) -> None:
    for tool in _tools(document):
        requirements = _requirements(tool)
        assert requirements["DockerRequirement"] == {"class": "DockerRequirement", "dockerPull": IMAGE}, tool["id"]
        assert "DockerRequirement" not in {h["class"] for h in tool.get("hints", [])}
        resources = requirements["ResourceRequirement"]
        assert 1 <= resources["coresMin"] <= resources["coresMax"]
        assert 256 <= resources["ramMin"] <= resources["ramMax"]
        assert "networkAccess" in requirements["NetworkAccess"]
        # $include'd JavaScript is inlined: the package is one file
        assert "$include" not in json.dumps(tool)


def test_a_tool_asks_for_the_network_when_it_reads_from_it(document: dict) -> None:
    """The aggregation tool had none, so outlines given as a URL failed the run at its last step
    in containers, after every pair was computed (issue 24, item 2)."""
    network = {t["id"]: _requirements(t)["NetworkAccess"]["networkAccess"] for t in _tools(document)}
    reads_url = "$(reads_url([inputs.aoi, inputs.glacier_outlines, inputs.points_of_interest]))"
    assert network == {
        "discover": True,  # the STAC API, or the given item URLs
        "extract_pairs": False,
        "correlate": True,  # the items and their COGs, unless staged
        "aggregate": reads_url,  # only for an input given as a URL
        "collect": False,
    }
    aggregate = next(t for t in _tools(document) if t["id"] == "aggregate")
    library = "\n".join(_requirements(aggregate)["InlineJavascriptRequirement"]["expressionLib"])
    file = {"class": "File", "path": "/var/lib/cwl/stg/outlines.geojson"}
    cases = [
        ["75.19,36.20,75.42,36.41", "https://example.org/rgi.geojson", None],
        ["75.19,36.20,75.42,36.41", file, " HTTP://example.org/points.geojson"],
        ["75.19,36.20,75.42,36.41", file, "76.13,36.20; 76.14,36.21"],
        [json.dumps({"type": "Polygon", "coordinates": []}), None, None],
    ]
    script = library + f"\nconsole.log(JSON.stringify({json.dumps(cases)}.map(reads_url)));"
    node = Path(sys.executable).parent / "node"
    answer = subprocess.run([str(node), "-e", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(answer.stdout) == [True, True, False, False]


def test_notebooks_come_from_the_image(document: dict) -> None:
    notebooks = {}
    for tool in _tools(document):
        notebook = tool["inputs"].get("notebook")
        if notebook and notebook["type"] == "string":
            notebooks[tool["id"]] = notebook["default"]
            assert {"valueFrom": "$(inputs.notebook)", "position": 1} in tool["arguments"]
    assert notebooks == {
        "discover": "/opt/glacier-velocity/notebooks/01-discovery.ipynb",
        "correlate": "/opt/glacier-velocity/notebooks/02-correlation.ipynb",
        "aggregate": "/opt/glacier-velocity/notebooks/03-aggregation.ipynb",
    }
    # the Dockerfile puts them there
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY notebooks/*.ipynb /opt/glacier-velocity/notebooks/" in dockerfile
    # extract_pairs reads an upstream notebook: still a File input
    extract = next(t for t in _tools(document) if t["id"] == "extract_pairs")
    assert extract["inputs"]["notebook"]["type"] == "File"


def test_schema_org_metadata(document: dict, metadata: pkg.PackageMetadata) -> None:
    assert document["$namespaces"] == {"s": "https://schema.org/"}
    assert document["$schemas"] == [pkg.SCHEMA_ORG_RDF]
    assert document["s:softwareVersion"] == metadata.version == "0.1.0"
    author = document["s:author"][0]
    assert {"s:givenName", "s:familyName", "s:email", "s:affiliation"} <= set(author)
    assert author["s:name"] == f"{author['s:givenName']} {author['s:familyName']}"
    assert document["s:publisher"]["class"] == "s:Organization" and document["s:publisher"]["s:name"]
    assert all(h["s:url"].startswith("https://") for h in document["s:softwareHelp"])
    assert document["s:codeRepository"].startswith("https://")
    assert document["s:license"] == "https://spdx.org/licenses/Apache-2.0"
    assert len(document["s:dateCreated"]) == 10
    assert {"glacier", "sentinel-2"} <= set(document["s:keywords"])


def test_codemeta_follows_the_one_version_source() -> None:
    """codemeta.json is what `make package` writes: pyproject's version, name and licence; its authors are pyproject's."""
    committed = json.loads((ROOT / pkg.CODEMETA_FILE).read_text())
    assert committed == pkg.codemeta_document(ROOT), "codemeta.json is stale: run make package"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert committed["version"] == project["version"]
    assert [(a["givenName"] + " " + a["familyName"], a["email"]) for a in committed["author"]] == [
        (a["name"], a["email"]) for a in project["authors"]
    ]


def test_codemeta_without_an_affiliation_is_refused(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    codemeta = json.loads((ROOT / pkg.CODEMETA_FILE).read_text())
    del codemeta["author"][0]["affiliation"]
    (tmp_path / pkg.CODEMETA_FILE).write_text(json.dumps(codemeta))
    with pytest.raises(InputError, match="codemeta.json: the affiliation of author 1 needs a non-empty 'name'"):
        pkg.project_metadata(tmp_path)


def test_labels_and_docs_on_workflow_inputs_outputs_steps(document: dict) -> None:
    workflow = document["$graph"][0]
    for entry in [workflow, *workflow["inputs"].values(), *workflow["outputs"].values(), *workflow["steps"].values()]:
        assert entry.get("label") and entry.get("doc")
    assert workflow["outputs"]["catalog"]["type"] == "Directory"


def test_development_variant_hints_the_image_and_uses_repository_notebooks(metadata: pkg.PackageMetadata) -> None:
    document = pkg.build_package(
        ROOT / "cwl", image=IMAGE, metadata=metadata, notebooks_dir=str(ROOT / "notebooks"), container="hint"
    )
    correlate = next(t for t in _tools(document) if t["id"] == "correlate")
    assert {h["class"] for h in correlate["hints"]} == {"DockerRequirement"}
    assert "DockerRequirement" not in _requirements(correlate)
    assert Path(correlate["inputs"]["notebook"]["default"]).is_file()


@pytest.mark.parametrize("image", ["Glacier Velocity", "host/name:tag:tag", ""])
def test_bad_image_reference_is_rejected(metadata: pkg.PackageMetadata, image: str) -> None:
    with pytest.raises(InvalidParameter, match="image"):
        pkg.build_package(ROOT / "cwl", image=image, metadata=metadata)


def test_a_tool_without_resource_limits_is_refused(metadata: pkg.PackageMetadata, tmp_path: Path) -> None:
    cwl = tmp_path / "cwl"
    shutil.copytree(ROOT / "cwl", cwl)
    tool = yaml.safe_load((cwl / "extract_pairs.cwl").read_text())
    del tool["requirements"]["ResourceRequirement"]["ramMax"]
    (cwl / "extract_pairs.cwl").write_text(yaml.safe_dump(tool, sort_keys=False))
    with pytest.raises(InputError, match="extract_pairs: ResourceRequirement lacks ramMax"):
        pkg.build_package(cwl, image=IMAGE, metadata=metadata)


def test_cwltool_validates_the_package(package_file: Path) -> None:
    completed = subprocess.run(
        [str(CWLTOOL), "--validate", str(package_file)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"{package_file} is valid CWL" in completed.stdout


def _eoap(args: list[str]) -> dict:
    require_tool(EOAP_VALIDATOR, "deploy-setup")
    completed = subprocess.run(
        [str(EOAP_VALIDATOR), "--format", "json", *args], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(completed.stdout)


def _counts(report: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in report["findings"]:
        counts[finding["status"]] = counts.get(finding["status"], 0) + 1
    return counts


@pytest.mark.deploy
def test_eoap_validator_passes_without_failures_or_reviews(package_file: Path) -> None:
    report = _eoap([f"{package_file}#glacier-velocity"])
    counts = _counts(report)
    assert counts.get("failed", 0) == 0 and counts.get("needs-review", 0) == 0 and counts.get("blocked", 0) == 0, counts
    rules = {f["rule_id"] for f in report["findings"]}
    # the checks the brief cares about were actually made
    assert {"EOAP.REQ8.DOCKER", "EOAP.REQ11.VERSION", "SCHEDULING.RESOURCE.ramMax", "EOAP.WORKFLOW.OUTPUT.DOC"} <= rules


@pytest.mark.deploy
def test_eoap_validator_metadata_profile_passes(package_file: Path) -> None:
    """Transpiler-Mate's SoftwareApplication model: named persons, publisher, softwareHelp."""
    report = _eoap(["--profile", "metadata", f"{package_file}#glacier-velocity"])
    assert set(_counts(report)) == {"passed"}, [f for f in report["findings"] if f["status"] != "passed"]
    assert "TM.METADATA.MODEL" in {f["rule_id"] for f in report["findings"]}


@pytest.mark.deploy
def test_eoap_staging_profile_only_asks_to_review_output_coverage(package_file: Path) -> None:
    report = _eoap(
        [
            "--profile",
            "eoap-staging",
            "--staging",
            str(ROOT / "deploy" / "ogc" / "eoap-staging.json"),
            f"{package_file}#glacier-velocity",
        ]
    )
    reviews = [f["rule_id"] for f in report["findings"] if f["status"] == "needs-review"]
    assert reviews == ["EOAP.REQ14.COVERAGE"]  # explained in docs/deployment.md
    passed = [f for f in report["findings"] if f["rule_id"] == "EOAP.REQ14.OUTPUT"]
    assert [f["status"] for f in passed] == ["passed"]


@pytest.mark.deploy
def test_ogc_ap_validator_finds_the_package_compliant(package_file: Path) -> None:
    """OGC's ap-validator (ogc-ap-validator 0.5.0, `make ades-setup`): valid, no error.

    It crashed (AttributeError in its requirement-12 check) while the Workflow had the optional
    array input ``bbox: float[]?``; the AOI is now one string."""
    require_tool(AP_VALIDATOR, "ades-setup")
    completed = subprocess.run(
        [str(AP_VALIDATOR), "--format", "json", "--detail", "all", str(package_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    errors = [i for i in report["issues"] if i["type"] == "error"]
    assert report["valid"] is True and errors == [], errors
    # Its requirement-12 checks (staging of Directory inputs and outputs) ran to the end.
    assert any(i["req"] == "req-12" for i in report["issues"])
    assert {i["type"] for i in report["issues"]} <= {"note", "hint"}


@pytest.mark.deploy
def test_process_description_mirrors_the_workflow(package_file: Path, document: dict) -> None:
    description = pkg.process_description(package_file, "0.1.0")
    workflow = document["$graph"][0]
    assert description["id"] == "glacier-velocity" and description["title"] == workflow["label"]
    assert list(description["inputs"]) == list(workflow["inputs"])
    assert list(description["outputs"]) == list(workflow["outputs"])
    assert description["inputs"]["start_year"]["minOccurs"] == 1
    # The vector inputs are a File (staged by the platform, passed by reference) or a string
    # (W,S,E,N, a URL or the GeoJSON text, passed by value).
    assert description["inputs"]["aoi"]["minOccurs"] == 1
    files = [name for name, entry in workflow["inputs"].items() if "File" in str(entry["type"])]
    assert files == ["aoi", "glacier_outlines", "points_of_interest"]
    for name in files:
        choices = description["inputs"][name]["schema"]["anyOf"]
        assert {"type": "string"} in choices, name
        assert {"type": "string", "format": "uri"} in choices[0]["oneOf"], name
    assert description["inputs"]["glacier_outlines"]["minOccurs"] == 0
    assert description["inputs"]["filter"]["schema"]["enum"] == ["wallis", "hps", "oc", "none"]
    assert set(description["jobControlOptions"]) == {"sync-execute", "async-execute"}


def _interface(document: dict) -> dict:
    """What a client depends on: process id, version, input/output names and schemas, and for
    the deploy body the package's processes, types and images (doc texts may lag behind)."""
    description = document.get("processDescription", document)
    interface = {
        "id": description["id"],
        "version": description["version"],
        "inputs": {k: v["schema"] for k, v in description["inputs"].items()},
        "outputs": {k: v["schema"] for k, v in description["outputs"].items()},
    }
    unit = document.get("executionUnit")
    if unit is not None:
        graph = unit["value"]["$graph"]
        interface["graph"] = [
            (
                p["id"],
                {k: v["type"] for k, v in p["inputs"].items()},
                pkg.requirement_map(p.get("requirements")).get("DockerRequirement"),
            )
            for p in graph
        ]
    return interface


@pytest.mark.deploy
def test_committed_ogc_documents_are_current(metadata: pkg.PackageMetadata, tmp_path: Path) -> None:
    """deploy/ogc/*.json match what `make package` writes now (run it when the CWL interface changes)."""
    local = pkg.build_package(ROOT / "cwl", image=f"localhost/glacier-velocity:{metadata.version}", metadata=metadata)
    local_file = pkg.write_package(local, tmp_path / "package.cwl")
    written = pkg.write_ogc_documents(
        local, local_file, tmp_path / "ogc", ROOT / "params", demo_outlines=demo_glacier_outlines()
    )
    for name, path in written.items():
        committed = json.loads((ROOT / "deploy" / "ogc" / name).read_text())
        fresh = json.loads(path.read_text())
        if name.startswith("execute-"):
            assert committed == fresh, f"deploy/ogc/{name} is stale: run make package"
        else:
            assert _interface(committed) == _interface(fresh), f"deploy/ogc/{name} is stale: run make package"
    deploy = json.loads((ROOT / "deploy" / "ogc" / "deploy.json").read_text())
    assert deploy["executionUnit"]["mediaType"] == "application/cwl+json"
    assert deploy["executionUnit"]["value"]["$graph"][0]["id"] == "glacier-velocity"
    yazghil = json.loads((ROOT / "deploy" / "ogc" / "execute-yazghil.json").read_text())
    assert yazghil["inputs"]["aoi"] == "75.194,36.201,75.424,36.411"
    assert yazghil["outputs"] == {"catalog": {"transmissionMode": "reference"}}
