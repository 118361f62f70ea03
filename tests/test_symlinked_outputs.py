"""Products are never written through a symbolically linked output directory (issue 11,
finding 2): the pair's directory and the summary's are refused when they are links, and
nothing at the link's target is written or removed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.io.cog import write_velocity_cog
from glacier_velocity.workflow.correlate import attempt_pair
from test_aggregate import SHAPE, T0, make_product
from test_partial_failure import PARAMS, REF_ID, pair_items  # noqa: F401 - fixture


def test_aggregate_refuses_a_symlinked_summary_directory(tmp_path, capsys):
    cogs = []
    for k in range(2):
        product = make_product(np.full(SHAPE, 100.0 + k), reference_datetime=T0 + timedelta(days=30 * k), name=f"p{k}")
        write_velocity_cog(product, tmp_path / f"p{k}.tif")
        cogs.append(str(tmp_path / f"p{k}.tif"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary").symlink_to(elsewhere)
    code = main(["aggregate", *cogs, "--out-dir", str(tmp_path / "out")])
    assert code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1].split("error: ", 1)[1]
    link = str(tmp_path / "out" / "summary")
    assert message == (
        f"output directory {link!r} is a symbolic link (to {str(elsewhere)!r}); products are written only "
        "into real directories - remove the link or give the directory it points to"
    )
    assert_documented(message, repr(link), repr(str(elsewhere)))
    assert list(elsewhere.iterdir()) == []


def test_a_pair_into_a_symlinked_directory_fails_and_leaves_the_target_alone(pair_items):  # noqa: F811
    ref, sec, tmp_path = pair_items
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "S2_43SEA_20200601_20200617.tif").write_bytes(b"someone else's file")
    (tmp_path / "p1").symlink_to(elsewhere)
    attempt = attempt_pair(ref, sec, tmp_path / "p1", PARAMS, pair_id="p1")
    assert not attempt.succeeded and attempt.status.error_type == "InputError"
    assert "is a symbolic link" in attempt.status.reason
    assert [p.name for p in elsewhere.iterdir()] == ["S2_43SEA_20200601_20200617.tif"]
    assert (elsewhere / "S2_43SEA_20200601_20200617.tif").read_bytes() == b"someone else's file"


def _two_products(tmp_path):
    cogs = []
    for k in range(2):
        product = make_product(np.full(SHAPE, 100.0 + k), reference_datetime=T0 + timedelta(days=30 * k), name=f"p{k}")
        write_velocity_cog(product, tmp_path / f"p{k}.tif")
        cogs.append(str(tmp_path / f"p{k}.tif"))
    return cogs


@pytest.mark.parametrize("linked", ["catalog", "out", "catalog/velocity-summary"])
def test_aggregate_writes_nothing_through_a_symlinked_catalog_or_output_directory(tmp_path, capsys, linked):
    """Issue 22, finding 7: a link at ``catalog/`` (or at the output directory, or at an item's
    folder inside the catalog) took the catalog, the run report and a copy of every product
    where it pointed; now every output directory is checked before the first file is written."""
    cogs = _two_products(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out" / "catalog").mkdir(parents=True)
    if linked == "out":
        (tmp_path / "out").rename(tmp_path / "real-out")
    link = tmp_path / linked
    if linked == "catalog":
        link = tmp_path / "out" / "catalog"
        link.rmdir()
    elif linked == "catalog/velocity-summary":
        link = tmp_path / "out" / "catalog" / "velocity-summary"
    link.symlink_to(elsewhere)
    code = main(["aggregate", *cogs, "--out-dir", str(tmp_path / "out")])
    if linked == "catalog/velocity-summary":
        # The catalog is written whole beside the old one and swapped in (issue 23, finding 4):
        # the old catalog, its link included, is replaced, and nothing goes through the link.
        assert code == 0 and list(elsewhere.iterdir()) == []
        assert link.is_dir() and not link.is_symlink()
        return
    assert code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1].split("error: ", 1)[1]
    assert message == (
        f"output directory {str(link)!r} is a symbolic link (to {str(elsewhere)!r}); products are written only "
        "into real directories - remove the link or give the directory it points to"
    )
    assert_documented(message, repr(str(link)), repr(str(elsewhere)))
    assert list(elsewhere.iterdir()) == []
    if linked == "catalog":
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["catalog"]  # no run report, no summary
