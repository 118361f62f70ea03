"""The package's public surface: lazy exports and the console script."""

import subprocess
import sys

import glacier_velocity


def test_every_public_name_resolves():
    for name in glacier_velocity.__all__:
        assert getattr(glacier_velocity, name) is not None


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
