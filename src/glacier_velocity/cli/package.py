"""``glacier-velocity package``: write the OGC EO Application Package (one packed CWL file).

Packs ``cwl/`` into one ``$graph`` whose tools must run in the container image ``--image``, with
schema.org metadata from ``pyproject.toml``; optionally also the OGC API - Processes documents
(process description, deploy body, execute requests) and the Calrissian ConfigMap. ``make
package`` runs it with the repository's registry and writes the committed documents in deploy/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..deploy.package import IMAGE_NOTEBOOKS, write_application_package


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``package`` subcommand."""
    parser = subparsers.add_parser(
        "package",
        help="write the OGC application package (and optionally the OGC and Calrissian documents)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--image", required=True, help="container image reference, e.g. localhost/glacier-velocity:0.1.0"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="package file (default: dist/glacier-velocity.<version>.cwl)"
    )
    parser.add_argument("--project", type=Path, default=None, help="repository root (default: found from here)")
    parser.add_argument(
        "--code-repository", default=None, help="s:codeRepository URL (default: project.urls.Repository)"
    )
    parser.add_argument(
        "--notebooks-dir", default=IMAGE_NOTEBOOKS, help="notebook directory the tools use (default: %(default)s)"
    )
    parser.add_argument(
        "--container",
        choices=("requirement", "hint"),
        default="requirement",
        help="DockerRequirement under requirements (the package proper) or hints (development) (default: %(default)s)",
    )
    parser.add_argument(
        "--ogc", type=Path, default=None, metavar="DIR", help="also write the OGC API - Processes documents into DIR"
    )
    parser.add_argument(
        "--calrissian",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the Calrissian ConfigMap (package + Yazghil job) into DIR",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the package (and the documents asked for) and print their paths."""
    from ..demo.scenes import demo_glacier_outlines  # numpy, shapely: only for this command

    files = write_application_package(
        image=args.image,
        output=args.output,
        project_root=args.project,
        code_repository=args.code_repository,
        notebooks_dir=args.notebooks_dir,
        container=args.container,
        ogc_dir=args.ogc,
        calrissian_dir=args.calrissian,
        demo_outlines=demo_glacier_outlines(),
    )
    print(f"application package: {files.package}")
    print(f"CodeMeta: {files.codemeta}")
    for path in files.ogc_documents:
        print(f"OGC API - Processes document: {path}")
    if files.calrissian_configmap is not None:
        print(f"Calrissian ConfigMap: {files.calrissian_configmap}")
    return 0
