"""An output directory others can write to cannot turn the writers of a product set against the
user's files (issue 22, findings 5 and 6): a planted swap journal moves nothing, a planted
lock symbolic link (or hard link) truncates nothing; both are refused and left alone. A
journal this tool wrote when it was killed is still finished by the next writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doc_rows import assert_documented
from glacier_velocity.errors import OutputError
from glacier_velocity.io.atomic import replace_together

KEY = "S2_43SEA_20200601_20200617"
NAMES = (f"{KEY}.tif", f"{KEY}_quicklook.png", f"{KEY}.json")
STAGING = f".{KEY}.{'ab' * 16}.staging"


@pytest.fixture
def shared(tmp_path):
    """A shared output directory with an earlier set of the pair, and a user's file beside it."""
    out = tmp_path / "out"
    out.mkdir()
    for name in NAMES:
        (out / name).write_text(f"earlier {name}")
    victim = tmp_path / "home" / "thesis.tex"
    victim.parent.mkdir()
    victim.write_text("a user's file")
    return out, victim


def _write_set(out: Path, text: str) -> None:
    with replace_together([out / n for n in NAMES], key=KEY) as staged:
        for path in staged:
            path.write_text(f"{text} {path.name}")


def _contents(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.is_file() and not p.is_symlink()}


def _refused_journal(out: Path, victim: Path, journal: object, reason: str) -> None:
    (out / f".{KEY}.swap.json").write_text(json.dumps(journal))
    before = _contents(out)
    with pytest.raises(OutputError) as caught:
        _write_set(out, "new")
    message = str(caught.value)
    assert message == (
        f"the product set {KEY!r} in {str(out)!r} has a swap journal '.{KEY}.swap.json' that this tool did not write "
        f"({reason}); it was left alone and nothing was renamed - remove it (and check who put it there), then run again"
    )
    assert_documented(message, repr(KEY), repr(str(out)), f"'.{KEY}.swap.json'", reason)
    assert _contents(out) == before  # the journal is still there, the earlier set untouched
    assert victim.read_text() == "a user's file"


def test_a_planted_journal_naming_paths_anywhere_moves_nothing(shared):
    out, victim = shared
    attacker = out / "attacker.txt"
    attacker.write_text("attacker's content")
    # The form of the journal before issue 22: absolute paths, any of them.
    _refused_journal(out, victim, [[str(attacker), str(victim)]], f"not a journal of the set {KEY!r}")
    assert attacker.read_text() == "attacker's content"


@pytest.mark.parametrize(
    "staged, target, reason",
    [
        (f"{STAGING}/thesis.tex", "../home/thesis.tex", "is not a rename from the set's staging directory"),
        (f"{STAGING}/thesis.tex", "/home/thesis.tex", "is not a rename from the set's staging directory"),
        ("attacker/x.tif", f"{KEY}.tif", "is not a rename from the set's staging directory"),
        (f".OTHER.{'ab' * 16}.staging/{KEY}.tif", f"{KEY}.tif", "is not a rename from the set's staging directory"),
        (f"{STAGING}/{KEY}.tif", f"linked/{KEY}.tif", "'linked' is not a real directory"),
    ],
)
def test_a_planted_journal_in_the_tools_form_moves_nothing_outside_its_rules(shared, staged, target, reason):
    out, victim = shared
    (out / "linked").symlink_to(victim.parent)
    (out / STAGING).mkdir()
    (out / STAGING / Path(staged).name).write_text("attacker's content")
    journal = {"written_by": "glacier-velocity", "key": KEY, "renames": [[staged, target]]}
    if reason.startswith("is not"):
        reason = f"{staged!r} -> {target!r} {reason}"
    else:
        reason = f"{reason} under {str(out)!r}"
    _refused_journal(out, victim, journal, reason)


