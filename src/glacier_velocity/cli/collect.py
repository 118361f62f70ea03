"""``glacier-velocity collect``: the run's single output, one STAC catalog holding everything.

The command of the CWL tool ``cwl/collect.cwl``. The aggregation step writes the catalog of the
products, the summary (COGs and figures) and the run report; this command copies it and adds
the executed notebooks, the pair list and the pair statuses as assets of a provenance item
(:func:`glacier_velocity.products.catalog.add_provenance`). An ADES stages that one
``Directory`` out, with every asset.
"""

from __future__ import annotations

import argparse
import sys

from ..products.catalog import add_provenance


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collect`` subcommand."""
    parser = subparsers.add_parser(
        "collect",
        help="complete the aggregation's STAC catalog with the executed notebooks and run records",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--catalog", required=True, metavar="DIR", help="catalog directory written by the aggregation step"
    )
    parser.add_argument(
        "--out", default="catalog", metavar="DIR", help="directory of the completed catalog (default: %(default)s)"
    )
    parser.add_argument("--notebook", nargs="*", default=[], metavar="NOTEBOOK", help="executed notebooks to add")
    parser.add_argument(
        "--metadata", nargs="*", default=[], metavar="JSON", help="JSON records to add (pair list, pair statuses)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the completed catalog and name it on stderr."""
    path = add_provenance(args.catalog, args.out, notebooks=args.notebook, metadata=args.metadata)
    print(f"collect: {path}", file=sys.stderr)
    return 0
