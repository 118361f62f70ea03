"""``glacier-velocity demo-container``: the offline demo with every tool in the container image.

Generates the synthetic stack, serves its scene files over HTTP and its items with a local STAC
API on 127.0.0.1, runs the Workflow with cwltool in docker mode (podman through its
Docker-compatible API works) and reports the error of the recovered median speed against the
truth, as ``glacier-velocity demo`` does without containers. Build the image first (``make image``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo.run import run_demo_in_containers
from ..deploy.containers import LOCAL_IMAGE

DEFAULT_DIR = Path("build/demo-container")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo-container`` subcommand."""
    parser = subparsers.add_parser(
        "demo-container",
        help="run the offline demo with every tool in the container image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"working directory (default: {DEFAULT_DIR})")
    parser.add_argument("--process", type=Path, default=None, help="CWL to run (default: cwl/glacier-velocity.cwl)")
    parser.add_argument(
        "--project", type=Path, default=None, help="repository holding cwl/ and params/ (default: found from here)"
    )
    parser.add_argument(
        "--image",
        default=LOCAL_IMAGE,
        help="image the CWL names, checked in the local image store (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the containerized demo and print the results' location, the summary and the error."""
    result = run_demo_in_containers(args.dir, process=args.process, project_root=args.project, image=args.image)
    print("\n".join(result.report_lines()))
    return 0 if result.comparison is not None else 1
