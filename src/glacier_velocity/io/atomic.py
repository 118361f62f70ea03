"""Outputs that are never half-written: write to a temporary name, then rename into place.

One file is replaced by one :func:`os.replace` (:func:`atomic_output`). A set of files that
belong together - a pair's velocity COG, quicklook, item and status - is replaced as one unit
by :func:`replace_together`: the new set is written completely into a hidden staging
directory beside it, synced, and only then renamed over the old set, under a lock that makes a
second writer of the same set wait. A failure before the swap leaves the old set untouched; a
kill during the swap (microseconds, with SIGTERM held off) is finished by the next writer from
the journal it leaves - only a journal this tool wrote, naming renames inside the set's
directory: output directories may be shared, and a planted journal or lock link is refused
and left alone. SIGTERM - what cwltool, ``timeout`` and Kubernetes send - raises
:class:`SystemExit` (code 143) while a writer runs, so temporary files are removed on the way
out (:func:`sigterm_exits`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import stat
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
        # rename(2) does nothing when both names are hard links of one file: the data is in
        # place, and the temporary name is left to remove.
        tmp.unlink(missing_ok=True)
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
        Another process held the lock for longer than ``wait_s`` seconds, or the lock's name
        is a symbolic link or not a plain file (see :func:`_try_lock`; it is left alone).
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
                fd, holder = _try_lock(path, what)
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


def _try_lock(path: Path, what: str) -> tuple[int | None, str | None]:
    """One attempt at the lock of :func:`exclusive_lock`: (the locked descriptor, with this
    process's id written in it, None) or (None, the holder's id, or None when the file locked
    was removed meanwhile by its previous holder and is to be opened again).

    The lock file is opened without following a symbolic link (``O_NOFOLLOW``: a link planted
    at its name is never opened, nor is a file created through it) and must be a regular file
    with one link: the holder truncates it and writes its pid there, which through a planted
    link would overwrite the file it points to.

    Raises
    ------
    OutputError
        The lock's name is a symbolic link, not a regular file, or a hard link to another
        file; it is left alone.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise _foreign_lock(path, what, f"a symbolic link to {os.readlink(path)!r}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "not a regular file" if not stat.S_ISREG(info.st_mode) else f"a file with {info.st_nlink} hard links"
        raise _foreign_lock(path, what, kind)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        return None, holder
    try:
        same = info.st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)  # the previous holder removed the file we locked: lock the new one
        return None, None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, None


def _foreign_lock(path: Path, what: str, kind: str) -> OutputError:
    return OutputError(
        f"the lock file {str(path)!r} of {what} is {kind}, which this tool never makes; it was left alone and "
        "nothing was written - remove it (and check who put it there), then run again"
    )


def _sync_tree(path: Path) -> None:
    """fsync a staged file, or every file and directory of a staged directory."""
    if not path.is_dir():
        _fsync(path)
        return
    for directory, _, names in os.walk(path):
        for name in names:
            _fsync(Path(directory) / name)
        _fsync(Path(directory))


#: Prefix of the name an old directory of a set takes inside the staging directory when a
#: new one replaces it (removed with the staging directory).
_REPLACED = ".replaced."


