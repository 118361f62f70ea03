"""Items given instead of searched: a Directory of staged STAC items, or item URLs (issue 24, item 3).

Every input was a value (a STAC API URL and search parameters), so a run needed the internet in
every step. Discovery over the demo's items staged as a platform stages them (a catalog.json
linking each item, its asset beside it) gives exactly the pairs the search gives, and names
the items by their paths inside the Directory, where the correlation step finds them again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from glacier_velocity import demo
from glacier_velocity.cli import main
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.deploy.containers import serve_files
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.stac.discovery import DiscoveryParams, discover_pairs
from glacier_velocity.stac.staged import given_scenes, staged_href, staged_item_files

ROOT = Path(__file__).resolve().parents[1]


def stage_items(items: Path, target: Path) -> Path:
    """The items of an ItemCollection staged as a platform's stage-in writes them (OGC Best
    Practice): ``catalog.json`` linking ``<id>/<id>.json``, the ``nir`` asset copied beside it."""
    target.mkdir(parents=True)
    links = [{"rel": "root", "href": "./catalog.json"}]
    for feature in json.loads(items.read_text())["features"]:
        folder = target / feature["id"]
        folder.mkdir()
        nir = Path(feature["assets"]["nir"]["href"])
        shutil.copy(nir, folder / nir.name)
        feature["assets"] = {"nir": {**feature["assets"]["nir"], "href": f"./{nir.name}"}}
        (folder / f"{feature['id']}.json").write_text(json.dumps(feature))
        links.append({"rel": "item", "href": f"./{feature['id']}/{feature['id']}.json"})
    (target / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "staged", "links": links}))
    return target


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoData:
    return demo.generate_demo_data(tmp_path_factory.mktemp("demo"))


def _params(**values: object) -> DiscoveryParams:
    job = yaml.safe_load((ROOT / demo.DEMO_PARAMS).read_text())
    fields = {k: v for k, v in job.items() if k in DiscoveryParams.__dataclass_fields__}
    return DiscoveryParams(**{**fields, "stac_url": "http://127.0.0.1:9", **values})


def _pairs(result) -> list[tuple[str, str, str]]:
    return [(p.id, p.reference.self_href, p.secondary.self_href) for p in result.pairs]


def test_staged_items_give_the_pairs_the_search_gives(data: demo.DemoData, tmp_path: Path) -> None:
    staged = stage_items(data.items, tmp_path / "staged")
    with serve_stac([data.collection, data.items]) as stac_url:
        searched = discover_pairs(_params(stac_url=stac_url))
    # The STAC API is not asked: stac_url answers nothing.
    given = discover_pairs(_params(), staged_items=staged)
    assert [p.id for p in given.pairs] == [p.id for p in searched.pairs] and len(given.pairs) == 6
    assert [s.id for s in given.scenes_selected] == [s.id for s in searched.scenes_selected]
    assert [(f.name, f.removed) for f in given.filters] == [(f.name, f.removed) for f in searched.filters]
    # Each item by its path inside the Directory, which the correlation step joins to its own copy.
    first = given.pairs[0]
    assert first.reference.self_href == f"{first.reference.id}/{first.reference.id}.json"
    elsewhere = shutil.copytree(staged, tmp_path / "in-the-correlation-step")
    joined = Path(staged_href(first.reference.self_href, elsewhere))
    assert joined == elsewhere / first.reference.id / f"{first.reference.id}.json" and joined.is_file()
    assert staged_href("https://example.org/item.json", elsewhere) == "https://example.org/item.json"


def test_item_urls_give_the_pairs_the_search_gives(data: demo.DemoData, tmp_path: Path, loopback_allowed: None) -> None:
    with serve_files(data.root) as files_url:
        items = sorted((data.root / "stac" / "items").glob("*.json"))
        assert len(items) == 11
        urls = [f"{files_url}/stac/items/{path.name}" for path in items]
        given = discover_pairs(_params(), item_urls=urls)
    assert len(given.pairs) == 6
    assert all(p.reference.self_href in urls and p.secondary.self_href in urls for p in given.pairs)


def test_discover_cli_takes_staged_items(data: demo.DemoData, tmp_path: Path, capsys) -> None:
    staged = stage_items(data.items, tmp_path / "staged")
    job = yaml.safe_load((ROOT / demo.DEMO_PARAMS).read_text())
    out = tmp_path / "pairs.json"
    argv = ["discover", "--aoi", job["aoi"], "--start-year", "2022", "--end-year", "2023"]
    argv += ["--start-month", "6", "--end-month", "9", "--max-baseline-days", "70", "--stac-url", "http://127.0.0.1:9"]
    assert main([*argv, "--staged-items", str(staged), "--out", str(out)]) == 0
    assert "6 pair(s)" in capsys.readouterr().out
    pairs = json.loads(out.read_text())["pairs"]
    assert all(not Path(p["reference"]["href"]).is_absolute() for p in pairs)


def test_a_catalog_leading_outside_its_directory_is_refused(data: demo.DemoData, tmp_path: Path) -> None:
    staged = stage_items(data.items, tmp_path / "staged")
    catalog = json.loads((staged / "catalog.json").read_text())
    catalog["links"].append({"rel": "item", "href": "../elsewhere/item.json"})
    (staged / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(InvalidParameter, match="does not lead to a file inside"):
        staged_item_files(staged)
    with pytest.raises(InvalidParameter, match="holds neither catalog.json nor item.json"):
        staged_item_files(tmp_path)
    with pytest.raises(InvalidParameter, match="item_urls: 'ftp://example.org/a.json' is not an http"):
        given_scenes(None, ["ftp://example.org/a.json"])


@pytest.mark.integration  # the Workflow on the one-pair season: about 40 s
def test_the_workflow_takes_item_urls_instead_of_a_search(
    data: demo.DemoData, tmp_path: Path, loopback_allowed: None
) -> None:
    """The Workflow's string[] input ``item_urls`` (issue 24, item 3), end to end: nothing listens
    at ``stac_url``, the discovery step pairs the given items, and each pair's step fetches its
    two items and their assets by URL (the file server on 127.0.0.1 stands for a public one)."""
    from glacier_velocity.demo.run import items_with_http_assets
    from glacier_velocity.products.runcatalog import read_run_catalog
    from glacier_velocity.workflow import runner

    folder = data.root / "stac" / "items-by-url"
    folder.mkdir(exist_ok=True)
    with serve_files(data.root) as files_url:
        collection = items_with_http_assets(data.items, data.root, files_url, tmp_path / "items-http.json")
        urls = []
        for feature in json.loads(collection.read_text())["features"]:
            (folder / f"{feature['id']}.json").write_text(json.dumps(feature))
            urls.append(f"{files_url}/stac/items-by-url/{feature['id']}.json")
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS,
            tmp_path / "job.yml",
            data_location=data.root,
            stac_url="http://127.0.0.1:9",
            item_urls=urls,
            end_year=2022,
            end_month=7,
        )
        outputs, _ = runner.run_cwltool(ROOT / "cwl" / "glacier-velocity.cwl", job, tmp_path / "out", quiet=True)
    run = read_run_catalog(outputs["catalog"]["path"])
    (pair,) = run.pairs
    assert pair.velocity.name == "S2_99XXX_20220610_20220705.tif"
    sources = [link["href"] for link in json.loads(pair.item.read_text())["links"] if link["rel"] == "derived_from"]
    assert sources == [
        f"{files_url}/stac/items-by-url/{i}.json" for i in ("S2A_99XXX_20220610_0_L2A", "S2B_99XXX_20220705_0_L2A")
    ]
    assert run.summary_cogs and run.run_report is not None
    assert json.loads(run.run_report.read_text())["summary"] == "1 succeeded / 0 failed"
