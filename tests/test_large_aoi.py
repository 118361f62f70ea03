"""A glacier outline of many vertices as the AOI (issue 23, finding 13): it was copied into every
product item (a 1e6-vertex outline made 40 MB items). Now each item holds a simplified footprint
and the AOI's record (source, bbox, vertex count, SHA-256), and the run stores the AOI once,
beside the summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import shapely
from affine import Affine
from rasterio.warp import transform_geom
from shapely.geometry import Polygon, mapping, shape

from doc_rows import assert_documented
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.products.items import MAX_FOOTPRINT_VERTICES, footprint_lonlat
from glacier_velocity.workflow.aggregate import AOI_FILE_NAME, AggregationParams, aggregate_run
from glacier_velocity.workflow.correlate import CorrelationParams, correlate_pair
from helpers import EPSG, REF_TIME, SEC_TIME, X0, Y0, write_scene_cog, write_scene_item

SHAPE = (256, 256)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
#: Vertices of the outline: enough for an 8 MB item before the fix, quick to parse (1e6 by hand:
#: 40 MB items before, 9.7 kB after).
VERTICES = 200_000


def _wavy_outline(vertices: int) -> dict:
    """A wavy ring of ``vertices`` vertices, 900 m +- 30 m around the scene's centre, in lon/lat."""
    angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = 900.0 + 30.0 * np.sin(angle * 40)
    ring = np.c_[X0 + 1280 + radius * np.cos(angle), Y0 - 1280 + radius * np.sin(angle)]
    return transform_geom(f"EPSG:{EPSG}", "EPSG:4326", mapping(Polygon(ring)))


@pytest.fixture(scope="module")
def big_aoi_pair(tmp_path_factory):
    """One pair correlated with the outline as its AOI: (pair product directory, the AOI's text)."""
    tmp = tmp_path_factory.mktemp("big_aoi")
    synthetic = make_pair(SHAPE, Translation(2.0, -1.0), seed=7)
    write_scene_cog(tmp / "ref_B08.tif", synthetic.reference, TRANSFORM)
    write_scene_cog(tmp / "sec_B08.tif", synthetic.secondary, TRANSFORM)
    ref = write_scene_item(tmp, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", TRANSFORM, SHAPE)
    sec = write_scene_item(tmp, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", TRANSFORM, SHAPE)
    text = json.dumps(_wavy_outline(VERTICES))
    params = CorrelationParams(aoi=text, grid_spacing_px=16, stable_correction=False)
    out = correlate_pair(str(ref), str(sec), tmp / "pair", params)
    return out, text


def _vertices(geometry: dict) -> int:
    return int(shapely.get_num_coordinates(shape(geometry)))


def test_a_pair_item_holds_a_simplified_footprint_and_the_aois_record_not_its_vertices(big_aoi_pair):
    products, text = big_aoi_pair
    assert len(text) > 7_000_000  # the outline's text: what every item used to copy
    assert products.item.stat().st_size < 20_000
    item = pystac.Item.from_file(str(products.item))
    aoi = parse_aoi(text)
    assert item.properties["gv:aoi"] == {
        "source": "inline GeoJSON",
        "bbox": list(aoi.bbox),
        "vertices": VERTICES + 1,
        "sha256": aoi.sha256,
    }
    assert item.properties["gv:correlation_params"]["aoi"] == "inline GeoJSON"
    # The footprint: the outline cut to the product's grid, within half a 160 m cell of it.
    assert _vertices(item.geometry) <= MAX_FOOTPRINT_VERTICES
    products_grid = shape(footprint_lonlat(item_transform(item), tuple(item.properties["proj:shape"]), "EPSG:32643"))
    cut = aoi.shape.intersection(products_grid)
    footprint = shape(item.geometry)
    assert footprint.is_valid and footprint.hausdorff_distance(cut) < 80.0 / 111_320.0
    # The +-30 m waves are finer than half a cell and smoothed away: a few % of the area.
    assert footprint.area == pytest.approx(cut.area, rel=0.05)


def item_transform(item: pystac.Item) -> Affine:
    return Affine(*item.properties["proj:transform"][:6])


def test_the_run_stores_the_aoi_once_beside_the_summary(big_aoi_pair, tmp_path):
    products, text = big_aoi_pair
    # Tracked without the correction (the synthetic scene moves as a whole): kept in on purpose.
    params = AggregationParams(aoi=text, keep_uncorrected_pairs=True)
    result = aggregate_run([products.cog.parent], tmp_path / "out", params)
    catalog_dir = Path(result.catalog).parent
    stored = sorted(p.relative_to(catalog_dir) for p in catalog_dir.rglob("*.geojson"))
    assert stored == [Path("velocity-summary") / AOI_FILE_NAME]
    summary = pystac.Item.from_file(str(catalog_dir / "velocity-summary" / "velocity-summary.json"))
    assert summary.assets["aoi"].media_type == pystac.MediaType.GEOJSON
    again = parse_aoi(summary.assets["aoi"].get_absolute_href())
    pair = next(i for i in pystac.Catalog.from_file(str(result.catalog)).get_items() if "gv:aoi" in i.properties)
    # One polygon for the run, named by the same digest in the pair's item and the summary's.
    assert again.sha256 == pair.properties["gv:aoi"]["sha256"] == summary.properties["gv:aoi"]["sha256"]
    assert again.vertex_count == VERTICES + 1
    assert _vertices(summary.geometry) <= MAX_FOOTPRINT_VERTICES
    assert max(p.stat().st_size for p in catalog_dir.rglob("*.json")) < 30_000
    assert_documented(summary.assets["aoi"].description)
