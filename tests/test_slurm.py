"""The demo on a real Slurm cluster: ``toil-cwl-runner --batchSystem slurm``.

Every step of the Workflow becomes a Slurm batch job (``sbatch``). The test needs a cluster
that answers ``sinfo`` with a node ready for jobs; ``make slurm-up`` (``deploy/slurm/single-node.sh``,
as root) starts a single-node one on this machine, as CI does. Without one it skips and says so.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from glacier_velocity import demo
from glacier_velocity.demo.run import run_demo
from glacier_velocity.demo.scenes import expected_pairs
from glacier_velocity.workflow.runner import TOIL_LOG
from helpers import slurm_cluster_problem


@pytest.mark.integration
@pytest.mark.deploy  # Toil comes with the deploy extra
def test_demo_runs_as_slurm_jobs_and_recovers_the_known_speed(tmp_path: Path) -> None:
    problem = slurm_cluster_problem()
    if problem:
        pytest.skip(problem)
    result = run_demo(tmp_path, runner="toil-slurm", quiet=True)

    # The jobs really went through Slurm: Toil logs the Slurm job id of each step it queued
    # ("... with batch system ID 2 queued as job 7"), and slurmctld still knows them as
    # completed (MinJobAge of deploy/slurm/single-node.sh: 10 minutes).
    log_text = (tmp_path / TOIL_LOG).read_text(encoding="utf-8")
    job_ids = sorted(set(re.findall(r"queued as job (\d+)", log_text)), key=int)
    assert len(job_ids) >= len(expected_pairs()) + 2, f"Toil issued only Slurm jobs {job_ids}"
    # One job per call: scontrol (22.05) takes no list of ids.
    states = "\n".join(
        subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=60).stdout
        for job_id in job_ids
    )
    finished = re.findall(r"JobId=(\d+) .*?JobState=(\w+)", states)
    assert finished, f"slurmctld knows none of the jobs {job_ids}"
    assert {state for _, state in finished} == {"COMPLETED"}, finished

    # The same products and the same answer as `make demo`.
    assert result.report is not None and result.report.summary_line() == "6 succeeded / 0 failed"
    pairs = [(p.reference_id, p.secondary_id) for p in result.report.pairs]
    assert sorted(pairs) == sorted(expected_pairs())
    assert result.run is not None and len(result.run.pairs) == 6
    assert all(pair.velocity.is_file() for pair in result.run.pairs)
    assert (Path(result.outputs["catalog"]["path"]) / "catalog.json").is_file()
    comparison = result.comparison
    assert comparison is not None
    # The demo's own truth tolerances, as the cwltool end-to-end test (tests/test_cwl.py).
    assert abs(comparison.relative_error) <= demo.MEDIAN_TOLERANCE, comparison.describe()
    assert comparison.pixel_mae_m_per_yr <= demo.PIXEL_MAE_TOLERANCE_M_PER_YR, comparison.describe()
    assert comparison.coverage > 0.9, comparison.describe()
    assert result.report_lines()[-1] == f"truth: {comparison.describe()}"
