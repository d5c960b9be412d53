"""Notifications on the running platform (SQLite and PostgreSQL), from a REAL breach: a leveraged long on real recorded
BTC/USDT trades breaks FTMO 2-Step's daily loss (as in ``tests/app/test_challenges_live.py``); the notification
consumer, applied to the outbox events the runtime wrote, makes the breach notification, which then

- is in the trader's ``GET /api/v1/notifications`` (newest first, paginated, ``unread`` filter) and nobody else's;
  ``POST .../read`` marks it, someone else's is 404;
- reaches the trader's WebSocket channel ``notifications`` through the outbox relay;
- is e-mailed through a real local SMTP server (``aiosmtpd``) and POSTed, signed, to the webhook endpoint the trader
  registered through the API (a real local HTTP server verifying the signature with the secret the API returned once).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from smart_trader.core.values import from_raw
from smart_trader.db.outbox import outbox
from smart_trader.notifications.consumer import NotificationConsumer
from smart_trader.notifications.sender import DeliverySender
from smart_trader.workers.consumer import apply
from smart_trader.workers.envelope import from_row
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import custom_platform, on_loop, poll, write, ws_json, ws_request
from tests.notifications.crash_sender import SENDER
from tests.notifications.support import Inbox, Receiver, smtp_server

D = Decimal
V1 = "/api/v1"
SIZE = D("10000")
FLOOR = D("9500.00")


@pytest.fixture(params=["sqlite", "postgres"])
def running(
    request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path
) -> Iterator[tuple[Harness, Inbox, Receiver]]:
    """The platform with e-mail on (a real local SMTP server) and webhooks to loopback allowed, and a receiver."""
    with smtp_server() as (inbox, port), Receiver() as receiver:
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_from": SENDER,
            "smtp_starttls": False,
            "webhook_allow_loopback": True,
        }
        with custom_platform(request, tmp_path, shared_data, request.param, **settings) as h:
            yield h, inbox, receiver


def _breach(h: Harness, alice: dict[str, str]) -> tuple[str, str]:
    """Take a challenge and lose its daily loss on real trades; returns (challenge id, account id) once failed."""
    r = h.client.post(
        f"{V1}/challenges", headers=alice, json={"program": "ftmo-2step", "account_size": str(SIZE), "currency": "USDT"}
    )
    assert r.status_code == 201, r.text
    cid, acct = r.json()["id"], r.json()["account_id"]
    h.push_trades(20)
    h.settle()
    pp = h.instrument.price_precision
    entry = from_raw(h.trades[h.cursor].price_raw, pp)
    ahead = [from_raw(t.price_raw, pp) for t in h.trades[h.cursor + 1 : h.cursor + 3000]]
    qty = (D(650) / (entry - min(ahead))).quantize(h.instrument.lot_size, rounding=ROUND_UP)
    order = h.order(alice, acct, side="buy", type="market", qty=str(qty))
    h.wait_status(alice, acct, order["id"], "accepted")
    h.push_trades(1)
    h.wait_status(alice, acct, order["id"], "filled")
    fills = h.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()
    price, cash = D(fills[0]["price"]), SIZE - D(fills[0]["commission"])
    k = next(i for i, p in enumerate(ahead) if (cash + qty * (p - price)).quantize(D("0.01")) < FLOOR)
    h.push_trades(k + 1)
    poll(lambda: h.client.get(f"{V1}/challenges/{cid}", headers=alice).json()["status"] == "failed", "the breach")
    return cid, acct


def _consumed(h: Harness, timeout: float = 15.0) -> int:
    """Wait until the platform's own notification consumer (``up`` runs the workers in process) has consumed every
    challenge and payment event in the outbox; returns how many it consumed."""
    from sqlalchemy import func

    from smart_trader.workers.tables import consumed

    def counts(c: Any) -> tuple[int, int]:
        wanted = c.execute(select(func.count()).where(outbox.c.stream.in_(("challenges", "payments")))).scalar_one()
        done = c.execute(select(func.count()).where(consumed.c.consumer == "notifications")).scalar_one()
        return int(wanted), int(done)

    deadline = time.monotonic() + timeout
    while True:
        wanted, done = on_loop(h, h.platform.read, counts)
        if done >= wanted:
            return done
        assert time.monotonic() < deadline, f"the notification consumer consumed {done} of {wanted} events"
        time.sleep(0.05)


def _apply_consumer(h: Harness) -> int:
    """Apply the notification consumer to every challenge and payment event in the outbox, as a worker does."""
    rows = on_loop(h, h.platform.read, lambda c: c.execute(select(outbox).order_by(outbox.c.id)).all())
    events = [from_row(r) for r in rows if r.stream in ("challenges", "payments")]
    consumer = NotificationConsumer.from_settings(h.settings)
    applied: int = write(h, lambda c: apply(c, consumer, events))
    return applied


def _page(h: Harness, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = h.client.get(f"{V1}/notifications", headers=headers, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_real_breach_notifies_in_app_over_the_websocket_by_e_mail_and_by_signed_webhook(
    running: tuple[Harness, Inbox, Receiver],
) -> None:
    h, inbox, receiver = running
    alice, mallory = h.user("alice@example.com"), h.user("mallory@example.com")
    # alice registers a webhook endpoint for breaches; the secret is in this answer only
    r = h.client.post(
        f"{V1}/webhook-endpoints", headers=alice, json={"url": receiver.url, "kinds": ["challenge_breached"]}
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()
    receiver.secret = endpoint["secret"]
    listed = h.client.get(f"{V1}/webhook-endpoints", headers=alice).json()
    assert listed == [{k: endpoint[k] for k in ("id", "url", "kinds", "created_ns")}]  # never the secret again
    assert h.client.get(f"{V1}/webhook-endpoints", headers=mallory).json() == []
    assert_problem(h.client.delete(f"{V1}/webhook-endpoints/{endpoint['id']}", headers=mallory), 404)

    token = alice["Authorization"].removeprefix("Bearer ")
    with h.client.websocket_connect(f"/ws?token={token}") as ws:
        reply = ws_request(ws, {"op": "subscribe", "channel": "notifications"})
        assert reply["type"] == "subscribed" and reply["topic"].startswith("notifications.")
        _cid, acct = _breach(h, alice)
        assert _consumed(h) > 0
        deadline = time.monotonic() + 10
        live = None
        while live is None:
            m = ws_json(ws, max(0.1, deadline - time.monotonic()))
            if m.get("type") == "notification" and m["notification"]["kind"] == "challenge_breached":
                live = m["notification"]
    assert live["data"]["account_id"] == acct and live["data"]["rule"] == "daily_loss"
    assert _apply_consumer(h) == 0  # applied again: nothing new

    page = _page(h, alice)
    kinds = [n["kind"] for n in page["items"]]
    assert "challenge_breached" in kinds and set(kinds) <= {"challenge_breached", "challenge_warning"}
    times = [n["created_ns"] for n in page["items"]]
    assert times == sorted(times, reverse=True) and page["unread"] == len(page["items"])
    breach = next(n for n in page["items"] if n["kind"] == "challenge_breached")
    assert breach == live
    assert "daily loss" in breach["title"] and FLOOR.to_eng_string() in breach["body"]
    assert _page(h, mallory) == {"items": [], "unread": 0, "next_cursor": None}

    # read marks: own only
    assert_problem(h.client.post(f"{V1}/notifications/{breach['id']}/read", headers=mallory), 404)
    r = h.client.post(f"{V1}/notifications/{breach['id']}/read", headers=alice)
    assert r.status_code == 200 and r.json()["read_ns"] is not None
    again = h.client.post(f"{V1}/notifications/{breach['id']}/read", headers=alice).json()
    assert again["read_ns"] == r.json()["read_ns"]
    unread = _page(h, alice, unread="true")
    assert breach["id"] not in [n["id"] for n in unread["items"]] and unread["unread"] == page["unread"] - 1

    # the delivery loop: one e-mail to alice, one signed POST to her endpoint
    sender = DeliverySender.from_settings(h.settings, h.platform.writer)
    try:
        poll(lambda: on_loop(h, sender.run_once) == 0 and inbox.messages and receiver.received, "the deliveries")
    finally:
        on_loop(h, sender.stop)
    mails = [(e, m) for e, m in inbox.messages if m["Subject"] == breach["title"]]
    assert len(mails) == 1 and mails[0][0].rcpt_tos == ["alice@example.com"]
    assert breach["id"] in mails[0][1].get_content()
    posted = [r for r in receiver.received if orjson.loads(r.body)["id"] == breach["id"]]
    assert len(posted) == 1 and posted[0].verified, posted
    assert {r.headers["Smart-Trader-Event-Id"] for r in receiver.received} == {breach["id"]}  # breaches only

    # deleting the endpoint: gone from the list, someone else's or a second delete is 404
    r = h.client.delete(f"{V1}/webhook-endpoints/{endpoint['id']}", headers=alice)
    assert r.status_code == 200 and r.json()["id"] == endpoint["id"]
    assert h.client.get(f"{V1}/webhook-endpoints", headers=alice).json() == []
    assert_problem(h.client.delete(f"{V1}/webhook-endpoints/{endpoint['id']}", headers=alice), 404)


def test_pages_preferences_and_endpoint_rules(running: tuple[Harness, Inbox, Receiver]) -> None:
    h, _inbox, receiver = running
    alice = h.user("alice@example.com")
    from smart_trader.notifications.rules import notification_id
    from tests.notifications.support import payment_row, receipt_payload

    me = h.client.get(f"{V1}/auth/me", headers=alice).json()["id"]
    rows = [
        payment_row("payment.succeeded", me, receipt_payload(me, amount=f"{100 + i}.00"), 10**18 + i * 10**9)
        for i in range(5)
    ]
    write(h, lambda c: c.execute(outbox.insert(), rows))
    _consumed(h)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = _page(h, alice, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [notification_id(r["event_id"]) for r in reversed(rows)]  # newest first, each once
    assert_problem(h.client.get(f"{V1}/notifications", headers=alice, params={"cursor": "bogus"}), 422, "cursor")
    assert_problem(h.client.get(f"{V1}/notifications", headers=alice, params={"limit": 1000}), 422)

    prefs = h.client.get(f"{V1}/notifications/preferences", headers=alice).json()
    assert prefs["email"] == ["challenge_breached", "challenge_locked", "challenge_passed", "payment_receipt"]
    r = h.client.put(f"{V1}/notifications/preferences", headers=alice, json={"email": ["challenge_warning"]})
    assert r.status_code == 200 and r.json()["email"] == ["challenge_warning"]
    assert_problem(h.client.put(f"{V1}/notifications/preferences", headers=alice, json={"email": ["spam"]}), 422)

    for url, words in (
        ("http://hooks.example.com/x", "https://"),
        ("https://169.254.169.254/", "not a public"),
        ("https://intranet/x", "intranet"),
        ("https://10.1.2.3/x", "not a public"),
    ):
        assert_problem(h.client.post(f"{V1}/webhook-endpoints", headers=alice, json={"url": url}), 422, words)
    for i in range(10):
        r = h.client.post(f"{V1}/webhook-endpoints", headers=alice, json={"url": f"{receiver.url}/{i}"})
        assert r.status_code == 201, r.text
    assert_problem(h.client.post(f"{V1}/webhook-endpoints", headers=alice, json={"url": receiver.url}), 409, "10")
