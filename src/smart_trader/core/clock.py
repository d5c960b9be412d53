"""UTC time in nanoseconds since the Unix epoch, the unit of every ``ts_*`` field, and the clocks trading code reads
(:class:`MarketClock` in backtests and replays, :class:`WallClock` live), with alerts for day resets, period ends and
expiries."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

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


AlertCallback = Callable[[int], None]


class Alert:
    """A pending alert of a :class:`Clock`: ``callback(ts_ns)`` runs once the clock reaches ``ts_ns`` (ns UTC),
    unless :meth:`cancel` was called first."""

    __slots__ = ("callback", "cancelled", "ts_ns")

    def __init__(self, ts_ns: int, callback: AlertCallback) -> None:
        self.ts_ns = ts_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it ran)."""
        self.cancelled = True


class Clock(Protocol):
    """The time trading code reads, and its alerts: market time in backtests and replays (:class:`MarketClock`),
    wall-clock time live (:class:`WallClock`). Trading code never calls ``time.time_ns()`` itself.
    Pattern: NautilusTrader's ``Clock`` / ``TestClock`` / ``LiveClock`` with ``set_time_alert_ns``."""

    def now_ns(self) -> int:
        """Current time, ns since the epoch, UTC."""
        ...

    def set_alert(self, ts_ns: int, callback: AlertCallback) -> Alert:
        """Run ``callback(ts_ns)`` when the clock reaches ``ts_ns`` (ns UTC); at once, on the next advance, when it
        already has."""
        ...


class MarketClock:
    """A clock advanced by market events (``ts_event``): backtests and replays. :meth:`advance_to` runs the alerts
    due up to the new time in time order (ties in the order they were set), each with its own scheduled time, before
    the clock shows the new time; time never goes backwards (an older event leaves it where it is).

    Args:
        start_ns: the initial time, ns since the epoch, UTC.
    """

    __slots__ = ("_alerts", "_next_due", "_now", "_seq")

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._alerts: list[tuple[int, int, Alert]] = []
        self._seq = 0
        self._next_due = MAX_TIMESTAMP_NS  # earliest alert time (a single comparison per event when none is due)

    def now_ns(self) -> int:
        """The latest market time seen, ns since the epoch, UTC."""
        return self._now

    def set_alert(self, ts_ns: int, callback: AlertCallback) -> Alert:
        """See :meth:`Clock.set_alert`."""
        alert = Alert(ts_ns, callback)
        self._seq += 1
        heapq.heappush(self._alerts, (ts_ns, self._seq, alert))
        if ts_ns < self._next_due:
            self._next_due = ts_ns
        return alert

    def advance_to(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns`` (ns UTC), running every alert due at or before it first (alerts an alert sets
        for times already reached run in the same call)."""
        if ts_ns >= self._next_due:
            self._fire(ts_ns)
        if ts_ns > self._now:
            self._now = ts_ns

    def _fire(self, ts_ns: int) -> None:
        alerts = self._alerts
        while alerts and alerts[0][0] <= ts_ns:
            due, _seq, alert = heapq.heappop(alerts)
            if due > self._now:
                self._now = due
            if not alert.cancelled:
                alert.callback(due)
        self._next_due = alerts[0][0] if alerts else MAX_TIMESTAMP_NS

    @property
    def next_alert_ns(self) -> int | None:
        """Time of the earliest pending alert (ns UTC), or ``None``."""
        return None if not self._alerts else self._next_due


class WallClock:
    """Wall-clock time for live trading: :meth:`now_ns` is ``time.time_ns()``; alerts run on the running asyncio
    loop at their wall-clock time (``loop.call_later``), each with its scheduled time.

    Raises:
        RuntimeError: :meth:`set_alert` called with no running asyncio loop.
    """

    def now_ns(self) -> int:
        """Current UTC wall-clock time, ns since the epoch."""
        return time.time_ns()

    def set_alert(self, ts_ns: int, callback: AlertCallback) -> Alert:
        """See :meth:`Clock.set_alert`."""
        alert = Alert(ts_ns, callback)
        loop = asyncio.get_running_loop()

        def run() -> None:
            if not alert.cancelled:
                alert.callback(ts_ns)

        loop.call_later(max(0.0, (ts_ns - time.time_ns()) / NS_PER_SECOND), run)
        return alert
