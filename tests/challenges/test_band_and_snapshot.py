"""equity_band lets a caller skip valuations without changing any outcome; snapshot/restore is lossless."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_trader.challenges import ChallengeEvaluator, ChallengeEvent, Program, get_program
from tests.challenges.kit import MINUTE_NS, D, norm, utc_ns, variant


def _programs() -> list[tuple[Program, Decimal]]:
    return [
        (get_program("ftmo-2step"), D(100000)),  # D1 + static
        (get_program("the5ers-high-stakes"), D(100000)),  # D3 relative + static
        (get_program("apex-eod"), D(50000)),  # soft daily + EOD trailing
        (get_program("apex-intraday"), D(50000)),  # intraday trailing
        (get_program("topstep-combine"), D(50000)),  # EOD trailing with lock, flat-by, consistency
        (
            variant(
                "ftmo-1step",
                target_basis="equity",
                profit_target={"pct": 3},
                consistency={"max_share": 0.5, "day_pnl": "equity_delta"},
                daily_loss={"amount": {"pct": 2}, "intraday_trailing": True},
            ),
            D(100000),
        ),  # D6, equity target, equity-delta consistency
        (
            variant(
                "ftmo-2step",
                2,
                max_loss={"amount": {"pct": 4}, "mode": "trailing_closed", "lock": "initial"},
                daily_loss={"amount": {"pct": 2}, "reference": "equity", "includes_floating": False},
            ),
            D(100000),
        ),  # closed-balance trailing, balance-only daily
    ]


PROGRAMS = _programs()


@dataclass
class _Account:
    balance: Decimal
    equity: Decimal
    flat: bool = True


Step = tuple[int, str, int]  # minutes later, kind, equity change in cents

steps_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600),
        st.sampled_from(["val", "val", "val", "val", "open", "close"]),
        st.integers(min_value=-180_000, max_value=150_000),
    ),
    min_size=1,
    max_size=60,
)


def _drive(program: Program, size: Decimal, steps: list[Step], *, skip_inside_band: bool) -> list[ChallengeEvent]:
    start = utc_ns(2026, 3, 27, 12)  # spans the Prague and US DST weeks
    ev = ChallengeEvaluator(program, 0, size, start, account_id="acc-1")
    acct = _Account(size, size)
    events: list[ChallengeEvent] = []
    ts = start
    for minutes, kind, cents in steps:
        ts += minutes * MINUTE_NS
        while (deadline := ev.next_deadline_ns()) is not None and deadline <= ts:
            if skip_inside_band:
                events += ev.on_time(deadline, balance=acct.balance, equity=acct.equity)
            else:
                events += ev.on_time(deadline)
        delta = Decimal(cents) / 100
        if kind == "open":
            acct.balance -= Decimal("2.50")  # commission
            acct.equity = acct.balance if acct.flat else acct.equity - Decimal("2.50")
            acct.flat = False
            events += ev.on_fill(ts, balance=acct.balance, equity=acct.equity, opened=True, flat=False)
        elif kind == "close":
            acct.balance = acct.equity
            acct.flat = True
            events += ev.on_fill(ts, balance=acct.balance, equity=acct.equity, opened=False, flat=True)
        else:
            if not acct.flat:
                acct.equity += delta
            low, high = ev.equity_band()
            inside = (low is None or acct.equity > low) and (high is None or acct.equity < high)
            if skip_inside_band and inside:
                continue
            events += ev.on_valuation(ts, balance=acct.balance, equity=acct.equity, flat=acct.flat)
    return events


@settings(max_examples=250, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(PROGRAMS) - 1), steps=steps_strategy)
def test_skipping_valuations_inside_the_equity_band_changes_no_event(index: int, steps: list[Step]) -> None:
    """Property: an evaluator called only when equity leaves equity_band() emits exactly the same events
    (types, instants, rules, floors, equities) as one called on every valuation."""
    program, size = PROGRAMS[index]
    every = _drive(program, size, steps, skip_inside_band=False)
    sparse = _drive(program, size, steps, skip_inside_band=True)
    assert norm(sparse) == norm(every)


def test_equity_band_of_a_fresh_ftmo_account_is_the_first_warning_level() -> None:
    """Daily room 5,000 ⇒ the 80 % warning at 96,000 is the highest level that can change anything; no upper
    bound (static floor, balance-basis target)."""
    ev = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), utc_ns(2026, 11, 16))
    assert ev.equity_band() == (D(96000), None)


def test_snapshot_and_restore_mid_run_give_identical_subsequent_events() -> None:
    """kill -9 and restart: a restored evaluator (through JSON) continues exactly like the original."""
    program = get_program("apex-eod")
    steps: list[Step] = [
        (0, "open", 0),
        (30, "val", -60_000),
        (30, "val", -50_000),  # soft lock at −1,000 (touch)
        (10, "close", 0),
        (600, "open", 0),
        (60, "val", 90_000),
        (60, "close", 0),
        (600, "open", 0),
        (600, "val", -150_000),
        (600, "val", -150_000),
        (30, "val", 100_000),
        (600, "close", 0),
        (600, "open", 0),
        (600, "val", -180_000),
        (600, "val", -180_000),
    ]
    whole = _drive(program, D(50000), steps, skip_inside_band=False)

    start = utc_ns(2026, 3, 27, 12)
    original = ChallengeEvaluator(program, 0, D(50000), start, account_id="acc-1")
    acct = _Account(D(50000), D(50000))
    ts = start
    first: list[ChallengeEvent] = []
    tail_original: list[ChallengeEvent] = []
    tail_restored: list[ChallengeEvent] = []
    restored: ChallengeEvaluator | None = None
    for i, (minutes, kind, cents) in enumerate(steps):
        if i == 7:
            restored = ChallengeEvaluator.restore(program, json.loads(json.dumps(original.snapshot())))
            assert restored.snapshot() == original.snapshot()
        ts += minutes * MINUTE_NS
        targets = [(original, first if restored is None else tail_original)]
        if restored is not None:
            targets.append((restored, tail_restored))
        if kind == "open":
            acct.balance -= Decimal("2.50")
            acct.equity, acct.flat = acct.balance, False
        elif kind == "close":
            acct.balance, acct.flat = acct.equity, True
        elif not acct.flat:
            acct.equity += Decimal(cents) / 100
        for ev, sink in targets:
            while (deadline := ev.next_deadline_ns()) is not None and deadline <= ts:
                sink += ev.on_time(deadline)
            if kind == "val":
                sink += ev.on_valuation(ts, balance=acct.balance, equity=acct.equity, flat=acct.flat)
            else:
                sink += ev.on_fill(ts, balance=acct.balance, equity=acct.equity, opened=kind == "open", flat=acct.flat)
    assert restored is not None
    assert norm(tail_restored) == norm(tail_original)
    assert norm(first + tail_original) == norm(whole)
    assert restored.snapshot() == original.snapshot()
    assert {"ChallengeLocked", "ChallengeUnlocked", "DayClosed"} <= {e.event_type for e in whole}


def test_low_itself_triggers_a_warning_level_and_a_touch_floor() -> None:
    """``low`` is inclusive for warnings (room used ≥ level) and for floors with breach_on_equal (Apex: touching
    the threshold fails [S29]); without it (FTMO "below" [S1]) equity == floor is harmless."""
    ftmo = ChallengeEvaluator(get_program("ftmo-2step"), 0, D(100000), utc_ns(2026, 11, 16))
    ftmo.on_fill(utc_ns(2026, 11, 16, 9), balance=D(100000), equity=D(100000), opened=True, flat=False)
    assert [
        e.event_type
        for e in ftmo.on_valuation(utc_ns(2026, 11, 16, 10), balance=D(100000), equity=D(96000), flat=False)
    ] == ["ChallengeWarning"]
    apex = ChallengeEvaluator(get_program("apex-intraday"), 0, D(50000), utc_ns(2026, 11, 16))
    apex.on_fill(utc_ns(2026, 11, 16, 9), balance=D(50000), equity=D(50000), opened=True, flat=False)
    apex.on_valuation(utc_ns(2026, 11, 16, 10), balance=D(50000), equity=D(48100), flat=False)  # all warnings
    assert apex.equity_band() == (D(48000), D(50000))
    events = apex.on_valuation(utc_ns(2026, 11, 16, 11), balance=D(50000), equity=D(48000), flat=False)
    assert [e.event_type for e in events] == ["ChallengeBreached"]
