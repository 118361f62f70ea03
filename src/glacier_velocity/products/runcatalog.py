"""Reading a run's single output back: the STAC catalog of the Workflow (collect step).

The Workflow returns one ``Directory``, the catalog written by
:func:`~glacier_velocity.products.catalog.write_catalog` and completed by
:func:`~glacier_velocity.products.catalog.add_provenance`. Whoever needs a file of the run
(the demo's truth comparison, the tests, a person at a prompt) finds it through the catalog's
items and asset keys, never through a path guessed from the layout: :func:`read_run_catalog`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pystac

from ..aggregation.summary import SUMMARY_BANDS
from ..errors import InputError
from .catalog import NOTEBOOK_MEDIA_TYPE, PROVENANCE_ITEM_ID

#: Id of the summary item of the run catalog (``write_catalog``'s default).
SUMMARY_ITEM_ID = "velocity-summary"
#: The summary item's COG assets, by asset key: every summary band, the error bands included.
SUMMARY_COG_KEYS = tuple(name for name, _, _ in SUMMARY_BANDS)


@dataclass(frozen=True)
class PairProduct:
    """One pair's item in the run catalog.

    Attributes
    ----------
    item_id : str
        Pair item id (e.g. ``S2_43SEA_20210604_20210629``).
    item : Path
        The item's JSON file.
    velocity : Path
        Velocity COG (vx, vy, v in m/yr; dx, dy in px; quality bands).
    quicklook : Path or None
        Speed quicklook PNG.
    """

    item_id: str
    item: Path
    velocity: Path
    quicklook: Path | None


@dataclass(frozen=True)
class RunCatalog:
    """Every file of a finished run, found through its catalog.

    Attributes
    ----------
    catalog : Path
        ``catalog.json`` at the top of the output directory.
    pairs : list of PairProduct
        The pairs that succeeded, in item id order.
    summary_cogs : dict of str to Path
        Summary COGs by asset key (``median_v``, ``median_vx``, ``median_vy``, ``std_v`` in
        m/yr, ``count``); empty when no pair succeeded.
    summary_figure, time_series_figure, datacube : Path or None
        The summary figures (PNG) and the velocity datacube (NetCDF), when made.
    run_report : Path or None
        ``run-report.json`` (linked from the catalog as ``describedby``).
    notebooks : dict of str to Path
        Executed notebooks of the provenance item by file stem (``discovery``,
        ``correlation_<pair id>``, ``aggregation``).
    records : dict of str to Path
        Other JSON records of the provenance item by file stem (``pairs``, ``status_<pair id>``).
    """

    catalog: Path
    pairs: list[PairProduct] = field(default_factory=list)
    summary_cogs: dict[str, Path] = field(default_factory=dict)
    summary_figure: Path | None = None
    time_series_figure: Path | None = None
    datacube: Path | None = None
    run_report: Path | None = None
    notebooks: dict[str, Path] = field(default_factory=dict)
    records: dict[str, Path] = field(default_factory=dict)

    @property
    def aggregation_notebook(self) -> Path | None:
        """The executed aggregation notebook (its scraps hold the run's message and statistics)."""
        return self.notebooks.get("aggregation")

    @property
    def correlation_notebooks(self) -> list[Path]:
        """One executed correlation notebook per pair attempted (failed ones included)."""
        return [path for stem, path in sorted(self.notebooks.items()) if stem.startswith("correlation_")]

    @property
    def pair_statuses(self) -> list[Path]:
        """One status JSON per pair attempted."""
        return [path for stem, path in sorted(self.records.items()) if stem.startswith("status_")]


def _asset_path(item: pystac.Item, key: str) -> Path | None:
    asset = item.assets.get(key)
    return Path(asset.get_absolute_href() or "") if asset is not None else None


def read_run_catalog(directory: str | os.PathLike[str]) -> RunCatalog:
    """Read the Workflow's output Directory (or its ``catalog.json``).

    Parameters
    ----------
    directory : path-like
        The ``catalog`` output of ``cwl/glacier-velocity.cwl``, or the ``catalog.json`` in it.

    Returns
    -------
    RunCatalog

    Raises
    ------
    InputError
        No ``catalog.json`` there, or an asset the catalog names is missing.
    """
    path = Path(directory)
    path = path if path.name == "catalog.json" else path / "catalog.json"
    if not path.is_file():
        raise InputError(f"no STAC catalog at {str(path)!r}; pass the Workflow's `catalog` output directory")
    catalog = pystac.Catalog.from_file(str(path.resolve()))
    pairs: list[PairProduct] = []
    summary_cogs: dict[str, Path] = {}
    figures: dict[str, Path | None] = {"summary_figure": None, "time_series_figure": None, "datacube": None}
    notebooks: dict[str, Path] = {}
    records: dict[str, Path] = {}
    for item in sorted(catalog.get_items(recursive=True), key=lambda i: i.id):
        if item.id == PROVENANCE_ITEM_ID:
            for stem, asset in item.assets.items():
                target = notebooks if asset.media_type == NOTEBOOK_MEDIA_TYPE else records
                target[stem] = Path(asset.get_absolute_href() or "")
        elif item.id == SUMMARY_ITEM_ID:
            summary_cogs = {key: p for key in SUMMARY_COG_KEYS if (p := _asset_path(item, key)) is not None}
            figures = {key: _asset_path(item, key) for key in figures}
        else:
            velocity = _asset_path(item, "velocity")
            if velocity is None:
                raise InputError(f"item {item.id!r} of {str(path)!r} has no velocity asset")
            pairs.append(
                PairProduct(item.id, Path(item.get_self_href() or ""), velocity, _asset_path(item, "quicklook"))
            )
    report = next((link for link in catalog.links if link.rel == "describedby"), None)
    run_report = Path(report.get_absolute_href() or "") if report is not None else None
    found = [p.velocity for p in pairs] + [q for p in pairs if (q := p.quicklook)] + list(summary_cogs.values())
    found += [p for p in [*figures.values(), run_report, *notebooks.values(), *records.values()] if p is not None]
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise InputError(f"the catalog {str(path)!r} names files that are missing: {missing[:5]}")
    return RunCatalog(
        path.resolve(),
        pairs,
        summary_cogs,
        figures["summary_figure"],
        figures["time_series_figure"],
        figures["datacube"],
        run_report,
        notebooks,
        records,
    )


__all__ = ["SUMMARY_COG_KEYS", "SUMMARY_ITEM_ID", "PairProduct", "RunCatalog", "read_run_catalog"]
