"""Where a run writes: a fresh directory per Workflow run.

A Workflow run (``glacier-velocity run``, ``make run``) never writes into the directory of an
earlier one: :func:`new_run_directory` makes ``<base>/<UTC time>/``, so a run's directory holds
exactly that run's products, statuses, catalog and log (re-running into one directory used to
leave an earlier run's pairs beside a new report of fewer pairs, issue 11 finding 7). Once the
run has completed, :func:`mark_complete` points ``<base>/latest`` at it: a run killed (SIGKILL,
a lost node) or failed part-way never becomes ``latest``, which stays at the newest complete run.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InputError

#: Name of the link in a runs' base directory to the newest run.
LATEST = "latest"


def new_run_directory(base: str | os.PathLike[str], now: datetime | None = None) -> Path:
    """Make ``base/<UTC time>/`` (e.g. ``20261202T203112Z``) for one run.

    Two runs in the same second get ``...Z-2``, ``...Z-3``; nothing in ``base`` is removed.
    ``base/latest`` is not touched (:func:`mark_complete` does it when the run has completed).

    Raises
    ------
    InputError
        ``base`` is a file, or ``base/latest`` is something other than a link (checked before
        the run, which could not point it at itself).
    """
    base = Path(base)
    if base.exists() and not base.is_dir():
        raise InputError(f"{base} is a file; runs are written into directories under a directory, give another one")
    base.mkdir(parents=True, exist_ok=True)
    _check_latest(base)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        run = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            run.mkdir()
        except FileExistsError:
            continue
        return run
    raise InputError(f"cannot make a new run directory for {stamp} in {base}")  # pragma: no cover - 1000 in 1 s


def mark_complete(run: str | os.PathLike[str]) -> bool:
    """Point ``<base>/latest`` at ``run``, a directory of :func:`new_run_directory` whose run completed.

    ``latest`` moves only forward: when it already points at a newer run (runs that ended out
    of order), it stays. The link is replaced by a rename, so it is never missing or half made.

    Returns
    -------
    bool
        Whether ``latest`` now points at ``run``.

    Raises
    ------
    InputError
        ``base/latest`` is something other than a link.
    """
    run = Path(run)
    base = run.parent
    latest = base / LATEST
    _check_latest(base)
    current = os.readlink(latest) if latest.is_symlink() else None
    if current is not None and (base / current).is_dir() and _order(current) > _order(run.name):
        return False
    tmp = base / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    os.replace(tmp, latest)
    return True


def _check_latest(base: Path) -> None:
    latest = base / LATEST
    if latest.exists() and not latest.is_symlink():
        raise InputError(f"{latest} is not a link to a run; move it away so that it can point to the newest run")


def _order(name: str) -> tuple[str, int]:
    """Sort key of a run directory's name: its time, then its number in that second."""
    match = re.fullmatch(r"(\d{8}T\d{6}Z)(?:-(\d+))?", Path(name).name)
    return (match.group(1), int(match.group(2) or 1)) if match else ("", 0)
