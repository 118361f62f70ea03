"""``glacier-velocity ogc-config``: write the pygeoapi configuration serving an application package.

The configuration ``glacier-velocity ogc-serve`` reads: one process, ``glacier-velocity``, run by
cwltool from the package (in containers unless ``--no-container``), a TinyDB job manager and the
job directories under ``--workdir``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ogc-config`` subcommand."""
    parser = subparsers.add_parser(
        "ogc-config",
        help="write a pygeoapi configuration for an application package",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--package", required=True, help="application package path (as the server will see it)")
    parser.add_argument("--output", type=Path, required=True, help="configuration file to write")
    parser.add_argument("--port", type=int, default=5000, help="port the server listens on (default: %(default)s)")
    parser.add_argument(
        "--workdir", default="build/ogc", help="job database and job directories (default: %(default)s)"
    )
    parser.add_argument(
        "--no-container", dest="containers", action="store_false", help="run cwltool with --no-container"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the configuration and print its path."""
    from ..deploy.ogc import write_pygeoapi_config  # imports pygeoapi: only for this command

    path = write_pygeoapi_config(
        args.output, package=args.package, port=args.port, workdir=args.workdir, containers=args.containers
    )
    print(f"pygeoapi configuration: {path}")
    return 0
