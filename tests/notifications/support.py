"""Test kit of the notification tests: domain events as the outbox carries them, a database with users and
challenges, a real local SMTP server (``aiosmtpd``) and a real local HTTP receiver of webhooks.

Challenge events are the ``challenges/events.py`` dataclasses in the outbox row ``challenges/persist.py`` writes
(:func:`challenge_row`); payment events have the payload ``payments/grants.py`` writes (:func:`payment_row`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd import smtp as aiosmtp
from aiosmtpd.controller import Controller
from sqlalchemy import Connection, Engine, insert, select

from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.events import ChallengeEvent, new_event_id, to_payload
from smart_trader.challenges.program import programs
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway import users
from smart_trader.gateway.hub import challenges_topic
from smart_trader.notifications import webhooks
from smart_trader.notifications.consumer import NotificationConsumer
from smart_trader.workers.consumer import apply
from smart_trader.workers.envelope import Envelope, from_row

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z, ns


# -- events ---------------------------------------------------------------------------------------------------------


def challenge_row(event: ChallengeEvent, challenge_id: str, account_id: str) -> dict[str, Any]:
    """The outbox row ``ChallengeBinder.collect`` writes for ``event`` (challenges/persist.py)."""
    topic = challenges_topic(account_id)
    payload = {
        "type": "challenge",
        "topic": topic,
        "event": event.event_type,
        "account_id": account_id,
        "challenge_id": challenge_id,
        "ts_event": event.ts_event,
        "data": to_payload(event),
        "challenge": {"status": "active"},
    }
    return event_row(
        topic,
        f"challenge.{event.event_type}",
        payload,
        event.ts_init,
        event_id=event.event_id,
        version=event.version,
        stream="challenges",
        partition_key=account_id,
        ts_event=event.ts_event,
        ts_init=event.ts_init,
    )


def payment_row(event_type: str, user_id: str, payload: dict[str, Any], ts: int) -> dict[str, Any]:
    """An outbox row of the ``payments`` stream as ``payments/grants.py`` writes it (user id as partition key)."""
    return event_row(
        f"payments.{user_id}", event_type, payload, ts, stream="payments", partition_key=user_id, ts_event=ts
    )


def receipt_payload(user_id: str, amount: str = "155.00", currency: str = "EUR") -> dict[str, Any]:
    """A ``payment.succeeded`` payload (the fields ``payments/grants.py`` fills)."""
    return {
        "actor": "stripe",
        "payment_id": str(uuid.uuid4()),
        "provider": "stripe",
        "provider_payment_id": "pi_3QExample",
        "provider_event_id": f"evt_{uuid.uuid4().hex[:24]}",
        "user_id": user_id,
        "amount": amount,
        "currency": currency,
        "program": "ftmo-2step",
        "account_size": "10000",
        "challenge_id": str(uuid.uuid4()),
    }


def store_events(conn: Connection, rows: list[dict[str, Any]]) -> list[Envelope]:
    """Insert outbox rows (as their writers do) and return them as the envelopes consumers get."""
    conn.execute(insert(outbox), rows)
    ids = [r["event_id"] for r in rows]
    stored = conn.execute(select(outbox).where(outbox.c.event_id.in_(ids)).order_by(outbox.c.id)).all()
    return [from_row(r) for r in stored]


def consume(engine: Engine, events: list[Envelope], consumer: NotificationConsumer | None = None) -> int:
    """Apply ``events`` to the notification consumer in one transaction (as a worker does); returns how many applied."""
    with engine.begin() as conn:
        return apply(conn, consumer or NotificationConsumer(email=True), events)


def base(ts: int, account_id: str, phase: str = "FTMO Challenge") -> dict[str, Any]:
    """The common fields of a challenge event at ``ts``."""
    return {"event_id": new_event_id(), "ts_event": ts, "ts_init": ts, "phase": phase, "account_id": account_id}


# -- a database with users and a challenge ----------------------------------------------------------------------------


@dataclass
class World:
    """Users (``ids``: name → id, e-mail ``<name>@example.com``) and alice's challenge and its account."""

    engine: Engine
    ids: dict[str, str] = field(default_factory=dict)
    challenge_id: str = ""
    account_id: str = ""


