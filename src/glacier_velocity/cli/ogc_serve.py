"""``glacier-velocity ogc-serve``: the OGC API - Processes server (pygeoapi) for the package.

Serves the process ``glacier-velocity`` until interrupted; each execute request runs the
application package with cwltool, and its outputs are served under ``/outputs/`` to the key that
made the job. Every request needs an API key (``--keys-file``, or GLACIER_VELOCITY_OGC_KEYS);
``--insecure-local`` runs without keys, on this machine only. Needs the ``deploy`` extra
(pygeoapi). ``make ogc-serve`` writes the package first and starts it. docs/deployment.md says
how to put it behind a reverse proxy with TLS.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..deploy.ogc_jobs import JobLimits

_LIMITS = JobLimits()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ogc-serve`` subcommand."""
    parser = subparsers.add_parser(
        "ogc-serve",
        help="start the OGC API - Processes server running the application package",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="pygeoapi configuration (default: deploy/ogc/pygeoapi-config.yml; run from the repository root)",
    )
    parser.add_argument("--host", default=None, help="bind address (default: the configuration's, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the configuration's)")
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="where clients reach the server, e.g. https://ogc.example.org behind a reverse proxy "
        "(default: http://HOST:PORT)",
    )
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="API keys, one '<name> <key>' per line (keys of at least 24 characters); "
        "GLACIER_VELOCITY_OGC_KEYS='name=key,...' adds more",
    )
    parser.add_argument(
        "--insecure-local",
        action="store_true",
        help="run without API keys (every request is one user), listening on a loopback address only",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=_LIMITS.max_running,
        metavar="N",
        help="jobs running at once; more wait, queued (default: %(default)s)",
    )
    parser.add_argument(
        "--max-jobs-per-key",
        type=int,
        default=_LIMITS.max_running_per_key,
        metavar="N",
        help="jobs of one key running at once (default: %(default)s)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body; a larger one is refused with 413 (default: 2 MiB)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, after printing the process URL."""
    from ..deploy.ogc import DEFAULT_MAX_REQUEST_BYTES, ServerSettings, serve  # imports pygeoapi
    from ..deploy.ogc_access import ApiKeys
    from ..errors import InvalidParameter

    try:
        limits = JobLimits(max_running=args.max_jobs, max_running_per_key=args.max_jobs_per_key)
    except ValueError as exc:
        raise InvalidParameter("max_jobs", f"{exc}; give whole numbers >= 1") from None
    settings = ServerSettings(
        keys=ApiKeys.load(args.keys_file, insecure_local=args.insecure_local),
        limits=limits,
        max_request_bytes=args.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
    )
    serve(
        settings,
        args.config,
        args.host,
        args.port,
        public_url=args.public_url,
        on_start=lambda url: print(f"OGC API - Processes at {url}", flush=True),
    )
    return 0
