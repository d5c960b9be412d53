"""The notification consumer applied to real outbox events on SQLite and PostgreSQL: each event that notifies makes
one notification for the challenge's (or payment's) user, one outbox document on ``notifications.<user>`` and the
deliveries the user asked for — idempotent by event id, and a rebuild from the same events gives the same rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from smart_trader.challenges.events import ChallengeBreached, ChallengePassed, ChallengeWarning, DayClosed
from smart_trader.db.outbox import outbox
from smart_trader.gateway.tables import users
from smart_trader.notifications import rules, store
from smart_trader.notifications.consumer import NotificationConsumer
from smart_trader.notifications.tables import notification_deliveries, notifications, webhook_endpoints
from smart_trader.workers.envelope import Envelope
from smart_trader.workers.tables import consumed
from tests.notifications.support import (
    NS,
    T0,
    World,
    base,
    challenge_row,
    consume,
    make_world,
    payment_row,
    receipt_payload,
    store_events,
)

D = Decimal


def _events(w: World) -> list[Envelope]:
    """A day of alice's challenge: a closed day, an 80 % warning, a breach; and a payment receipt."""
    acct = w.account_id
    rows = [
        challenge_row(
            DayClosed(
                **base(T0, acct),
                day="2026-01-01",
                pnl=D("0"),
                eod_balance=D("10000"),
                eod_equity=D("10000"),
                counted_trading_day=False,
                daily_floor=D("9500"),
                max_loss_floor=D("9000"),
            ),
            w.challenge_id,
            acct,
        ),
        challenge_row(
            ChallengeWarning(
                **base(T0 + NS, acct),
                rule="daily_loss",
                level=D("0.8"),
                room_used=D("0.8"),
                floor=D("9500.00"),
                value=D("9600.00"),
            ),
            w.challenge_id,
            acct,
        ),
        challenge_row(
            ChallengeBreached(
                **base(T0 + 2 * NS, acct),
                rule="daily_loss",
                kind="hard",
                floor=D("9500.00"),
                equity=D("9480.00"),
                balance=D("10000.00"),
            ),
            w.challenge_id,
            acct,
        ),
        payment_row("payment.succeeded", w.ids["alice"], receipt_payload(w.ids["alice"]), T0 + 3 * NS),
    ]
    with w.engine.begin() as conn:
        return store_events(conn, rows)


def _table(engine: Engine, table: Any, order: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(order))]


def test_challenge_and_payment_events_notify_the_challenges_user(engine: Engine) -> None:
    w = make_world(engine, "alice", "bob")
    events = _events(w)
    assert consume(engine, events) == 4  # every event of the two streams is consumed (the closed day: no notification)
    with engine.connect() as conn:
        inbox = store.notifications_of(conn, w.ids["alice"])
        assert store.notifications_of(conn, w.ids["bob"]) == []
        assert [n.kind for n in inbox] == [rules.PAYMENT_RECEIPT, rules.CHALLENGE_BREACHED, rules.CHALLENGE_WARNING]
        breach = inbox[1]
        assert breach.id == rules.notification_id(events[2].event_id) and breach.event_id == events[2].event_id
        assert breach.created_ns == T0 + 2 * NS and breach.read_ns is None
        assert breach.data["program"] == "FTMO Challenge 2-Step" and breach.data["phase"] == "FTMO Challenge"
        # one WebSocket document per notification, on the user's topic, stream notifications
        docs = conn.execute(select(outbox).where(outbox.c.stream == "notifications").order_by(outbox.c.id)).all()
        assert [d.event_id for d in docs] == [n.id for n in reversed(inbox)]
        assert {d.topic for d in docs} == {f"notifications.{w.ids['alice']}"}
        assert {d.partition_key for d in docs} == {w.ids["alice"]}
        # e-mail for the default kinds only (breach and receipt; not the warning)
        mails = conn.execute(select(notification_deliveries).order_by(notification_deliveries.c.notification_id))
        assert sorted((m.notification_id, m.channel, m.target, m.status) for m in mails) == sorted(
            (n.id, "email", "alice@example.com", "pending") for n in inbox if n.kind != rules.CHALLENGE_WARNING
        )


def test_an_event_applied_twice_or_redelivered_changes_nothing(engine: Engine) -> None:
    w = make_world(engine, "alice")
    events = _events(w)
    consume(engine, events)
    before = [_table(engine, t, t.c.id) for t in (notifications, notification_deliveries)]
    docs = _table(engine, outbox, outbox.c.id)
    assert consume(engine, events) == 0  # the consumer's marks: skipped
    # the marks lost (a rebuild from scratch of the consumer), the notifications kept: the rows are found, not remade
    with engine.begin() as conn:
        conn.execute(delete(consumed).where(consumed.c.consumer == "notifications"))
    assert consume(engine, events) == 4
    assert [_table(engine, t, t.c.id) for t in (notifications, notification_deliveries)] == before
    assert _table(engine, outbox, outbox.c.id) == docs


