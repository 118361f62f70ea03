"""Result catalog: self-contained, relative, valid STAC; each pair keeps its dates; summary spans them."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import numpy as np
import pystac
import pytest
import xarray as xr
from numpy.testing import assert_array_equal

from glacier_velocity.cli import main
from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.products.catalog import check_catalog, write_catalog
from helpers import PAIRS, T0, CoreSchemaValidator, summary_files, write_pair_products
from helpers import PRODUCT_SHAPE as SHAPE


@pytest.fixture
def core_validator():
    previous = pystac.validation.RegisteredValidator.get_validator()
    pystac.validation.set_validator(CoreSchemaValidator())
    yield
    pystac.validation.set_validator(previous)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # Built once per module (figures take seconds); tests only read it, or restore what they move.
    tmp_path = tmp_path_factory.mktemp("built")
    item_paths = write_pair_products(tmp_path)
    files = summary_files(tmp_path, item_paths)
    catalog_path = write_catalog(tmp_path / "catalog", item_paths, files)
    return catalog_path, item_paths, files


def test_catalog_is_valid_stac_and_every_asset_resolves(built, core_validator):
    catalog_path, item_paths, _ = built
    assert catalog_path.name == "catalog.json" and catalog_path.is_file()
    catalog = pystac.Catalog.from_file(str(catalog_path))
    catalog.validate_all()
    items = {item.id: item for item in catalog.get_items(recursive=True)}
    assert len(items) == 4 and "velocity-summary" in items
    files = check_catalog(catalog_path)
    # 3 velocity COGs + 8 summary COGs (5 maps, 3 errors) + 2 figures + the datacube, all inside the catalog directory.
    assert len(files) == 14
    assert all(catalog_path.parent.resolve() in f.resolve().parents for f in files)
    assert catalog.catalog_type == pystac.CatalogType.SELF_CONTAINED


def test_all_hrefs_and_links_are_relative(built):
    catalog_path, _, _ = built
    for path in catalog_path.parent.rglob("*.json"):
        data = json.loads(path.read_text())
        for link in data.get("links", []):
            assert link["rel"] != "self"
            assert not link["href"].startswith(("/", "file:")), (path.name, link)
        for asset in data.get("assets", {}).values():
            assert not asset["href"].startswith(("/", "file:", "http")), (path.name, asset)


def test_catalog_still_resolves_after_copying_the_directory(built, tmp_path):
    catalog_path, _, _ = built
    moved = shutil.copytree(catalog_path.parent, tmp_path / "elsewhere" / "result")
    # Hide every original (inputs and the catalog itself) so nothing can resolve to them.
    originals = [catalog_path.parent, catalog_path.parent.parent / "pairs", catalog_path.parent.parent / "summary"]
    for path in originals:
        path.rename(path.with_name(path.name + "-hidden"))
    try:
        files = check_catalog(moved / "catalog.json")
    finally:
        for path in originals:
            path.with_name(path.name + "-hidden").rename(path)
    assert len(files) == 14
    assert all(moved in f.parents for f in files)


def test_pair_items_keep_their_own_dates_and_summary_spans_them(built):
    catalog_path, item_paths, _ = built
    catalog = pystac.Catalog.from_file(str(catalog_path))
    items = {item.id: item for item in catalog.get_items(recursive=True)}
    for (start, dt_days, _speed), item_path in zip(PAIRS, item_paths, strict=True):
        original = pystac.Item.from_file(str(item_path))
        item = items[original.id]
        assert item.common_metadata.start_datetime == start
        assert item.common_metadata.end_datetime == start + timedelta(days=dt_days)
        assert item.properties["gv:dt_days"] == dt_days
    summary = items["velocity-summary"]
    assert summary.datetime is None
    assert summary.common_metadata.start_datetime == T0
    assert summary.common_metadata.end_datetime == PAIRS[2][0] + timedelta(days=PAIRS[2][1])
    pairs = summary.properties["gv:pairs"]
    assert [p["reference_datetime"] for p in pairs] == [
        start.isoformat().replace("+00:00", "Z") for start, _, _ in PAIRS
    ]
    assert [p["dt_days"] for p in pairs] == [dt for _, dt, _ in PAIRS]
    assert summary.properties["gv:product_count"] == 3
    assert summary.properties["gv:median_v_m_per_yr"] == 100.0
    derived = [link for link in summary.links if link.rel == "derived_from"]
    assert sorted(link.get_absolute_href() for link in derived) == sorted(
        items[i].get_self_href() for i in items if i != "velocity-summary"
    )


def test_summary_item_assets_roles_projection_and_footprint(built):
    catalog_path, _, _ = built
    catalog = pystac.Catalog.from_file(str(catalog_path))
    summary = next(i for i in catalog.get_items(recursive=True) if i.id == "velocity-summary")
    roles = {key: asset.roles for key, asset in summary.assets.items()}
    assert roles == {
        "median_v": ["data"],
        "median_vx": ["data"],
        "median_vy": ["data"],
        "std_v": ["data"],
        "count": ["data"],
        "v_error": ["data"],
        "vx_error": ["data"],
        "vy_error": ["data"],
        "summary_figure": ["overview", "visual"],
        "time_series_figure": ["visual"],
        "datacube": ["data"],
    }
    assert summary.assets["datacube"].media_type == "application/netcdf"
    with xr.open_dataset(summary.assets["datacube"].get_absolute_href()) as cube:
        assert cube.sizes["mid_date"] == len(PAIRS)
        assert_array_equal(np.nanmax(cube.v.values, axis=(1, 2)), [speed for _, _, speed in PAIRS])
    assert summary.assets["count"].extra_fields["raster:bands"][0]["data_type"] == "uint16"
    assert summary.assets["median_v"].extra_fields["raster:bands"][0]["unit"] == "m/yr"
    assert summary.properties["proj:code"] == "EPSG:32633"
    assert summary.properties["proj:shape"] == list(SHAPE)
    assert summary.properties["proj:bbox"] == [500_000.0, 6_999_600.0, 500_500.0, 7_000_000.0]
    # UTM 33N easting 500 km is the 15 E meridian; northing 7000 km is about 63.1 N.
    west, south, east, north = summary.bbox
    assert west == pytest.approx(15.0, abs=1e-6) and 15.0 < east < 15.02
    assert 63.1 < south < north < 63.2


def test_missing_item_or_asset_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_catalog(tmp_path / "c", [tmp_path / "nope.json"], None)
    item_paths = write_pair_products(tmp_path)
    pystac.Item.from_file(str(item_paths[0])).assets["velocity"].get_absolute_href()
    (tmp_path / "pairs" / (item_paths[0].stem + ".tif")).unlink()
    with pytest.raises(InputError, match="not found"):
        write_catalog(tmp_path / "c", item_paths, None)


def test_duplicate_items_are_refused(tmp_path):
    item_paths = write_pair_products(tmp_path)
    with pytest.raises(InvalidParameter, match="repeated"):
        write_catalog(tmp_path / "c", [item_paths[0], item_paths[0]], None)


def test_zero_pairs_give_an_empty_valid_catalog(tmp_path, core_validator):
    path = write_catalog(tmp_path / "c", [], None, description="no pairs found")
    catalog = pystac.Catalog.from_file(str(path))
    catalog.validate_all()
    assert list(catalog.get_items(recursive=True)) == [] and catalog.description == "no pairs found"
    assert check_catalog(path) == []


def test_rewriting_in_place_keeps_files(built):
    catalog_path, item_paths, files = built
    # Writing the same catalog again (re-run of the step) must not lose or corrupt assets.
    write_catalog(catalog_path.parent, item_paths, files)
    assert len(check_catalog(catalog_path)) == 14


def test_cli_aggregate_mixed_cogs_and_items(tmp_path, capsys):
    item_paths = write_pair_products(tmp_path)
    cog_with_item = item_paths[1].with_suffix(".tif")
    cog_alone = item_paths[2].with_suffix(".tif")
    item_paths[2].unlink()  # this product's item is made from its COG
    out = tmp_path / "result"
    assert main(["aggregate", str(item_paths[0]), str(cog_with_item), str(cog_alone), "--out-dir", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (
        "3 succeeded / 0 failed: 3 pairs aggregated, median speed over moving ground (speed above "
        "3 times its error; no glacier outlines given) (20 cells): 2021 110.0 +/- 7.1 m/yr (2 pairs), "
        "2022 80.0 +/- 10.0 m/yr (1 pair), 100 % of the grid measured"
    )
    files = check_catalog(out / "catalog" / "catalog.json")
    names = sorted(f.name for f in files)
    assert names == sorted(
        [p.with_suffix(".tif").name for p in item_paths]
        + [
            "summary_count.tif",
            "summary_median_v.tif",
            "summary_median_vx.tif",
            "summary_median_vy.tif",
            "summary_std_v.tif",
            "summary_v_error.tif",
            "summary_vx_error.tif",
            "summary_vy_error.tif",
            "summary_figure.png",
            "time_series.png",
            "velocity_datacube.nc",
            "run-report.json",
        ]
    )
    summary = pystac.Item.from_file(str(out / "catalog" / "velocity-summary" / "velocity-summary.json"))
    assert summary.common_metadata.end_datetime == PAIRS[2][0] + timedelta(days=PAIRS[2][1])
    assert summary.properties["gv:run_summary"] == "3 succeeded / 0 failed"
    # Products alone: each is a pair that succeeded, named after its COG.
    report = json.loads((out / "run-report.json").read_text())
    assert [p["pair_id"] for p in report["pairs"]] == [p.stem for p in item_paths]
    assert (out / "summary" / "summary_median_v.tif").is_file()


def test_cli_aggregate_errors_name_the_option(tmp_path, capsys):
    item_paths = write_pair_products(tmp_path)
    out = tmp_path / "result"
    assert main(["aggregate", str(tmp_path / "missing.tif"), "--out-dir", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["aggregate", str(item_paths[0]), "--out-dir", str(out), "--min-count", "0"]) == 2
    assert "--min-count: must be a whole number of maps >= 1, got 0" in capsys.readouterr().err
    assert not (out / "summary").exists()


def test_cli_aggregate_help():
    with pytest.raises(SystemExit) as info:
        main(["aggregate", "--help"])
    assert info.value.code == 0


def test_links_to_local_source_files_are_dropped_remote_ones_kept(tmp_path):
    item_paths = write_pair_products(tmp_path)
    item = pystac.Item.from_file(str(item_paths[0]))
    item.add_link(pystac.Link(rel="derived_from", target=str(tmp_path / "scenes" / "ref.json"), title="reference"))
    remote = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2A_33WXS_20210613_0_L2A"
    item.add_link(pystac.Link(rel="derived_from", target=remote, title="secondary"))
    path = write_catalog(tmp_path / "c", [item], None)
    data = json.loads((path.parent / item.id / f"{item.id}.json").read_text())
    derived = [link["href"] for link in data["links"] if link["rel"] == "derived_from"]
    assert derived == [remote]
    assert data["properties"]["gv:reference_id"] == "S2A_33WXS_20210603_0_L2A_p0"
