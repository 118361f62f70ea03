"""The number of pairs is bounded (issue 23, finding 11): ``max_pairs`` (default 2000) refuses,
before any pair is built, a discovery that would give more. 1000 scenes with pairs_per_image
1000 gave 499,500 pairs, a 1.15 GB pair list and 6.7 GB of memory, and exited 0."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doc_rows import assert_documented
from glacier_velocity.cli import main
from glacier_velocity.errors import InvalidParameter
from glacier_velocity.stac.discovery import DiscoveryParams
from glacier_velocity.stac.pairing import DEFAULT_MAX_PAIRS, check_pair_count, make_pairs
from glacier_velocity.stac.scene import Scene

SQUARE = {"type": "Polygon", "coordinates": [[[74.0, 35.0], [75.0, 35.0], [75.0, 36.0], [74.0, 36.0], [74.0, 35.0]]]}
START = datetime(2016, 1, 1, 5, 36, tzinfo=UTC)


def _scenes(hours: list[int]) -> list[Scene]:
    return [
        Scene(
            id=f"S2B_43SEA_{n:05d}_0_L2A",
            datetime=START + timedelta(hours=h),
            self_href=f"http://stac.test/items/{n}",
            band_href=f"s3://bucket/{n}/B08.tif",
            classification_href=None,
            cloud_cover=1.0,
            tile="43SEA",
            epsg=32643,
            geometry=SQUARE,
        )
        for n, h in enumerate(hours)
    ]


def test_the_default_is_one_name_everywhere():
    assert DiscoveryParams(aoi=(74.4, 35.4, 74.6, 35.6), start_year=2020, end_year=2020).max_pairs == 2000
    assert DEFAULT_MAX_PAIRS == 2000


def test_a_thousand_scenes_paired_with_a_thousand_are_refused_without_building_a_pair():
    scenes = _scenes([24 * 5 * n for n in range(1000)])
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(InvalidParameter) as caught:
        check_pair_count(scenes, 1000, DEFAULT_MAX_PAIRS)
    seconds = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 5 and peak < 10e6  # counted, not built: 499,500 pairs took 6.7 GB
    message = str(caught.value)
    assert message == (
        "max_pairs: 1000 scenes were selected and each is paired with the next 1000 (pairs_per_image): 499500 pairs, "
        "more than max_pairs = 2000; each pair is a tracking job - lower pairs_per_image, narrow the years or months, "
        "bound the baselines (max_baseline_days), or raise max_pairs if you mean it"
    )


def test_discover_refuses_too_many_pairs_with_a_clear_message_and_no_pair_list(stac_api, tmp_path, capsys):
    # The local API's summers 2020-2021 select 7 scenes: 11 pairs at pairs_per_image 2.
    argv = ["discover", "--stac-url", stac_api, "--aoi", "74.40,35.40,74.60,35.60", "--start-year", "2020"]
    argv += ["--end-year", "2021", "--start-month", "6", "--end-month", "9", "--max-cloud-cover", "20"]
    out = tmp_path / "pairs.json"
    assert main([*argv, "--max-pairs", "10", "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    prefix = "glacier-velocity discover: error: "
    assert message == prefix + (
        "--max-pairs: 7 scenes were selected and each is paired with the next 2 (pairs_per_image): 11 pairs, more "
        "than max_pairs = 10; each pair is a tracking job - lower pairs_per_image, narrow the years or months, bound "
        "the baselines (max_baseline_days), or raise max_pairs if you mean it"
    )
    assert_documented(message.removeprefix(prefix), "7", "2", "11", "10")
    assert not out.exists()
    assert main([*argv, "--max-pairs", "11", "--out", str(out)]) == 0
    assert out.exists()
    # The bound counts the pairs the baseline filter keeps: 5 of the 15 at pairs_per_image 3.
    bounded = ["--pairs-per-image", "3", "--min-baseline-days", "30", "--max-baseline-days", "100"]
    assert main([*argv, *bounded, "--max-pairs", "5", "--out", str(out)]) == 0
    assert main([*argv, *bounded, "--max-pairs", "4", "--out", str(out)]) == 2
    assert "15 pairs and more than that within the baseline bounds, more than max_pairs = 4" in capsys.readouterr().err


@settings(max_examples=150, deadline=None)
@given(
    hours=st.lists(st.integers(0, 24 * 400), min_size=0, max_size=20),
    n=st.integers(1, 6),
    max_pairs=st.integers(1, 40),
    bounds=st.tuples(st.none() | st.floats(0.5, 60), st.none() | st.floats(60, 400)),
)
def test_the_count_is_exactly_what_make_pairs_builds(hours, n, max_pairs, bounds):
    scenes = _scenes(hours)
    built = make_pairs(scenes, n, *bounds)
    if len(built) > max_pairs:
        with pytest.raises(InvalidParameter, match="^max_pairs: "):
            check_pair_count(scenes, n, max_pairs, *bounds)
    else:
        check_pair_count(scenes, n, max_pairs, *bounds)
