"""The WebSocket stream of the whole platform: order events carry the order as it was at that event, with the
REST API's field names, and trades of the feed arrive on their channel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.app.conftest import Harness


def test_order_events_show_each_state_in_turn(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    token = h["Authorization"].removeprefix("Bearer ")
    platform.push_trades(2)
    with platform.client.websocket_connect(f"/ws?token={token}") as ws:
        ws.send_json({"op": "subscribe", "channel": "orders", "account_id": acct})
        assert ws.receive_json()["type"] == "subscribed"
        ws.send_json({"op": "subscribe", "channel": "trades", "symbol": "BTC/USDT", "venue": "BINANCE"})
        assert ws.receive_json()["type"] == "subscribed"
        order = platform.order(h, acct, side="buy", type="market", qty="0.01", client_order_id="ws-1")
        platform.wait_status(h, acct, order["id"], "accepted")
        trade = platform.push_trades(1)[0]
        seen: list[dict[str, Any]] = []
        while not any(m.get("event") == "fill" for m in seen):
            seen.append(ws.receive_json())
    orders = {m["event"]: m for m in seen if m["type"] == "order"}
    assert [m["event"] for m in seen if m["type"] == "order"] == ["submitted", "accepted", "fill"]
    assert orders["submitted"]["order"]["status"] == "new" and orders["submitted"]["order"]["qty"] == "0.01"
    assert orders["accepted"]["order"]["status"] == "accepted" and orders["accepted"]["order"]["filled_qty"] == "0"
    fill = orders["fill"]
    assert fill["order"]["status"] == "filled" and Decimal(fill["order"]["avg_fill_price"]) == trade.price
    assert fill["order"]["client_order_id"] == "ws-1" and fill["order"]["symbol"] == "BTC/USDT"
    # the same order document as REST's: the runtime's events carry cancel_requested and created_ns too
    assert all(m["order"]["cancel_requested"] is False for m in orders.values())
    assert {m["order"]["created_ns"] for m in orders.values()} == {orders["submitted"]["order"]["created_ns"]}
    rest = platform.client.get(f"/api/v1/accounts/{acct}/orders/{order['id']}", headers=h).json()
    assert set(fill["order"]) == set(rest) and fill["order"]["created_ns"] == rest["created_ns"]
    assert Decimal(fill["fill"]["price"]) == trade.price and Decimal(fill["fill"]["quantity"]) == Decimal("0.01")
    assert all(isinstance(m["outbox_id"], int) for m in orders.values())
    assert [m["outbox_id"] for m in seen if m["type"] == "order"] == sorted(m["outbox_id"] for m in orders.values())
    trades = [m for m in seen if m["type"] == "trade"]
    assert trades and Decimal(trades[-1]["price"]) == trade.price and trades[-1]["instrument_id"] == "BTC/USDT.BINANCE"


def test_live_bars_of_a_subscribed_timeframe_close_as_trades_cross_the_boundary(platform: Harness) -> None:
    h = platform.user()
    token = h["Authorization"].removeprefix("Bearer ")
    trades = platform.trades
    second = trades[0].ts_event // 1_000_000_000
    first_of_next = next(i for i, t in enumerate(trades) if t.ts_event // 1_000_000_000 > second)
    with platform.client.websocket_connect(f"/ws?token={token}") as ws:
        ws.send_json(
            {"op": "subscribe", "channel": "bars", "symbol": "BTC/USDT", "venue": "BINANCE", "timeframe": "1s"}
        )
        assert ws.receive_json()["type"] == "subscribed"
        platform.push_trades(first_of_next + 1)  # the first trade of the next second closes the first bar
        bar = ws.receive_json()
    in_bar = trades[:first_of_next]
    assert bar["type"] == "bar" and bar["timeframe"] == "1s" and bar["topic"] == "bars.BTC/USDT.BINANCE.1s"
    assert bar["ts_event"] == second * 1_000_000_000
    assert Decimal(bar["open"]) == in_bar[0].price and Decimal(bar["close"]) == in_bar[-1].price
    assert Decimal(bar["high"]) == max(t.price for t in in_bar) and Decimal(bar["low"]) == min(t.price for t in in_bar)
    assert Decimal(bar["volume"]) == sum((t.size for t in in_bar), Decimal(0))
