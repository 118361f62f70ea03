"""aggregate refuses a product given twice and a --min-count no pixel can reach (issue 11,
findings 8 and 18): real COGs through the real CLI, exit code 2 and a message, no output."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pytest

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.io.cog import write_velocity_cog
from glacier_velocity.products.items import make_product_item, save_product_item
from helpers import PRODUCT_SHAPE as SHAPE
from helpers import T0, make_product


@pytest.fixture
def products(tmp_path):
    paths = []
    for k in range(2):
        product = make_product(np.full(SHAPE, 100.0 + k), reference_datetime=T0 + timedelta(days=30 * k), name=f"p{k}")
        cog = tmp_path / f"p{k}.tif"
        write_velocity_cog(product, cog)
        save_product_item(make_product_item(product, cog, None, item_id=f"p{k}"), tmp_path / f"p{k}.json")
        paths.append(cog)
    return paths


def _aggregate(capsys, *args):
    code = main(["aggregate", *map(str, args)])
    return code, capsys.readouterr().err.strip().splitlines()[-1] if code else ""


def test_the_same_file_twice_is_refused(products, tmp_path, capsys):
    code, message = _aggregate(capsys, products[0], products[1], products[0], "--out-dir", tmp_path / "out")
    assert code == 2
    assert message == (
        f"glacier-velocity aggregate: error: velocity product {str(products[0])!r} is given twice "
        f"(also as {str(products[0])!r}); give each product once"
    )
    assert_documented(message.split("error: ", 1)[1], repr(str(products[0])))
    assert not (tmp_path / "out").exists()


def test_a_cog_and_its_item_are_the_same_product(products, tmp_path, capsys):
    code, message = _aggregate(capsys, products[0], tmp_path / "p0.json", products[1], "--out-dir", tmp_path / "out")
    assert code == 2 and "is given twice" in message
    assert not (tmp_path / "out").exists()


def test_a_copy_of_a_product_is_the_same_pair(products, tmp_path, capsys):
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / "p0.tif"
    shutil.copy(products[0], copy)
    code, message = _aggregate(capsys, products[0], products[1], copy, "--out-dir", tmp_path / "out")
    assert code == 2
    ids = "S2A_33WXS_20210603_0_L2A_p0 -> S2B_33WXS_20210613_0_L2A_p0"
    assert message.split("error: ", 1)[1] == (
        f"velocity product 2 ({ids}, {copy}) is the same pair as {products[0]}; give each pair's product once"
    )
    assert_documented(message.split("error: ", 1)[1], "2", f"{ids}, {copy}", str(products[0]))
    assert not (tmp_path / "out").exists()


def test_min_count_above_the_number_of_products_is_refused(products, tmp_path, capsys):
    code, message = _aggregate(capsys, *products, "--min-count", "3", "--out-dir", tmp_path / "out")
    assert code == 2
    assert message == (
        "glacier-velocity aggregate: error: --min-count: 3 is more than the 2 product(s) given, so no pixel "
        "could have that many valid maps; lower --min-count to at most 2 or add products"
    )
    assert_documented(message.split("error: ", 1)[1], "3", "2")
    assert not (tmp_path / "out").exists()
    assert _aggregate(capsys, *products, "--min-count", "2", "--out-dir", tmp_path / "out")[0] == 0
