"""The package's public surface: lazy exports and the console script."""

import ast
import subprocess
import sys
from pathlib import Path

import glacier_velocity


def test_every_public_name_resolves():
    for name in glacier_velocity.__all__:
        assert getattr(glacier_velocity, name) is not None


def test_type_checkers_see_every_public_name_from_the_module_that_exports_it():
    # The TYPE_CHECKING imports of __init__.py are what mypy sees: the lazy table, name by name.
    tree = ast.parse(Path(glacier_velocity.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == glacier_velocity._EXPORTS


def test_import_is_cheap_and_side_effect_free():
    code = "import sys, glacier_velocity; print('rasterio' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_console_script_lists_every_stage():
    out = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("discover", "correlate", "track", "aggregate"):
        assert command in out.stdout