def make_world(engine: Engine, *names: str) -> World:
    """Register ``names`` (traders) and give the first an FTMO 2-Step challenge at 10,000 USDT."""
    w = World(engine)
    with engine.begin() as conn:
        for name in names:
            w.ids[name] = users.register(conn, f"{name}@example.com", "argon2-hash-not-used").id
        row = challenge_store.create_challenge(
            conn, w.ids[names[0]], programs()["ftmo-2step"], Decimal("10000"), "USDT"
        )
    w.challenge_id, w.account_id = str(row["id"]), str(row["account_id"])
    return w


# -- a real SMTP server ------------------------------------------------------------------------------------------------


class Inbox:
    """An ``aiosmtpd`` handler keeping every message the server accepted. ``refuse_rcpt``: how many of the next
    ``RCPT TO`` commands get ``refusal`` (default a temporary 451) before they are accepted again."""

    def __init__(self) -> None:
        self.messages: list[tuple[aiosmtp.Envelope, EmailMessage]] = []
        self.refuse_rcpt = 0
        self.refusal = "451 4.3.0 try again later"
        self.data_started = threading.Event()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: aiosmtp.SMTP,
        session: aiosmtp.Session,
        envelope: aiosmtp.Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.refuse_rcpt > 0:
            self.refuse_rcpt -= 1
            return self.refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: aiosmtp.SMTP, session: aiosmtp.Session, envelope: aiosmtp.Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 (a free port) with an :class:`Inbox`; yields (inbox, port)."""
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's controller cannot be started on port 0)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


# -- a real webhook receiver -------------------------------------------------------------------------------------------


@dataclass
class Received:
    """One webhook request as the receiver saw it: headers, raw body, and whether its signature verified."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None


class Receiver:
    """A real HTTP server on 127.0.0.1 verifying ``Smart-Trader-Signature`` with ``secret`` (set once the endpoint is
    registered) as a user's server would, answering ``statuses`` in turn (then 200)."""

    def __init__(self) -> None:
        self.secret = ""
        self.statuses: list[int] = []
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                error = None
                try:
                    webhooks.verify(receiver.secret, self.headers.get(webhooks.SIGNATURE_HEADER, ""), body)
                except webhooks.SignatureError as exc:
                    error = str(exc)
                receiver.received.append(Received(dict(self.headers.items()), body, error is None, error))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status if error is None else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/smart-trader"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- running the sender in a test ------------------------------------------------------------------------------------


class Clock:
    """A wall clock the test moves (ns UTC)."""

    def __init__(self, start: int = T0) -> None:
        self.ns = start

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * NS)


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run ``coro_fn()`` on a fresh event loop."""
    return asyncio.run(coro_fn())


# -- resources of a user on a running platform (tests/app/test_access_rules.py) -------------------------------------


def seed_notification(h: Any, user_id: str) -> str:
    """A notification of ``user_id`` on the running platform ``h`` (a ``tests.app.conftest.Harness``), made the way
    every notification is: a ``payment.succeeded`` event in the outbox, applied to the notification consumer.
    Returns its id."""
    from smart_trader.notifications.rules import notification_id
    from tests.app.security_support import write

    row = payment_row("payment.succeeded", user_id, receipt_payload(user_id), time.time_ns())

    def job(conn: Connection) -> None:
        apply(conn, NotificationConsumer(), store_events(conn, [row]))

    write(h, job)
    return notification_id(row["event_id"])


def webhook_endpoint(h: Any, headers: dict[str, str]) -> str:
    """Register a webhook endpoint (a public https URL) through the API as the caller of ``headers``; its id."""
    r = h.client.post("/api/v1/webhook-endpoints", headers=headers, json={"url": "https://hooks.example.com/in"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
