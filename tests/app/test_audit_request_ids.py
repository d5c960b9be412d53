"""The audit trail's request id (SQLite and PostgreSQL): an action taken over HTTP carries the request's
``X-Request-ID`` into its event and its audit record — a registration, a login, an order (batched with other
callers' orders: each keeps its own), an account opened — while the platform's own events (fills, account updates)
carry none."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from smart_trader.compliance.tables import audit_log
from smart_trader.db.outbox import outbox
from tests.app.conftest import PASSWORD, Harness
from tests.app.security_support import write


def test_each_action_carries_its_own_request_id_to_the_audit_record(platform: Harness) -> None:
    h = platform
    c = h.client
    r = c.post("/api/v1/auth/register", json={"email": "rid@example.com", "password": PASSWORD},
               headers={"X-Request-ID": "req-register-1"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/auth/token", data={"username": "rid@example.com", "password": PASSWORD},
               headers={"X-Request-ID": "req-login-1"})  # fmt: skip
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = c.post("/api/v1/accounts", headers={**headers, "X-Request-ID": "req-account-1"},
               json={"name": "paper", "starting_balance": "100000", "currency": "USDT"})  # fmt: skip
    acct = r.json()["id"]
    h.push_trades(5)
    h.settle()
    ids = []
    for k in range(3):
        body = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.001"}
        r = c.post(f"/api/v1/accounts/{acct}/orders", headers={**headers, "X-Request-ID": f"req-order-{k}"}, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        h.wait_status(headers, acct, ids[-1], "accepted")
    h.push_trades(5)
    h.settle()

    def rows(conn: object) -> list[object]:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))  # type: ignore[attr-defined]

    stored = write(h, rows)
    by_type: dict[str, list[str | None]] = {}
    for r in stored:
        by_type.setdefault(r.event_type, []).append(json.loads(r.payload).get("request_id"))
    assert by_type["user.registered"] == ["req-register-1"]
    assert by_type["user.login"] == ["req-login-1"]
    assert by_type["account.opened"] == ["req-account-1"]
    assert by_type["order.submitted"] == ["req-order-0", "req-order-1", "req-order-2"]
    assert set(by_type.get("order.fill", [None])) == {None}  # the platform's own events: none
    deadline = time.monotonic() + 15
    while True:  # the audit consumer of `up` records them
        audited = {a.event_id: a.request_id for a in write(h, lambda conn: list(conn.execute(select(audit_log))))}
        if all(r.event_id in audited for r in stored if r.stream == "users"):
            break
        assert time.monotonic() < deadline, "the audit consumer did not catch up"
        time.sleep(0.1)
    logins = [r.event_id for r in stored if r.event_type == "user.login"]
    assert audited[logins[0]] == "req-login-1"
