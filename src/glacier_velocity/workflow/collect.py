"""The CWL ``collect`` step: the run's single output, one STAC catalog holding everything.

The aggregation step writes the catalog of the products, the summary (COGs and figures) and
the run report; this step copies it and adds the executed notebooks, the pair list and the
pair statuses as assets of a provenance item
(:func:`glacier_velocity.products.catalog.add_provenance`). An ADES stages that one
``Directory`` out, with every asset.

``python -m glacier_velocity.workflow.collect --catalog DIR --out catalog --notebook NB ... --metadata JSON ...``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import GlacierVelocityError


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the CWL ``collect`` tool."""
    from ..products.catalog import add_provenance

    parser = argparse.ArgumentParser(
        prog="python -m glacier_velocity.workflow.collect", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--catalog", required=True, help="catalog directory written by the aggregation step")
    parser.add_argument("--out", default="catalog", help="directory of the completed catalog (default: catalog)")
    parser.add_argument("--notebook", nargs="*", default=[], help="executed notebooks to add")
    parser.add_argument("--metadata", nargs="*", default=[], help="JSON records to add (pair list, pair statuses)")
    args = parser.parse_args(argv)
    try:
        path = add_provenance(args.catalog, args.out, notebooks=args.notebook, metadata=args.metadata)
    except GlacierVelocityError as exc:
        print(f"collect: error: {exc}", file=sys.stderr)
        return 2
    print(f"collect: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
