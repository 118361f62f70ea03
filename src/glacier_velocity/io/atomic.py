"""Outputs that are never half-written: write to a temporary name, then rename into place.

One file is replaced by one :func:`os.replace` (:func:`atomic_output`). A set of files that
belong together - a pair's velocity COG, quicklook, item and status - is replaced as one unit
by :func:`replace_together`: the new set is written completely into a hidden staging
directory beside it, synced, and only then renamed over the old set, under a lock that makes a
second writer of the same set wait. A failure before the swap leaves the old set untouched; a
kill during the swap (microseconds, with SIGTERM held off) is finished by the next writer from
the journal it leaves. SIGTERM - what cwltool, ``timeout`` and Kubernetes send - raises
:class:`SystemExit` (code 143) while a writer runs, so temporary files are removed on the way
out (:func:`sigterm_exits`).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ..errors import InputError, OutputError

log = logging.getLogger(__name__)

#: Exit code of a process ended by SIGTERM (128 + 15), as a shell reports it.
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
#: Longest wait (s) for another writer of the same set to finish; a set is written in seconds.
LOCK_WAIT_S = 600.0
_LOCK_POLL_S = 0.1
#: ``prctl`` option of the signal sent to a process when its parent ends (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is hidden (``.name.<random>.part``) and in the same directory, so the
    final :func:`os.replace` is atomic: a file at ``path`` is always complete, an interrupted
    write leaves nothing that looks like a result, and re-running replaces the old file. The
    name is made with :mod:`uuid` rather than :func:`tempfile.mkstemp`, whose 0600 mode would
    make outputs unreadable to other users (e.g. a container reading a CWL output).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_output`)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGTERM_EXIT_CODE)


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit(143)`` instead of ending the process
    at once, so that every ``except``/``finally`` on the way out removes its temporary files.

    Only in the main thread, and only over the default action (a handler someone else set,
    e.g. a server's, is kept); the previous handler is restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _parent_death_signal(signal.SIGTERM)
    try:
        yield
    finally:
        _parent_death_signal(0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _parent_death_signal(signum: int) -> None:
    """Ask Linux to send ``signum`` to this process when its parent ends (0: no longer).

    The correlation notebook runs in a Jupyter kernel under papermill: SIGTERM to papermill
    (cwltool, ``timeout``, Kubernetes) ends papermill at once, and its kernel then exits on
    its own without any cleanup, leaving the staging directory behind. With this, the
    kernel gets SIGTERM in turn and cleans up. A no-op where ``prctl`` does not exist.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) is not available", exc_info=True)


@contextmanager
def _held_signals() -> Iterator[None]:
    """SIGTERM and SIGINT held off (delivered after the block) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGTERM, signal.SIGINT}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def exclusive_lock(path: str | os.PathLike[str], what: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (``fcntl.flock``), waiting for another holder.

    The lock goes with the open file: the kernel releases it when its holder ends, even by
    SIGKILL, so a lock is never left stale. The holder's process id is written in the file
    for the message of a writer that waits, and the holder removes the file when it is done
    (a waiter that then holds a removed file's lock opens the path again).

    Raises
    ------
    OutputError
        Another process held the lock for longer than ``wait_s`` seconds.
    """
    path = Path(path)
    deadline = time.monotonic() + wait_s
    waited = False
    fd: int | None = None
    try:
        while True:
            # Signals held while the file is opened, locked and stamped: a SIGTERM there would
            # otherwise leave a lock file this process created (the finally below only removes
            # one it holds). They are delivered when the block ends, with ``fd`` set if locked.
            with _held_signals():
                fd, holder = _try_lock(path)
            if fd is not None:
                break
            if holder is None:
                continue  # the file it locked had just been removed: open the path again
            if time.monotonic() >= deadline:
                raise OutputError(
                    f"{what} is being written by another process (pid {holder}) for more than {wait_s:g} s; "
                    f"wait for it to finish, or write to another directory (lock {str(path)!r})"
                )
            if not waited:
                log.warning("%s is being written by another process (pid %s); waiting for it", what, holder)
                waited = True
            time.sleep(_LOCK_POLL_S)
        yield
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)
            os.close(fd)


