"""Firm day boundaries across daylight-saving changes (CHALLENGES.md §3.3, §7.1).

Expected instants are computed independently with datetime + zoneinfo in the test kit.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_trader.challenges.days import DayClock, iso_utc, ns_to_datetime
from tests.challenges.kit import HOUR_NS, local_ns, utc_ns

PRAGUE = DayClock("Europe/Prague", dt.time(0, 0))
NEW_YORK_17 = DayClock("America/New_York", dt.time(17, 0))


def test_prague_day_of_29_march_2026_lasts_23_hours() -> None:
    """FTMO resets at 00:00 Europe/Prague [S2]; the day of Sun 29 Mar 2026 lasts 23 h (§3.3)."""
    start = local_ns("Europe/Prague", 2026, 3, 29)
    end = local_ns("Europe/Prague", 2026, 3, 30)
    assert start == utc_ns(2026, 3, 28, 23) and end == utc_ns(2026, 3, 29, 22)
    noon = local_ns("Europe/Prague", 2026, 3, 29, 12)
    assert PRAGUE.day_of(noon) == dt.date(2026, 3, 29)
    assert PRAGUE.start_of(dt.date(2026, 3, 29)) == start
    assert PRAGUE.boundary_after(noon) == end
    assert end - start == 23 * HOUR_NS


def test_prague_day_of_25_october_2026_lasts_25_hours() -> None:
    """§3.3: the FTMO day of Sun 25 Oct 2026 lasts 25 h."""
    start = local_ns("Europe/Prague", 2026, 10, 25)
    end = local_ns("Europe/Prague", 2026, 10, 26)
    assert PRAGUE.boundary_after(start) == end
    assert PRAGUE.boundary_after(start - 1) == start
    assert end - start == 25 * HOUR_NS
    assert PRAGUE.day_of(end - 1) == dt.date(2026, 10, 25)
    assert PRAGUE.day_of(end) == dt.date(2026, 10, 26)


def test_prague_midnight_reads_02_00_on_the_us_dst_server_clock_for_three_weeks() -> None:
    """§3.3 / [S15][S16]: MT server time is GMT+2/+3 on the US DST calendar (New York + 7 h), so the Prague
    reset shows 02:00 server time for the Prague dates 9–29 Mar 2026, and 01:00 otherwise."""

    def server_hour(day: dt.date) -> int:
        reset = ns_to_datetime(PRAGUE.start_of(day)).astimezone(ZoneInfo("America/New_York"))
        return (reset.replace(tzinfo=None) + dt.timedelta(hours=7)).hour

    assert server_hour(dt.date(2026, 3, 8)) == 1
    assert all(server_hour(dt.date(2026, 3, d)) == 2 for d in range(9, 30))
    assert server_hour(dt.date(2026, 3, 30)) == 1
    assert server_hour(dt.date(2026, 10, 26)) == 2 and server_hour(dt.date(2026, 11, 1)) == 2
    assert server_hour(dt.date(2026, 11, 2)) == 1


def test_new_york_17_00_reset_across_us_dst_start_on_8_march_2026() -> None:
    """17:00 America/New_York (The5ers "5PM EST" [S40]): 7 Mar 17:00 EST → 8 Mar 17:00 EDT is 23 h."""
    before = local_ns("America/New_York", 2026, 3, 7, 18)
    expected = local_ns("America/New_York", 2026, 3, 8, 17)
    assert expected == utc_ns(2026, 3, 8, 21)
    assert NEW_YORK_17.boundary_after(before) == expected
    assert expected - local_ns("America/New_York", 2026, 3, 7, 17) == 23 * HOUR_NS
    # a day starting at or after noon is labelled by the next date (the futures trade date)
    assert NEW_YORK_17.day_of(before) == dt.date(2026, 3, 8)
    assert NEW_YORK_17.day_of(local_ns("America/New_York", 2026, 3, 7, 17) - 1) == dt.date(2026, 3, 7)


def test_new_york_17_00_reset_across_us_dst_end_on_1_november_2026() -> None:
    """31 Oct 17:00 EDT → 1 Nov 17:00 EST is 25 h."""
    before = local_ns("America/New_York", 2026, 10, 31, 20)
    expected = local_ns("America/New_York", 2026, 11, 1, 17)
    assert expected == utc_ns(2026, 11, 1, 22)
    assert NEW_YORK_17.boundary_after(before) == expected
    assert iso_utc(expected) == "2026-11-01T22:00:00Z"
    assert expected - local_ns("America/New_York", 2026, 10, 31, 17) == 25 * HOUR_NS


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.integers(min_value=1_767_225_600, max_value=1_798_761_600),  # the year 2026
    zone=st.sampled_from(["Europe/Prague", "America/New_York", "America/Chicago", "UTC"]),
    reset=st.sampled_from([dt.time(0, 0), dt.time(17, 0), dt.time(18, 0), dt.time(2, 30), dt.time(1, 30)]),
)
def test_every_instant_lies_in_exactly_one_firm_day(seconds: int, zone: str, reset: dt.time) -> None:
    """Property: start_of(day_of(t)) ≤ t < boundary_after(t) = start_of(day_of(t) + 1), including 02:30 resets
    that fall in a DST gap and 01:30 ones that occur twice."""
    clock = DayClock(zone, reset)
    ts = seconds * 1_000_000_000
    day = clock.day_of(ts)
    assert clock.start_of(day) <= ts < clock.boundary_after(ts)
    assert clock.boundary_after(ts) == clock.start_of(day + dt.timedelta(days=1))
    assert clock.day_of(clock.boundary_after(ts)) == day + dt.timedelta(days=1)
