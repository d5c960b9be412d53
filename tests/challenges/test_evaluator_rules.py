"""Trailing floors, daily-loss conventions, soft locks, flat-by time and time limits."""

from __future__ import annotations

import datetime as dt

from smart_trader.challenges import ChallengeEvaluator, ChallengeLocked, Program, Status, program_from_dict
from smart_trader.challenges.program import Amount, DailyLoss
from tests.challenges.kit import D, local_ns, types, variant

CHICAGO = "America/Chicago"
NEW_YORK = "America/New_York"


def _chicago(day: int, hour: int, minute: int = 0) -> int:
    return local_ns(CHICAGO, 2026, 11, day, hour, minute)


def test_topstep_trailing_eod_floor_locks_at_the_starting_balance_and_never_rises_after() -> None:
    """[S19] Topstep 50K, MLL $2,000: the floor trails the end-of-day balance high (not intraday), and once it
    reaches the $50,000 starting balance — EOD balance $52,000 — it stays there for the rest of the account.
    Touching it fails (breach_on_equal)."""
    program = variant("topstep-combine", profit_target=None, consistency=None)  # no target: keep trading
    ev = ChallengeEvaluator(program, 0, D(50000), _chicago(15, 17))
    assert ev.view().max_loss_floor == D(48000)
    ev.on_fill(_chicago(16, 9), balance=D(50000), equity=D(50000), opened=True, flat=False)
    ev.on_fill(_chicago(16, 10), balance=D(51000), equity=D(51000), opened=False, flat=True)
    ev.on_time(_chicago(16, 17))  # the 17:00 CT reset (after the 15:10 flat-by deadline)
    assert ev.view().max_loss_floor == D(49000)
    ev.on_fill(_chicago(17, 9), balance=D(51000), equity=D(51000), opened=True, flat=False)
    ev.on_valuation(_chicago(17, 10), balance=D(51000), equity=D(53500), flat=False)
    assert ev.view().max_loss_floor == D(49000)  # "not adjusted while you are trading"
    ev.on_fill(_chicago(17, 11), balance=D(52000), equity=D(52000), opened=False, flat=True)
    ev.on_time(_chicago(17, 17))
    assert ev.view().max_loss_floor == D(50000)
    ev.on_fill(_chicago(18, 9), balance=D(52000), equity=D(52000), opened=True, flat=False)
    ev.on_fill(_chicago(18, 10), balance=D(55000), equity=D(55000), opened=False, flat=True)
    ev.on_time(_chicago(18, 17))
    assert ev.view().max_loss_floor == D(50000)  # locked: EOD 55,000 does not lift it
    ev.on_fill(_chicago(19, 9), balance=D(55000), equity=D(55000), opened=True, flat=False)
    events = ev.on_valuation(_chicago(19, 10), balance=D(55000), equity=D(50000), flat=False)
    assert ev.breach is not None and (ev.breach.rule, ev.breach.floor) == ("max_loss", D(50000))
    assert "ChallengeBreached" in types(events)


def test_apex_intraday_threshold_trails_the_live_peak_including_unrealized_profit() -> None:
    """[S29] (legacy Master Course, $2,500 on 50K): close a trade +$500 ⇒ threshold $48,000; get up to $52,000
    unrealized and close at $51,000 ⇒ threshold $49,500."""
    program = variant("apex-intraday", max_loss={"amount": {"amount": 2500}, "mode": "trailing_intraday"})
    start = local_ns(NEW_YORK, 2026, 11, 16, 18)
    ev = ChallengeEvaluator(program, 0, D(50000), start)
    assert ev.view().max_loss_floor == D(47500)
    ev.on_fill(start + 1, balance=D(50000), equity=D(50000), opened=True, flat=False)
    ev.on_fill(start + 2, balance=D(50500), equity=D(50500), opened=False, flat=True)
    assert ev.view().max_loss_floor == D(48000)
    ev.on_fill(start + 3, balance=D(50500), equity=D(50500), opened=True, flat=False)
    ev.on_valuation(start + 4, balance=D(50500), equity=D(52000), flat=False)
    ev.on_fill(start + 5, balance=D(51000), equity=D(51000), opened=False, flat=True)
    assert ev.view().max_loss_floor == D(49500)
    ev.on_time(ev.next_deadline_ns() or 0)
    assert ev.view().max_loss_floor == D(49500)  # "does not reset daily"


