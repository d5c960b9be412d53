"""Batch replay of fills and marks through the exact account model and the evaluator."""

from __future__ import annotations

import pytest

from smart_trader.challenges import Mark, ReplayFill, get_program, replay
from smart_trader.core.errors import InvalidInputError
from tests.challenges.kit import D, local_ns

PRAGUE = "Europe/Prague"
CHICAGO = "America/Chicago"


def test_replay_of_the_ftmo_overnight_example_fails_at_the_prague_reset() -> None:
    """[S1] $200k: +$4,000 closed on Monday, then 1,000 units bought at 1,000 marked at 987 (floating −$13,000)
    held overnight; the replay calls the midnight timer itself and fails at 00:00 Prague (23:00 UTC) with
    equity 191,000 against the new floor 194,000."""
    fills = [
        ReplayFill(local_ns(PRAGUE, 2026, 11, 16, 9), "X", "buy", D(100), D(1000)),
        ReplayFill(local_ns(PRAGUE, 2026, 11, 16, 10), "X", "sell", D(100), D(1040)),
        ReplayFill(local_ns(PRAGUE, 2026, 11, 16, 11), "X", "buy", D(1000), D(1000)),
    ]
    marks = [
        Mark(local_ns(PRAGUE, 2026, 11, 16, 12), "X", D(987)),
        Mark(local_ns(PRAGUE, 2026, 11, 16, 23, 59), "X", D(987)),
        Mark(local_ns(PRAGUE, 2026, 11, 17, 1), "X", D(987)),
    ]
    verdict = replay(get_program("ftmo-2step"), D(200000), fills, marks, start_ts=local_ns(PRAGUE, 2026, 11, 16))
    assert verdict["status"] == "failed"
    assert verdict["phase"] == "FTMO Challenge"
    assert verdict["breach"] == {
        "rule": "daily_loss",
        "ts": "2026-11-16T23:00:00Z",
        "equity": "191000.00",
        "floor": "194000.00",
    }
    assert verdict["passed_ts"] is None and verdict["trading_days"] == 1
    assert verdict["events"][-2:] == ["DayClosed", "ChallengeBreached"]


def test_replay_with_multiplier_and_commissions_applies_the_topstep_consistency_gate() -> None:
    """Topstep 50K: target $3,000 [S28], consistency 50 % [S20]. Day 1: 2 ES (×50) 5,000 → 5,031 less $5 a fill
    = +3,090 ⇒ target reached but the best day is 100 % of the profit ⇒ not passed. Day 2: the same trade
    again ⇒ best day 3,090 of 6,180 = 50 % ⇒ passed."""

    def trade(day: int) -> list[ReplayFill]:
        return [
            ReplayFill(local_ns(CHICAGO, 2026, 11, day, 9), "ES", "buy", D(2), D(5000), D(5)),
            ReplayFill(local_ns(CHICAGO, 2026, 11, day, 10), "ES", "sell", D(2), D(5031), D(5)),
        ]

    program = get_program("topstep-combine")
    start = local_ns(CHICAGO, 2026, 11, 15, 17)
    marks = [Mark(local_ns(CHICAGO, 2026, 11, 16, 9, 30), "ES", D(4995))]
    one_day = replay(program, D(50000), trade(16), marks, start_ts=start, multipliers={"ES": D(50)})
    assert (one_day["status"], one_day["balance"], one_day["best_day_share"]) == ("active", "53090.00", "1.000000")

    two_days = replay(program, D(50000), trade(16) + trade(17), marks, start_ts=start, multipliers={"ES": D(50)})
    assert two_days["status"] == "passed"
    assert two_days["passed_ts"] == "2026-11-17T16:00:00Z"
    assert two_days["best_day_share"] == "0.500000" and two_days["balance"] == "56180.00"


def test_replay_closes_days_up_to_until_ts_and_counts_a_flip_as_an_opening() -> None:
    """A sell larger than the long flips the position (opens a short); until_ts runs the remaining resets."""
    fills = [
        ReplayFill(local_ns(PRAGUE, 2026, 11, 16, 9), "X", "buy", D(1), D(100)),
        ReplayFill(local_ns(PRAGUE, 2026, 11, 17, 9), "X", "sell", D(2), D(101)),
        ReplayFill(local_ns(PRAGUE, 2026, 11, 17, 10), "X", "buy", D(1), D(100)),
    ]
    verdict = replay(get_program("ftmo-2step"), D(10000), fills, [], until_ts=local_ns(PRAGUE, 2026, 11, 20))
    assert verdict["trading_days"] == 2 and verdict["balance"] == "10002.00"
    assert verdict["events"].count("DayClosed") == 4


def test_replay_rejects_marks_out_of_time_order() -> None:
    marks = [Mark(local_ns(PRAGUE, 2026, 11, 16, 9), "X", D(1)), Mark(local_ns(PRAGUE, 2026, 11, 16, 8), "X", D(1))]
    with pytest.raises(InvalidInputError, match="earlier than the previous"):
        replay(get_program("ftmo-2step"), D(10000), [], marks)
