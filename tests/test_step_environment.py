"""The steps get what they need from the environment, and only that (issue 23, finding 1).

cwltool and Toil hand a job only HOME, TMPDIR and PATH: ``glacier-velocity run`` against a
private catalogue failed with HTTP 401 in the discovery step, telling the user to set the token
that was set. The token, the ``GLACIER_VELOCITY_*`` settings, the proxies and GDAL's ``AWS_*``
now reach the steps under cwltool (``--preserve-environment``) and Toil (which ignores that
option: it runs with ``--preserve-entire-environment`` in an environment holding only what Toil
and the steps need); an unrelated variable of the caller does not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity import demo
from glacier_velocity.demo.scenes import generate_demo_data
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.errors import CatalogError
from glacier_velocity.stac.discovery import DiscoveryParams, search_scenes
from glacier_velocity.workflow import runner
from helpers import slurm_cluster_problem

ROOT = Path(__file__).resolve().parents[1]
SECRET = "gv-run-secret-5d1e"
#: Variables a caller might have set; the steps get exactly NEEDED of them.
NEEDED = {
    "GLACIER_VELOCITY_STAC_TOKEN": SECRET,
    "GLACIER_VELOCITY_HTTP_ATTEMPTS": "3",
    "GLACIER_VELOCITY_HTTP_SEARCH_DEADLINE_S": "120",
    "GLACIER_VELOCITY_ALLOW_ADDRESSES": "10.0.0.0/8",
    "HTTPS_PROXY": "http://proxy.invalid:3128",
    "no_proxy": "127.0.0.1,localhost",
    "AWS_NO_SIGN_REQUEST": "YES",
}
UNRELATED = {"GITHUB_TOKEN": "ghp-not-for-the-steps", "SOME_OTHER_SETTING": "x"}

#: A tool that writes the environment its job sees.
ENV_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [python3, -c, "import json, os; print(json.dumps(dict(os.environ)))"]
inputs: []
stdout: env.json
outputs:
  env: {type: stdout}
"""


def test_step_environment_names_what_the_steps_need_and_only_that():
    environ = {**NEEDED, **UNRELATED, "PYTHONPATH": "/src", "PATH": "/usr/bin", "SSL_CERT_FILE": "/etc/ca.pem"}
    assert runner.step_environment(environ) == sorted([*NEEDED, "SSL_CERT_FILE"]) + ["PYTHONPATH"]
    # Files of this machine are not the container's (it has its own install and CA store).
    assert runner.step_environment(environ, containers=True) == sorted(NEEDED)


@pytest.fixture
def caller_environment(monkeypatch):
    """The caller's environment: NEEDED and UNRELATED, and none of the step variables this
    machine may set (certificate bundles...), so that the lists compared are exactly these."""
    for name in runner.step_environment():
        monkeypatch.delenv(name)
    for name, value in {**NEEDED, **UNRELATED}.items():
        monkeypatch.setenv(name, value)


def _preserved(command: list[str]) -> list[str]:
    return sorted(command[i + 1] for i, arg in enumerate(command) if arg == "--preserve-environment")


def test_cwltool_preserves_each_of_them_for_the_users_own_runs_only(caller_environment):
    for containers in (False, True):
        environment = runner.step_environment(containers=containers)
        assert _preserved(runner.cwltool_command("w.cwl", "j.yml", "o", environment=environment)) == sorted(NEEDED)
        # A server running jobs for others names what it passes on: none of this by default.
        assert _preserved(runner.cwltool_command("w.cwl", "j.yml", "o", containers=containers)) == []


def _job_environment(tmp_path: Path, engine: str) -> dict[str, str]:
    tool = tmp_path / "env.cwl"
    tool.write_text(ENV_TOOL)
    (tmp_path / "job.json").write_text("{}")
    outputs, _ = runner.run_workflow(
        tool, tmp_path / "job.json", tmp_path / "out", runner=engine, work_dir=tmp_path / "toil", quiet=True
    )
    return json.loads(Path(outputs["env"]["path"]).read_text())


def test_a_cwltool_job_gets_them(tmp_path, caller_environment):
    seen = _job_environment(tmp_path, "cwltool")
    assert {k: seen.get(k) for k in NEEDED} == NEEDED
    assert not set(UNRELATED) & set(seen)
    assert seen["PATH"].split(":")[0] == str(Path(sys.executable).parent)


@pytest.mark.integration
@pytest.mark.deploy  # Toil comes with the deploy extra
@pytest.mark.parametrize("engine", ["toil", "toil-slurm"])
def test_a_toil_job_gets_them(tmp_path, caller_environment, engine):
    if engine == "toil-slurm" and (problem := slurm_cluster_problem()):
        pytest.skip(problem)
    seen = _job_environment(tmp_path, engine)
    assert {k: seen.get(k) for k in NEEDED} == NEEDED
    assert not set(UNRELATED) & set(seen)
    assert runner.toil_env().keys() >= set(NEEDED) and not set(UNRELATED) & runner.toil_env().keys()


@pytest.mark.integration
@pytest.mark.parametrize(
    "engine",
    ["cwltool", pytest.param("toil", marks=pytest.mark.deploy), pytest.param("toil-slurm", marks=pytest.mark.deploy)],
)
def test_run_against_a_private_catalogue_passes_the_token_to_the_steps(tmp_path, monkeypatch, engine):
    """The demo behind a server on 127.0.0.1 answering 401 without the token: before, the
    discovery step failed with HTTP 401 while `discover` with the same environment worked."""
    if engine == "toil-slurm" and (problem := slurm_cluster_problem()):
        pytest.skip(problem)
    monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", SECRET)
    data = generate_demo_data(tmp_path / "data")
    with serve_stac([data.collection, data.items]) as upstream, FlakyServer(upstream=upstream, token=SECRET) as api:
        job = runner.write_job(
            ROOT / "params" / "demo.yml",
            tmp_path / "job.yml",
            data_location=data.root,
            stac_url=api.url,
            end_year=2022,
            end_month=7,  # one pair: 10 June - 5 July 2022
        )
        run = runner.run_params(job, tmp_path / "runs", project_root=ROOT, runner=engine)
    assert run.report is not None and run.report.summary_line().startswith("1 succeeded / 0 failed")
    searches = [r for r in api.requests if r.path.startswith("/search")]
    items = [r for r in api.requests if "/items/" in r.path]
    assert searches and len(items) == 2  # the discovery step's search, the correlation step's two items
    assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in api.requests)
    assert SECRET not in run.log_file.read_text()
    comparison = demo.compare_with_truth(
        demo.median_speed_map(run.outputs), data.truth, truth_map="truth_speed_2022.tif"
    )
    assert abs(comparison.relative_error) < 0.08, comparison.describe()


def test_without_the_token_the_discovery_says_so(stac_api, monkeypatch):
    """The message a run gave before the fix, with the token set; now only without it."""
    monkeypatch.delenv("GLACIER_VELOCITY_STAC_TOKEN", raising=False)
    with FlakyServer(upstream=stac_api, token=SECRET) as api:
        params = DiscoveryParams(stac_url=api.url, aoi=(74.4, 35.4, 74.6, 35.6), start_year=2020, end_year=2020)
        with pytest.raises(CatalogError) as caught:
            search_scenes(params)
    message = str(caught.value)
    assert message.endswith(
        "(HTTP 401); check --stac-url (the root of a STAC API, e.g. "
        "https://earth-search.aws.element84.com/v1) and the network; set GLACIER_VELOCITY_STAC_TOKEN "
        "for a private catalogue"
    )
    assert_documented(message, api.url)
