"""UTC time in nanoseconds since the Unix epoch, the unit of every ``ts_*`` field."""

from __future__ import annotations

import time
from datetime import UTC, datetime

NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000
SECONDS_PER_DAY = 86_400
NS_PER_DAY = SECONDS_PER_DAY * NS_PER_SECOND
MAX_TIMESTAMP_NS = 2**63 - 1  # the latest ns timestamp an int64 column holds (2262-04-11 UTC)


def now_ns() -> int:
    """Current UTC wall-clock time, ns since the epoch."""
    return time.time_ns()


def ns_to_datetime(ts_ns: int) -> datetime:
    """Timezone-aware UTC datetime of ``ts_ns`` (ns since the epoch; sub-microsecond part dropped)."""
    return datetime.fromtimestamp(ts_ns // 1000 / 1_000_000, tz=UTC)


def datetime_to_ns(dt: datetime) -> int:
    """ns since the epoch of ``dt``; naive datetimes are taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def parse_utc(text: str) -> int:
    """ns since the epoch of an ISO 8601 date or date-time (``2021-01-08``, ``2021-01-08T00:00:05Z``).

    Raises:
        ValueError: the text is not an ISO 8601 date or date-time.
    """
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time (e.g. 2021-01-08T00:00:00Z)") from None
    return datetime_to_ns(dt)
