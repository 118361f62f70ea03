"""``glacier-velocity ogc-serve``: the local OGC API - Processes server (pygeoapi) for the package.

Serves the process ``glacier-velocity`` on 127.0.0.1 until interrupted; each execute request runs
the application package with cwltool and its outputs are served under ``/outputs/``. Needs the
``deploy`` extra (pygeoapi). ``make ogc-serve`` writes the package first and starts it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ogc-serve`` subcommand."""
    parser = subparsers.add_parser(
        "ogc-serve",
        help="start the local OGC API - Processes server running the application package",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="pygeoapi configuration (default: deploy/ogc/pygeoapi-config.yml; run from the repository root)",
    )
    parser.add_argument("--host", default=None, help="bind address (default: the configuration's)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the configuration's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, after printing the process URL."""
    from ..deploy.ogc import serve  # imports pygeoapi: only for this command

    serve(args.config, args.host, args.port, on_start=lambda url: print(f"OGC API - Processes at {url}", flush=True))
    return 0
