"""``glacier-velocity demo``: the offline demo, end to end.

Generates the synthetic Sentinel-2 stack over a made-up glacier, serves it with a local STAC
API, runs the CWL Workflow on it with cwltool --parallel (or Toil, on this machine or as Slurm
jobs: --runner), and reports where the results are, a one-line summary and the error of the
recovered median speed against the known truth. While it runs, the console shows the pairs
done, failed and in all and the elapsed time; the runner's whole log is DIR/workflow.log.
The demo writes only into a new or empty --dir, or one it made itself, and replaces only
what it made there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo.run import run_demo
from ..demo.scenes import DEFAULT_DEMO_DIR
from ..workflow.runner import WORKFLOW_LOG
from .progress import ProgressView
from .run import add_runner_options, check_runner_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole workflow offline on a synthetic glacier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DEMO_DIR, help=f"demo working directory (default: {DEFAULT_DEMO_DIR})"
    )
    add_runner_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the results' location, the summary and the error against the truth."""
    check_runner_options(args)
    view = None if args.quiet else ProgressView()
    log_file = args.dir.resolve() / WORKFLOW_LOG
    try:
        result = run_demo(
            args.dir,
            project_root=args.project,
            runner=args.runner,
            parallel=args.parallel,
            log_file=log_file,
            on_progress=view,
        )
    finally:
        if view is not None:
            view.close()
    lines = result.report_lines()  # the truth line stays the last
    print("\n".join([lines[0], f"log: {log_file}", *lines[1:]]))
    return 0 if result.comparison is not None else 1