def _move_into_place(staged: Path, target: Path) -> None:
    """Rename ``staged`` onto ``target``. A file replaces the old one in one rename; a
    directory (which cannot be renamed over a non-empty one) first moves the old directory
    into the staging directory, which is removed afterwards. A kill between the two renames
    leaves the target missing, not mixed, and the journal finishes it."""
    if staged.is_dir() and not staged.is_symlink():
        if target.is_dir() and not target.is_symlink():
            os.rename(target, staged.parent / f"{_REPLACED}{target.name}")
        os.rename(staged, target)
    else:
        os.replace(staged, target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Who writes swap journals; a journal without it is not this tool's.
_JOURNAL_WRITER = "glacier-velocity"
_MAX_JOURNAL_BYTES = 64 * 1024


def _staging_name(key: str) -> re.Pattern[str]:
    """Names of the staging directories :func:`replace_together` makes for ``key``."""
    return re.compile(rf"\.{re.escape(key)}\.[0-9a-f]{{32}}\.staging")


def _journal_text(root: Path, key: str, renames: Sequence[tuple[Path, Path]]) -> str:
    """The swap journal: the renames still to make, relative to ``root``."""
    return json.dumps(
        {
            "written_by": _JOURNAL_WRITER,
            "key": key,
            "renames": [[str(s.relative_to(root)), str(t.relative_to(root))] for s, t in renames],
        }
    )


def _own(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid()


def _journal_renames(root: Path, key: str, journal: Path) -> list[tuple[Path, Path]]:
    """The renames a swap journal lists, each checked to be one :func:`replace_together` makes.

    A journal is this tool's when it is a plain file of this user, names this set, and lists
    only renames of a file of this user from one of the set's staging directories
    (``.<key>.<32 hex>.staging/<name>``) onto a file of the same name in a real directory
    under ``root``: nothing else can be moved by it.

    Raises
    ------
    OutputError
        Anything else; the message says what, and nothing was renamed.
    """

    def refuse(reason: str) -> OutputError:
        return OutputError(
            f"the product set {key!r} in {str(root)!r} has a swap journal {journal.name!r} that this tool did not "
            f"write ({reason}); it was left alone and nothing was renamed - remove it (and check who put it there), "
            "then run again"
        )

    info = journal.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise refuse("not a regular file")
    if not _own(info):
        raise refuse(f"it belongs to user id {info.st_uid}")
    if info.st_size > _MAX_JOURNAL_BYTES:
        raise refuse(f"{info.st_size} bytes")
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise refuse("not JSON") from None
    if not isinstance(data, dict) or data.get("written_by") != _JOURNAL_WRITER or data.get("key") != key:
        raise refuse(f"not a journal of the set {key!r}")
    entries = data.get("renames")
    if not isinstance(entries, list) or not entries:
        raise refuse("no renames listed")
    staging_name = _staging_name(key)
    renames: list[tuple[Path, Path]] = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(p, str) for p in entry)):
            raise refuse(f"{str(entry)[:80]!r} is not a rename")
        staged, target = (Path(p) for p in entry)
        parts = target.parts
        if (
            len(staged.parts) != 2
            or not staging_name.fullmatch(staged.parts[0])
            or staged.name != target.name
            or target.is_absolute()
            or not parts
            or any(part in ("", ".", "..") for part in parts)
            or "\\" in entry[1]
        ):
            raise refuse(f"{entry[0]!r} -> {entry[1]!r} is not a rename from the set's staging directory")
        renames.append((root / staged, root / target))
    if len({s.parent for s, _ in renames}) != 1:
        raise refuse("the renames come from more than one staging directory")
    staging = renames[0][0].parent
    try:
        staging_info = staging.lstat()
    except FileNotFoundError:
        staging_info = None
    if staging_info is not None and (not stat.S_ISDIR(staging_info.st_mode) or not _own(staging_info)):
        raise refuse(f"{staging.name!r} is not a staging directory of this user")
    for staged, target in renames:
        for parent in reversed(target.relative_to(root).parents[:-1]):
            where = root / parent
            if not where.is_dir() or where.is_symlink():
                raise refuse(f"{str(parent)!r} is not a real directory under {str(root)!r}")
        try:
            staged_info = staged.lstat()
        except FileNotFoundError:
            continue  # already renamed before the kill
        # A staged file (one link: not a hard link to a file elsewhere) or a staged directory.
        if stat.S_ISDIR(staged_info.st_mode):
            staged_ok = _own(staged_info)
        else:
            staged_ok = stat.S_ISREG(staged_info.st_mode) and _own(staged_info) and staged_info.st_nlink == 1
        if not staged_ok:
            raise refuse(f"{str(staged.relative_to(root))!r} is not a staged file or directory of this user")
    return renames


def _finish_interrupted(root: Path, key: str) -> None:
    """Finish a swap a killed writer of ``key`` left half done (its journal lists the renames
    still to make), then remove the staging directories of killed writers. Called under the
    set's lock, so no live writer owns them.

    The journal is checked first (:func:`_journal_renames`): a journal this tool did not
    write - planted in a directory others can write to - is refused and left alone, and so
    is anything at a staging directory's name that is not this user's directory.
    """
    journal = root / f".{key}.swap.json"
    if journal.is_symlink() or journal.exists():
        renames = _journal_renames(root, key, journal)
        for staged, target in renames:
            if staged.exists():
                _move_into_place(staged, target)
        log.warning("finished the interrupted replacement of %s (journal %s)", key, journal)
        journal.unlink()
    staging_name = _staging_name(key)
    for stale in root.glob(f".{key}.*.staging"):
        info = stale.lstat()
        if not staging_name.fullmatch(stale.name) or not stat.S_ISDIR(info.st_mode) or not _own(info):
            log.warning("left %s alone: it is not a staging directory this tool made", stale)
            continue
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
        must be on one file system. A target may be a directory (written whole into its
        staging path): it replaces the old directory whole, so nothing of the old one stays
        beside the new (the run's summary and catalog).
    key : str
        Name of the set (a safe file name, e.g. the product basename). The lock
        (``.<key>.lock``), the staging directory (``.<key>.<random>.staging``) and the journal
        of a swap in progress (``.<key>.swap.json``) are hidden files in the targets' common
        directory.

    Notes
    -----
    Every file is written into the staging directory and synced before the first rename;
    the renames run with SIGTERM and SIGINT held off. The journal lists them relative to the
    common directory, and a later writer follows it only after checking every entry
    (:func:`_journal_renames`). If the block raises (a full disk, a
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
            missing = [s.name for s in staged if not (s.is_file() or s.is_dir()) or s.is_symlink()]
            if missing:
                raise RuntimeError(f"the set {key!r} was not completely written: {missing} missing")
            for s in staged:
                _sync_tree(s)
            _fsync(staging)
            devices = {os.stat(p.parent).st_dev for p in paths} | {os.stat(staging).st_dev}
            if len(devices) > 1:
                raise OutputError(f"the files of {key!r} span file systems and cannot be replaced together: {paths}")
            journal = root / f".{key}.swap.json"
            with _held_signals():
                write_text_atomic(journal, _journal_text(root, key, list(zip(staged, paths, strict=True))))
                for s, p in zip(staged, paths, strict=True):
                    _move_into_place(s, p)
                for directory in {p.parent for p in paths}:
                    _fsync(directory)
                journal.unlink()
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def output_directory(directory: str | os.PathLike[str], *, create: bool = True) -> Path:
    """``directory``, created if missing (unless ``create`` is False), refusing a symbolic link.

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
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
