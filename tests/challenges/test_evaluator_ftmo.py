"""FTMO worked examples: daily loss at the Prague reset, static max loss, pass conditions, consistency."""

from __future__ import annotations

from smart_trader.challenges import (
    ChallengeBreached,
    ChallengeEvaluator,
    ChallengePassed,
    ChallengeWarning,
    Status,
    get_program,
)
from smart_trader.challenges.days import iso_utc
from tests.challenges.kit import D, local_ns, types

PRAGUE = "Europe/Prague"
MONDAY = (2026, 11, 16)  # a Monday outside any DST change


def _monday(hour: int, minute: int = 0) -> int:
    return local_ns(PRAGUE, *MONDAY, hour, minute)


def test_overnight_floating_loss_breaches_at_the_prague_midnight_reset_with_no_price_move() -> None:
    """[S1] classic example ($200k, 5 % = $10,000): Monday closed +$4,000 ⇒ permitted loss $14,000; a $13,000
    floating loss is fine until 23:59, at 00:00 Prague the limit resets to $10,000 and the account is in
    violation (new floor 204,000 − 10,000 = 194,000 > equity 191,000)."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(200000), _monday(0))
    ev.on_fill(_monday(9), balance=D(200000), equity=D(200000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(204000), equity=D(204000), opened=False, flat=True)
    assert ev.view().todays_permitted_loss == D(14000)

    ev.on_fill(_monday(11), balance=D(204000), equity=D(204000), opened=True, flat=False)
    events = ev.on_valuation(_monday(23, 59), balance=D(204000), equity=D(191000), flat=False)
    assert ev.status is Status.ACTIVE
    assert ev.view().todays_permitted_loss == D(1000)
    assert "ChallengeBreached" not in types(events)

    reset = ev.next_deadline_ns()
    assert reset == local_ns(PRAGUE, 2026, 11, 17)
    events = ev.on_time(reset)
    assert types(events) == ["DayClosed", "ChallengeBreached"]
    breach = events[-1]
    assert isinstance(breach, ChallengeBreached)
    assert (breach.rule, breach.floor, breach.equity, breach.ts_event) == ("daily_loss", D(194000), D(191000), reset)
    assert ev.status is Status.FAILED and ev.next_deadline_ns() is None


def test_static_max_loss_breaches_at_minus_2001_but_not_at_minus_2000() -> None:
    """[S4] $100k: equity must not drop below 90 % of the initial balance; balance $92,000 with a floating loss
    of −$2,001 breaches. −$2,000 exactly (equity = floor 90,000) does not: breach_on_equal is false ("below")."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), _monday(0))
    # two losing days of −4,000 each stay inside the 5,000 daily limit
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(96000), equity=D(96000), opened=False, flat=True)
    tuesday = local_ns(PRAGUE, 2026, 11, 17, 9)
    ev.on_fill(tuesday, balance=D(96000), equity=D(96000), opened=True, flat=False)
    ev.on_fill(tuesday + 1, balance=D(92000), equity=D(92000), opened=False, flat=True)
    wednesday = local_ns(PRAGUE, 2026, 11, 18, 9)
    ev.on_fill(wednesday, balance=D(92000), equity=D(92000), opened=True, flat=False)

    ev.on_valuation(wednesday + 1, balance=D(92000), equity=D(90000), flat=False)
    assert ev.status is Status.ACTIVE
    assert ev.view().max_permitted_loss == D(0)
    events = ev.on_valuation(wednesday + 2, balance=D(92000), equity=D(89999), flat=False)
    assert types(events) == ["ChallengeBreached"]
    assert ev.breach is not None
    assert (ev.breach.rule, ev.breach.floor, ev.breach.equity) == ("max_loss", D(90000), D(89999))


def test_a_daily_breach_that_recovers_is_still_failed() -> None:
    """[S1][S47] "even for a single second": equity 94,999 < floor 95,000, then back to 101,000 — still failed,
    later valuations change nothing and new orders are refused naming the rule."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    assert types(ev.on_valuation(_monday(10), balance=D(100000), equity=D("94999"), flat=False)) == [
        "ChallengeBreached"
    ]
    assert ev.on_valuation(_monday(11), balance=D(100000), equity=D(101000), flat=False) == []
    assert ev.on_fill(_monday(12), balance=D(101000), equity=D(101000), opened=False, flat=True) == []
    assert ev.status is Status.FAILED
    reason = ev.refusal(_monday(13), instrument_qty_after=D(1))
    assert reason == f"challenge failed: daily_loss (equity 94999 vs floor 95000.00) at {iso_utc(_monday(10))}"
    assert ev.refusal(_monday(13), reducing=True) is None
    ev.add_breach_evidence({"price": "1.0842", "positions": "EURUSD +10"})
    restored = ChallengeEvaluator.restore(get_program("ftmo-2step"), ev.snapshot())
    assert restored.breach == ev.breach and restored.breach is not None
    assert restored.breach.details == {"price": "1.0842", "positions": "EURUSD +10"}


def test_one_move_through_both_floors_is_blamed_on_the_higher_floor() -> None:
    """R6 [R2]: on day 2 after a −4,000 day the daily floor is 96,000 − 5,000 = 91,000 and the static floor
    90,000; a gap to 89,000 crosses both and is attributed to the higher (daily) floor."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(96000), equity=D(96000), opened=False, flat=True)
    tuesday = local_ns(PRAGUE, 2026, 11, 17, 9)
    ev.on_fill(tuesday, balance=D(96000), equity=D(96000), opened=True, flat=False)
    ev.on_valuation(tuesday + 1, balance=D(96000), equity=D(89000), flat=False)
    assert ev.breach is not None and (ev.breach.rule, ev.breach.floor) == ("daily_loss", D(91000))


