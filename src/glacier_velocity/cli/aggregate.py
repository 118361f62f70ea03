"""``glacier-velocity aggregate``: summary maps, figures and STAC catalog of many pair products."""

from __future__ import annotations

import argparse
from pathlib import Path

import pystac

from ..aggregation.datacube import DATACUBE_FILE_NAME, write_datacube
from ..aggregation.summary import RESAMPLING, aggregate_products, write_summary
from ..errors import InputError
from .outputs import check_output_dir

#: Folder (and STAC item id) of the summary inside the output directory.
SUMMARY_DIR = "velocity-summary"


def _is_item_json(path: Path) -> bool:
    return path.suffix.lower() in (".json", ".geojson")


def _data_asset_path(item: pystac.Item, item_path: Path) -> Path:
    """The velocity COG of a product item: asset ``velocity``, else the one data GeoTIFF."""
    candidates = [item.assets["velocity"]] if "velocity" in item.assets else [
        asset
        for asset in item.assets.values()
        if "data" in (asset.roles or []) and ("tiff" in (asset.media_type or "") or asset.href.lower().endswith((".tif", ".tiff")))
    ]
    if len(candidates) != 1:
        raise InputError(
            f"{str(item_path)!r}: expected one velocity COG asset (key 'velocity' or one data GeoTIFF), "
            f"found {len(candidates)}"
        )
    return Path(candidates[0].get_absolute_href() or candidates[0].href)


def resolve_products(paths: list[str]) -> tuple[list[Path], list[pystac.Item | Path]]:
    """Velocity COG paths and product items from a mix of COGs and product item JSON files.

    A COG's item is the JSON file of the same name next to it (as correlate writes it);
    without one, an item is made from the COG itself.
    """
    from ..io.cog import read_velocity_cog
    from ..products.items import make_product_item

    cogs: list[Path] = []
    items: list[pystac.Item | Path] = []
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise InputError(f"product {text!r} does not exist; pass velocity COGs or their item JSON files")
        if _is_item_json(path):
            try:
                item = pystac.Item.from_file(str(path.resolve()))
            except Exception as exc:  # pystac raises several types for a malformed file
                raise InputError(f"{text!r} is not a STAC item: {exc}") from exc
            cogs.append(_data_asset_path(item, path))
            items.append(path)
            continue
        cogs.append(path)
        sibling = path.with_suffix(".json")
        if sibling.is_file():
            items.append(sibling)
        else:
            items.append(make_product_item(read_velocity_cog(path), path))
    return cogs, items


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``aggregate`` subcommand."""
    parser = subparsers.add_parser(
        "aggregate",
        help="median, spread and count of many velocity products, with figures and a STAC catalog",
        description=(
            "Stack velocity products on the first product's grid (others are resampled onto it) and "
            "write per-pixel median speed, median vx and vy, standard deviation of speed (COGs, m/yr) "
            "and valid-map count, a summary figure, a time-series figure, and a self-contained STAC "
            f"catalog (DIR/catalog.json; the summary in DIR/{SUMMARY_DIR}/)."
        ),
    )
    parser.add_argument("products", nargs="+", metavar="PRODUCT",
                        help="velocity COG (.tif) or its product item (.json), as written by correlate")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="output directory (created if needed)")
    parser.add_argument("--catalog", action=argparse.BooleanOptionalAction, default=True,
                        help="write the STAC catalog holding the pair products and the summary (default: yes)")
    parser.add_argument("--min-count", type=int, default=1, metavar="N",
                        help="pixels with fewer valid maps get no statistics (default: %(default)s)")
    parser.add_argument("--resampling", choices=sorted(RESAMPLING), default="nearest",
                        help="how products on another grid are brought onto the first grid (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Aggregate, write the summary, figures and catalog, and print a one-line summary."""
    check_output_dir(args.out_dir, "--out-dir")
    from ..products.catalog import write_catalog
    from ..products.figures import plot_summary, plot_time_series

    out_dir = Path(args.out_dir)
    cogs, items = resolve_products(args.products)
    summary = aggregate_products(cogs, min_count=args.min_count, resampling=args.resampling)
    summary_dir = out_dir / SUMMARY_DIR
    files = write_summary(summary, summary_dir).with_figures(
        plot_summary(summary, summary_dir / "summary_figure.png"),
        plot_time_series(summary, summary_dir / "time_series.png"),
    ).with_datacube(write_datacube(cogs, summary_dir / DATACUBE_FILE_NAME, resampling=args.resampling).path)
    catalog = write_catalog(out_dir, items, files, summary_item_id=SUMMARY_DIR) if args.catalog else None
    start, end = summary.start_datetime, summary.end_datetime
    span = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}" if start and end else "dates unknown"
    print(
        f"{summary.product_count} products, {span}: median speed {summary.median_speed:.1f} m/yr over "
        f"{100 * summary.valid_fraction:.0f}% of the grid -> {catalog or summary_dir}"
    )
    return 0
