"""Every outbox row the platform writes carries its typed event (SQLite and PostgreSQL): a unique ``event_id``, the
event's ``version``, its family (``stream``: orders, accounts, challenges, users, admin — the topic's family), the
account (the user for user events, the instrument or program for admin events) as the partition key and its times;
an order event's id and times are the broker's event's, as the WebSocket document says.

Every state-changing action of a user is written with the change, naming its ``actor`` (the user id who acted) for the
audit trail: opening an account, taking a challenge, submitting and cancelling an order (an API key's user), a risk
manager's limits, account and instrument halts, a program defined."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from smart_trader.compliance import store as audit_store
from smart_trader.db.outbox import STREAMS, outbox
from smart_trader.gateway.access import Role
from smart_trader.notifications import rules
from smart_trader.workers.envelope import from_row
from tests.app.conftest import Harness
from tests.app.security_support import api_key, bearer, login, make_user, write
from tests.app.test_access_rules import custom_program

V1 = "/api/v1"
FAR = {"side": "buy", "type": "limit", "qty": "0.001", "limit_price": "1000"}  # far below the market: it rests


def _rows(platform: Harness, *event_types: str) -> list[Any]:
    """The outbox rows of ``event_types``, in id order."""
    q = select(outbox).where(outbox.c.event_type.in_(event_types)).order_by(outbox.c.id)
    return write(platform, lambda c: list(c.execute(q)))


def _one(platform: Harness, event_type: str, partition_key: str) -> tuple[Any, dict[str, Any]]:
    """The single outbox row of ``event_type`` for ``partition_key`` and its payload."""
    [row] = [r for r in _rows(platform, event_type) if r.partition_key == partition_key]
    return row, json.loads(row.payload)


def _me(platform: Harness, headers: dict[str, str]) -> str:
    r = platform.client.get(f"{V1}/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_every_outbox_row_carries_its_typed_event(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice)
    platform.push_trades(5)
    platform.settle()
    order = platform.order(alice, acct, side="buy", type="market", qty="0.001")
    platform.wait_status(alice, acct, order["id"], "accepted")
    platform.push_trades(1)
    platform.wait_status(alice, acct, order["id"], "filled")
    platform.push_trades(3)
    platform.settle()

    def rows(conn: object) -> list[object]:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))  # type: ignore[attr-defined]

    stored = []
    for _ in range(100):  # the account event follows the fill's batch
        stored = write(platform, rows)
        if {"order.submitted", "order.accepted", "order.fill", "account.updated"} <= {r.event_type for r in stored}:
            break
        platform.settle()
    kinds = {r.event_type for r in stored}
    assert {"order.submitted", "order.accepted", "order.fill", "account.updated"} <= kinds, kinds
    assert len({r.event_id for r in stored}) == len(stored)  # unique
    users = [r for r in stored if r.stream == "users"]  # alice's registration and login, for the audit trail
    assert [r.event_type for r in users] == ["user.registered", "user.login"]
    assert all(json.loads(r.payload)["actor"] == r.partition_key for r in users)
    alice_id = users[0].partition_key
    [opened] = [r for r in stored if r.event_type == "account.opened"]
    assert (opened.stream, opened.partition_key, opened.topic) == ("accounts", acct, f"accounts.{acct}")
    body = json.loads(opened.payload)
    assert body["actor"] == body["user_id"] == alice_id and body["account_id"] == acct
    assert (body["currency"], body["starting_balance"], body["account_type"]) == ("USDT", "100000", "cash")
    [submitted] = [r for r in stored if r.event_type == "order.submitted"]
    assert json.loads(submitted.payload)["actor"] == alice_id
    for r in stored:
        assert r.event_id and r.version == 1 and r.stream in STREAMS and r.stream == r.topic.split(".")[0]
        if r.stream == "users":
            continue
        assert r.partition_key == acct and r.ts_event is not None and r.ts_init is not None
        payload = json.loads(r.payload)
        if r.event_type in ("order.accepted", "order.fill"):
            assert r.ts_event == payload["ts_event"]  # the broker's event time (market clock)


def test_an_order_submitted_with_an_api_key_and_its_cancel_name_the_keys_user(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    alice_id = _me(platform, alice)
    acct = platform.account(alice)
    bot = {"X-API-Key": api_key(platform, alice)["key"]}
    platform.push_trades(5)
    platform.settle()
    order = platform.order(bot, acct, **FAR)
    platform.wait_status(alice, acct, order["id"], "accepted")

    r = platform.client.delete(f"{V1}/accounts/{acct}/orders/{order['id']}", headers=bot)

    assert r.status_code in (200, 202), r.text
    submitted, body = _one(platform, "order.submitted", acct)
    assert submitted.stream == "orders" and body["actor"] == alice_id and body["order_id"] == order["id"]
    cancel, body = _one(platform, "order.cancel_requested", acct)
    assert (cancel.stream, cancel.topic) == ("orders", f"orders.{acct}")
    assert body["actor"] == alice_id and body["order_id"] == order["id"]
    assert body["type"] == "order" and body["event"] == "cancel_requested" and body["order"]["cancel_requested"]
    # a cancel refused (the order is closed now) changes nothing and records nothing
    platform.wait_status(alice, acct, order["id"], "canceled")
    r = platform.client.delete(f"{V1}/accounts/{acct}/orders/{order['id']}", headers=alice)
    assert r.status_code == 409 and len(_rows(platform, "order.cancel_requested")) == 1


def test_taking_a_challenge_records_its_account_and_its_start_which_notify_nobody(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    alice_id = _me(platform, alice)

    r = platform.client.post(f"{V1}/challenges", headers=alice, json={"program": "ftmo-2step", "account_size": "10000"})

    assert r.status_code == 201, r.text
    challenge_id, acct = r.json()["id"], r.json()["account_id"]
    opened, body = _one(platform, "account.opened", acct)
    assert opened.stream == "accounts" and body["actor"] == alice_id and body["account_type"] == "margin"
    assert body["starting_balance"] == "10000"
    started, body = _one(platform, "challenge.started", acct)
    assert (started.stream, started.topic) == ("challenges", f"challenges.{acct}")
    assert body["actor"] == body["user_id"] == alice_id and body["challenge_id"] == challenge_id
    assert (body["program"], body["account_size"], body["phase_index"]) == ("ftmo-2step", "10000", 0)
    # the consumers of stream challenges pass it by: no notification, no status for the analytics projection
    event = from_row(started)
    assert rules.challenge_kind(event) is None
    assert rules.draft_for(event, rules.ChallengeContext(alice_id)) is None
    assert "challenge" not in body and "event" not in body and "data" not in body


def test_a_risk_managers_controls_and_a_program_defined_are_recorded_with_the_risk_manager(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice)
    rita_id = make_user(platform, "rita@example.com", Role.RISK_MANAGER)
    rita = bearer(login(platform, "rita@example.com")["access_token"])
    btc = {"symbol": "BTC/USDT", "venue": "BINANCE"}
    iid = "BTC/USDT.BINANCE"

    steps = [
        platform.client.put(f"{V1}/accounts/{acct}/limits", headers=rita, json={"max_order_quantity": "0.5"}),
        platform.client.post(f"{V1}/accounts/{acct}/halt", headers=rita, json={"reason": "margin call"}),
        platform.client.post(f"{V1}/accounts/{acct}/resume", headers=rita),
        platform.client.post(f"{V1}/risk/instrument-halts", headers=rita, json={**btc, "reason": "outage"}),
        platform.client.post(f"{V1}/risk/instrument-halts/resume", headers=rita, json=btc),
        platform.client.post(f"{V1}/risk/instrument-halts/resume", headers=rita, json=btc),  # not halted: no change
        platform.client.post(f"{V1}/challenges/programs", headers=rita, json=custom_program("firm-x-1step")),
    ]

    assert [r.status_code for r in steps] == [200, 200, 200, 200, 200, 200, 201], [r.text for r in steps]
    for event_type, stream, key in [
        ("risk.limits_set", "accounts", acct),
        ("risk.account_halted", "accounts", acct),
        ("risk.account_resumed", "accounts", acct),
        ("risk.instrument_halted", "admin", iid),
        ("risk.instrument_resumed", "admin", iid),
        ("challenge.program_defined", "admin", "firm-x-1step"),
    ]:
        row, body = _one(platform, event_type, key)
        assert row.stream == stream and row.stream == row.topic.split(".")[0], event_type
        assert body["actor"] == rita_id, event_type
    assert _one(platform, "risk.limits_set", acct)[1]["max_order_quantity"] == "0.5"
    assert _one(platform, "risk.account_halted", acct)[1]["reason"] == "margin call"
    assert _one(platform, "risk.instrument_halted", iid)[1]["reason"] == "outage"
    assert _one(platform, "challenge.program_defined", "firm-x-1step")[1]["definition"]["id"] == "firm-x-1step"
    # the audit consumer appends them (stream admin included) with the actor and subject
    wanted = {"risk.limits_set": f"accounts:{acct}", "risk.instrument_resumed": f"admin:{iid}",
              "challenge.program_defined": "admin:firm-x-1step"}  # fmt: skip
    deadline = time.monotonic() + 15
    while True:
        audited = write(platform, lambda c: [r for r in audit_store.records(c) if r.action in wanted])
        if len(audited) == len(wanted):
            break
        assert time.monotonic() < deadline, f"audited only {[r.action for r in audited]}"
        time.sleep(0.05)
    assert {r.action: (r.actor, r.subject) for r in audited} == {a: (rita_id, s) for a, s in wanted.items()}
