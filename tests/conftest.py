"""Shared fixtures: a real local STAC API (``rustac serve``) with the hand-made items, the
notebook runner; and what the markers of pyproject.toml mean.

- ``integration`` and ``containers`` tests are also ``slow``: what ``make test-fast`` leaves out;
- a ``deploy`` test is skipped, saying so, when the deploy extra is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.workflow.notebook_engine import ENGINE_NAME
from helpers import NotebookRunner

STAC_FIXTURES = Path(__file__).parent / "data" / "stac"
ROOT = Path(__file__).resolve().parents[1]
#: This environment's bin: papermill, and the python3 kernel the notebooks run in.
BIN = Path(sys.executable).parent
#: The modules of the deploy extra (pyproject.toml) the deploy tests use.
DEPLOY_MODULES = ("boto3", "pygeoapi", "cwl2ogc", "kubernetes_validate", "toil", "owslib")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("containers"):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("deploy"):
        missing = [name for name in DEPLOY_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            pytest.skip(f"needs the deploy extra ({', '.join(missing)} missing): make deploy-setup")


@pytest.fixture
def run_notebook() -> NotebookRunner:
    """Run a notebook with papermill as the CWL tools do: its parameters as YAML, the tools'
    papermill engine (``engine=None``: papermill's own), this environment's ``bin`` first on
    ``PATH``, in the output's directory. Returns the finished process (text output); the
    executed notebook is ``out``.
    """

    def run(
        notebook: str | os.PathLike[str],
        out: Path,
        parameters: Mapping[str, Any] | None = None,
        *,
        engine: str | None = ENGINE_NAME,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        source = Path(notebook) if Path(notebook).is_absolute() else ROOT / "notebooks" / notebook
        command = [str(BIN / "papermill"), str(source), str(out), "--kernel", "python3", "--no-progress-bar"]
        command += ["--engine", engine] if engine else []
        command += ["-y", json.dumps(dict(parameters or {}))]
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        return subprocess.run(command, cwd=out.parent, env=env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def stac_api() -> str:
    """Root URL of a local STAC API serving tests/data/stac (collection ``sentinel-2-l2a``)."""
    with serve_stac([STAC_FIXTURES / "collection.json", STAC_FIXTURES / "sentinel-2-l2a-items.json"]) as url:
        yield url


@pytest.fixture
def loopback_allowed(monkeypatch):
    """The operator allows 127.0.0.1 (``GLACIER_VELOCITY_ALLOW_ADDRESSES``): a test server there
    stands for a public one, as in the retry and deadline tests."""
    from glacier_velocity.io.outbound import ALLOW_ENV

    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1")
