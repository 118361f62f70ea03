"""The ``glacier-velocity`` command: one subcommand per workflow stage.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func`` to a callable taking the parsed arguments. The CLI only parses
arguments and calls library functions; errors the user can fix become one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import GlacierVelocityError, InvalidParameter
from ..io.atomic import sigterm_exits
from ..io.memory import tune_allocator

#: Subcommand modules: the workflow stages in order, the CWL glue, the whole Workflow, the demos,
#: deployment.
COMMANDS = (
    "discover",
    "correlate",
    "track",
    "aggregate",
    "extract_pairs",
    "collect",
    "run",
    "demo",
    "demo_container",
    "package",
    "ogc_config",
    "ogc_serve",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every available subcommand, or with ``only`` that one.

    Each subcommand module imports the libraries of its stage at import time (the demo pulls
    in the synthetic-scene generator and SciPy's FFT, discovery the STAC client): a run of
    ``track`` that imported all of them spent about a quarter of its whole-process time on
    imports it never used (5490 px pair).
    """
    parser = argparse.ArgumentParser(
        prog="glacier-velocity",
        description="Glacier surface velocity from Sentinel-2 image pairs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def option_name(parameter: str) -> str:
    """The command-line option of a parameter: its field name in kebab case (``--chip-px``)."""
    return "--" + parameter.replace("_", "-")


def _as_given(error: GlacierVelocityError, parser: argparse.ArgumentParser, command: str) -> str:
    """The error's message, naming an invalid parameter by the option the user typed."""
    if not isinstance(error, InvalidParameter):
        return str(error)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = subparsers.choices[command]._option_string_actions
    flag = option_name(error.parameter)
    return f"{flag}: {error.detail}" if flag in options else str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glacier-velocity`` console script."""
    tune_allocator()
    argv = list(sys.argv[1:] if argv is None else argv)
    # The top-level options take no value, so the first word that is not an option names the
    # subcommand (``extract-pairs``, module ``extract_pairs``): only its module is loaded.
    words = [a.replace("-", "_") for a in argv if not a.startswith("-")]
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        # SIGTERM (cwltool, timeout, Kubernetes) exits 143 through every cleanup on the way out.
        with sigterm_exits():
            result = args.func(args)
    except GlacierVelocityError as exc:
        print(f"glacier-velocity {args.command}: error: {_as_given(exc, parser, args.command)}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
