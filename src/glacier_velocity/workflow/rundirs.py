"""Where a run writes: a fresh directory per Workflow run.

A Workflow run (``glacier-velocity run``, ``make run``) never writes into the directory of an
earlier one: :func:`new_run_directory` makes ``<base>/<UTC time>/`` and points
``<base>/latest`` at it, so a run's directory holds exactly that run's products, statuses,
catalog and log (re-running into one directory used to leave an earlier run's pairs beside a
new report of fewer pairs, issue 11 finding 7).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InputError

#: Name of the link in a runs' base directory to the newest run.
LATEST = "latest"


def new_run_directory(base: str | os.PathLike[str], now: datetime | None = None) -> Path:
    """Make ``base/<UTC time>/`` (e.g. ``20261202T203112Z``) for one run; point ``base/latest`` at it.

    Two runs in the same second get ``...Z-2``, ``...Z-3``; nothing in ``base`` is removed.

    Raises
    ------
    InputError
        ``base`` is a file, or ``base/latest`` is something other than a link.
    """
    base = Path(base)
    if base.exists() and not base.is_dir():
        raise InputError(f"{base} is a file; runs are written into directories under a directory, give another one")
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        run = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            run.mkdir()
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - a thousand runs in one second
        raise InputError(f"cannot make a new run directory for {stamp} in {base}")
    latest = base / LATEST
    if latest.exists() and not latest.is_symlink():
        raise InputError(f"{latest} is not a link to a run; move it away so that it can point to the newest run")
    # A new link beside, then a rename over the old one: `latest` is never missing or half made.
    tmp = base / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    os.replace(tmp, latest)
    return run
