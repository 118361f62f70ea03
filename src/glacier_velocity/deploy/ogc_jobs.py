"""Jobs of the OGC API - Processes server: owner, state, the queue, cancellation.

A job belongs to the key that created it (:mod:`.ogc_access`): listing, status, results,
dismissal and its files answer only to that key; to any other, the job does not exist (the
same 404 as an unknown id). Its state goes ``accepted`` (queued) -> ``running`` (its process
started) -> ``successful`` or ``failed``; ``dismissed`` ends it at any point.

At most :attr:`JobLimits.max_running` jobs run at once, and at most
:attr:`JobLimits.max_running_per_key` of one key; others wait in submission order (a key at its
limit does not hold up the others). Dismissing a job stops its process group (SIGTERM, then
SIGKILL after :attr:`JobLimits.stop_grace_s`), removes its directory and forgets it.

Each job's state is kept in ``<workdir>/<id>/status.json`` (written atomically): a restarted
server lists the jobs it had, and marks those it was running or had queued as failed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import GlacierVelocityError
from ..io.atomic import write_text_atomic

log = logging.getLogger(__name__)

ACCEPTED, RUNNING, SUCCESSFUL, FAILED, DISMISSED = "accepted", "running", "successful", "failed", "dismissed"
_FINISHED = (SUCCESSFUL, FAILED, DISMISSED)
_STATUS_FILE = "status.json"


class NoSuchJob(GlacierVelocityError):
    """No job of this id for this key (whether another key has one is not told)."""


class JobFailed(GlacierVelocityError):
    """A job's run failed; the message is the one clear line a client gets."""


@dataclass(frozen=True)
class JobLimits:
    """What one key and the whole server may run at once.

    Attributes
    ----------
    max_running : int
        Jobs running at once on the server; more wait (``accepted``).
    max_running_per_key : int
        Jobs of one key running at once.
    stop_grace_s : float
        Seconds between SIGTERM and SIGKILL when a job is dismissed.
    """

    max_running: int = 2
    max_running_per_key: int = 1
    stop_grace_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_running < 1 or self.max_running_per_key < 1:
            raise ValueError("job limits must be >= 1")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class Job:
    """One execution of the process. Fields are read under the owning :class:`Jobs`' lock."""

    id: str
    owner: str
    process_id: str
    directory: Path
    request: dict[str, Any]
    created: datetime = field(default_factory=_now)
    status: str = ACCEPTED
    message: str = "queued until a slot to run is free"
    started: datetime | None = None
    finished: datetime | None = None
    updated: datetime = field(default_factory=_now)
    results: dict[str, Any] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished_state(self) -> bool:
        return self.status in _FINISHED

    def attach(self, process: subprocess.Popen[bytes]) -> None:
        """Record the job's process (started with ``start_new_session``: its group is its pid).

        A job dismissed while its process was starting has its process stopped here (the
        dismissal found none to stop)."""
        self.process = process
        if self.status == DISMISSED:
            stop_process_group(process, grace_s=0.0)

    def status_info(self, base_url: str) -> dict[str, Any]:
        """The OGC API - Processes statusInfo document of the job."""
        links = [{"href": f"{base_url}/jobs/{self.id}", "rel": "self", "type": "application/json", "title": "status"}]
        if self.status == SUCCESSFUL:
            links.append(
                {
                    "href": f"{base_url}/jobs/{self.id}/results",
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                    "type": "application/json",
                    "title": "results",
                }
            )
        return {
            "type": "process",
            "processID": self.process_id,
            "jobID": self.id,
            "status": self.status,
            "message": self.message,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "updated": _iso(self.updated),
            "links": links,
        }

    def _record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "process_id": self.process_id,
            "request": self.request,
            "created": _iso(self.created),
            "status": self.status,
            "message": self.message,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "updated": _iso(self.updated),
            "results": self.results,
        }

    @classmethod
    def _from_record(cls, directory: Path, data: dict[str, Any]) -> Job:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

        job = cls(
            id=data["id"],
            owner=data["owner"],
            process_id=data["process_id"],
            directory=directory,
            request=data.get("request") or {},
            created=when("created") or _now(),
            status=data["status"],
            message=data.get("message", ""),
            started=when("started"),
            finished=when("finished"),
            updated=when("updated") or _now(),
            results=data.get("results"),
        )
        if not job.finished_state:
            job.status, job.message = FAILED, "the server stopped before the job ended; run it again"
            job.finished = job.updated = _now()
        job.done.set()
        return job


#: What runs a job: given the job (whose ``directory`` exists and whose ``request`` holds the
#: execute request), returns the results document, or raises :class:`JobFailed`. It must call
#: ``job.attach(process)`` for the process it starts, so that dismissal can stop it.
Runner = Callable[[Job], dict[str, Any]]


