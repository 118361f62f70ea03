"""``glacier-velocity discover`` end to end against the local STAC API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from glacier_velocity.cli import main
from glacier_velocity.demo.stacserver import free_port
from glacier_velocity.stac.pairing import read_pairs_json

AOI = ["74.40", "35.40", "74.60", "35.60"]


def test_help_lists_the_options():
    completed = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "discover", "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0
    for option in (
        "--stac-url",
        "--collection",
        "--aoi",
        "--start-year",
        "--end-year",
        "--start-month",
        "--end-month",
        "--max-cloud-cover",
        "--pairs-per-image",
        "--min-baseline-days",
        "--max-baseline-days",
        "--tile",
        "--aoi-cloud-cover",
        "--out",
    ):
        assert option in completed.stdout


def test_discover_writes_pairs_and_prints_tables(stac_api, tmp_path, capsys):
    out = tmp_path / "pairs.json"
    code = main(
        [
            "discover",
            "--stac-url",
            stac_api,
            "--aoi",
            ",".join(AOI),
            "--start-year",
            "2020",
            "--end-year",
            "2021",
            "--start-month",
            "6",
            "--end-month",
            "9",
            "--pairs-per-image",
            "2",
            "--max-cloud-cover",
            "20",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Tile 43SEA: 18 scene(s) found, 7 selected" in printed
    assert "11 pair(s), 2 per image" in printed
    assert "43SEA_20200603_20200713" in printed and "S2B_43SEA_20210722_0_L2A" in printed
    assert "tile: 16 -> 9 (removed 7)" in printed
    document = json.loads(out.read_text())
    assert document["count"] == 11
    assert document["parameters"]["aoi"] == "74.4,35.4,74.6,35.6"
    assert document["parameters"]["pairs_per_image"] == 2
    first = document["pairs"][0]
    assert first["id"] == "43SEA_20200603_20200713" and first["dt_days"] == 40.0
    assert first["reference"]["href"] == f"{stac_api}/collections/sentinel-2-l2a/items/S2A_43SEA_20200603_0_L2A"
    assert first["secondary"]["cloud_cover"] == 8.0 and first["secondary"]["tile"] == "43SEA"
    assert [p.id for p in read_pairs_json(out)][-1] == "43SEA_20210722_20210816"


def test_discover_with_aoi_file_and_wrapping_season(stac_api, tmp_path, capsys):
    aoi = tmp_path / "aoi.geojson"
    w, s, e, n = (float(v) for v in AOI)
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}))
    out = tmp_path / "winter.json"
    code = main(
        [
            "discover",
            "--stac-url",
            stac_api,
            "--aoi",
            str(aoi),
            "--start-year",
            "2020",
            "--end-year",
            "2020",
            "--start-month",
            "11",
            "--end-month",
            "2",
            "--max-cloud-cover",
            "20",
            "--pairs-per-image",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert [p.id for p in read_pairs_json(out)] == [
        "43SEA_20201104_20201209",
        "43SEA_20201209_20210108",
        "43SEA_20210108_20210222",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--aoi", "74.6,35.4,74.4,35.6"], "--aoi: west 74.6 is not less than east 74.4"),
        (["--aoi", "74.6 35.4 74.4"], "--aoi: must be 4 finite numbers W S E N"),
        (["--aoi", ",".join(AOI), "--start-month", "13"], "--start-month: must be a month number 1-12"),
        (
            ["--aoi", ",".join(AOI), "--max-cloud-cover", "120"],
            "--max-cloud-cover: must be a percentage between 0 and 100",
        ),
        (["--aoi", ",".join(AOI), "--pairs-per-image", "0"], "--pairs-per-image: must be an integer >= 1"),
        (["--aoi", ",".join(AOI), "--end-year", "2019"], "--start-year: 2020 is after the end year 2019"),
        (["--aoi", "does-not-exist.geojson"], "--aoi: no file 'does-not-exist.geojson': give W,S,E,N (four numbers"),
        (["--aoi", "74.4;35.4;74.6;35.6"], "--aoi: no file '74.4;35.4;74.6;35.6': give W,S,E,N (four numbers"),
    ],
)
def test_bad_parameters_exit_2_naming_the_parameter(tmp_path, capsys, args, message):
    out = tmp_path / "pairs.json"
    code = main(
        [
            "discover",
            "--stac-url",
            "http://127.0.0.1:9",
            "--start-year",
            "2020",
            "--end-year",
            "2020",
            *args,
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_empty_result_and_unreachable_url_exit_2(stac_api, tmp_path, capsys):
    out = tmp_path / "pairs.json"
    code = main(
        [
            "discover",
            "--stac-url",
            stac_api,
            "--aoi",
            ",".join(AOI),
            "--start-year",
            "2020",
            "--end-year",
            "2020",
            "--start-month",
            "7",
            "--end-month",
            "7",
            "--max-cloud-cover",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "after the cloud_cover filter: it removed all 4" in capsys.readouterr().err
    assert not out.exists()
    closed = f"http://127.0.0.1:{free_port()}"
    code = main(
        [
            "discover",
            "--stac-url",
            closed,
            "--aoi",
            ",".join(AOI),
            "--start-year",
            "2020",
            "--end-year",
            "2020",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert f"cannot reach the STAC API at {closed}" in capsys.readouterr().err
    assert not out.exists()