def test_a_staged_file_that_is_a_link_to_a_users_file_is_not_moved(shared):
    out, victim = shared
    (out / STAGING).mkdir()
    (out / STAGING / f"{KEY}.tif").symlink_to(victim)
    journal = {"written_by": "glacier-velocity", "key": KEY, "renames": [[f"{STAGING}/{KEY}.tif", f"{KEY}.tif"]]}
    _refused_journal(out, victim, journal, f"'{STAGING}/{KEY}.tif' is not a staged file or directory of this user")
    assert (out / STAGING / f"{KEY}.tif").is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="making files of another user needs root")
def test_a_journal_and_files_of_another_user_move_nothing(shared):
    out, victim = shared
    (out / STAGING).mkdir()
    (out / STAGING / f"{KEY}.tif").write_text("attacker's content")
    journal = {"written_by": "glacier-velocity", "key": KEY, "renames": [[f"{STAGING}/{KEY}.tif", f"{KEY}.tif"]]}
    (out / f".{KEY}.swap.json").write_text(json.dumps(journal))
    for path in (out / f".{KEY}.swap.json", out / STAGING, out / STAGING / f"{KEY}.tif"):
        os.chown(path, 12345, 12345, follow_symlinks=False)
    before = _contents(out)
    with pytest.raises(OutputError, match=r"that this tool did not write \(it belongs to user id 12345\)"):
        _write_set(out, "new")
    assert _contents(out) == before
    # Staged files of this user but in another user's staging directory: refused too.
    os.chown(out / f".{KEY}.swap.json", os.geteuid(), os.getegid())
    with pytest.raises(OutputError, match=rf"'{STAGING}' is not a staging directory of this user"):
        _write_set(out, "new")
    assert (out / f"{KEY}.tif").read_text() == f"earlier {KEY}.tif"


def test_a_swap_this_tool_left_half_done_is_finished_by_the_next_writer(shared):
    """SIGKILL after the first rename of the swap (a subprocess ends itself there): the next
    writer finishes it from the journal, so the set is the killed writer's, whole."""
    out, _ = shared
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from glacier_velocity.io import atomic

        real = os.replace
        def replace_then_die(src, dst):
            real(src, dst)
            if str(dst).endswith(".tif"):
                os.kill(os.getpid(), 9)
        atomic.os.replace = replace_then_die
        out = Path({str(out)!r})
        with atomic.replace_together([out / n for n in {NAMES!r}], key={KEY!r}) as staged:
            for path in staged:
                path.write_text(f"killed {{path.name}}")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == -9, run.stderr
    assert (out / f".{KEY}.swap.json").is_file()
    assert (out / NAMES[0]).read_text() == f"killed {NAMES[0]}" and (out / NAMES[1]).read_text().startswith("earlier")

    class Fails(Exception):
        pass

    with pytest.raises(Fails), replace_together([out / n for n in NAMES], key=KEY):
        raise Fails  # the new set fails before its swap: what is left is the finished old swap
    assert _contents(out) == {n: f"killed {n}" for n in NAMES}
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # no journal, staging or lock left


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "hard link"])
def test_a_planted_lock_link_truncates_nothing(shared, kind):
    out, victim = shared
    lock = out / f".{KEY}.lock"
    if kind == "symlink":
        lock.symlink_to(victim)
        detail = f"a symbolic link to {str(victim)!r}"
    elif kind == "dangling symlink":
        lock.symlink_to(victim.with_name("created-through-the-link"))
        detail = f"a symbolic link to {str(victim.with_name('created-through-the-link'))!r}"
    else:
        os.link(victim, lock)
        detail = "a file with 2 hard links"
    before = _contents(out)
    with pytest.raises(OutputError) as caught:
        _write_set(out, "new")
    message = str(caught.value)
    what = f"the product set {KEY!r} in {str(out)!r}"
    assert message == (
        f"the lock file {str(lock)!r} of {what} is {detail}, which this tool never makes; it was left alone and "
        "nothing was written - remove it (and check who put it there), then run again"
    )
    assert_documented(message, repr(str(lock)), what, detail)
    assert victim.read_text() == "a user's file"
    assert not victim.with_name("created-through-the-link").exists()
    assert lock.is_symlink() or lock.stat().st_nlink == 2  # left alone
    assert _contents(out) == before
