"""Outputs are never half-written: interrupted writers leave neither the final file nor a
temporary one, a pair's products appear together or not at all, a catalog.json only
describes complete items, and re-running a pair gives the same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.io.atomic import atomic_output
from glacier_velocity.io.cog import write_cog
from glacier_velocity.products import catalog as catalog_module
from glacier_velocity.products import quicklook as quicklook_module
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair
from helpers import REF_TIME, SEC_TIME, X0, Y0, write_pair_products, write_scene_cog, write_scene_item

SHAPE = (128, 128)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
# The pairs are a uniform shift: no stable ground to correct on.
PARAMS = CorrelationParams(grid_spacing_px=16, stable_correction=False)


class Interrupted(Exception):
    """Stands for a crash or a kill in the middle of a write."""


def _files(directory: Path) -> list[str]:
    """Every file below ``directory``, hidden temporary ones included."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def pair_items(tmp_path):
    synthetic = make_pair(SHAPE, Translation(2.5, -1.5), seed=7)
    write_scene_cog(tmp_path / "ref_B08.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp_path / "sec_B08.tif", synthetic.secondary, TRANSFORM)
    ref = write_scene_item(tmp_path, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", TRANSFORM, SHAPE)
    sec = write_scene_item(tmp_path, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", TRANSFORM, SHAPE)
    return ref, sec


def test_atomic_output_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "product.json"
    with pytest.raises(Interrupted):
        with atomic_output(target) as tmp:
            tmp.write_text('{"half": ')
            assert tmp.parent == tmp_path and tmp.name.startswith(".product.json.") and tmp.suffix == ".part"
            raise Interrupted
    assert _files(tmp_path) == []


def test_cog_writer_interrupted_between_bands_leaves_no_file(tmp_path, monkeypatch):
    opened: list[str] = []
    real_open = rasterio.open

    class HalfWriter:
        """A dataset that writes band 1, then dies while writing band 2."""

        def __init__(self, dataset):
            self.dataset = dataset

        def __getattr__(self, name):
            return getattr(self.dataset, name)

        def write(self, array, index):
            if index == 2:
                raise Interrupted("killed while writing band 2")
            self.dataset.write(array, index)

    class Opener:
        def __init__(self, path, *args, **kwargs):
            opened.append(str(path))
            self.dataset = real_open(path, *args, **kwargs)

        def __enter__(self):
            return HalfWriter(self.dataset.__enter__())

        def __exit__(self, *exc):
            return self.dataset.__exit__(*exc)

    monkeypatch.setattr(rasterio, "open", Opener)
    target = tmp_path / "velocity.tif"
    bands = {"vx": np.ones(SHAPE, np.float32), "vy": np.zeros(SHAPE, np.float32)}
    with pytest.raises(Interrupted):
        write_cog(target, bands, TRANSFORM, "EPSG:32643")
    # The writer was really working on a hidden temporary beside the target...
    assert len(opened) == 1 and Path(opened[0]).name.startswith(".velocity.tif.") and opened[0].endswith(".part")
    # ...and neither it nor a file at the final name is left.
    assert _files(tmp_path) == []


def test_pair_products_appear_together_or_not_at_all(pair_items, tmp_path, monkeypatch):
    ref, sec = pair_items
    out = tmp_path / "out"

    def broken_quicklook(*args, **kwargs):
        raise Interrupted("killed while drawing the quicklook")

    monkeypatch.setattr(quicklook_module, "write_quicklook", broken_quicklook)
    with pytest.raises(Interrupted):
        correlate_pair(ref, sec, out, PARAMS)
    # The COG was complete before the quicklook failed; it must not stay without its item.
    assert _files(out) == []


def test_an_interrupted_catalog_has_no_catalog_json(tmp_path, monkeypatch):

    item_paths = write_pair_products(tmp_path)
    first = catalog_module.write_catalog(tmp_path / "catalog", item_paths, None)
    assert first.is_file()
    real_write = catalog_module._AtomicStacIO.write_text_to_href
    written: list[str] = []

    def dies_on_the_third_item(self, href, txt):
        if len(written) == 2:
            raise Interrupted("killed while saving the catalog")
        written.append(href)
        real_write(self, href, txt)

    monkeypatch.setattr(catalog_module._AtomicStacIO, "write_text_to_href", dies_on_the_third_item)
    with pytest.raises(Interrupted):
        catalog_module.write_catalog(tmp_path / "catalog", item_paths, None)
    files = _files(tmp_path / "catalog")
    # The old catalog.json is gone (it would list items being rewritten), no temporary is left.
    assert "catalog.json" not in files
    assert not [f for f in files if f.endswith(".part")]


def _digests(paths) -> dict[str, str]:
    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_rerunning_a_pair_is_idempotent_byte_for_byte(pair_items, tmp_path):
    ref, sec = pair_items
    out = tmp_path / "out"
    first = correlate_pair(ref, sec, out, PARAMS)
    before = _digests((first.cog, first.quicklook, first.item))
    second = correlate_pair(ref, sec, out, PARAMS)
    after = _digests((second.cog, second.quicklook, second.item))
    # COG, quicklook PNG and item JSON carry no timestamps: the same bytes, not just the same values.
    assert after == before
    assert sorted(before) == [
        "S2_43SEA_20200601_20200617.json",
        "S2_43SEA_20200601_20200617.tif",
        "S2_43SEA_20200601_20200617_quicklook.png",
    ]
    assert _files(out) == sorted(before)  # nothing else (no temporaries, no duplicates)
    assert second.median_v_m_per_yr == first.median_v_m_per_yr


_SIGTERM_AS_THE_LOCK_IS_TAKEN = """
import fcntl, os, signal, sys
from glacier_velocity.io import atomic

real_flock = fcntl.flock
def flock(fd, operation):
    real_flock(fd, operation)
    os.kill(os.getpid(), signal.SIGTERM)  # the signal lands just after the lock is taken
atomic.fcntl.flock = flock
with atomic.sigterm_exits(), atomic.exclusive_lock(sys.argv[1], "the set"):
    print("the block ran")
"""


def test_sigterm_as_the_lock_is_taken_leaves_no_lock_file(tmp_path):
    # The set's lock file is created before it is locked: a SIGTERM between the two must not
    # leave it behind (CI once saw an empty .<basename>.lock after a SIGTERM mid-write).
    import subprocess
    import sys

    lock = tmp_path / ".set.lock"
    done = subprocess.run(
        [sys.executable, "-c", _SIGTERM_AS_THE_LOCK_IS_TAKEN, str(lock)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 143, done.stderr[-2000:]
    assert "the block ran" not in done.stdout
    assert not lock.exists()
