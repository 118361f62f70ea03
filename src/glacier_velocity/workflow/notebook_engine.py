"""The papermill engine the CWL tools run their notebooks with (``papermill --engine glacier_velocity``).

It is papermill's own nbclient engine with one change: the kernel is stopped at once when the
last cell has run, instead of papermill's graceful shutdown. Registered under the entry point
group ``papermill.engine`` (pyproject.toml), so papermill finds it by name.

Why: the graceful shutdown asks the kernel to exit and polls until it has, and the kernel then
runs its exit handlers (IPython's history, the atexit hooks of every module the pair imported).
On the demo pair that cost 0.34 s of papermill's wall time (2.58 s against 2.24 s, 8 runs of
each in turn) and as much CPU: a tenth of the whole per-pair overhead, for nothing a run
keeps. Stopping at once loses nothing either: nbclient has waited for each cell's outputs (the
kernel reports idle only after them), papermill has saved the notebook with them, and every file
a cell writes is closed (and renamed into place, :mod:`glacier_velocity.io.atomic`) before that
cell ends. A kernel that fails or is interrupted is handled as papermill handles it.

papermill imports this module while it imports itself (it loads every registered engine), so
the module imports nothing at import time: the class delegates to papermill's engine, imported
when a notebook runs. A subclass of papermill's engine would import papermill here, and
importing this module before papermill would then fail on the circular import.
"""

from __future__ import annotations

from typing import Any

#: The name the CWL tools pass to ``papermill --engine``, the entry point's in pyproject.toml.
ENGINE_NAME = "glacier_velocity"


class NotebookEngine:
    """papermill's nbclient engine, with the kernel stopped at once after the last cell.

    The three class methods papermill calls on an engine (``papermill.engines.PapermillEngines``).
    """

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, **kwargs: Any) -> Any:
        from papermill.engines import NBClientEngine

        # nbclient's NotebookClient.shutdown_kernel: "immediate" stops the kernel without the
        # shutdown request and its wait (see the module docstring for why that is safe).
        kwargs.setdefault("shutdown_kernel", "immediate")
        return NBClientEngine.execute_notebook(nb, kernel_name, **kwargs)

    @classmethod
    def nb_kernel_name(cls, nb: Any, name: str | None = None) -> str:
        from papermill.engines import NBClientEngine

        return str(NBClientEngine.nb_kernel_name(nb, name))

    @classmethod
    def nb_language(cls, nb: Any, language: str | None = None) -> str:
        from papermill.engines import NBClientEngine

        return str(NBClientEngine.nb_language(nb, language))
