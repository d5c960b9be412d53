"""A challenge judged live on the running platform (SQLite and PostgreSQL), fed real recorded BTC/USDT trades: a
leveraged long breaches FTMO 2-Step's daily loss at the first recorded trade that takes the equity under the floor
(computed here from the fill and the trades, independently of the platform); the account fails with that evidence,
its position is flattened at the next price, the breach reaches the ``challenges`` WebSocket channel, new orders are
refused over HTTP with a problem document naming the rule, and after a restart the status and evidence are the same.
"""

from __future__ import annotations

import time
from decimal import ROUND_UP, Decimal
from typing import Any

from smart_trader.challenges.days import iso_utc
from smart_trader.core.values import from_raw
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import ws_json, ws_request

D = Decimal
V1 = "/api/v1"
SIZE = D("10000")
FLOOR = D("9500.00")  # FTMO daily loss [S1]: day-start balance 10,000 − 5 % of the initial 10,000


def _challenge(h: Harness, headers: dict[str, str], cid: str) -> dict[str, Any]:
    r = h.client.get(f"{V1}/challenges/{cid}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(h: Harness, headers: dict[str, str], cid: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        c = _challenge(h, headers, cid)
        if c["status"] == status:
            return c
        assert time.monotonic() < deadline, f"challenge still {c['status']}"
        time.sleep(0.05)


def test_a_leveraged_long_fails_the_daily_loss_at_the_recorded_trade_that_crosses_it(platform: Harness) -> None:
    h = platform
    alice = h.user("alice@example.com")
    body = {"program": "ftmo-2step", "account_size": str(SIZE), "currency": "USDT"}
    r = h.client.post(f"{V1}/challenges", headers=alice, json=body)
    assert r.status_code == 201, r.text
    cid, acct = r.json()["id"], r.json()["account_id"]
    h.push_trades(20)
    h.settle()
    inst = h.instrument
    pp = inst.price_precision
    # the buy fills at the next recorded trade; size it so that a fall the recording really has later breaches
    entry = from_raw(h.trades[h.cursor].price_raw, pp)
    ahead = [from_raw(t.price_raw, pp) for t in h.trades[h.cursor + 1 : h.cursor + 3000]]
    low = min(ahead)
    assert low < entry, "the recording must fall below the entry for this test"
    qty = (D(650) / (entry - low)).quantize(inst.lot_size, rounding=ROUND_UP)
    token = alice["Authorization"].removeprefix("Bearer ")
    with h.client.websocket_connect(f"/ws?token={token}") as ws:
        assert ws_request(ws, {"op": "subscribe", "channel": "challenges", "account_id": acct})["type"] == "subscribed"
        order = h.order(alice, acct, side="buy", type="market", qty=str(qty))
        h.wait_status(alice, acct, order["id"], "accepted")
        fill_trade = h.push_trades(1)[0]
        h.wait_status(alice, acct, order["id"], "filled")
        fills = h.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()
        price, commission = D(fills[0]["price"]), D(fills[0]["commission"])
        assert price == entry and fill_trade.ts_event == fills[0]["ts_event"]
        # the first later trade whose price takes equity (cents) under the floor
        cash_after = SIZE - commission
        breach_k = next(k for k, p in enumerate(ahead) if (cash_after + qty * (p - price)).quantize(D("0.01")) < FLOOR)
        expected = h.trades[h.cursor + breach_k]
        h.push_trades(breach_k + 1)  # up to and including the breaching trade
        failed = _wait(h, alice, cid, "failed")
        breached = None
        deadline = time.monotonic() + 10
        while breached is None:
            m = ws_json(ws, max(0.1, deadline - time.monotonic()))
            if m.get("type") == "challenge" and m.get("event") == "ChallengeBreached":
                breached = m
    breach = failed["breach"]
    assert breach["rule"] == "daily_loss" and D(breach["floor"]) == FLOOR
    equity = (cash_after + qty * (from_raw(expected.price_raw, pp) - price)).quantize(D("0.01"))
    assert D(breach["equity"]) == equity
    assert breach["ts"] == iso_utc(expected.ts_event)
    assert breached["data"]["rule"] == "daily_loss" and D(breached["data"]["floor"]) == FLOOR
    assert breached["challenge"]["status"] == "failed"
    # positions flattened at the next price
    h.push_trades(1)
    deadline = time.monotonic() + 10
    while True:
        positions = h.client.get(f"{V1}/accounts/{acct}/positions", headers=alice).json()
        if all(D(p["quantity"]) == 0 for p in positions):
            break
        assert time.monotonic() < deadline, positions
        time.sleep(0.05)
    # new orders refused over HTTP, naming the rule
    r = h.client.post(
        f"{V1}/accounts/{acct}/orders",
        headers=alice,
        json={"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.001"},
    )
    problem = assert_problem(r, 409)
    assert "daily_loss" in problem["detail"] and "9500.00" in problem["detail"]
    events = h.client.get(f"{V1}/challenges/{cid}/events", headers=alice).json()
    assert "ChallengeBreached" in [e["event_type"] for e in events]
    # after a restart the status and the evidence are what they were
    h.restart()
    again = _challenge(h, alice, cid)
    assert again["status"] == "failed" and again["breach"] == breach
