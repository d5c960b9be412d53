"""Signed webhook deliveries to a REAL local HTTP server that verifies the signature as a user's server would, on
SQLite and PostgreSQL: the JSON arrives signed with the endpoint's secret and carries the notification's id; a failing
endpoint is retried with backoff and given up after N attempts; a deleted endpoint's deliveries are cancelled; an
endpoint whose address is not allowed is never called."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Engine, select

from smart_trader.challenges.events import ChallengeBreached
from smart_trader.db.writer import BatchWriter
from smart_trader.notifications import rules, store, webhooks
from smart_trader.notifications.consumer import NotificationConsumer
from smart_trader.notifications.sender import DeliverySender
from smart_trader.notifications.tables import notification_deliveries, webhook_endpoints
from smart_trader.notifications.webhooks import SecretBox
from tests.notifications.support import (
    NS,
    T0,
    Clock,
    Receiver,
    base,
    challenge_row,
    consume,
    make_world,
    run,
    store_events,
)

D = Decimal
KEYS = ["k" * 40]


def _setup(engine: Engine, url: str, secret: str, kinds: list[str] | None = None) -> tuple[str, str]:
    """Alice registers an endpoint at ``url``; her challenge breaches. Returns (notification id, delivery id)."""
    w = make_world(engine, "alice")
    with engine.begin() as conn:
        store.create_endpoint(conn, "ep-1", w.ids["alice"], url, kinds, SecretBox(KEYS).encrypt(secret), T0, 10)
    e = ChallengeBreached(
        **base(T0, w.account_id),
        rule="max_loss",
        kind="hard",
        floor=D("9000.00"),
        equity=D("8990.00"),
        balance=D("9100.00"),
    )
    with engine.begin() as conn:
        events = store_events(conn, [challenge_row(e, w.challenge_id, w.account_id)])
    consume(engine, events, NotificationConsumer(email=False))  # webhooks only
    nid = rules.notification_id(events[0].event_id)
    return nid, rules.delivery_id(nid, "webhook", "ep-1")


def _sender(writer: BatchWriter, clock: Clock, **options: Any) -> DeliverySender:
    return DeliverySender(writer, SecretBox(KEYS), None, allow_loopback=True, now_ns=clock, **options)


def _delivery(engine: Engine, delivery: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(notification_deliveries).where(notification_deliveries.c.id == delivery)).one()


def test_the_notification_is_posted_signed_with_the_endpoints_secret(engine: Engine, writer: BatchWriter) -> None:
    secret = webhooks.new_secret()
    with Receiver() as hook:
        hook.secret = secret
        nid, delivery = _setup(engine, hook.url, secret)
        clock = Clock()
        clock.ns = int(time.time()) * NS  # the receiver checks the timestamp against its own clock
        assert run(_sender(writer, clock).run_once) == 1
    (got,) = hook.received
    assert got.verified, got.error
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["smart-trader-event-id"] == nid and headers["smart-trader-delivery-id"] == delivery
    assert headers["host"] == f"127.0.0.1:{hook.port}"
    body = orjson.loads(got.body)
    assert body["id"] == nid and body["kind"] == "challenge_breached"
    assert body["notification"]["title"] == "Challenge failed: maximum loss rule broken"
    assert "equity 8990.00 against the floor 9000.00" in body["notification"]["body"]
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts) == ("sent", 1)


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(engine: Engine, writer: BatchWriter) -> None:
    secret = webhooks.new_secret()
    with Receiver() as hook:
        hook.secret = secret
        hook.statuses = [500, 503]
        _nid, delivery = _setup(engine, hook.url, secret)
        clock = Clock(int(time.time()) * NS)
        sender = _sender(writer, clock, backoff_base_s=10)
        assert run(sender.run_once) == 1
        row = _delivery(engine, delivery)
        assert (row.status, row.attempts, row.next_attempt_ns) == ("pending", 1, clock.ns + 10 * NS)
        assert row.last_error == "the endpoint answered 500"
        clock.advance(10)
        assert run(sender.run_once) == 1
        assert _delivery(engine, delivery).next_attempt_ns == clock.ns + 20 * NS
        clock.advance(20)
        assert run(sender.run_once) == 1
        assert [r.verified for r in hook.received] == [True, True, True]  # every attempt signed anew
        assert len({r.headers["Smart-Trader-Signature"] for r in hook.received}) == 3
        assert len({r.headers["Smart-Trader-Event-Id"] for r in hook.received}) == 1  # one event id to dedupe on
    assert (_delivery(engine, delivery).status, _delivery(engine, delivery).attempts) == ("sent", 3)
    # an endpoint that never answers 2xx: failed after max_attempts
    with Receiver() as down:
        down.secret = secret
        down.statuses = [500] * 10
        with engine.begin() as conn:
            conn.execute(
                notification_deliveries.update()
                .where(notification_deliveries.c.id == delivery)
                .values(status="pending", attempts=0, next_attempt_ns=0)
            )
            conn.execute(webhook_endpoints.update().values(url=down.url))
        sender = _sender(writer, clock, max_attempts=3, backoff_base_s=1)
        for _ in range(4):
            run(sender.run_once)
            clock.advance(5)  # past the backoff (1 s, 2 s), within the receiver's 300 s timestamp tolerance
        assert len(down.received) == 3
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "the endpoint answered 500")


def test_a_redirect_is_not_followed(engine: Engine, writer: BatchWriter) -> None:
    secret = webhooks.new_secret()
    with Receiver() as hook:
        hook.secret = secret
        hook.statuses = [307]
        _nid, delivery = _setup(engine, hook.url, secret)
        assert run(_sender(writer, Clock(int(time.time()) * NS)).run_once) == 1
        assert len(hook.received) == 1
    row = _delivery(engine, delivery)
    assert row.status == "pending" and row.last_error == "the endpoint answered 307"


def test_deleting_the_endpoint_cancels_what_it_was_still_owed(engine: Engine, writer: BatchWriter) -> None:
    with Receiver() as hook:
        _nid, delivery = _setup(engine, hook.url, "whsec_x")
        with engine.begin() as conn:
            owner = store.get_endpoint(conn, "ep-1")
            assert owner is not None and store.delete_endpoint(conn, "someone-else", "ep-1") is None
            assert store.delete_endpoint(conn, owner.user_id, "ep-1") is not None
        assert run(_sender(writer, Clock()).run_once) == 0
        assert hook.received == []
    row = _delivery(engine, delivery)
    assert (row.status, row.last_error) == ("cancelled", "the endpoint was deleted")


def test_an_endpoint_on_a_loopback_address_is_never_called_without_the_setting(
    engine: Engine, writer: BatchWriter
) -> None:
    """The URL was accepted while loopback was allowed (tests); a sender without the setting refuses it at delivery:
    the stored URL is checked again, and so is every address its host resolves to."""
    with Receiver() as hook:
        _nid, delivery = _setup(engine, hook.url, "whsec_x")
        sender = DeliverySender(writer, SecretBox(KEYS), None, allow_loopback=False, now_ns=Clock())
        assert run(sender.run_once) == 1
        assert hook.received == []
    row = _delivery(engine, delivery)
    assert row.status == "failed" and "URL no longer allowed" in row.last_error


def test_only_the_kinds_the_endpoint_wants_are_posted(engine: Engine, writer: BatchWriter) -> None:
    with Receiver() as hook:
        _setup(engine, hook.url, "whsec_x", kinds=[rules.PAYMENT_RECEIPT])
        assert run(_sender(writer, Clock()).run_once) == 0
        assert hook.received == []
