"""Where runs write and what the console shows: fresh run directories, the demo's own directory,
the pairs' progress read from a real cwltool log (issue 12; issue 11 findings 7 and 11)."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from doc_rows import assert_documented
from glacier_velocity import demo
from glacier_velocity.cli.progress import ProgressView
from glacier_velocity.demo.run import DEMO_MARKER, prepare_demo_directory, record_demo_results
from glacier_velocity.errors import InputError
from glacier_velocity.products.runreport import PairStatus, write_status
from glacier_velocity.workflow import runner
from glacier_velocity.workflow.jobfile import RUN_JOB
from glacier_velocity.workflow.progress import LogFollower, PairProgress, read_new_lines
from glacier_velocity.workflow.rundirs import LATEST, mark_complete, new_run_directory

#: The log (stderr) of a real `glacier-velocity demo` run: cwltool --parallel, 6 pairs, 2 cores.
PARALLEL_LOG = Path(__file__).parent / "data" / "cwltool-parallel-demo.log"


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() or p.is_symlink())


# --- progress from the runner's log -----------------------------------------------------------


def _jobs_with_statuses(tmp_path: Path, failed_pairs: set[str]) -> str:
    """The real log, each correlate job's /tmp directory replaced by one holding its pair's status."""
    text = PARALLEL_LOG.read_text(encoding="utf-8")
    jobs = re.findall(r"\[job (node_correlate(?:_\d+)?)\] (/tmp/\w+)\$ papermill", text)
    pair_ids = re.findall(r'"pair_id":"([^"]+)"', text)
    assert len(jobs) == len(pair_ids) == 6
    for (job, outdir), pair_id in zip(jobs, pair_ids, strict=True):
        directory = tmp_path / job
        directory.mkdir()
        reference, secondary = (f"S2A_{pair_id.split('_')[0]}_{day}_0_L2A" for day in pair_id.split("_")[1:])
        status = PairStatus(
            pair_id=pair_id,
            reference_id=reference,
            secondary_id=secondary,
            reference_href=reference,
            secondary_href=secondary,
            status="failed" if pair_id in failed_pairs else "succeeded",
            error_type="InputError" if pair_id in failed_pairs else None,
            reason="cannot read raster" if pair_id in failed_pairs else None,
        )
        write_status(status, directory / f"status_{pair_id}.json")
        text = text.replace(f"{outdir}$", f"{directory}$")
    return text


def test_progress_counts_the_pairs_of_a_real_parallel_cwltool_log(tmp_path: Path) -> None:
    text = _jobs_with_statuses(tmp_path, failed_pairs={"99XXX_20230724_20230912"})
    follower = LogFollower()
    seen: list[PairProgress] = []
    # In pieces of 97 characters, as a growing file is read: lines are cut anywhere.
    for start in range(0, len(text), 97):
        follower.feed(text[start : start + 97])
        seen.append(follower.progress(12.0))
    assert seen[0].total is None and seen[0].line() == "finding pairs, 0:12 elapsed"
    assert seen[-1] == PairProgress(total=6, succeeded=5, failed=1, running=0, elapsed_s=12.0)
    assert max(p.running for p in seen) == 2  # two pairs at once on the 2 cores of that run
    assert seen[-1].line() == "pairs 6/6 done (1 failed, 0 running), 0:12 elapsed"
    # the counts only grow, one pair at a time
    dones = [p.done for p in seen if p.total is not None]
    assert dones == sorted(dones) and sorted(set(dones)) == [0, 1, 2, 3, 4, 5, 6]


def test_a_failed_job_or_a_missing_status_counts_as_a_failed_pair(tmp_path: Path) -> None:
    text = _jobs_with_statuses(tmp_path, failed_pairs=set())
    # cwltool's line for a tool that failed (cwltool.job: "[job %s] completed %s")
    text = text.replace("[job node_correlate_2] completed success", "[job node_correlate_2] completed permanentFail")
    (tmp_path / "node_correlate_3" / "status_99XXX_20220908_20230604.json").unlink(missing_ok=True)
    for status in (tmp_path / "node_correlate_3").glob("status_*.json"):
        status.unlink()
    follower = LogFollower()
    follower.feed(text)
    assert follower.progress(65.0) == PairProgress(total=6, succeeded=4, failed=2, running=0, elapsed_s=65.0)
    assert follower.progress(65.0).line() == "pairs 6/6 done (2 failed, 0 running), 1:05 elapsed"


def test_a_run_without_pairs_says_zero_in_all() -> None:
    follower = LogFollower()
    follower.feed("extract-pairs: no pairs to correlate - no pairs found: baselines 100-200 days\n")
    assert follower.progress(3.0).line() == "pairs 0/0 done (0 failed, 0 running), 0:03 elapsed"


def test_read_new_lines_leaves_a_line_being_written_for_later(tmp_path: Path) -> None:
    log = tmp_path / "workflow.log"
    assert read_new_lines(log, 0) == ("", 0)
    log.write_text("one\ntw", encoding="utf-8")
    assert read_new_lines(log, 0) == ("one\n", 4)
    with log.open("a", encoding="utf-8") as stream:
        stream.write("o\n")
    assert read_new_lines(log, 4) == ("two\n", 8)


def test_the_progress_view_writes_a_line_only_when_the_counts_change() -> None:
    stream = io.StringIO()
    view = ProgressView(stream)
    for progress in (
        PairProgress(elapsed_s=1.0),
        PairProgress(elapsed_s=1.5),
        PairProgress(total=6, running=2, elapsed_s=8.0),
        PairProgress(total=6, running=2, elapsed_s=8.5),
        PairProgress(total=6, succeeded=1, running=2, elapsed_s=16.2),
    ):
        view(progress)
    view.close()
    assert stream.getvalue().splitlines() == [
        "finding pairs, 0:01 elapsed",
        "pairs 0/6 done (0 failed, 2 running), 0:08 elapsed",
        "pairs 1/6 done (0 failed, 2 running), 0:16 elapsed",
    ]


# --- a fresh directory per run (issue 11 finding 7) -------------------------------------------


def test_each_run_gets_a_directory_of_its_own_and_latest_points_to_the_newest_complete_one(tmp_path: Path) -> None:
    base = tmp_path / "run"
    now = datetime(2026, 12, 2, 20, 31, 12, tzinfo=UTC)
    first = new_run_directory(base, now)
    (first / "S2_99XXX_20220610_20220705.tif").write_bytes(b"old")
    second = new_run_directory(base, now)  # the same second
    third = new_run_directory(base, datetime(2026, 12, 2, 20, 40, tzinfo=UTC))
    assert [first.name, second.name, third.name] == ["20261202T203112Z", "20261202T203112Z-2", "20261202T204000Z"]
    # A run becomes latest when it has completed (issue 23, finding 6), not when it starts.
    assert _files(base) == ["20261202T203112Z/S2_99XXX_20220610_20220705.tif"]
    assert mark_complete(second) and (base / LATEST).resolve() == second.resolve()
    assert mark_complete(third) and (base / LATEST).resolve() == third.resolve()
    # The first run ends last: latest stays at the newest complete run.
    assert not mark_complete(first) and (base / LATEST).resolve() == third.resolve()
    assert _files(base) == ["20261202T203112Z/S2_99XXX_20220610_20220705.tif", LATEST]


def test_latest_must_be_a_link(tmp_path: Path) -> None:
    (tmp_path / LATEST).mkdir()
    with pytest.raises(InputError, match="is not a link to a run"):
        new_run_directory(tmp_path)


@pytest.mark.integration
def test_a_run_killed_with_sigkill_never_becomes_latest(tmp_path: Path) -> None:
    """`glacier-velocity run` killed (SIGKILL, its engine and steps with it) while its discovery
    step waits on a STAC API: `latest` still points at the earlier complete run, not at the killed
    one, which holds only the job it ran and workflow.log (issue 23, finding 6)."""
    base = tmp_path / "run"
    earlier = new_run_directory(base, datetime(2026, 1, 1, tzinfo=UTC))
    mark_complete(earlier)
    connected = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        held: list[socket.socket] = []

        def hold() -> None:  # accepts and never answers: the search waits
            while True:
                try:
                    held.append(server.accept()[0])
                except OSError:
                    return
                connected.set()

        threading.Thread(target=hold, daemon=True).start()
        job = runner.write_job(
            runner.find_project_root() / "params" / "yazghil.yml",
            tmp_path / "job.yml",
            stac_url=f"http://127.0.0.1:{server.getsockname()[1]}",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "glacier_velocity", "run", str(job), "--out-dir", str(base), "--quiet"],
            env=runner.workflow_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert connected.wait(timeout=300), "the discovery step never searched"
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        for connection in held:
            connection.close()
    killed = [run for run in base.iterdir() if run.name not in (earlier.name, LATEST)]
    assert len(killed) == 1 and _files(killed[0]) == [RUN_JOB, runner.WORKFLOW_LOG]
    assert (base / LATEST).resolve() == earlier.resolve()


# --- the demo removes only what it made (issue 11 finding 11) ---------------------------------


def test_demo_refuses_a_directory_it_did_not_make_and_keeps_its_files(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "results").mkdir(parents=True)
    (mine / "results" / "field-notes.txt").write_text("GPS stakes 2022", encoding="utf-8")
    (mine / "thesis.tex").write_text("\\chapter{Yazghil}", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        demo.run_demo(mine)
    message = str(caught.value)
    assert message == (
        f"--dir {mine} is not empty and the demo did not make it (no {DEMO_MARKER} in it); "
        "the demo replaces its own files there, so give it a new or empty directory"
    )
    assert_documented(message, str(mine))
    assert _files(mine) == ["results/field-notes.txt", "thesis.tex"]


def test_demo_removes_only_its_own_results_and_refuses_foreign_files_there(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    results = prepare_demo_directory(demo_dir)  # a new directory: made and marked
    (results / "catalog").mkdir(parents=True)
    (results / "catalog" / "catalog.json").write_text("{}", encoding="utf-8")
    record_demo_results(demo_dir)  # what a demo run leaves
    (demo_dir / "notes.txt").write_text("beside the demo's files", encoding="utf-8")
    (results / "catalog" / "my-figure.png").write_bytes(b"png")
    with pytest.raises(InputError) as caught:
        demo.run_demo(demo_dir)
    message = str(caught.value)
    assert message == (
        f"{results} holds files the demo did not make: catalog/my-figure.png; "
        "the demo replaces results/ on every run, so move them elsewhere or give another --dir"
    )
    assert_documented(message, str(results), "catalog/my-figure.png")
    assert _files(demo_dir) == [
        DEMO_MARKER,
        "notes.txt",
        "results/catalog/catalog.json",
        "results/catalog/my-figure.png",
    ]
    (results / "catalog" / "my-figure.png").unlink()
    assert prepare_demo_directory(demo_dir) == results
    assert _files(demo_dir) == [DEMO_MARKER, "notes.txt"]  # the demo's results gone, the user's file kept


@pytest.mark.integration
def test_rerunning_into_the_same_base_gives_exactly_that_runs_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from glacier_velocity.cli import main
    from glacier_velocity.demo.stacserver import serve_stac
    from glacier_velocity.products.runcatalog import read_run_catalog
    from glacier_velocity.products.runreport import read_run_report

    data = demo.generate_demo_data(tmp_path / "data")
    base = tmp_path / "run"
    pair = "99XXX_20220610_20220705"
    with serve_stac([data.collection, data.items]) as stac_url:
        root = runner.find_project_root()
        one_pair = runner.write_job(
            root / demo.DEMO_PARAMS,
            tmp_path / "one-pair.yml",
            data_location=data.root,
            stac_url=stac_url,
            end_year=2022,
            end_month=7,
        )
        no_pairs = runner.write_job(
            root / demo.DEMO_PARAMS,
            tmp_path / "no-pairs.yml",
            data_location=data.root,
            stac_url=stac_url,
            min_baseline_days=100.0,
            max_baseline_days=200.0,
        )
        assert main(["run", str(one_pair), "--out-dir", str(base), "--quiet"]) == 0
        first = (base / LATEST).resolve()
        capsys.readouterr()
        assert main(["run", str(no_pairs), "--out-dir", str(base), "--quiet"]) == 0
    second = (base / LATEST).resolve()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"outputs of this run only: {second} ({base / LATEST} links to it)"
    assert_documented(out[0], str(second), str(base))
    assert out[-2] == "pairs: 0 succeeded / 0 failed"
    assert out[-1].startswith("summary: no velocity products to aggregate (no pairs found:")
    assert first != second and first.parent == second.parent == base.resolve()
    # The first run keeps its pair; the second holds its own report, its log and no pair at all.
    assert [p.velocity.name for p in read_run_catalog(first / "catalog").pairs] == [f"S2_{pair}.tif"]
    assert [name for name in _files(second) if pair in name] == []
    assert [name for name in _files(first) if "status_" in name] == [f"catalog/run-provenance/status_{pair}.json"]
    run = read_run_catalog(second / "catalog")
    assert run.pairs == [] and run.run_report is not None and read_run_report(run.run_report).pairs == ()
    assert "workflow.log" in _files(second) and "extract-pairs: no pairs" in (second / "workflow.log").read_text()
