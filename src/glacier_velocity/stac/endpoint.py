"""The STAC API a run searches and fetches items from, by default."""

from __future__ import annotations

import re

from ..errors import InvalidParameter

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"


def check_stac_url(stac_url: object) -> str:
    """``stac_url`` when it is an http(s) URL (a STAC API root), else ``InvalidParameter``."""
    if not isinstance(stac_url, str) or not re.match(r"^https?://[^/\s]+", stac_url):
        raise InvalidParameter("stac_url", f"must be an http(s) URL of a STAC API root, got {stac_url!r}")
    return stac_url


__all__ = ["EARTH_SEARCH_URL", "check_stac_url"]