class Jobs:
    """The server's jobs: submission, the queue, status, dismissal.

    Parameters
    ----------
    workdir : path
        Directory holding one directory per job.
    runner : Runner
        Runs one job.
    limits : JobLimits
        Concurrency limits.
    """

    def __init__(self, workdir: str | os.PathLike[str], runner: Runner, limits: JobLimits | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.limits = limits or JobLimits()
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._queue: list[Job] = []
        for status_file in sorted(self.workdir.glob(f"*/{_STATUS_FILE}")):
            try:
                job = Job._from_record(status_file.parent, json.loads(status_file.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("job record %s skipped: %s", status_file, exc)
                continue
            self._jobs[job.id] = job
            self._save(job)

    # --- queries -------------------------------------------------------------------------------

    def get(self, owner: str, job_id: str) -> Job:
        """The job ``job_id`` of ``owner``.

        Raises
        ------
        NoSuchJob
            There is none, or it is another key's.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.owner != owner:
                raise NoSuchJob(f"no job {job_id!r}")
            return job

    def list(self, owner: str) -> list[Job]:
        """The jobs of ``owner``, newest first."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: j.created, reverse=True)

    # --- changes -------------------------------------------------------------------------------

    def submit(self, owner: str, process_id: str, request: dict[str, Any], prepare: Callable[[Path], None]) -> Job:
        """Create a job, let ``prepare`` write its files into its directory, and queue it.

        An error of ``prepare`` leaves no job and no directory behind."""
        job_id = str(uuid.uuid4())
        directory = self.workdir / job_id
        directory.mkdir(mode=0o700)
        job = Job(id=job_id, owner=owner, process_id=process_id, directory=directory, request=request)
        try:
            prepare(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job_id] = job
            self._queue.append(job)
            self._save(job)
            self._dispatch()
        return job

    def dismiss(self, owner: str, job_id: str) -> Job:
        """Stop the job if it runs, remove its files and forget it.

        Raises
        ------
        NoSuchJob
            There is none, or it is another key's.
        """
        with self._lock:
            job = self.get(owner, job_id)
            if job in self._queue:
                self._queue.remove(job)
            process = job.process
            was_running = job.status == RUNNING
            self._set(job, DISMISSED, "dismissed by its owner")
            del self._jobs[job.id]
        if process is not None and was_running:
            stop_process_group(process, self.limits.stop_grace_s)
        job.done.set()
        shutil.rmtree(job.directory, ignore_errors=True)
        log.info("job %s of %s dismissed (%s)", job.id, owner, "stopped" if was_running else "not running")
        with self._lock:
            self._dispatch()
        return job

    # --- running -------------------------------------------------------------------------------

    def _running(self, owner: str | None = None) -> int:
        return sum(1 for j in self._jobs.values() if j.status == RUNNING and (owner is None or j.owner == owner))

    def _dispatch(self) -> None:
        """Start queued jobs while the limits allow, in submission order. Under the lock."""
        for job in list(self._queue):
            if self._running() >= self.limits.max_running:
                return
            if self._running(job.owner) >= self.limits.max_running_per_key:
                continue
            self._queue.remove(job)
            job.started = _now()
            self._set(job, RUNNING, "running the workflow")
            threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True).start()

    def _run(self, job: Job) -> None:
        try:
            results = self.runner(job)
        except JobFailed as exc:
            outcome: tuple[str, str, dict[str, Any] | None] = (FAILED, str(exc), None)
        except Exception:  # noqa: BLE001 - a bug must fail the job, not the server; its trace goes to the log
            log.exception("job %s: the runner failed", job.id)
            outcome = (FAILED, "the server failed to run the job; its operator has the details in the server log", None)
        else:
            outcome = (SUCCESSFUL, "the workflow finished", results)
        with self._lock:
            dismissed = job.status == DISMISSED
            if not dismissed:
                job.results = outcome[2]
                job.finished = _now()
                self._set(job, outcome[0], outcome[1])
            job.process = None
            self._dispatch()
        if dismissed:  # whatever the run wrote while it was being stopped
            shutil.rmtree(job.directory, ignore_errors=True)
        job.done.set()

    def _set(self, job: Job, status: str, message: str) -> None:
        job.status, job.message, job.updated = status, message, _now()
        if status != DISMISSED:
            self._save(job)

    def _save(self, job: Job) -> None:
        if job.directory.is_dir():
            write_text_atomic(job.directory / _STATUS_FILE, json.dumps(job._record(), indent=2) + "\n")


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Stop a job's process and everything it started: SIGTERM (cwltool stops its steps and
    containers), then SIGKILL after ``grace_s`` seconds.

    The job runs in a process group of its own; a Jupyter kernel starts a session of its own,
    so the processes descending from the job (read from ``/proc`` first, while they still
    have their parents) are signalled as well, each only if it is still the same process.
    """
    tree = _descendants(process.pid)
    _signal(process.pid, tree, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal(process.pid, tree, signal.SIGKILL)  # what is left, and a process deaf to SIGTERM
    process.wait()


def _start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time): with the pid, names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (Linux ``/proc``): pid -> start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        start = _start_time(pid)
        if start is not None:
            found[pid] = start
            pending += children.get(pid, [])
    return found


def _signal(group: int, tree: dict[int, str], signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass
    for pid, start in tree.items():
        if _start_time(pid) == start:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


__all__ = [
    "ACCEPTED",
    "DISMISSED",
    "FAILED",
    "RUNNING",
    "SUCCESSFUL",
    "Job",
    "JobFailed",
    "JobLimits",
    "Jobs",
    "NoSuchJob",
    "Runner",
    "stop_process_group",
]
