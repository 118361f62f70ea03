"""One quantity, one name (the glossary of docs/design/0002-conventions.md): the old names stay gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Old name -> the glossary's name.
RETIRED = {
    r"\berror_v(x|y)?\b": "v_error, vx_error, vy_error",
    r"\bmedian_speed(_error|_m_per_yr)?\b": "median_v (per pixel or per pair), headline_median_v (over the headline region)",
    r"engine_params(\.get\(|=\{[^}]*)\W*max_velocity_m_per_yr": "VelocityProduct.max_velocity_m_per_yr",
    r"(?i)\bworkflow engine": "runner (the tracking engine is the engine)",
}
SOURCES = sorted(
    [*(ROOT / "src").rglob("*.py"), *(ROOT / "cwl").glob("*.cwl"), *(ROOT / "notebooks").glob("*.py")]
    + [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
)


@pytest.mark.parametrize("pattern", RETIRED)
def test_retired_names_are_not_used(pattern: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(pattern, line)
    ]
    assert not found, f"use {RETIRED[pattern]}: {found}"