def _try_lock(path: Path) -> tuple[int | None, str | None]:
    """One attempt at the lock of :func:`exclusive_lock`: (the locked descriptor, with this
    process's id written in it, None) or (None, the holder's id, or None when the file locked
    was removed meanwhile by its previous holder and is to be opened again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        return None, holder
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)  # the previous holder removed the file we locked: lock the new one
        return None, None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish_interrupted(root: Path, key: str) -> None:
    """Finish a swap a killed writer of ``key`` left half done (its journal lists the renames
    still to make), then remove the staging directories of killed writers. Called under the
    set's lock, so no live writer owns them."""
    journal = root / f".{key}.swap.json"
    if journal.is_file():
        renames = json.loads(journal.read_text(encoding="utf-8"))
        for staged, target in renames:
            if Path(staged).exists():
                os.replace(staged, target)
        log.warning("finished the interrupted replacement of %s (journal %s)", key, journal)
        journal.unlink()
    for stale in root.glob(f".{key}.*.staging"):
        shutil.rmtree(stale, ignore_errors=True)
        log.info("removed %s, left by an interrupted writer", stale)


@contextmanager
def replace_together(targets: Sequence[str | os.PathLike[str]], key: str) -> Iterator[list[Path]]:
    """Yield staging paths for ``targets``; when the block succeeds, they replace the targets as one set.

    Parameters
    ----------
    targets : sequence of path
        The files of the set, in the order they are renamed into place (a file that points at
        the others, like a STAC item, goes last). Their names must differ; their directories
        must be on one file system.
    key : str
        Name of the set (a safe file name, e.g. the product basename). The lock
        (``.<key>.lock``), the staging directory (``.<key>.<random>.staging``) and the journal
        of a swap in progress (``.<key>.swap.json``) are hidden files in the targets' common
        directory.

    Notes
    -----
    Every file is written into the staging directory and synced before the first rename;
    the renames run with SIGTERM and SIGINT held off. If the block raises (a full disk, a
    crash, SIGTERM via :func:`sigterm_exits`), the staging directory is removed and the old
    set - every target as it was - is untouched.
    """
    paths = [Path(t).absolute() for t in targets]
    if len({p.name for p in paths}) != len(paths):
        raise ValueError(f"the files of a set need distinct names: {[p.name for p in paths]}")
    root = Path(os.path.commonpath([p.parent for p in paths]))
    with sigterm_exits(), exclusive_lock(root / f".{key}.lock", f"the product set {key!r} in {str(root)!r}"):
        _finish_interrupted(root, key)
        staging = root / f".{key}.{uuid.uuid4().hex}.staging"
        try:
            # Made inside the try: a SIGTERM right after it is made still removes it.
            staging.mkdir()
            staged = [staging / p.name for p in paths]
            yield staged
            missing = [s.name for s in staged if not s.is_file()]
            if missing:
                raise RuntimeError(f"the set {key!r} was not completely written: {missing} missing")
            for s in (*staged, staging):
                _fsync(s)
            devices = {os.stat(p.parent).st_dev for p in paths} | {os.stat(staging).st_dev}
            if len(devices) > 1:
                raise OutputError(f"the files of {key!r} span file systems and cannot be replaced together: {paths}")
            journal = root / f".{key}.swap.json"
            with _held_signals():
                write_text_atomic(journal, json.dumps([[str(s), str(p)] for s, p in zip(staged, paths, strict=True)]))
                for s, p in zip(staged, paths, strict=True):
                    os.replace(s, p)
                for directory in {p.parent for p in paths}:
                    _fsync(directory)
                journal.unlink()
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def output_directory(directory: str | os.PathLike[str]) -> Path:
    """``directory``, created if missing, refusing a symbolic link.

    Products of a pair and the summary go into a directory of their own inside the run's
    output directory; were it a symbolic link (left by an earlier run, or planted), every file
    would land wherever it points, outside the output directory.

    Raises
    ------
    InputError
        ``directory`` is a symbolic link, or exists and is not a directory.
    """
    path = Path(directory)
    if path.is_symlink():
        raise InputError(
            f"output directory {str(path)!r} is a symbolic link (to {os.readlink(path)!r}); products are written only "
            "into real directories - remove the link or give the directory it points to"
        )
    if path.exists() and not path.is_dir():
        raise InputError(f"output directory {str(path)!r} exists and is not a directory; remove it or choose another")
    path.mkdir(parents=True, exist_ok=True)
    return path