def test_warnings_fire_once_per_level_per_day_at_fractions_of_room_used() -> None:
    """§10 requests 80/90/95 % warnings: daily room 5,000 ⇒ warnings at equity 96,000 / 95,500 / 95,250."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    first = ev.on_valuation(_monday(10), balance=D(100000), equity=D(95400), flat=False)
    assert [(e.rule, e.level) for e in first if isinstance(e, ChallengeWarning)] == [
        ("daily_loss", D("0.8")),
        ("daily_loss", D("0.9")),
    ]
    assert ev.on_valuation(_monday(11), balance=D(100000), equity=D(95400), flat=False) == []
    third = ev.on_valuation(_monday(12), balance=D(100000), equity=D(95250), flat=False)
    assert [(e.level, e.room_used) for e in third if isinstance(e, ChallengeWarning)] == [(D("0.95"), D("0.950000"))]
    # the next day re-arms the levels: the open position still uses 95 % of the new day's room at the reset
    events = ev.on_time(ev.next_deadline_ns() or 0)
    assert types(events) == ["DayClosed", "ChallengeWarning", "ChallengeWarning", "ChallengeWarning"]
    assert ev.view().daily_floor == D(95000)


def test_phase_passes_only_with_target_reached_flat_and_four_trading_days() -> None:
    """[S2][S9] target 10 % on closed positions, all positions closed, 4 minimum trading days (a day counts when
    a position is opened on it [S7])."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(110000), equity=D(110000), opened=False, flat=True)
    assert ev.status is Status.ACTIVE and ev.trading_days == 1  # target met, 1 day of 4
    for day in (17, 18):
        ts = local_ns(PRAGUE, 2026, 11, day, 9)
        ev.on_fill(ts, balance=D(110000), equity=D(110000), opened=True, flat=False)
        ev.on_fill(ts + 1, balance=D(110000), equity=D(110000), opened=False, flat=True)
    thursday = local_ns(PRAGUE, 2026, 11, 19, 9)
    events = ev.on_fill(thursday, balance=D(110000), equity=D(110000), opened=True, flat=False)
    assert "ChallengePassed" not in types(events)  # 4 days, but a position is open
    events = ev.on_fill(thursday + 1, balance=D(110000), equity=D(110000), opened=False, flat=True)
    assert types(events)[-1] == "ChallengePassed"
    assert ev.status is Status.PASSED and ev.passed_ts == thursday + 1 and ev.trading_days == 4
    assert ev.refusal(thursday + 2) is not None


def test_target_with_best_day_rule_unmet_is_not_passed_and_not_failed() -> None:
    """FTMO 1-Step Best Day Rule 50 % [S5]: target 10 % of $100k. +8,000 then +2,000 reaches the target but the
    best day is 80 % of the total ⇒ not passed, keep trading; +6,000 more makes it 8,000 / 16,000 = 50 %
    ⇒ passed."""
    ev = ChallengeEvaluator(get_program("ftmo-1step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(108000), equity=D(108000), opened=False, flat=True)
    tuesday = local_ns(PRAGUE, 2026, 11, 17, 9)
    ev.on_fill(tuesday, balance=D(108000), equity=D(108000), opened=True, flat=False)
    events = ev.on_fill(tuesday + 1, balance=D(110000), equity=D(110000), opened=False, flat=True)
    assert ev.status is Status.ACTIVE and "ChallengePassed" not in types(events)
    assert ev.best_day_share() == D("0.8")
    wednesday = local_ns(PRAGUE, 2026, 11, 18, 9)
    ev.on_fill(wednesday, balance=D(110000), equity=D(110000), opened=True, flat=False)
    events = ev.on_fill(wednesday + 1, balance=D(116000), equity=D(116000), opened=False, flat=True)
    passed = events[-1]
    assert isinstance(passed, ChallengePassed) and passed.best_day_share == D("0.5")


def test_best_day_faq_example_5000_plus_5000_is_exactly_50_percent_and_satisfied() -> None:
    """[S5] FAQ: a $5,000 best day plus $5,000 on other days = 50 % ⇒ the Best Day Rule is satisfied."""
    ev = ChallengeEvaluator(get_program("ftmo-1step"), 0, D(100000), _monday(0))
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(105000), equity=D(105000), opened=False, flat=True)
    tuesday = local_ns(PRAGUE, 2026, 11, 17, 9)
    ev.on_fill(tuesday, balance=D(105000), equity=D(105000), opened=True, flat=False)
    events = ev.on_fill(tuesday + 1, balance=D(110000), equity=D(110000), opened=False, flat=True)
    assert types(events) == ["ChallengePassed"]
    assert ev.best_day_share() == D("0.5")


def test_ftmo_1step_trailing_floor_follows_eod_balance_and_never_locks() -> None:
    """[S3] max(highest EOD balance, B0) − 10 % B0, recalculated at midnight, only increases, no lock stated:
    EOD 112,000 ⇒ floor 102,000 (above B0); a losing day does not lower it."""
    program = get_program("ftmo-1step")
    ev = ChallengeEvaluator(program, 1, D(100000), _monday(0))  # the funded phase: no target to stop at
    ev.on_fill(_monday(9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    ev.on_fill(_monday(10), balance=D(112000), equity=D(115000), opened=False, flat=False)
    assert ev.view().max_loss_floor == D(90000)  # intraday moves do not move it
    ev.on_time(ev.next_deadline_ns() or 0)
    assert ev.view().max_loss_floor == D(102000)
    tuesday = local_ns(PRAGUE, 2026, 11, 17, 9)
    ev.on_fill(tuesday, balance=D(110000), equity=D(110000), opened=False, flat=True)
    ev.on_time(ev.next_deadline_ns() or 0)
    assert ev.view().max_loss_floor == D(102000)