def test_apex_performance_account_trailing_floor_stops_at_initial_plus_100() -> None:
    """[S29][R1] PA: "the max drawdown stops trailing when the liquidation threshold is at $100 plus the initial
    plan balance ($50,100 on a 50K plan)"."""
    program = variant("apex-intraday", 1)
    start = local_ns(NEW_YORK, 2026, 11, 16, 18)
    ev = ChallengeEvaluator(program, 0, D(50000), start)
    ev.on_fill(start + 1, balance=D(50000), equity=D(50000), opened=True, flat=False)
    ev.on_valuation(start + 2, balance=D(50000), equity=D(53000), flat=False)
    assert ev.view().max_loss_floor == D(50100)
    assert ev.equity_band()[1] is None  # a new peak can no longer move the locked floor


def _daily_program(daily: DailyLoss) -> Program:
    """FTMO-like funded phase (no target) with only the daily rule varied."""
    return variant("ftmo-2step", 2, daily_loss=daily)


def _same_path(program: Program) -> tuple[ChallengeEvaluator, list[list[str]]]:
    """Day 1: close +10,000 (balance 110,000, flat). Day 2: open; equity 104,800, then 104,400, then the position
    is closed at 104,400 (the flatten a soft lock asks for). Day 3 reset."""
    ev = ChallengeEvaluator(program, 0, D(100000), local_ns("Europe/Prague", 2026, 11, 16))
    ev.on_fill(local_ns("Europe/Prague", 2026, 11, 16, 9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(
        local_ns("Europe/Prague", 2026, 11, 16, 10), balance=D(110000), equity=D(110000), opened=False, flat=True
    )
    day2 = local_ns("Europe/Prague", 2026, 11, 17, 9)
    steps = [
        ev.on_fill(day2, balance=D(110000), equity=D(110000), opened=True, flat=False),
        ev.on_valuation(day2 + 1, balance=D(110000), equity=D(104800), flat=False),
        ev.on_valuation(day2 + 2, balance=D(110000), equity=D(104400), flat=False),
        ev.on_fill(day2 + 3, balance=D(104400), equity=D(104400), opened=False, flat=True),
        ev.on_time(local_ns("Europe/Prague", 2026, 11, 18)),
    ]
    return ev, [[t for t in types(s) if t != "ChallengeWarning"] for s in steps]


def test_one_price_path_three_daily_loss_conventions_three_verdicts() -> None:
    """§0.1 / §2.2: after a +10,000 day (SOD balance 110,000, flat):
    D1 FTMO [S1] floor = 110,000 − 5 %·100,000 = 105,000 ⇒ fails at 104,800;
    D3 The5ers [S40] floor = 110,000 − 5 %·110,000 = 104,500 ⇒ survives 104,800, fails later at 104,400;
    D7 soft Topstep/Apex-style [S22][R1] floor 105,000 ⇒ locked at 104,800, unlocked at the next reset."""
    d1 = DailyLoss(amount=Amount(pct=D(5)), amount_base="initial", reference="balance")
    d3 = DailyLoss(amount=Amount(pct=D(5)), amount_base="reference", reference="max")
    d7 = DailyLoss(amount=Amount(amount=D(5000)), amount_base="initial", reference="balance", kind="soft")

    ev1, steps1 = _same_path(_daily_program(d1))
    assert steps1[1] == ["ChallengeBreached"] and ev1.status is Status.FAILED
    assert ev1.breach is not None and ev1.breach.floor == D(105000)

    ev3, steps3 = _same_path(_daily_program(d3))
    assert steps3[1] == [] and steps3[2] == ["ChallengeBreached"]
    assert ev3.breach is not None and ev3.breach.floor == D(104500)

    ev7, steps7 = _same_path(_daily_program(d7))
    assert steps7[1] == ["ChallengeLocked"] and steps7[2] == []
    assert steps7[4] == ["DayClosed", "ChallengeUnlocked"]
    assert ev7.status is Status.ACTIVE and ev7.view().daily_floor == D(99400)


def test_soft_lock_refuses_new_orders_until_the_next_reset_and_asks_to_flatten() -> None:
    """Apex EOD daily loss $1,000 on 50K "pauses trading" [R1]: equity − SOD balance ≤ −1,000 (touch counts)
    ⇒ locked until 18:00 ET, flatten; reducing orders stay allowed."""
    program = variant("apex-eod")
    start = local_ns(NEW_YORK, 2026, 11, 16, 18)
    ev = ChallengeEvaluator(program, 0, D(50000), start)
    ev.on_fill(start + 1, balance=D(50000), equity=D(50000), opened=True, flat=False)
    events = ev.on_valuation(start + 2, balance=D(50000), equity=D(49000), flat=False)
    locked = [e for e in events if isinstance(e, ChallengeLocked)]
    reset = local_ns(NEW_YORK, 2026, 11, 17, 18)
    assert len(locked) == 1 and locked[0].until_ts == reset and locked[0].flatten
    assert ev.status is Status.LOCKED
    assert ev.refusal(start + 3) == "locked by daily_loss until 2026-11-17T23:00:00Z"
    assert ev.refusal(start + 3, reducing=True) is None
    ev.on_fill(start + 4, balance=D(49000), equity=D(49000), opened=False, flat=True)
    assert types(ev.on_time(reset)) == ["DayClosed", "ChallengeUnlocked"]
    assert ev.refusal(reset + 1) is None


def test_quantum_funding_d3_reference_is_equity_at_the_reset() -> None:
    """[S49] D3 with 3 %: equity 102,000 at the reset ⇒ floor 102,000 − 3 %·102,000 = 98,940 (the open profit
    counts because ref = max(SOD balance, SOD equity))."""
    data = variant("ftmo-2step", 2).model_dump()
    data["id"], data["tz"] = "quantum-like", "UTC"
    data["phases"][0]["daily_loss"] = {"amount": {"pct": 3}, "amount_base": "reference", "reference": "max"}
    program = program_from_dict(data)
    ev = ChallengeEvaluator(program, 0, D(100000), local_ns("UTC", 2026, 11, 16))
    ev.on_fill(local_ns("UTC", 2026, 11, 16, 9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_valuation(local_ns("UTC", 2026, 11, 16, 20), balance=D(100000), equity=D(102000), flat=False)
    ev.on_time(local_ns("UTC", 2026, 11, 17))
    assert ev.view().daily_floor == D(98940)


def test_topstep_flat_by_locks_an_open_position_at_15_10_until_the_17_00_reset() -> None:
    """[S22] Topstep trading day 17:00 → 15:10 CT: a position still open at 15:10 is flattened and trading is
    closed until 17:00; even a flat account cannot open between 15:10 and 17:00. Max 5 contracts [S28]."""
    program = get_topstep()
    ev = ChallengeEvaluator(program, 0, D(50000), _chicago(15, 17))
    assert ev.refusal(_chicago(16, 9), instrument_qty_after=D(6), total_qty_after=D(6)) == (
        "max_position: 6 exceeds the limit of 5 (total)"
    )
    ev.on_fill(_chicago(16, 9), balance=D(50000), equity=D(50000), opened=True, flat=False)
    assert ev.next_deadline_ns() == _chicago(16, 15, 10)
    events = ev.on_time(_chicago(16, 15, 10))
    assert types(events) == ["ChallengeLocked"] and ev.status is Status.LOCKED
    ev.on_fill(_chicago(16, 15, 11), balance=D(50100), equity=D(50100), opened=False, flat=True)
    assert ev.refusal(_chicago(16, 16)) == "locked by flat_by until 2026-11-16T23:00:00Z"
    assert types(ev.on_time(_chicago(16, 17))) == ["DayClosed", "ChallengeUnlocked"]
    # flat at the next 15:10: no lock, but the window still refuses new orders
    assert ev.on_time(_chicago(17, 15, 10)) == []
    assert ev.refusal(_chicago(17, 15, 30)) is not None and ev.refusal(_chicago(17, 17)) is None


def get_topstep() -> Program:
    return variant("topstep-combine")


def test_time_limit_and_inactivity_fail_at_day_boundaries() -> None:
    """R10: ``now ≥ start + max_days`` ⇒ failed [S73]; inactivity ⇒ expiry (The5ers 30 days [S41])."""
    limited = variant("ftmo-2step", max_days=2)
    ev = ChallengeEvaluator(limited, 0, D(100000), local_ns("Europe/Prague", 2026, 11, 16, 8))
    ev.on_time(local_ns("Europe/Prague", 2026, 11, 17))
    assert ev.status is Status.ACTIVE
    events = ev.on_time(local_ns("Europe/Prague", 2026, 11, 18))
    assert types(events)[-1] == "ChallengeBreached" and ev.breach is not None and ev.breach.rule == "max_days"

    idle = variant("the5ers-high-stakes")
    ev = ChallengeEvaluator(idle, 0, D(100000), local_ns(NEW_YORK, 2026, 11, 2, 9))
    ev.on_time(local_ns(NEW_YORK, 2026, 12, 1, 17))  # idle days 3 Nov .. 1 Dec: 29 full days
    assert ev.status is Status.ACTIVE
    ev.on_time(local_ns(NEW_YORK, 2026, 12, 2, 17))  # 30 full idle days have elapsed
    assert ev.breach is not None and ev.breach.rule == "inactivity"


def test_the5ers_counts_only_profitable_days_when_they_close() -> None:
    """The5ers HS: a minimum of 3 profitable days, closed P&L ≥ 0.5 % of B0 (3rd-party [S41])."""
    ev = ChallengeEvaluator(variant("the5ers-high-stakes"), 0, D(100000), local_ns(NEW_YORK, 2026, 11, 16, 17))
    for day, pnl in ((17, 400), (18, 500), (19, 600)):
        ts = local_ns(NEW_YORK, 2026, 11, day, 9)
        balance = ev.view().balance
        ev.on_fill(ts, balance=balance, equity=balance, opened=True, flat=False)
        ev.on_fill(ts + 1, balance=balance + pnl, equity=balance + pnl, opened=False, flat=True)
        assert ev.trading_days == (0 if day == 17 else day - 18)  # counted only once the day closed
        ev.on_time(local_ns(NEW_YORK, 2026, 11, day, 17))
    assert ev.trading_days == 2  # 400 < 500 does not count
    assert [r.counted for r in ev.days] == [False, True, True]
    assert ev.days[0].day == dt.date(2026, 11, 17)


def test_end_of_day_daily_loss_ignores_intraday_dips_and_tests_the_day_end_balance() -> None:
    """D8 (LuxAlgo ``evaluation: end-of-day`` [R2]): only the day-end value is compared with the floor."""
    program = variant(
        "ftmo-2step", 2, daily_loss={"amount": {"pct": 5}, "evaluation": "eod", "includes_floating": False}
    )
    ev = ChallengeEvaluator(program, 0, D(100000), local_ns("Europe/Prague", 2026, 11, 16))
    ev.on_fill(local_ns("Europe/Prague", 2026, 11, 16, 9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    assert (
        ev.on_valuation(local_ns("Europe/Prague", 2026, 11, 16, 10), balance=D(100000), equity=D(94000), flat=False)
        == []
    )
    ev.on_fill(local_ns("Europe/Prague", 2026, 11, 16, 11), balance=D(94900), equity=D(94900), opened=False, flat=True)
    assert ev.status is Status.ACTIVE
    events = ev.on_time(local_ns("Europe/Prague", 2026, 11, 17))
    assert types(events) == ["ChallengeBreached"]
    assert ev.breach is not None and (ev.breach.rule, ev.breach.floor, ev.breach.balance) == (
        "daily_loss",
        D(95000),
        D(94900),
    )
