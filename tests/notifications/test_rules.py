"""Which event becomes which notification (pure rules): the facts quoted are the event's own, ids are derived from
the event id, and an event of a shape the rules do not know notifies nobody instead of failing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from smart_trader.challenges.events import (
    ChallengeBreached,
    ChallengeLocked,
    ChallengePassed,
    ChallengeUnlocked,
    ChallengeWarning,
    DayClosed,
)
from smart_trader.notifications import rules
from smart_trader.notifications.rules import ChallengeContext, draft_for
from smart_trader.workers.envelope import Envelope, from_row
from tests.notifications.support import NS, T0, base, challenge_row, payment_row, receipt_payload

D = Decimal
ACCOUNT = "5d1f8f0c-6f7e-4a51-9d0e-1d1c1b7a2f10"
CHALLENGE = "0b6e1f0e-4c7a-4a8e-8d6b-3b0e5f6c7d8e"
CTX = ChallengeContext("user-1", "FTMO Challenge 2-Step", "FTMO Challenge", "Verification")


def envelope(row: dict[str, Any], outbox_id: int = 1) -> Envelope:
    return from_row(type("Row", (), {**row, "id": outbox_id, "published_ns": None}))


def challenge(event: Any) -> Envelope:
    return envelope(challenge_row(event, CHALLENGE, ACCOUNT))


def test_a_warning_says_how_much_of_the_floors_room_is_used() -> None:
    e = ChallengeWarning(
        **base(T0, ACCOUNT),
        rule="daily_loss",
        level=D("0.8"),
        room_used=D("0.8125"),
        floor=D("9500.00"),
        value=D("9593.75"),
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and d.kind == rules.CHALLENGE_WARNING and d.user_id == "user-1"
    assert d.title == "80% of your daily loss room is used"
    assert "81.25% of the room down to the daily loss floor 9500.00" in d.body
    assert "9593.75" in d.body and "2026-01-01T00:00:00Z" in d.body
    assert d.data["level"] == "0.8" and d.data["floor"] == "9500.00" and d.data["challenge_id"] == CHALLENGE


@pytest.mark.parametrize(("level", "pct"), [("0.9", "90"), ("0.95", "95"), ("0.955", "95.5"), ("0.80", "80")])
def test_warning_levels_read_as_exact_percentages(level: str, pct: str) -> None:
    e = ChallengeWarning(
        **base(T0, ACCOUNT), rule="max_loss", level=D(level), room_used=D(level), floor=D("9000.00"), value=D("9100.00")
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and d.title == f"{pct}% of your maximum loss room is used"


def test_a_breach_names_the_rule_the_floor_the_equity_and_the_instant() -> None:
    e = ChallengeBreached(
        **base(T0 + 90 * NS, ACCOUNT),
        rule="daily_loss",
        kind="hard",
        floor=D("9500.00"),
        equity=D("9499.12"),
        balance=D("9990.00"),
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and d.kind == rules.CHALLENGE_BREACHED
    assert d.title == "Challenge failed: daily loss rule broken"
    assert "equity 9499.12 against the floor 9500.00" in d.body and "2026-01-01T00:01:30Z" in d.body
    assert d.body.startswith(f"FTMO Challenge 2-Step — FTMO Challenge (account {ACCOUNT})")


def test_a_time_rule_breach_has_no_floor() -> None:
    e = ChallengeBreached(
        **base(T0, ACCOUNT), rule="max_days", kind="hard", floor=None, equity=D("10100"), balance=D("10100")
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and "maximum days rule was broken" in d.body and "floor" not in d.body


def test_a_soft_lock_says_until_when() -> None:
    e = ChallengeLocked(
        **base(T0, ACCOUNT), rule="soft_daily_loss", floor=D("9700.00"), equity=D("9690.00"), until_ts=T0 + 3600 * NS
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and d.kind == rules.CHALLENGE_LOCKED and d.title == "Trading locked: soft daily loss"
    assert "until 2026-01-01T01:00:00Z" in d.body and "positions closed" in d.body
    assert d.data["until_ts"] == T0 + 3600 * NS


def test_a_pass_names_the_next_phase_or_says_the_challenge_is_complete() -> None:
    e = ChallengePassed(
        **base(T0, ACCOUNT), balance=D("10810.00"), equity=D("10810.00"), trading_days=4, best_day_share=None
    )
    d = draft_for(challenge(e), CTX)
    assert d is not None and d.kind == rules.CHALLENGE_PASSED and d.title == "Phase passed: FTMO Challenge"
    assert "The next phase, Verification, is open on a new account." in d.body and "4 trading days" in d.body
    last = draft_for(challenge(e), ChallengeContext("user-1", "FTMO Challenge 2-Step", "FTMO Account", None))
    assert last is not None and "the challenge is complete" in last.body


def test_closed_days_unlocks_and_unknown_events_notify_nobody() -> None:
    day = DayClosed(
        **base(T0, ACCOUNT),
        day="2026-01-01",
        pnl=D("0"),
        eod_balance=D("10000"),
        eod_equity=D("10000"),
        counted_trading_day=False,
        daily_floor=None,
        max_loss_floor=None,
    )
    unlocked = ChallengeUnlocked(**base(T0, ACCOUNT), rule="soft_daily_loss")
    assert draft_for(challenge(day), CTX) is None and draft_for(challenge(unlocked), CTX) is None
    breached = ChallengeBreached(
        **base(T0, ACCOUNT), rule="daily_loss", kind="hard", floor=D("1"), equity=D("0"), balance=D("0")
    )
    assert draft_for(challenge(breached), None) is None  # a challenge nobody owns: nobody to notify


def test_payment_events_from_the_payments_stream() -> None:
    user = str(uuid.uuid4())
    receipt = draft_for(envelope(payment_row("payment.succeeded", user, receipt_payload(user), T0)))
    assert receipt is not None and receipt.kind == rules.PAYMENT_RECEIPT and receipt.user_id == user
    assert receipt.title == "Payment received"
    assert "payment of 155.00 EUR" in receipt.body and "ftmo-2step at 10000" in receipt.body
    assert receipt.data["amount"] == "155.00" and receipt.data["provider"] == "stripe"
    granted = {
        "actor": "stripe",
        "user_id": user,
        "challenge_id": "c1",
        "account_id": "a1",
        "program": "ftmo-2step",
        "account_size": "10000",
        "grant_id": "g1",
        "source": "stripe",
        "payment_id": None,
        "reason": None,
    }
    g = draft_for(envelope(payment_row("challenge.granted", user, granted, T0)))
    assert g is not None and g.kind == rules.CHALLENGE_GRANTED and "account a1" in g.body
    revoked = {"actor": "stripe", "user_id": user, "challenge_id": "c1", "reason": "refund"}
    r = draft_for(envelope(payment_row("challenge.revoked", user, revoked, T0)))
    assert r is not None and r.kind == rules.CHALLENGE_REVOKED and r.body.endswith("(refund).")


@pytest.mark.parametrize(
    "payload",
    [
        {},  # nothing at all: the partition key still names the user
        {"amount": ["not", "text"], "currency": 3.5},  # wrong types are left out, not an error
        {"amount": True},
    ],
)
def test_a_payment_payload_of_an_unknown_shape_is_read_for_what_it_has(payload: dict[str, Any]) -> None:
    d = draft_for(envelope(payment_row("payment.succeeded", "user-9", payload, T0)))
    assert d is not None and d.body == "We received your payment on 2026-01-01T00:00:00Z." and d.user_id == "user-9"


def test_payment_events_without_a_user_or_of_other_types_notify_nobody() -> None:
    row = payment_row("payment.succeeded", "x", {}, T0)
    row["partition_key"] = None
    assert draft_for(envelope(row)) is None
    assert draft_for(envelope(payment_row("payment.failed", "user-9", {"reason": "declined"}, T0))) is None
    assert draft_for(envelope(payment_row("payment.mystery", "user-9", {}, T0))) is None


def test_ids_are_derived_from_the_event() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert rules.notification_id(a) == rules.notification_id(a) != rules.notification_id(b)
    n = rules.notification_id(a)
    assert rules.delivery_id(n, "email", "x@example.com") == rules.delivery_id(n, "email", "x@example.com")
    assert rules.delivery_id(n, "email", "x@example.com") != rules.delivery_id(n, "webhook", "x@example.com")
    assert uuid.UUID(n).version == 5


def test_quoted_fields_are_one_line_so_a_title_cannot_inject_an_e_mail_header() -> None:
    payload = {
        "program": "ftmo\r\nBcc: victim@example.com",
        "account_size": "10000",
        "amount": "1\n0",
        "currency": "eur",
    }
    d = draft_for(envelope(payment_row("challenge.revoked", "user-9", payload, T0)))
    assert d is not None and "\n" not in d.body and "\r" not in d.body and "ftmo Bcc: victim@example.com" in d.body
    assert all("\n" not in str(v) for v in d.data.values())
