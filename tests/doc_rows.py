"""Check that a real error message is quoted in docs/reliability.md (issue 11's table)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def assert_documented(message: str, *variable: str) -> None:
    """Assert ``message``, with each of ``variable`` replaced by ``<...>``, is in the doc's table.

    The doc writes run-specific parts (paths, URLs, ids, numbers) as ``<name>``; any ``<name>``
    in the doc matches the corresponding variable text of the real message.
    """
    text = DOC.read_text(encoding="utf-8")
    quoted = re.findall(r"`([^`]*)`", text)
    pattern = message
    for part in sorted(variable, key=len, reverse=True):
        pattern = pattern.replace(part, "\0")
    regex = "^" + re.escape(pattern).replace("\\\0", "\0").replace("\0", "<[^>]+>") + "$"
    assert any(re.match(regex, q) for q in quoted), f"docs/reliability.md does not quote the message: {message}"
