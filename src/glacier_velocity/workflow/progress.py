"""Follow a Workflow run from its runner's log: pairs done, failed and in all, as they finish.

cwltool writes one line per event of a job to its log (stderr), which :func:`run_workflow`
sends to a file. Three kinds of line tell how far the scatter over the pairs is:

- ``extract-pairs: 6 pair(s): ...`` (or ``extract-pairs: no pairs to correlate - ...``), from
  the pair-extraction step: the number of pairs in all;
- ``[job node_correlate_2] /tmp/abcd1234$ papermill \\``: a pair's job started in that output
  directory;
- ``[job node_correlate_2] completed success`` (or ``permanentFail``): it ended. A job that
  succeeded has written ``status_<pair_id>.json`` in its output directory, which says whether
  the pair succeeded or failed for a reason of its own (the tool still succeeds then, so that
  one bad pair does not stop a batch).

:class:`PairProgress` counts these; :class:`LogFollower` feeds it the lines of a growing log.
Toil's log has other lines: there only the elapsed time and, at the end, the run report's
counts are known.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GlacierVelocityError
from ..products.runreport import read_status

#: The scatter step's name in cwl/glacier-velocity.cwl; cwltool names its jobs after it
#: (``node_correlate``, ``node_correlate_2``, ...).
CORRELATE_STEP = "node_correlate"

# cwltool colours its level names on a terminal or not; the job part is the same either way.
_TOTAL = re.compile(r"^extract-pairs: (\d+) pair\(s\)")
_NO_PAIRS = re.compile(r"^extract-pairs: no pairs to correlate")
_STARTED = re.compile(rf"\[job ({CORRELATE_STEP}(?:_\d+)?)\] (/\S*)\$ ")
_ENDED = re.compile(rf"\[job ({CORRELATE_STEP}(?:_\d+)?)\] completed (\w+)")


@dataclass(frozen=True)
class PairProgress:
    """How far the pairs of a run are.

    Attributes
    ----------
    total : int or None
        Pairs to correlate; None until the pair-extraction step has said.
    succeeded, failed : int
        Pairs finished with products / without (a failed status or a failed job).
    running : int
        Pairs started and not yet finished.
    elapsed_s : float
        Seconds since the run started (s).
    """

    total: int | None = None
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    elapsed_s: float = 0.0

    @property
    def done(self) -> int:
        """Pairs finished, whatever their outcome."""
        return self.succeeded + self.failed

    def line(self) -> str:
        """One console line, e.g. ``pairs 3/6 done (1 failed, 2 running), 1:05 elapsed``."""
        minutes, seconds = divmod(int(self.elapsed_s), 60)
        elapsed = f"{minutes}:{seconds:02d} elapsed"
        if self.total is None:
            return f"finding pairs, {elapsed}"
        return f"pairs {self.done}/{self.total} done ({self.failed} failed, {self.running} running), {elapsed}"


@dataclass
class LogFollower:
    """Count the pairs of a cwltool run from its log lines (see the module's docstring).

    ``feed`` takes the log's text in pieces as it is written (a piece may end mid-line, e.g.
    from :func:`read_new_lines`' or any reader's); ``progress(elapsed_s)`` is the count so far.
    """

    total: int | None = None
    succeeded: int = 0
    failed: int = 0
    _outdirs: dict[str, Path] = field(default_factory=dict)
    _partial: str = ""

    def feed(self, text: str) -> None:
        """Read more of the log; only whole lines are read, the rest waits for the next piece."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.read_line(line)

    def read_line(self, line: str) -> None:
        """Count one log line."""
        if match := _TOTAL.match(line):
            self.total = int(match.group(1))
        elif _NO_PAIRS.match(line):
            self.total = 0
        elif match := _STARTED.search(line):
            self._outdirs[match.group(1)] = Path(match.group(2))
        elif match := _ENDED.search(line):
            outdir = self._outdirs.pop(match.group(1), None)
            if match.group(2) == "success" and outdir is not None and _pair_succeeded(outdir):
                self.succeeded += 1
            else:
                self.failed += 1

    def progress(self, elapsed_s: float) -> PairProgress:
        """The counts so far, ``elapsed_s`` (s) since the run started."""
        return PairProgress(
            total=self.total,
            succeeded=self.succeeded,
            failed=self.failed,
            running=len(self._outdirs),
            elapsed_s=elapsed_s,
        )


def _pair_succeeded(outdir: Path) -> bool:
    """Whether the pair whose job wrote into ``outdir`` succeeded (its ``status_*.json``)."""
    try:
        statuses = sorted(outdir.glob("status_*.json"))
        return len(statuses) == 1 and read_status(statuses[0]).succeeded
    except (OSError, ValueError, GlacierVelocityError):
        # No readable status: the pair did not succeed, whatever the job said.
        return False


def read_new_lines(path: str | os.PathLike[str], offset: int) -> tuple[str, int]:
    """The whole lines appended to the file at ``path`` since byte ``offset``, and the offset
    after them (a line still being written is left for the next call)."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return "", offset
    data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8", errors="replace"), offset + len(data)
