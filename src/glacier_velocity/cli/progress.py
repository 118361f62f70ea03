"""The console's progress view of a Workflow run: one line, pairs done/failed/total and time.

On a terminal the line is redrawn in place; elsewhere (a CI log, a file) a line is written
only when the counts change, so the output stays short. The runner's own log goes to a file
(``workflow.log`` in the run's directory), never to the console.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..workflow.progress import PairProgress


class ProgressView:
    """Show :class:`~glacier_velocity.workflow.progress.PairProgress` on ``stream`` (default stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self._shown: tuple[int | None, int, int, int] | None = None
        self._width = 0

    def __call__(self, progress: PairProgress) -> None:
        """Show the progress (called by the runner about twice a second)."""
        counts = (progress.total, progress.succeeded, progress.failed, progress.running)
        if self.redraw:
            text = progress.line()
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif counts != self._shown:
            self.stream.write(progress.line() + "\n")
        self._shown = counts
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line (the next output starts on a line of its own)."""
        if self.redraw and self._shown is not None:
            self.stream.write("\n")
            self.stream.flush()