def test_a_rebuild_from_the_same_events_gives_the_same_notifications(engine: Engine) -> None:
    w = make_world(engine, "alice")
    events = _events(w)
    consume(engine, events[:2])
    consume(engine, events[2:])  # in two batches, as a worker might
    first = _table(engine, notifications, notifications.c.id)
    with engine.begin() as conn:  # the projection dropped (deliveries and sent documents stay, as they were sent)
        conn.execute(delete(notifications))
        conn.execute(delete(consumed).where(consumed.c.consumer == "notifications"))
    consume(engine, list(reversed(events)))  # another replica, another order: the same rows
    assert _table(engine, notifications, notifications.c.id) == first and len(first) == 3


def test_e_mail_follows_the_users_choice_and_webhooks_their_endpoints_kinds(engine: Engine) -> None:
    w = make_world(engine, "alice")
    alice = w.ids["alice"]
    with engine.begin() as conn:
        store.set_email_kinds(conn, alice, [rules.CHALLENGE_WARNING], T0)
        for i, kinds in enumerate(([rules.CHALLENGE_BREACHED], None)):
            store.create_endpoint(conn, f"ep-{i}", alice, f"https://hooks{i}.example.com/x", kinds, "sealed", T0, 10)
    events = _events(w)
    consume(engine, events)
    by_kind: dict[str, set[tuple[str, str]]] = {}
    with engine.connect() as conn:
        for n in store.notifications_of(conn, alice):
            by_kind[n.kind] = {(d.channel, d.target) for d in store.deliveries_of(conn, n.id)}
    assert by_kind == {
        rules.CHALLENGE_WARNING: {("email", "alice@example.com"), ("webhook", "ep-1")},
        rules.CHALLENGE_BREACHED: {("webhook", "ep-0"), ("webhook", "ep-1")},
        rules.PAYMENT_RECEIPT: {("webhook", "ep-1")},
    }


def test_no_e_mail_when_e_mail_is_off_and_no_delivery_for_a_disabled_user(engine: Engine) -> None:
    w = make_world(engine, "alice")
    events = _events(w)
    consume(engine, events[:3], NotificationConsumer(email=False))
    with engine.connect() as conn:
        assert len(store.notifications_of(conn, w.ids["alice"])) == 2
        assert conn.execute(select(notification_deliveries)).all() == []
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == w.ids["alice"]).values(disabled_ns=T0))
        conn.execute(
            insert(webhook_endpoints),
            [
                {
                    "id": "ep",
                    "user_id": w.ids["alice"],
                    "url": "https://a.example.com",
                    "kinds": None,
                    "secret": "sealed",
                    "created_ns": T0,
                }
            ],
        )
    consume(engine, events[3:])
    with engine.connect() as conn:
        assert len(store.notifications_of(conn, w.ids["alice"])) == 3  # still in the inbox
        assert conn.execute(select(notification_deliveries)).all() == []


def test_a_pass_names_the_next_phase_the_promotion_opened(engine: Engine) -> None:
    w = make_world(engine, "alice")
    passed = ChallengePassed(
        **base(T0, w.account_id), balance=D("10810.00"), equity=D("10810.00"), trading_days=4, best_day_share=None
    )
    with engine.begin() as conn:
        events = store_events(conn, [challenge_row(passed, w.challenge_id, w.account_id)])
    consume(engine, events)
    with engine.connect() as conn:
        (n,) = store.notifications_of(conn, w.ids["alice"])
    assert n.kind == rules.CHALLENGE_PASSED and "The next phase, Verification, is open" in n.body


def test_events_of_unknown_challenges_users_or_shapes_are_consumed_without_notifying(engine: Engine) -> None:
    w = make_world(engine, "alice")
    ghost = ChallengeBreached(
        **base(T0, "no-such-account"), rule="daily_loss", kind="hard", floor=D("1"), equity=D("0"), balance=D("0")
    )
    rows = [
        challenge_row(ghost, "no-such-challenge", "no-such-account"),
        payment_row("payment.succeeded", "no-such-user", receipt_payload("no-such-user"), T0),
        payment_row("payment.refunded", w.ids["alice"], {"actor": "stripe", "amount": "155.00"}, T0),
        payment_row("payment.succeeded", w.ids["alice"], {"amount": {"nested": 1}, "currency": None}, T0),
    ]
    with engine.begin() as conn:
        events = store_events(conn, rows)
    assert consume(engine, events) == 4
    with engine.connect() as conn:
        (n,) = store.notifications_of(conn, w.ids["alice"])  # the last one: a receipt without an amount
        assert n.kind == rules.PAYMENT_RECEIPT and "payment on" in n.body
        assert conn.execute(select(notifications)).all().__len__() == 1
