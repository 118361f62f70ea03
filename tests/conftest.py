"""Shared fixtures: a real local STAC API (``rustac serve``) with the hand-made items."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacier_velocity.demo.stacserver import serve_stac

STAC_FIXTURES = Path(__file__).parent / "data" / "stac"


@pytest.fixture(scope="session")
def stac_api() -> str:
    """Root URL of a local STAC API serving tests/data/stac (collection ``sentinel-2-l2a``)."""
    with serve_stac([STAC_FIXTURES / "collection.json", STAC_FIXTURES / "sentinel-2-l2a-items.json"]) as url:
        yield url
