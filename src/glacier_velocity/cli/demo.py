"""``glacier-velocity demo``: the offline demo, end to end.

Generates the synthetic Sentinel-2 stack over a made-up glacier, serves it with a local STAC
API, runs the CWL Workflow on it with cwltool (or Toil, on this machine or as Slurm jobs:
--runner), and reports where the results are, a one-line summary and the error of the
recovered median speed against the known truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo.runner import DEFAULT_DEMO_DIR, RUNNERS, run_demo


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
    parser.add_argument(
        "--project", type=Path, default=None, help="repository holding cwl/ and params/ (default: found from here)"
    )
    parser.add_argument(
        "--runner",
        choices=RUNNERS,
        default="cwltool",
        help="workflow engine: cwltool, toil (single machine) or toil-slurm (every step a Slurm job) (default: cwltool)",
    )
    parser.add_argument(
        "--parallel", action="store_true", help="let cwltool run the pairs in parallel (Toil always does)"
    )
    parser.add_argument("--quiet", action="store_true", help="hide the engine's log")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the results' location, the summary and the error against the truth."""
    if args.parallel and args.runner != "cwltool":
        raise SystemExit(
            f"glacier-velocity demo: --parallel is a cwltool option; --runner {args.runner} runs the pairs in parallel anyway"
        )
    result = run_demo(
        args.dir,
        project_root=args.project,
        runner=args.runner,
        extra_args=["--parallel"] if args.parallel else [],
        quiet=args.quiet,
    )
    print("\n".join(result.report_lines()))
    return 0 if result.comparison is not None else 1
