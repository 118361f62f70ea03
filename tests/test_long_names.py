"""Names built from catalogue values are bounded and safe (issue 23, finding 9).

A 300-character tile code (``grid:code``) made a 317-character pair id: the Workflow failed with
"File name too long" for ``correlation_<pair id>.ipynb``, and the correlation notebook's call
refused the id. The tile part of a pair id is cut to 40 characters with a hash of the whole
code, every safe name to 100, and the scatter's pair records are checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from doc_rows import assert_documented
from glacier_velocity import demo
from glacier_velocity.domain.names import MAX_NAME_CHARS, MAX_TILE_CHARS, safe_name
from glacier_velocity.errors import InputError
from glacier_velocity.products.naming import product_basename
from glacier_velocity.stac.pairing import Pair
from glacier_velocity.workflow import runner
from glacier_velocity.workflow.correlate import CorrelationParams, attempt_pair, load_scene
from glacier_velocity.workflow.extract_pairs import PairRecord
from helpers import REF_TIME, SEC_TIME, write_pair_items

ROOT = Path(__file__).resolve().parents[1]
LONG_TILE = "X/" * 150  # 300 characters, separators included
SAFE_ID = re.compile(r"^[A-Za-z0-9-]+_\d{8}_\d{8}$")


def _set_grid_code(item_path: str | Path, code: str) -> None:
    path = Path(item_path)
    item = json.loads(path.read_text())
    item["properties"]["grid:code"] = f"MGRS-{code}"
    path.write_text(json.dumps(item))


@pytest.fixture
def long_tile_items(tmp_path):
    ref, sec = write_pair_items(tmp_path)
    for item in (ref, sec):
        _set_grid_code(item, LONG_TILE)
    return ref, sec, tmp_path


def test_a_long_tile_code_gives_a_bounded_safe_pair_id(long_tile_items):
    ref, sec, _ = long_tile_items
    pair = Pair(load_scene(ref, "reference"), load_scene(sec, "secondary"))
    assert pair.tile == LONG_TILE.upper()
    assert SAFE_ID.match(pair.id) and len(pair.id) == MAX_TILE_CHARS + 18
    assert pair.id.startswith("X-X-X-X-X") and pair.id.endswith("_20200601_20200617")
    assert product_basename(pair) == f"S2_{pair.id}"
    # Two codes sharing their first 40 characters still give two ids.
    for item in (ref, sec):
        _set_grid_code(item, LONG_TILE + "Y")
    other = Pair(load_scene(ref, "reference"), load_scene(sec, "secondary"))
    assert other.id != pair.id and len(other.id) == len(pair.id)
    # The tuple form names a product the same way.
    assert product_basename((pair.tile, REF_TIME, SEC_TIME)) == f"S2_{pair.id}"


def test_the_correlation_notebook_call_writes_the_pair_under_bounded_names(long_tile_items):
    """What the scatter does with one record: its id names the notebook, status and products."""
    ref, sec, tmp_path = long_tile_items
    record = PairRecord.from_pair(Pair(load_scene(ref, "reference"), load_scene(sec, "secondary")))
    assert PairRecord.from_dict(record.to_dict()) == record
    attempt = attempt_pair(
        ref,
        sec,
        tmp_path / record.id,
        CorrelationParams(grid_spacing_px=16, stable_correction=False),
        pair_id=record.id,
    )
    assert attempt.succeeded, attempt.status.reason
    names = [p.name for p in (tmp_path / record.id).iterdir()]
    assert sorted(names) == sorted(f"S2_{record.id}{end}" for end in (".tif", "_quicklook.png", ".json"))
    assert max(len(f"correlation_{record.id}.ipynb"), *map(len, names)) < 100


def test_a_pair_record_with_a_long_or_unsafe_id_is_refused():
    record = {
        "id": "43SEA_20200601_20200617",
        "reference_id": "a",
        "reference_href": "a.json",
        "reference_datetime": "2020-06-01T05:36:29Z",
        "secondary_id": "b",
        "secondary_href": "b.json",
        "secondary_datetime": "2020-06-17T11:36:29Z",
        "dt_days": 16.25,
    }
    assert PairRecord.from_dict(record).id == "43SEA_20200601_20200617"
    for bad in ("X" * 300 + "_20200601_20200617", "../../etc_20200601_20200617"):
        with pytest.raises(InputError) as caught:
            PairRecord.from_dict(record | {"id": bad})
        message = str(caught.value)
        assert message == (
            f"pair record id {bad[:120]!r} is not a safe file name of at most 100 characters (letters, digits, '.', "
            "'-', '_'); re-run the discovery notebook"
        )
        assert_documented(message, repr(bad[:120]), "100")


def test_safe_names_are_bounded_with_a_hash_of_the_whole_value():
    long = safe_name("a/" * 400)
    assert len(long) == MAX_NAME_CHARS and re.fullmatch(r"[A-Za-z0-9_.-]+", long)
    assert safe_name("a/" * 400) == long and safe_name("a/" * 401) != long
    assert safe_name("S2A_43SEA_20200601_0_L2A") == "S2A_43SEA_20200601_0_L2A"


@pytest.mark.integration
def test_the_correlation_tool_runs_a_pair_of_a_long_tile_code(tmp_path):
    """cwltool names the executed notebook correlation_<pair id>.ipynb: before, 'File name too long'."""
    data = demo.generate_demo_data(tmp_path / "data")
    reference_id, secondary_id = demo.expected_pairs()[0]
    items = data.items.parent / "items"
    for item_id in (reference_id, secondary_id):
        _set_grid_code(items / f"{item_id}.json", LONG_TILE)
    pair = Pair(
        load_scene(items / f"{reference_id}.json", "reference"), load_scene(items / f"{secondary_id}.json", "secondary")
    )
    job = demo.write_pair_job(data, tmp_path / "pair.yml", pair_id=pair.id)
    outputs, _ = runner.run_cwltool(ROOT / "cwl" / "correlate.cwl", job, tmp_path / "out", quiet=True)
    assert outputs["executed_notebook"]["basename"] == f"correlation_{pair.id}.ipynb"
    assert outputs["velocity"]["basename"] == f"S2_{pair.id}.tif"
    assert len(pair.id) == MAX_TILE_CHARS + 18
