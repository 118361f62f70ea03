"""The one version source is pyproject.toml; this reads it from the installed metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("glacier-velocity")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
