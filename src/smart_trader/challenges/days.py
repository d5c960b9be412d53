"""Firm trading days: day keys and boundary instants from an IANA zone and a local reset time.

CHALLENGES.md §7.1: day boundaries are computed from the firm's IANA zone, never a fixed offset, so a firm
day can last 23 h or 25 h across a daylight-saving change (FTMO Prague 29 Mar / 25 Oct 2026, §3.3).

Timestamps are ``int`` nanoseconds since the epoch, UTC.

Day labels: a day that starts before noon local time is labelled by the local date on which it starts
(FTMO 00:00 Prague: the day of 29 Mar 2026 is ``2026-03-29``); a day that starts at or after noon is
labelled by the next date, the one holding most of it (Topstep 17:00 CT Sunday → Monday's trading day,
the usual futures trade date). A reset time that falls in a DST gap is read with the pre-transition
offset (PEP 495 ``fold=0``); an ambiguous one takes its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

NS_PER_SECOND = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_DAY = dt.timedelta(days=1)
_NOON = dt.time(12, 0)


def ns_to_datetime(ts_ns: int) -> dt.datetime:
    """Aware UTC datetime of ``ts_ns`` (microsecond precision)."""
    return _EPOCH + dt.timedelta(microseconds=ts_ns // 1000)


def datetime_to_ns(moment: dt.datetime) -> int:
    """ns since the epoch of an aware datetime (raises ValueError on a naive one)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a time zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def iso_utc(ts_ns: int) -> str:
    """ISO 8601 UTC text of ``ts_ns``, e.g. ``2026-03-29T22:00:00Z``."""
    text = ns_to_datetime(ts_ns).isoformat()
    return text.replace("+00:00", "Z")


class DayClock:
    """Trading-day arithmetic for one zone and reset time.

    Args:
        tz: IANA zone name (``Europe/Prague``).
        reset_time: local wall-clock time at which a new firm day starts.
    """

    __slots__ = ("_late", "_reset", "_zone")

    def __init__(self, tz: str, reset_time: dt.time) -> None:
        self._zone = ZoneInfo(tz)
        self._reset = reset_time
        self._late = reset_time >= _NOON

    def _local_instant(self, day: dt.date, at: dt.time) -> int:
        return datetime_to_ns(dt.datetime.combine(day, at, tzinfo=self._zone))

    def start_of(self, day: dt.date) -> int:
        """The boundary instant (ns UTC) that opens firm day ``day``."""
        calendar_day = day - _ONE_DAY if self._late else day
        return self._local_instant(calendar_day, self._reset)

    def day_of(self, ts_ns: int) -> dt.date:
        """The firm day (its label) that contains instant ``ts_ns`` (ns UTC)."""
        local = ns_to_datetime(ts_ns).astimezone(self._zone).replace(tzinfo=None)
        shifted = local - dt.timedelta(hours=self._reset.hour, minutes=self._reset.minute)
        day = shifted.date() + _ONE_DAY if self._late else shifted.date()
        # wall-clock arithmetic can be an hour off around DST changes: settle on the true boundaries
        while ts_ns >= self.start_of(day + _ONE_DAY):
            day += _ONE_DAY
        while ts_ns < self.start_of(day):
            day -= _ONE_DAY
        return day

    def boundary_after(self, ts_ns: int) -> int:
        """The next reset instant strictly after ``ts_ns`` (ns UTC)."""
        return self.start_of(self.day_of(ts_ns) + _ONE_DAY)

    def next_local_time(self, ts_ns: int, at: dt.time) -> int:
        """The first instant strictly after ``ts_ns`` whose local wall-clock time is ``at`` (ns UTC)."""
        local_date = ns_to_datetime(ts_ns).astimezone(self._zone).date()
        for offset in range(3):
            candidate = self._local_instant(local_date + offset * _ONE_DAY, at)
            if candidate > ts_ns:
                return candidate
        raise AssertionError("unreachable: a wall-clock time recurs within two days")  # pragma: no cover

    def local_iso(self, ts_ns: int) -> str:
        """ISO 8601 text of ``ts_ns`` in the firm zone, with its offset."""
        return ns_to_datetime(ts_ns).astimezone(self._zone).isoformat()
