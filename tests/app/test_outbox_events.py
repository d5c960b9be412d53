"""Every outbox row the platform writes carries its typed event (SQLite and PostgreSQL): a unique ``event_id``, the
event's ``version``, its family (``stream``: orders, accounts, challenges, users — the topic's family), the account
(the user for user events) as the partition key and its times; an order event's id and times are the broker's
event's, as the WebSocket document says."""

from __future__ import annotations

import json

from sqlalchemy import select

from smart_trader.db.outbox import STREAMS, outbox
from tests.app.conftest import Harness
from tests.app.security_support import write


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
    for r in stored:
        assert r.event_id and r.version == 1 and r.stream in STREAMS and r.stream == r.topic.split(".")[0]
        if r.stream == "users":
            continue
        assert r.partition_key == acct and r.ts_event is not None and r.ts_init is not None
        payload = json.loads(r.payload)
        if r.event_type in ("order.accepted", "order.fill"):
            assert r.ts_event == payload["ts_event"]  # the broker's event time (market clock)
