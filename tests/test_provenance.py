"""The run's single output: the aggregation catalog plus the provenance item (collect step)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pystac
import pytest

from glacier_velocity.errors import InputError
from glacier_velocity.products.catalog import PROVENANCE_ITEM_ID, add_provenance, check_catalog, write_catalog
from helpers import CoreSchemaValidator, summary_files, write_pair_products

ROOT = Path(__file__).resolve().parents[1]


def _records(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Notebooks and JSON records as the Workflow's steps leave them (content is irrelevant here)."""
    run = tmp_path / "run"
    run.mkdir()
    notebooks = [
        run / n for n in ("discovery.ipynb", "correlation_p0.ipynb", "correlation_p1.ipynb", "aggregation.ipynb")
    ]
    records = [run / n for n in ("pairs.json", "status_p0.json", "status_p1.json")]
    for path in [*notebooks, *records]:
        path.write_text(json.dumps({"name": path.name}))
    return notebooks, records


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("aggregated")
    item_paths = write_pair_products(tmp_path)
    return write_catalog(tmp_path / "catalog", item_paths, summary_files(tmp_path, item_paths)).parent


def test_provenance_item_holds_every_notebook_and_record(aggregated: Path, tmp_path: Path) -> None:
    notebooks, records = _records(tmp_path)
    before = sorted(p.relative_to(aggregated) for p in aggregated.rglob("*"))
    assets_before = len(check_catalog(aggregated / "catalog.json"))
    path = add_provenance(aggregated, tmp_path / "out", notebooks=notebooks, metadata=records)
    catalog = pystac.Catalog.from_file(str(path))
    previous = pystac.validation.RegisteredValidator.get_validator()
    pystac.validation.set_validator(CoreSchemaValidator())
    try:
        catalog.validate_all()
    finally:
        pystac.validation.set_validator(previous)
    items = {item.id: item for item in catalog.get_items()}
    assert len(items) == 5 and {"velocity-summary", PROVENANCE_ITEM_ID} <= set(items)
    provenance = items[PROVENANCE_ITEM_ID]
    assert sorted(provenance.assets) == sorted(p.stem for p in [*notebooks, *records])
    assert provenance.assets["discovery"].media_type == "application/x-ipynb+json"
    assert provenance.assets["pairs"].media_type == pystac.MediaType.JSON
    assert provenance.properties["gv:pair_notebooks"] == 2
    assert provenance.geometry is None and provenance.datetime is not None
    # the products, summary COGs, figures (and datacube) of before, and the 7 files added
    files = check_catalog(path)
    assert len(files) == assets_before + 7 and all(path.parent in f.parents for f in files)
    assert json.loads((path.parent / PROVENANCE_ITEM_ID / "pairs.json").read_text()) == {"name": "pairs.json"}
    assert (path.parent / "run-report.json").exists() or not (aggregated / "run-report.json").exists()
    # the aggregation catalog is left as it was
    assert sorted(p.relative_to(aggregated) for p in aggregated.rglob("*")) == before
    assert len(list(pystac.Catalog.from_file(str(aggregated / "catalog.json")).get_items())) == 4
    # and the result is self-contained: moved elsewhere, it still resolves
    moved = shutil.move(str(path.parent), str(tmp_path / "moved"))
    assert len(check_catalog(Path(moved) / "catalog.json")) == assets_before + 7


def test_a_run_without_pairs_still_keeps_its_discovery_notebook(tmp_path: Path) -> None:
    empty = write_catalog(tmp_path / "empty", [], None, description="no pairs found").parent
    notebooks, _ = _records(tmp_path)
    path = add_provenance(empty, tmp_path / "out", notebooks=notebooks[:1])
    [item] = pystac.Catalog.from_file(str(path)).get_items()
    assert item.id == PROVENANCE_ITEM_ID and list(item.assets) == ["discovery"]
    assert item.properties["gv:pair_notebooks"] == 0
    assert [f.name for f in check_catalog(path)] == ["discovery.ipynb"]


def test_symlinked_inputs_are_stored_as_files_not_links(aggregated: Path, tmp_path: Path) -> None:
    # cwltool stages a step's File inputs as symlinks into directories it deletes afterwards:
    # the catalog must hold the notebooks themselves.
    notebooks, _ = _records(tmp_path)
    staged = tmp_path / "staged"
    staged.mkdir()
    links = []
    for path in notebooks:
        (staged / path.name).symlink_to(path)
        links.append(staged / path.name)
    path = add_provenance(aggregated, tmp_path / "out", notebooks=links)
    shutil.rmtree(tmp_path / "run")  # the runner's temporary directories are gone
    stored = sorted((path.parent / PROVENANCE_ITEM_ID).glob("*.ipynb"))
    assert [p.name for p in stored] == sorted(p.name for p in notebooks)
    assert not any(p.is_symlink() for p in stored)
    assert json.loads((path.parent / PROVENANCE_ITEM_ID / "aggregation.ipynb").read_text()) == {
        "name": "aggregation.ipynb"
    }


def test_bad_provenance_inputs_are_refused(aggregated: Path, tmp_path: Path) -> None:
    notebooks, records = _records(tmp_path)
    with pytest.raises(InputError, match="holds no catalog.json"):
        add_provenance(tmp_path, tmp_path / "a", notebooks=notebooks)
    with pytest.raises(InputError, match="does not exist"):
        add_provenance(aggregated, tmp_path / "b", notebooks=[tmp_path / "nope.ipynb"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "pairs.json").write_text("{}")
    with pytest.raises(InputError, match=r"distinct names, repeated: \['pairs.json'\]"):
        add_provenance(aggregated, tmp_path / "c", notebooks=notebooks, metadata=[*records, other / "pairs.json"])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    with pytest.raises(InputError, match="is not empty"):
        add_provenance(aggregated, tmp_path / "d", notebooks=notebooks)


def test_collect_tool_runs_under_cwltool(aggregated: Path, tmp_path: Path) -> None:
    notebooks, records = _records(tmp_path)
    job = {
        "aggregation_catalog": {"class": "Directory", "path": str(aggregated)},
        "notebooks": [{"class": "File", "path": str(p)} for p in notebooks],
        "records": [{"class": "File", "path": str(p)} for p in records],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    cwltool = Path(sys.executable).parent / "cwltool"
    completed = subprocess.run(
        [
            str(cwltool),
            "--quiet",
            "--no-container",
            "--preserve-environment",
            "PYTHONPATH",
            "--outdir",
            str(tmp_path / "out"),
            str(ROOT / "cwl" / "collect.cwl"),
            str(tmp_path / "job.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT / "src"),
        },
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    catalog = json.loads(completed.stdout)["catalog"]
    assets_before = len(check_catalog(aggregated / "catalog.json"))
    assert len(check_catalog(Path(catalog["path"]) / "catalog.json")) == assets_before + len(notebooks) + len(records)
