"""The same Workflow on Toil (``toil-cwl-runner``, single machine, no containers).

Toil is a distributed workflow engine (Slurm, Kubernetes, LSF, AWS...); its CWL runner takes
``cwl/glacier-velocity.cwl`` unchanged. Here it runs on the single-machine batch system on the
one-pair demo season, and must give the numbers cwltool gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glacier_velocity import demo
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.products.runcatalog import read_run_catalog
from glacier_velocity.workflow import runner
from glacier_velocity.workflow.extract_pairs import read_scraps
from helpers import require_tool

ROOT = Path(__file__).resolve().parents[1]
TOIL = Path(sys.executable).parent / "toil-cwl-runner"
ONE_PAIR = {"end_year": 2022, "end_month": 7}
pytestmark = pytest.mark.deploy  # Toil comes with the deploy extra


@pytest.mark.integration
def test_toil_runs_the_workflow_unchanged(tmp_path: Path) -> None:
    require_tool(TOIL, "deploy-setup")
    data = demo.generate_demo_data(tmp_path / "data")
    with serve_stac([data.collection, data.items]) as stac_url:
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS, tmp_path / "job.yml", data_location=data.root, stac_url=stac_url, **ONE_PAIR
        )
        started = time.monotonic()
        completed = subprocess.run(
            [
                str(TOIL),
                "--no-container",
                "--batchSystem",
                "single_machine",
                "--maxCores",
                "2",
                "--jobStore",
                f"file:{tmp_path / 'jobstore'}",
                "--workDir",
                str(tmp_path),
                "--outdir",
                str(tmp_path / "toil-out"),
                str(ROOT / runner.WORKFLOW),
                str(job),
            ],
            capture_output=True,
            text=True,
            env=runner.workflow_env(),
            timeout=1800,
        )
        toil_s = time.monotonic() - started
        assert completed.returncode == 0, completed.stderr[-3000:]
        started = time.monotonic()
        reference, _ = runner.run_cwltool(ROOT / runner.WORKFLOW, job, tmp_path / "cwltool-out", quiet=True)
        print(f"toil-cwl-runner {toil_s:.0f} s, cwltool {time.monotonic() - started:.0f} s")
    outputs = json.loads(completed.stdout)
    assert sorted(outputs) == sorted(reference) == ["catalog"]
    toil_run, cwltool_run = read_run_catalog(outputs["catalog"]["path"]), read_run_catalog(reference["catalog"]["path"])
    assert [p.velocity.name for p in toil_run.pairs] == [p.velocity.name for p in cwltool_run.pairs]
    assert len(toil_run.pairs) == 1
    assert sorted(toil_run.notebooks) == sorted(cwltool_run.notebooks)
    assert toil_run.aggregation_notebook is not None and cwltool_run.aggregation_notebook is not None
    toil_stats = read_scraps(toil_run.aggregation_notebook)["stats"]
    cwltool_stats = read_scraps(cwltool_run.aggregation_notebook)["stats"]
    assert toil_stats["pair_count"] == cwltool_stats["pair_count"] == 1
    toil_cmp = demo.compare_with_truth(demo.median_speed_map(outputs), data.truth)
    cwltool_cmp = demo.compare_with_truth(demo.median_speed_map(reference), data.truth)
    assert toil_cmp.recovered_m_per_yr == pytest.approx(cwltool_cmp.recovered_m_per_yr, abs=0.05)
    assert toil_cmp.n_points == cwltool_cmp.n_points
    assert (Path(outputs["catalog"]["path"]) / "catalog.json").is_file()
