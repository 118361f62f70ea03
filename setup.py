"""Build hook: the wheel carries the Workflow, its notebooks and the job files.

Everything else is declared in pyproject.toml. ``glacier-velocity demo`` and ``glacier-velocity
run`` need ``cwl/`` (the Workflow, its tools and their JavaScript), the executed notebooks
(``notebooks/*.ipynb``) and ``params/*.yml``, which live at the repository root, beside
``src/``. This copies them into the built package as ``glacier_velocity/share/``, in the same
layout, so that an installed wheel runs from any directory
(``glacier_velocity.workflow.runner.find_project_root``). An editable install runs them from
the checkout instead. The sdist carries them too (MANIFEST.in).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Folder of the repository -> the files of it the package needs at run time.
WORKFLOW_FILES = {"cwl": ("*.cwl", "lib/*.js"), "notebooks": ("*.ipynb",), "params": ("*.yml",)}
#: Where they go inside the package.
SHARE = Path("glacier_velocity", "share")


class BuildPyWithWorkflow(build_py):
    """``build_py``, then the Workflow files into ``<build_lib>/glacier_velocity/share``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the checkout's own files are used
            return
        copied = 0
        for folder, patterns in WORKFLOW_FILES.items():
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    target = Path(self.build_lib, SHARE, source.relative_to(ROOT))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
                    copied += 1
        if not (ROOT / "cwl" / "glacier-velocity.cwl").is_file() or copied == 0:
            raise SystemExit(
                "build: cwl/glacier-velocity.cwl not found beside setup.py; build from the repository or its sdist"
            )


setup(cmdclass={"build_py": BuildPyWithWorkflow})
