"""The antimeridian (issue 11, finding 17): an AOI ring that crosses it unsplit is explained,
not called too large; a product item whose grid crosses it has an RFC 7946 bbox (west > east),
not [-180, 180]."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from affine import Affine

from doc_rows import assert_documented
from glacier_velocity.domain.aoi import check_geometry
from glacier_velocity.domain.velocity import VelocityProduct
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.products.items import make_product_item


def _ring(west: float, east: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, 60.0], [east, 60.0], [east, 60.3], [west, 60.3], [west, 60.0]]]}


def test_an_unsplit_ring_across_the_antimeridian_is_explained():
    with pytest.raises(InvalidParameter) as caught:
        check_geometry(_ring(179.9, -179.9))
    message = str(caught.value)
    assert message == (
        "geometry: the area spans 359.8 degrees of longitude (-179.9 to 179.9): it crosses the antimeridian (180 degrees), "
        "which GeoJSON rings cannot do unsplit; split it at 180 into one polygon each side (RFC 7946, 3.1.9) "
        "and run each side on its own"
    )
    assert_documented(message, "359.8", "-179.9 to 179.9")
    assert "smaller" not in message


def test_a_product_across_the_antimeridian_has_a_west_greater_than_east_bbox():
    # UTM zone 60N at 60 N: x 650-720 km spans 179.7 E to 179.0 W.
    shape = (50, 70)
    transform = Affine(1000.0, 0.0, 650_000.0, 0.0, -1000.0, 6_700_000.0)
    v = np.full(shape, 100.0, dtype=np.float32)
    product = VelocityProduct(
        vx=v,
        vy=v * 0,
        v=v,
        dx=v * 0,
        dy=v * 0,
        peak=v * 0 + 0.8,
        snr=v * 0 + 5,
        transform=transform,
        crs="EPSG:32660",
        dt_days=10.0,
        reference_id="a",
        secondary_id="b",
        reference_datetime=datetime(2021, 7, 1, tzinfo=UTC),
        secondary_datetime=datetime(2021, 7, 11, tzinfo=UTC),
        engine="ncc",
    )
    item = make_product_item(product, "x.tif", None, item_id="x")
    west, south, east, north = item.bbox
    assert 179.5 < west < 180 and -179.2 < east < -178.8
    assert 59.8 < south < north < 60.5
