"""Output locations are checked before any work (issue 11, finding 16): a directory where a
file is expected, a file where a directory is expected, exit 2 with a message, no traceback."""

from __future__ import annotations

import pytest

from doc_rows import assert_documented
from glacier_velocity.cli import main


def _run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_discover_out_naming_a_directory(tmp_path, capsys):
    # The check comes before the search: the (unreachable) STAC API is never asked.
    code, message = _run(
        capsys,
        "discover",
        "--stac-url",
        "http://127.0.0.1:9",
        "--aoi",
        "74.4,36.1,74.6,36.3",
        "--start-year",
        2020,
        "--end-year",
        2020,
        "--out",
        tmp_path,
    )
    assert code == 2
    body = message.split("error: ", 1)[1]
    assert body == (
        f"--out: {str(tmp_path)!r} is a directory; give a file name for --out, e.g. {str(tmp_path / 'pairs.json')!r}"
    )
    assert_documented(body, repr(str(tmp_path)), repr(str(tmp_path / "pairs.json")))


@pytest.mark.parametrize("command", ["correlate", "aggregate"])
def test_out_dir_naming_a_file(tmp_path, capsys, command):
    blocker = tmp_path / "results"
    blocker.write_text("not a directory")
    args = {
        "correlate": ["correlate", tmp_path / "a.json", tmp_path / "b.json"],
        "aggregate": ["aggregate", tmp_path / "p.tif"],
    }[command]
    code, message = _run(capsys, *args, "--out-dir", blocker / "run1")
    assert code == 2
    body = message.split("error: ", 1)[1]
    assert body == (
        f"--out-dir: {str(blocker)!r} is a file, not a directory (in --out-dir {str(blocker / 'run1')!r}); "
        "choose another --out-dir"
    )
    assert_documented(body, repr(str(blocker)), repr(str(blocker / "run1")))
    assert blocker.read_text() == "not a directory"


def test_track_out_naming_a_directory(tmp_path, capsys):
    code, message = _run(capsys, "track", tmp_path / "a.tif", tmp_path / "b.tif", "--dt-days", 10, "--out", tmp_path)
    assert code == 2 and message.endswith(
        f"is a directory; give a file name for --out, e.g. {str(tmp_path / 'velocity.tif')!r}"
    )
