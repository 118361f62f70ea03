"""Pairing: season months, monthly selection, pair building, baseline filter, JSON round trip."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

import pystac
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_velocity.errors import InputError, InvalidParameter
from glacier_velocity.stac.pairing import (
    Pair,
    filter_baseline,
    format_pair_table,
    make_pairs,
    read_pairs_json,
    season_months,
    season_year_of,
    select_monthly,
    write_pairs_json,
)
from glacier_velocity.stac.scene import Scene

UTC = UTC
SQUARE = {"type": "Polygon", "coordinates": [[[74.0, 35.0], [75.0, 35.0], [75.0, 36.0], [74.0, 36.0], [74.0, 35.0]]]}


def scene(when: datetime, tile: str = "43SEA", cloud: float = 5.0, suffix: str = "0") -> Scene:
    return Scene(
        id=f"S2B_{tile}_{when:%Y%m%d}_{suffix}_L2A",
        datetime=when,
        self_href=f"http://stac.test/items/{when:%Y%m%d}",
        band_href=f"s3://bucket/{tile}/{when:%Y%m%d}/B08.tif",
        classification_href=None,
        cloud_cover=cloud,
        tile=tile,
        epsg=32643,
        geometry=SQUARE,
        product_uri=None,
    )


def d(y: int, m: int, day: int, h: int = 5, minute: int = 46) -> datetime:
    return datetime(y, m, day, h, minute, tzinfo=UTC)


# --- Scene ----------------------------------------------------------------------------------


def earth_search_item(**props) -> pystac.Item:
    item = pystac.Item(
        id="S2B_43SEA_20200922_0_L2A",
        geometry=SQUARE,
        bbox=[74.0, 35.0, 75.0, 36.0],
        datetime=datetime(2020, 9, 22, 5, 46, 39, tzinfo=UTC),
        properties={
            "eo:cloud_cover": 3.25,
            "s2:product_uri": "S2B_MSIL2A_20200922T054639_N0214_R048_T43SEA_20200922T084512.SAFE",
            **props,
        },
    )
    item.add_asset("nir", pystac.Asset("https://data.test/43/S/EA/2020/9/S2B_43SEA_20200922_0_L2A/B08.tif"))
    item.add_asset("scl", pystac.Asset("https://data.test/43/S/EA/2020/9/S2B_43SEA_20200922_0_L2A/SCL.tif"))
    item.set_self_href("http://stac.test/collections/sentinel-2-l2a/items/S2B_43SEA_20200922_0_L2A")
    return item


def test_scene_from_item_reads_earth_search_fields():
    s = Scene.from_item(earth_search_item(**{"grid:code": "MGRS-43SEA", "proj:epsg": 32643}))
    assert s.id == "S2B_43SEA_20200922_0_L2A"
    assert s.datetime == datetime(2020, 9, 22, 5, 46, 39, tzinfo=UTC)
    assert s.tile == "43SEA" and s.epsg == 32643 and s.cloud_cover == 3.25
    assert s.band_href.endswith("/B08.tif") and s.classification_href.endswith("/SCL.tif")
    assert s.self_href == "http://stac.test/collections/sentinel-2-l2a/items/S2B_43SEA_20200922_0_L2A"
    assert s.product_uri.startswith("S2B_MSIL2A_20200922")


@pytest.mark.parametrize(
    "props, tile, epsg",
    [
        (
            {"mgrs:utm_zone": 7, "mgrs:latitude_band": "V", "mgrs:grid_square": "CG", "proj:code": "EPSG:32607"},
            "07VCG",
            32607,
        ),
        ({"proj:code": "EPSG:32643"}, "43SEA", 32643),  # tile parsed from the id
    ],
)
def test_scene_tile_and_epsg_fallbacks(props, tile, epsg):
    s = Scene.from_item(earth_search_item(**props))
    assert (s.tile, s.epsg) == (tile, epsg)


def test_scene_tile_from_product_uri_when_id_has_none():
    item = earth_search_item()
    item.id = "some-custom-id"
    assert Scene.from_item(item).tile == "43SEA"


def test_item_without_nir_names_item_and_asset():
    item = earth_search_item()
    del item.assets["nir"]
    with pytest.raises(InputError, match=r"S2B_43SEA_20200922_0_L2A.*'nir'"):
        Scene.from_item(item)


def test_scene_dict_round_trip():
    s = Scene.from_item(earth_search_item(**{"grid:code": "MGRS-43SEA", "proj:epsg": 32643}))
    back = Scene.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.geometry == s.geometry


# --- Seasons and monthly selection -----------------------------------------------------------


def test_season_months_plain_and_wrapping():
    assert season_months(6, 9) == (6, 7, 8, 9)
    assert season_months(11, 2) == (11, 12, 1, 2)
    assert season_months(3, 3) == (3,)
    assert season_months(12, 11) == (12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


@pytest.mark.parametrize("start, end", [(0, 5), (5, 13), (-1, 2)])
def test_season_months_rejects_bad_months(start, end):
    with pytest.raises(InvalidParameter, match="month"):
        season_months(start, end)


def test_season_year_of_wrap():
    months = season_months(11, 2)
    assert season_year_of(2020, 12, months) == 2020
    assert season_year_of(2021, 2, months) == 2020
    assert season_year_of(2021, 3, months) is None


def test_select_monthly_takes_first_scene_per_month():
    scenes = [
        scene(d(2020, 6, 20)),
        scene(d(2020, 6, 3)),  # first of June
        scene(d(2020, 7, 15)),
        scene(d(2020, 5, 30)),  # outside the season
        scene(d(2020, 8, 1)),
        scene(d(2020, 8, 11)),
        scene(d(2021, 6, 8)),
        scene(d(2022, 6, 8)),  # outside the years
    ]
    chosen = select_monthly(scenes, years=[2020, 2021], months=season_months(6, 8))
    assert [s.datetime.date().isoformat() for s in chosen] == ["2020-06-03", "2020-07-15", "2020-08-01", "2021-06-08"]


def test_select_monthly_season_wrapping_year_end():
    scenes = [
        scene(d(2019, 10, 30)),  # outside
        scene(d(2019, 11, 4)),
        scene(d(2019, 12, 9)),
        scene(d(2020, 1, 3)),  # season 2019
        scene(d(2020, 2, 7)),  # season 2019
        scene(d(2020, 3, 1)),  # outside
        scene(d(2020, 11, 8)),  # season 2020
        scene(d(2021, 1, 12)),  # season 2020
        scene(d(2021, 11, 2)),  # season 2021: not wanted
    ]
    chosen = select_monthly(scenes, years=[2019, 2020], months=season_months(11, 2))
    assert [s.datetime.date().isoformat() for s in chosen] == [
        "2019-11-04",
        "2019-12-09",
        "2020-01-03",
        "2020-02-07",
        "2020-11-08",
        "2021-01-12",
    ]
    # January 2020 belongs to season year 2019 only.
    assert [s.datetime.date().isoformat() for s in select_monthly(scenes, [2020], season_months(11, 2))] == [
        "2020-11-08",
        "2021-01-12",
    ]


# --- Pairs ----------------------------------------------------------------------------------


def monthly(n: int) -> list[Scene]:
    return [scene(d(2020, 1, 1) + timedelta(days=30 * k)) for k in range(n)]


def ids(pairs: list[Pair]) -> list[tuple[int, int]]:
    dates = sorted({p.reference.datetime for p in pairs} | {p.secondary.datetime for p in pairs})
    return [(dates.index(p.reference.datetime), dates.index(p.secondary.datetime)) for p in pairs]


def test_make_pairs_exact_lists_with_tail_pairs():
    scenes = monthly(4)
    assert ids(make_pairs(scenes, 1)) == [(0, 1), (1, 2), (2, 3)]
    assert ids(make_pairs(scenes, 2)) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert ids(make_pairs(scenes, 3)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert ids(make_pairs(scenes, 10)) == ids(make_pairs(scenes, 3))


def test_make_pairs_sorts_input_and_drops_duplicates():
    scenes = monthly(3)
    shuffled = [scenes[2], scenes[0], scenes[1], scenes[0]]
    assert make_pairs(shuffled, 2) == make_pairs(scenes, 2)


def test_baseline_filter_is_inclusive_and_exact():
    scenes = monthly(4)  # 30-day spacing
    pairs = make_pairs(scenes, 3, min_baseline_days=30.0, max_baseline_days=60.0)
    assert [round(p.dt_days, 6) for p in pairs] == [30, 60, 30, 60, 30]
    assert [p.dt_days for p in make_pairs(scenes, 3, min_baseline_days=61)] == [90.0]
    assert make_pairs(scenes, 3, max_baseline_days=29.99) == []


def test_pair_dt_days_fractional_and_id():
    p = Pair(scene(d(2020, 6, 1, 5, 0)), scene(d(2020, 7, 21, 17, 0)))
    assert p.dt_days == pytest.approx(50.5, abs=1e-12)
    assert p.id == "43SEA_20200601_20200721"
    same_day = Pair(scene(d(2020, 6, 1, 5, 0), suffix="0"), scene(d(2020, 6, 1, 6, 0), suffix="1"))
    assert same_day.id == "43SEA_20200601T050000_20200601T060000"


def test_pair_id_is_filesystem_safe_for_odd_tiles():
    p = Pair(scene(d(2020, 6, 1), tile="../x/y"), scene(d(2020, 7, 1), tile="../x/y"))
    assert p.id == "x-y_20200601_20200701"


def test_pair_rejects_same_scene_and_reversed_order():
    a, b = scene(d(2020, 6, 1)), scene(d(2020, 7, 1))
    with pytest.raises(InputError, match="same scene"):
        Pair(a, a)
    with pytest.raises(InputError, match="not later"):
        Pair(b, a)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"pairs_per_image": 0}, "pairs_per_image"),
        ({"pairs_per_image": -2}, "pairs_per_image"),
        ({"pairs_per_image": 1.5}, "pairs_per_image"),
        ({"pairs_per_image": 1, "min_baseline_days": 0}, "min_baseline_days"),
        ({"pairs_per_image": 1, "max_baseline_days": -5}, "max_baseline_days"),
        ({"pairs_per_image": 1, "min_baseline_days": 50, "max_baseline_days": 20}, "min_baseline_days"),
    ],
)
def test_make_pairs_bad_parameters_name_the_parameter(kwargs, parameter):
    with pytest.raises(InvalidParameter) as info:
        make_pairs(monthly(3), **kwargs)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(parameter)


def test_pairs_json_round_trip(tmp_path):
    pairs = make_pairs(monthly(3), 2)
    path = write_pairs_json(pairs, tmp_path / "pairs.json", parameters={"pairs_per_image": 2})
    document = json.loads(path.read_text())
    assert document["count"] == 3 and document["parameters"] == {"pairs_per_image": 2}
    first = document["pairs"][0]
    assert first["id"] == "43SEA_20200101_20200131"
    assert first["dt_days"] == 30.0
    assert first["reference"]["href"] == "http://stac.test/items/20200101"
    assert first["reference"]["datetime"] == "2020-01-01T05:46:00Z"
    assert read_pairs_json(path) == pairs
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_pairs_json_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_pairs_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_pairs_json(bad)
    bad.write_text('{"items": []}')
    with pytest.raises(InputError, match="not a pair list"):
        read_pairs_json(bad)


def test_format_pair_table_lists_every_pair():
    pairs = make_pairs(monthly(3), 1)
    table = format_pair_table(pairs).splitlines()
    assert len(table) == 2 + len(pairs)
    assert "43SEA_20200101_20200131" in table[2] and table[2].rstrip().endswith("30.00")


# --- Properties ------------------------------------------------------------------------------

offsets_hours = st.lists(st.integers(min_value=0, max_value=24 * 400), min_size=0, max_size=25, unique=True)


@settings(max_examples=60, deadline=None)
@given(offsets=offsets_hours, n=st.integers(min_value=1, max_value=6))
def test_make_pairs_properties(offsets, n):
    scenes = [scene(d(2020, 1, 1) + timedelta(hours=h), suffix=str(h)) for h in offsets]
    pairs = make_pairs(scenes, n)
    count = len(scenes)
    assert len(pairs) == sum(min(n, count - 1 - i) for i in range(count))
    assert all(p.secondary.datetime > p.reference.datetime for p in pairs)
    keys = [(p.reference.id, p.secondary.id) for p in pairs]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(
        keys,
        key=lambda k: (
            next(s.datetime for s in scenes if s.id == k[0]),
            next(s.datetime for s in scenes if s.id == k[1]),
        ),
    )
    ordered = sorted(scenes, key=lambda s: s.datetime)
    if count >= 2:
        # Tail pairs: the second-to-last scene is always paired with the last one.
        assert (ordered[-2].id, ordered[-1].id) in keys
    # Every scene except the last is a reference of exactly min(n, later scenes) pairs.
    for i, s in enumerate(ordered):
        assert sum(1 for k in keys if k[0] == s.id) == min(n, count - 1 - i)


@settings(max_examples=40, deadline=None)
@given(
    offsets=offsets_hours,
    n=st.integers(min_value=1, max_value=4),
    lo=st.floats(min_value=0.5, max_value=200),
    span=st.floats(min_value=0, max_value=200),
)
def test_baseline_filter_properties(offsets, n, lo, span):
    scenes = [scene(d(2020, 1, 1) + timedelta(hours=h), suffix=str(h)) for h in offsets]
    hi = lo + span
    unfiltered = make_pairs(scenes, n)
    filtered = make_pairs(scenes, n, min_baseline_days=lo, max_baseline_days=hi)
    assert filtered == [p for p in unfiltered if lo <= p.dt_days <= hi]
    assert filter_baseline(unfiltered, lo, hi) == filtered
    assert all(math.isfinite(p.dt_days) for p in filtered)


@settings(max_examples=200, deadline=None)
@given(
    tile=st.text(min_size=0, max_size=40),
    ids=st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=2, unique=True),
    hours=st.integers(min_value=1, max_value=24 * 400),
)
def test_pair_names_are_safe_whatever_the_ids_and_tiles(tmp_path_factory, tile, ids, hours):
    """Any item id or tile text gives a product name that stays inside the output directory."""
    from glacier_velocity.products.naming import path_in, product_basename, product_paths, safe_name

    start = d(2020, 6, 1)
    reference = Scene(
        id=ids[0],
        datetime=start,
        self_href=None,
        band_href="/data/a.tif",
        classification_href=None,
        cloud_cover=1.0,
        tile=tile,
        epsg=32643,
        geometry={},
    )
    secondary = Scene(
        id=ids[1],
        datetime=start + timedelta(hours=hours),
        self_href=None,
        band_href="/data/b.tif",
        classification_href=None,
        cloud_cover=1.0,
        tile=tile,
        epsg=32643,
        geometry={},
    )
    pair = Pair(reference, secondary)
    basename = product_basename(pair)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", pair.id) and re.fullmatch(r"[A-Za-z0-9_.-]+", basename)
    assert ".." not in basename and not basename.startswith(".")
    assert safe_name(basename) == basename
    out = tmp_path_factory.getbasetemp() / "products"
    for path in product_paths(out, basename):
        assert path.parent == out and path == path_in(out, path.name)
    # The name comes from the dates, never from the ids.
    fmt = "%Y%m%dT%H%M%S" if start.date() == secondary.datetime.date() else "%Y%m%d"
    assert basename.endswith(f"_{start.strftime(fmt)}_{secondary.datetime.strftime(fmt)}")


@settings(max_examples=100, deadline=None)
@given(offsets=offsets_hours, n=st.integers(min_value=1, max_value=6), repeats=st.integers(min_value=1, max_value=3))
def test_make_pairs_never_pairs_a_scene_with_itself(offsets, n, repeats):
    scenes = [scene(d(2020, 1, 1) + timedelta(hours=h), suffix=str(h)) for h in offsets] * repeats
    pairs = make_pairs(scenes, n)
    assert all(p.reference.id != p.secondary.id for p in pairs)
    assert len(pairs) == len(make_pairs(scenes[: len(offsets)], n))
