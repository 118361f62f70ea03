"""Acquisition times: RFC 3339 text in UTC (STAC's form), read back as timezone-aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def format_datetime(value: datetime | None) -> str:
    """RFC 3339 text of a time in UTC with a ``Z`` (STAC's form); ``""`` for None.

    >>> format_datetime(datetime(2020, 7, 1, 5, 30, tzinfo=UTC))
    '2020-07-01T05:30:00Z'
    """
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any) -> datetime | None:
    """A datetime from RFC 3339 text (``Z`` or an offset) or a datetime, in UTC; None for None or ``""``.

    A time without a zone is taken as UTC (STAC datetimes are UTC by definition).

    >>> parse_datetime("2020-07-01T05:30:00Z")
    datetime.datetime(2020, 7, 1, 5, 30, tzinfo=datetime.timezone.utc)
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    else:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
