"""``glacier-velocity run``: the CWL Workflow on a job file, into a fresh directory per run.

Runs cwl/glacier-velocity.cwl on a job file (params/*.yml) with cwltool --parallel (pairs run
at once as far as cores and memory allow), or with Toil (--runner). Each run writes into a
directory of its own, OUT_DIR/<UTC time>/, and OUT_DIR/latest points to the newest: a re-run
never mixes with an earlier run's products. The console shows the pairs done, failed and in
all and the elapsed time; the runner's whole log is workflow.log in the run's directory.
The job file is checked first, as the steps would check it (a bad value is one line and no
run starts); relative paths in it are read from its directory. The exit status is 1 when
pairs succeeded but every one was left out of the summary (the summary line says why).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..workflow.rundirs import LATEST
from ..workflow.runner import RUNNERS, run_params
from .progress import ProgressView

#: Default base directory of the runs (`make run`'s OUT).
DEFAULT_RUNS_DIR = Path("build/run")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run the whole workflow on a job file (params/*.yml), each run in a fresh directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("params", type=Path, help="job file of the Workflow, e.g. params/yazghil.yml")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_RUNS_DIR,
        help=f"base directory: this run goes to OUT_DIR/<UTC time>/, OUT_DIR/{LATEST} links to it (default: {DEFAULT_RUNS_DIR})",
    )
    add_runner_options(parser)
    parser.set_defaults(func=run)


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    """--project, --runner, --parallel/--no-parallel and --quiet, shared by ``run`` and ``demo``."""
    parser.add_argument(
        "--project", type=Path, default=None, help="repository holding cwl/ and params/ (default: found from here)"
    )
    parser.add_argument(
        "--runner",
        choices=RUNNERS,
        default="cwltool",
        help="workflow runner: cwltool, toil (single machine) or toil-slurm (every step a Slurm job) (default: cwltool)",
    )
    parser.add_argument(
        "--parallel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cwltool runs pairs at once as cores and memory allow (default); --no-parallel: one at a time. Toil always runs them in parallel",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress view (the runner's log is in workflow.log either way)"
    )


def check_runner_options(args: argparse.Namespace) -> None:
    """Refuse --no-parallel with Toil, which has no sequential mode here."""
    if not args.parallel and args.runner != "cwltool":
        raise SystemExit(
            f"glacier-velocity {args.command}: --no-parallel is a cwltool option; --runner {args.runner} runs the pairs in parallel"
        )


def run(args: argparse.Namespace) -> int:
    """Run the Workflow; print the run's directory, its log and the pairs' counts."""
    check_runner_options(args)
    view = None if args.quiet else ProgressView()
    try:
        result = run_params(
            args.params,
            args.out_dir,
            project_root=args.project,
            runner=args.runner,
            parallel=args.parallel,
            on_progress=view,
        )
    finally:
        if view is not None:
            view.close()
    print(f"outputs of this run only: {result.run_dir} ({args.out_dir / LATEST} links to it)")
    print(f"log: {result.log_file}")
    catalog = result.outputs.get("catalog")
    if catalog:
        print(f"STAC catalog: {Path(catalog['path']) / 'catalog.json'}")
    if result.report is not None:
        print(f"pairs: {result.report.summary_line()}")
    if result.message:
        print(f"summary: {result.message}")
    # Pairs succeeded but the summary left every one out (no stable ground, say): the run has
    # its products and report, not what was asked for.
    no_summary = result.run is not None and not result.run.summary_cogs
    return 1 if no_summary and result.report is not None and result.report.succeeded else 0
