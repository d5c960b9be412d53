"""The weekend rule (R11; FTMO Account Standard: positions closed before the weekend [S11]): a position still open when
the firm's Friday closes (00:00 Europe/Prague on Saturday) fails the phase at that instant with no price move; a flat
account, or a position held over a weekday night, does not."""

from __future__ import annotations

from decimal import Decimal

from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.state import Status
from tests.challenges.kit import HOUR_NS, local_ns, types, variant

D = Decimal
SIZE = D("100000")


def _evaluator(start: int) -> ChallengeEvaluator:
    return ChallengeEvaluator(variant("ftmo-2step", 2, weekend_flat=True), 0, SIZE, start)


def test_a_position_open_when_friday_closes_fails_at_the_prague_midnight() -> None:
    thursday = local_ns("Europe/Prague", 2026, 11, 19, 10)  # Thursday 19 Nov 2026
    ev = _evaluator(thursday)
    ev.on_fill(thursday, balance=SIZE, equity=SIZE, opened=True, flat=False)
    # held over Thursday night: a weekday, no breach
    friday_noon = local_ns("Europe/Prague", 2026, 11, 20, 12)
    assert "ChallengeBreached" not in types(ev.on_valuation(friday_noon, balance=SIZE, equity=SIZE, flat=False))
    saturday = local_ns("Europe/Prague", 2026, 11, 21, 0)
    events = ev.on_time(saturday)
    assert ev.status is Status.FAILED and ev.breach is not None
    assert ev.breach.rule == "weekend_flat" and ev.breach.ts == saturday and ev.breach.floor is None
    assert types(events) == ["ChallengeBreached"]
    assert "weekend_flat" in (ev.refusal(saturday + HOUR_NS) or "")


def test_a_flat_account_goes_through_the_weekend() -> None:
    friday = local_ns("Europe/Prague", 2026, 11, 20, 9)
    ev = _evaluator(friday)
    ev.on_fill(friday, balance=SIZE, equity=SIZE, opened=True, flat=False)
    ev.on_fill(friday + HOUR_NS, balance=SIZE + 50, equity=SIZE + 50, opened=False, flat=True)
    ev.on_time(local_ns("Europe/Prague", 2026, 11, 23, 0))
    assert ev.status is Status.ACTIVE and ev.breach is None
