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


@pytest.fixture
def loopback_allowed(monkeypatch):
    """The operator allows 127.0.0.1 (``GLACIER_VELOCITY_ALLOW_ADDRESSES``): a test server there
    stands for a public one, as in the retry and deadline tests."""
    from glacier_velocity.io.outbound import ALLOW_ENV

    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1")
