"""deploy/calrissian: Kubernetes manifests checked offline against the bundled schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from glacier_velocity.deploy import package as pkg

# The deploy extra (pip install -e '.[deploy]', make deploy-setup); without it these tests skip.
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="needs the deploy extra (make deploy-setup)")
pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "calrissian"
#: The Kubernetes schema version the manifests are checked against (bundled with the package).
K8S_VERSION = "1.30.0"


def _resources() -> list[dict]:
    resources = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        resources += [r for r in yaml.safe_load_all(path.read_text()) if r]
    return resources


def _by_kind() -> dict[str, dict]:
    return {r["kind"]: r for r in _resources()}


@pytest.mark.parametrize("resource", _resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_manifest_is_valid_kubernetes(resource: dict) -> None:
    # strict: unknown fields (typos) fail too
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_a_typo_is_caught() -> None:
    job = _by_kind()["Job"]
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_rbac_lets_calrissian_manage_pods_and_read_logs() -> None:
    kinds = _by_kind()
    rules = {resource: set(rule["verbs"]) for rule in kinds["Role"]["rules"] for resource in rule["resources"]}
    assert {"create", "get", "list", "watch", "delete"} <= rules["pods"]
    assert {"get", "list", "watch"} <= rules["pods/log"]
    binding = kinds["RoleBinding"]
    assert binding["roleRef"]["name"] == kinds["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": kinds["ServiceAccount"]["metadata"]["name"]}]


def test_job_runs_calrissian_on_the_package_with_limits_and_reports() -> None:
    kinds = _by_kind()
    pod = kinds["Job"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    [container] = pod["containers"]
    args = container["args"]
    options = {a: args[i + 1] for i, a in enumerate(args[:-2]) if a.startswith("--")}
    assert options["--max-ram"] == "16G" and options["--max-cores"] == "8"
    assert options["--usage-report"].startswith("/calrissian/")
    assert options["--tool-logs-basepath"].startswith("/calrissian/")
    assert args[-2:] == ["/app/config/glacier-velocity.cwl#glacier-velocity", "/app/config/job.yml"]
    # the shared volume is the RWX claim, the package comes from the ConfigMap
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["workdir"]["persistentVolumeClaim"]["claimName"]
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert volumes["package"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"] == pkg.CALRISSIAN_CONFIGMAP
    assert {"name": "CALRISSIAN_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container[
        "env"
    ]


def test_configmap_holds_the_current_package_and_the_yazghil_job() -> None:
    data = _by_kind()["ConfigMap"]["data"]
    shipped = yaml.safe_load(data["glacier-velocity.cwl"])
    metadata = pkg.project_metadata(ROOT)
    image = pkg.requirement_map(shipped["$graph"][1]["requirements"])["DockerRequirement"]["dockerPull"]
    fresh = pkg.build_package(ROOT / "cwl", image=image, metadata=metadata)
    assert shipped["s:softwareVersion"] == metadata.version
    assert [p["id"] for p in shipped["$graph"]] == [p["id"] for p in fresh["$graph"]]
    for old, new in zip(shipped["$graph"], fresh["$graph"], strict=True):
        assert {k: v["type"] for k, v in old["inputs"].items()} == {k: v["type"] for k, v in new["inputs"].items()}, (
            "run make package"
        )
        assert pkg.requirement_map(old.get("requirements")) == pkg.requirement_map(new.get("requirements")), (
            "run make package"
        )
    assert yaml.safe_load(data["job.yml"]) == yaml.safe_load((ROOT / "params" / "yazghil.yml").read_text())
