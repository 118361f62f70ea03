"""The aggregation's outputs are one set (issue 23, finding 4): the run report, ``summary/``
(COGs, figures, datacube) and ``catalog/`` are written whole beside the earlier set and swapped
in. A re-run on a full disk fails with a clear message and leaves the earlier set byte for byte,
and a re-run that succeeds leaves nothing of the earlier set (no stale pair directory).

The full disk is real: a small tmpfs mounted in a user namespace, as in test_product_sets.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from doc_rows import assert_documented
from glacier_velocity.workflow.aggregate import aggregate_run
from helpers import FILL_DISK_SOURCE, run_on_small_disk, unshare_works, write_pair_products

_FULL_DISK_SCRIPT = FILL_DISK_SOURCE + textwrap.dedent(
    """
    import hashlib, json, subprocess, sys
    from pathlib import Path

    disk, products = Path(sys.argv[1]), sys.argv[2:]
    out = disk / "out"

    def aggregate(items):
        args = [sys.executable, "-m", "glacier_velocity", "aggregate", *items, "--out-dir", str(out)]
        return subprocess.run(args, capture_output=True, text=True, timeout=300)

    def digests():
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
            for p in sorted(out.rglob("*"))
        }

    first = aggregate(products)
    before = digests()
    # Full to the last byte, then a few pages free: the re-run's lock and first blocks fit.
    full = fill_disk(disk, 16384)
    second = aggregate(products[:2])
    after = digests()
    listing = sorted(p.name for p in disk.iterdir())
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    # Space again: the re-run with two of the three pairs succeeds.
    (disk / "filler").unlink()
    third = aggregate(products[:2])
    print(json.dumps({
        "first": first.returncode, "first_err": first.stderr, "full": full,
        "code": second.returncode, "stderr": second.stderr, "before": before, "after": after,
        "disk": listing, "hidden": hidden, "third": third.returncode, "third_err": third.stderr,
        "final": digests(), "final_hidden": sorted(p.name for p in out.iterdir() if p.name.startswith(".")),
    }))
    """
)


def _pair_folder(item_path: Path) -> str:
    return f"catalog/{item_path.stem}"


@pytest.mark.skipif(not unshare_works(), reason="needs unprivileged user namespaces (unshare -r -m) to mount a tmpfs")
def test_a_full_disk_keeps_the_earlier_summary_set_whole_and_says_so(tmp_path):
    items = [str(p) for p in write_pair_products(tmp_path)]
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK_SCRIPT)
    result = run_on_small_disk(disk, "4m", script, str(disk), *items)
    assert result["first"] == 0, result["first_err"]
    assert result["full"] == 28  # ENOSPC: the file system really is full
    before = result["before"]
    assert {"run-report.json", "summary/velocity_datacube.nc", "catalog/catalog.json"} <= set(before)
    assert _pair_folder(Path(items[2])) in before
    # The re-run failed cleanly: the earlier set, every file byte for byte, and nothing else.
    assert result["code"] == 2, result["stderr"]
    assert result["after"] == before
    assert result["disk"] == ["filler", "out"] and result["hidden"] == []
    message = result["stderr"].strip().splitlines()[-1]
    out = str(disk / "out")
    prefix = "glacier-velocity aggregate: error: "
    assert message.startswith(f"{prefix}could not write the aggregation outputs into {out!r} (")
    assert message.endswith(
        "MB free there); the run report, summary and catalog of an earlier run there were kept unchanged - "
        "free some space (or choose another directory) and run the aggregation again"
    )
    detail = message.removeprefix(prefix)
    reason, free = detail.split(" (", 1)[1].split(" MB free there)", 1)[0].rsplit("; ", 1)
    assert float(free) < 0.1  # e.g. "TIFFWriteDirectoryTagData:IO error writing tag data"
    assert_documented(detail, repr(out), reason, free)
    # With space again, two of the three pairs: a whole new set, no folder of the third pair.
    assert result["third"] == 0, result["third_err"]
    final = result["final"]
    assert _pair_folder(Path(items[2])) not in final and _pair_folder(Path(items[0])) in final
    assert not [name for name in final if name.startswith(_pair_folder(Path(items[2])))]
    assert result["final_hidden"] == []


def test_a_rerun_with_fewer_pairs_leaves_no_stale_pair_directory(tmp_path):
    items = write_pair_products(tmp_path)
    out = tmp_path / "out"
    aggregate_run(items, out)
    folders = {p.name for p in (out / "catalog").iterdir() if p.is_dir()}
    assert folders == {items[0].stem, items[1].stem, items[2].stem, "velocity-summary"}
    (out / "catalog" / items[2].stem / "a note of mine.txt").write_text("left by hand")
    aggregate_run(items[:2], out)
    assert {p.name for p in (out / "catalog").iterdir() if p.is_dir()} == {
        items[0].stem,
        items[1].stem,
        "velocity-summary",
    }
    catalog = json.loads((out / "catalog" / "catalog.json").read_text())
    assert sorted(link["href"] for link in catalog["links"] if link["rel"] == "item") == sorted(
        f"./{name}/{name}.json" for name in (items[0].stem, items[1].stem, "velocity-summary")
    )
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock, staging or journal left
