"""Where a run writes: a fresh directory per Workflow run, and demo directories the demo owns.

A Workflow run (``glacier-velocity run``, ``make run``) never writes into the directory of an
earlier one: :func:`new_run_directory` makes ``<base>/<UTC time>/`` and points
``<base>/latest`` at it, so a run's directory holds exactly that run's products, statuses,
catalog and log (re-running into one directory used to leave an earlier run's pairs beside a
new report of fewer pairs, issue 11 finding 7).

The demo re-uses its working directory (``build/demo``), but it only ever removes what it made
there: it marks a directory it creates with :data:`DEMO_MARKER`, which lists the files of its
last ``results/``. :func:`prepare_demo_directory` refuses a non-empty directory without the
marker and a ``results/`` holding files the marker does not list (issue 11 finding 11: it used
to delete ``results/`` wholesale, user files included).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InputError

#: Name of the link in a runs' base directory to the newest run.
LATEST = "latest"
#: Marker file of a directory the demo made; it lists the files of the demo's last results.
DEMO_MARKER = ".glacier-velocity-demo"
#: The demo's Workflow outputs, inside its working directory.
DEMO_RESULTS = "results"


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


def _files_under(directory: Path) -> list[str]:
    """Paths (relative, sorted, ``/``-separated) of the files and links under ``directory``."""
    if not directory.is_dir():
        return []
    return sorted(
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file() or path.is_symlink()
    )


def prepare_demo_directory(demo_dir: str | os.PathLike[str]) -> Path:
    """Make ``demo_dir`` ready for a demo run; return its ``results/`` (removed, to be re-made).

    A new or empty directory is made and marked (:data:`DEMO_MARKER`). A marked directory has
    its ``results/`` removed, but only when every file in it is one the last demo run wrote.

    Raises
    ------
    InputError
        ``demo_dir`` is not empty and the demo did not make it, or its ``results/`` holds files
        the demo did not write (they are listed); nothing is removed then.
    """
    demo_dir = Path(demo_dir)
    marker = demo_dir / DEMO_MARKER
    results = demo_dir / DEMO_RESULTS
    if demo_dir.exists() and not demo_dir.is_dir():
        raise InputError(f"--dir {demo_dir} is a file; give the demo a new or empty directory")
    if not marker.is_file():
        if demo_dir.is_dir() and any(demo_dir.iterdir()):
            raise InputError(
                f"--dir {demo_dir} is not empty and the demo did not make it (no {DEMO_MARKER} in it); "
                "the demo replaces its own files there, so give it a new or empty directory"
            )
        demo_dir.mkdir(parents=True, exist_ok=True)
        _write_marker(marker, [])
        return results
    try:
        made = set(json.loads(marker.read_text(encoding="utf-8"))["results"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{marker} is not the demo's marker ({exc}); remove {demo_dir} or give another --dir") from exc
    foreign = [name for name in _files_under(results) if name not in made]
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise InputError(
            f"{results} holds files the demo did not make: {shown}; "
            "the demo replaces results/ on every run, so move them elsewhere or give another --dir"
        )
    if results.is_symlink() or results.is_file():
        results.unlink()
    elif results.exists():
        shutil.rmtree(results)
    return results


def record_demo_results(demo_dir: str | os.PathLike[str]) -> None:
    """List the files now in ``demo_dir/results`` in its marker: what the next run may remove."""
    demo_dir = Path(demo_dir)
    _write_marker(demo_dir / DEMO_MARKER, _files_under(demo_dir / DEMO_RESULTS))


def _write_marker(marker: Path, results: list[str]) -> None:
    doc = {"made_by": "glacier-velocity demo", "results": results}
    marker.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
