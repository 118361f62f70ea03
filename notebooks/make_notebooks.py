"""Generate the papermill notebooks (``NN-name.ipynb``) from their sources (``NN-name.py``).

The ``.py`` files beside this script are the notebooks' source of truth: jupytext "percent"
scripts (``# %%`` starts a code cell, ``# %% [markdown]`` a text cell), plain Python that
ruff and mypy check like the package. The ``.ipynb`` files are generated from them and
committed, because CWL runs them with papermill; ``tests/test_notebooks.py`` fails when one is
out of date. After editing a source, regenerate with::

    make notebooks          # or: .venv/bin/python notebooks/make_notebooks.py

Each notebook has exactly one cell tagged ``parameters`` (papermill injects the run's values
after it), then library calls, displays and the scrapbook glue of its results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent

#: The notebook sources, in workflow order.
SOURCES = ("01-discovery.py", "02-correlation.py", "03-aggregation.py")

METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook of one jupytext source, without outputs and with stable cell ids."""
    notebook = jupytext.read(source, fmt="py:percent")
    # Only what a notebook needs: jupytext's own metadata would differ between its versions.
    notebook.metadata = nbformat.from_dict(METADATA)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    for index, cell in enumerate(notebook.cells):
        # Stable ids keep regenerated notebooks diff-free.
        cell["id"] = f"{source.stem}-{index:02d}"
        # Keep the tags (papermill's "parameters"); drop jupytext's layout hints.
        tags = cell.metadata.get("tags")
        cell["metadata"] = nbformat.from_dict({"tags": tags} if tags else {})
        if cell.cell_type == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
    nbformat.validate(notebook)
    return notebook


def render(source: Path) -> str:
    """The ``.ipynb`` text generated from ``source``, exactly as :func:`write` writes it."""
    return nbformat.writes(build(source)) + "\n"


def write(source: Path) -> Path:
    """Write the ``.ipynb`` beside ``source``; returns its path."""
    target = source.with_suffix(".ipynb")
    target.write_text(render(source), encoding="utf-8")
    return target


def stale() -> list[Path]:
    """The committed notebooks that differ from what their sources generate."""
    out = []
    for name in SOURCES:
        source = HERE / name
        target = source.with_suffix(".ipynb")
        if not target.is_file() or target.read_text(encoding="utf-8") != render(source):
            out.append(target)
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        outdated = stale()
        for path in outdated:
            print(
                f"{path.name} is out of date with {path.with_suffix('.py').name}; run make notebooks", file=sys.stderr
            )
        sys.exit(1 if outdated else 0)
    for name in SOURCES:
        print(write(HERE / name))
