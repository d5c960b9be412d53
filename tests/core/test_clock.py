"""Clocks: the market clock's alerts (time order, own scheduled time, ties in set order, cancel, past alerts, alerts
set from inside a callback) and the wall clock's alerts on a running asyncio loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from smart_trader.core.clock import NS_PER_MS, Alert, MarketClock, WallClock

T0 = 1_700_000_000_000_000_000


class Log:
    """Records ``(name, ts given to the callback, clock time during the callback)``."""

    def __init__(self, clock: MarketClock) -> None:
        self.clock = clock
        self.seen: list[tuple[str, int, int]] = []

    def cb(self, name: str):  # type: ignore[no-untyped-def]
        def callback(ts: int) -> None:
            self.seen.append((name, ts, self.clock.now_ns()))

        return callback


def test_alerts_fire_in_time_order_with_their_own_time_and_ties_in_set_order() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    # set out of time order; b1 and b2 tie (b1 set first), as do d2 and d1 (d2 set first)
    clock.set_alert(T0 + 30, log.cb("c"))
    clock.set_alert(T0 + 20, log.cb("b1"))
    clock.set_alert(T0 + 50, log.cb("d2"))
    clock.set_alert(T0 + 10, log.cb("a"))
    clock.set_alert(T0 + 20, log.cb("b2"))
    clock.set_alert(T0 + 50, log.cb("d1"))
    clock.set_alert(T0 + 99, log.cb("later"))
    clock.advance_to(T0 + 60)
    # each callback gets its own scheduled time, and the clock shows that time while it runs
    assert log.seen == [
        ("a", T0 + 10, T0 + 10),
        ("b1", T0 + 20, T0 + 20),
        ("b2", T0 + 20, T0 + 20),
        ("c", T0 + 30, T0 + 30),
        ("d2", T0 + 50, T0 + 50),
        ("d1", T0 + 50, T0 + 50),
    ]
    assert clock.now_ns() == T0 + 60
    assert clock.next_alert_ns == T0 + 99


def test_an_alert_due_exactly_at_the_new_time_fires_and_one_a_nanosecond_later_does_not() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    clock.set_alert(T0 + 100, log.cb("on time"))
    clock.set_alert(T0 + 101, log.cb("after"))
    clock.advance_to(T0 + 99)
    assert log.seen == []
    clock.advance_to(T0 + 100)
    assert [name for name, _, _ in log.seen] == ["on time"]
    clock.advance_to(T0 + 101)
    assert [name for name, _, _ in log.seen] == ["on time", "after"]


def test_a_cancelled_alert_never_fires_and_the_others_still_do() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    first = clock.set_alert(T0 + 10, log.cb("first"))
    clock.set_alert(T0 + 20, log.cb("second"))
    assert isinstance(first, Alert)
    first.cancel()
    clock.advance_to(T0 + 30)
    assert [name for name, _, _ in log.seen] == ["second"]
    assert clock.next_alert_ns is None


def test_cancelling_after_the_alert_ran_is_a_no_op() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    alert = clock.set_alert(T0 + 10, log.cb("x"))
    clock.advance_to(T0 + 10)
    alert.cancel()
    clock.advance_to(T0 + 20)
    assert [name for name, _, _ in log.seen] == ["x"]


def test_an_alert_set_for_a_past_time_fires_on_the_next_advance_with_its_own_time() -> None:
    clock = MarketClock(T0 + 1000)
    log = Log(clock)
    clock.set_alert(T0 + 5, log.cb("past"))
    assert log.seen == []  # not at once: on the next advance
    assert clock.next_alert_ns == T0 + 5
    clock.advance_to(T0 + 1000)  # even an advance that does not move the clock runs it
    assert [(name, ts) for name, ts, _ in log.seen] == [("past", T0 + 5)]
    # time did not go back while it ran
    assert log.seen[0][2] == T0 + 1000
    assert clock.now_ns() == T0 + 1000


def test_an_alert_set_from_a_callback_for_a_time_already_reached_fires_in_the_same_advance() -> None:
    clock = MarketClock(T0)
    seen: list[tuple[str, int]] = []

    def chained(ts: int) -> None:
        seen.append(("first", ts))
        clock.set_alert(ts + 5, lambda t: seen.append(("chained", t)))  # still before the target
        clock.set_alert(ts, lambda t: seen.append(("same time", t)))  # at the very time being run
        clock.set_alert(T0 + 1000, lambda t: seen.append(("beyond", t)))  # after the target: waits

    clock.set_alert(T0 + 10, chained)
    clock.set_alert(T0 + 12, lambda t: seen.append(("between", t)))
    clock.advance_to(T0 + 100)
    assert seen == [("first", T0 + 10), ("same time", T0 + 10), ("between", T0 + 12), ("chained", T0 + 15)]
    assert clock.next_alert_ns == T0 + 1000
    clock.advance_to(T0 + 1000)
    assert seen[-1] == ("beyond", T0 + 1000)


def test_time_never_goes_backwards_and_an_older_event_runs_nothing_new() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    clock.advance_to(T0 + 500)
    clock.set_alert(T0 + 800, log.cb("x"))
    clock.advance_to(T0 + 200)  # an older event
    assert clock.now_ns() == T0 + 500
    assert log.seen == []
    clock.advance_to(T0 + 900)
    clock.advance_to(T0 + 700)
    assert clock.now_ns() == T0 + 900
    assert log.seen == [("x", T0 + 800, T0 + 800)]


def test_the_clock_time_seen_by_callbacks_never_decreases() -> None:
    clock = MarketClock(T0)
    log = Log(clock)
    times = [T0 + (k * 7919) % 1000 for k in range(200)]  # a fixed shuffle of times, with repeats
    for k, t in enumerate(times):
        clock.set_alert(t, log.cb(str(k)))
    for target in (T0 + 100, T0 + 50, T0 + 600, T0 + 999):
        clock.advance_to(target)
    clocks = [now for _, _, now in log.seen]
    assert clocks == sorted(clocks)
    # every alert ran exactly once, in (time, set order)
    expected = sorted(range(len(times)), key=lambda k: (times[k], k))
    assert [int(name) for name, _, _ in log.seen] == expected
    assert [ts for _, ts, _ in log.seen] == [times[k] for k in expected]


def test_next_alert_ns_is_the_earliest_pending_alert() -> None:
    clock = MarketClock(T0)
    assert clock.next_alert_ns is None
    clock.set_alert(T0 + 300, lambda _t: None)
    assert clock.next_alert_ns == T0 + 300
    clock.set_alert(T0 + 100, lambda _t: None)
    assert clock.next_alert_ns == T0 + 100
    clock.set_alert(T0 + 200, lambda _t: None)
    clock.advance_to(T0 + 150)
    assert clock.next_alert_ns == T0 + 200
    clock.advance_to(T0 + 300)
    assert clock.next_alert_ns is None


def test_wall_clock_reads_the_wall_time() -> None:
    before = time.time_ns()
    now = WallClock().now_ns()
    assert before <= now <= time.time_ns()


def test_wall_clock_alert_runs_on_the_loop_at_its_time_with_its_scheduled_ts() -> None:
    clock = WallClock()
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()
        target = time.time_ns() + 50 * NS_PER_MS

        def callback(ts: int) -> None:
            seen.append((ts, time.time_ns()))
            done.set_result(None)

        clock.set_alert(target, callback)
        assert seen == []  # not synchronously
        await asyncio.wait_for(done, timeout=5)
        assert seen[0][0] == target

    asyncio.run(main())
    ((ts, ran_at),) = seen
    assert ran_at >= ts - 2 * NS_PER_MS  # the loop's timer may be a hair early (its clock granularity)


def test_a_cancelled_wall_clock_alert_does_not_run() -> None:
    clock = WallClock()
    seen: list[int] = []

    async def main() -> None:
        alert = clock.set_alert(time.time_ns() + 10 * NS_PER_MS, seen.append)
        clock.set_alert(time.time_ns() + 30 * NS_PER_MS, seen.append)
        alert.cancel()
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert len(seen) == 1


def test_wall_clock_alert_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        WallClock().set_alert(time.time_ns(), lambda _t: None)
