"""``glacier-velocity extract-pairs``: the pair list of an executed discovery notebook, as CWL records.

The command of the CWL tool ``cwl/extract_pairs.cwl``: it writes ``cwl.output.json`` (the
``pairs`` array the Workflow scatters over, and the discovery ``message``) and says on stderr,
which cwltool shows, how many pairs there are or why there are none.
"""

from __future__ import annotations

import argparse
import sys

from ..workflow.extract_pairs import extract_pairs


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract-pairs`` subcommand."""
    parser = subparsers.add_parser(
        "extract-pairs",
        help="write the pair list of an executed discovery notebook as cwl.output.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="discovery notebook executed by papermill")
    parser.add_argument(
        "--out-dir", default=".", metavar="DIR", help="directory of cwl.output.json (default: %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write ``cwl.output.json`` and report the pair count (or why there are none) on stderr."""
    pairs, message = extract_pairs(args.notebook, args.out_dir)
    if pairs:
        print(f"extract-pairs: {len(pairs)} pair(s): {message}", file=sys.stderr)
    else:
        print(f"extract-pairs: no pairs to correlate - {message}", file=sys.stderr)
    return 0
