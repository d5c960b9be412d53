"""Orders through the API against real replayed BTC/USDT trades: fills at exact trade prices, working orders,
rejections, idempotency, cancels, validation, listing filters, and the positions, fills and account valuation
that fills produce (compared with values computed by hand from the fill prices).

Matching rules on trades (:mod:`smart_trader.execution.matching`): a market order fills at the next trade's
price; a limit buy fills at a trade whose price is at or below its limit, at that trade's price; a stop buy
triggers on a trade at or above its stop and fills at that trade's price; a stop-limit buy triggers like a stop
and then works as a limit. The test platform charges no commission and applies no slippage.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from smart_trader.data.model import Trade
from tests.app.conftest import Harness, assert_problem

TICK = Decimal("0.01")
BASE = "/api/v1/accounts"


def fill_market(h: Harness, headers: dict[str, str], acct: str, side: str, qty: str) -> tuple[dict[str, Any], Trade]:
    """Place a market order, let the broker accept it, feed one trade; returns the filled order and that trade."""
    order = h.order(headers, acct, side=side, type="market", qty=qty)
    h.wait_status(headers, acct, order["id"], "accepted")
    trade = h.push_trades(1)[0]
    filled = h.wait_status(headers, acct, order["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == trade.price
    return filled, trade


def fills_of(h: Harness, headers: dict[str, str], acct: str, **params: Any) -> list[dict[str, Any]]:
    r = h.client.get(f"{BASE}/{acct}/fills", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def push_until(h: Harness, index: int) -> None:
    """Feed the recorded trades up to (excluding) ``index`` and wait until the runtime has processed them."""
    assert index >= h.cursor
    if index > h.cursor:
        h.push_trades(index - h.cursor)
    h.settle()


def prices(h: Harness) -> list[Decimal]:
    return [t.price for t in h.trades]


# -- fills at exact prices ---------------------------------------------------------------------------------


def test_market_buy_fills_at_the_next_trade_and_shows_in_fills(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(3)
    order, trade = fill_market(platform, h, acct, "buy", "0.0125")
    assert Decimal(order["filled_qty"]) == Decimal("0.0125") and order["ts_last"] == trade.ts_event
    [fill] = fills_of(platform, h, acct)
    assert fill["order_id"] == order["id"] and fill["side"] == "buy" and fill["instrument_id"] == "BTC/USDT.BINANCE"
    assert Decimal(fill["price"]) == trade.price and Decimal(fill["quantity"]) == Decimal("0.0125")
    assert fill["ts_event"] == trade.ts_event and Decimal(fill["commission"]) == 0
    assert fill["liquidity_side"] == "taker"


def test_notional_market_buy_buys_whole_lots_for_the_amount(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    order = platform.order(h, acct, side="buy", type="market", notional="1000")
    platform.wait_status(h, acct, order["id"], "accepted")
    trade = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, order["id"], "filled")
    expected_qty = (Decimal(1000) / trade.price).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    assert Decimal(filled["qty"]) == expected_qty == Decimal(filled["filled_qty"])
    assert Decimal(filled["avg_fill_price"]) == trade.price
    assert (
        Decimal(platform.client.get(f"{BASE}/{acct}", headers=h).json()["cash"]) == 100000 - expected_qty * trade.price
    )


def test_limit_buy_below_the_market_rests_then_fills_at_a_crossing_trade(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(5)
    px = prices(platform)
    c = platform.cursor
    # the first trade that drops more than a tick below everything since c: a limit one tick above it is
    # crossed there and never before, and fills at the trade's price, better than the limit
    k = next(i for i in range(c + 3, len(px)) if px[i] + TICK < min(px[c:i]))
    limit = px[k] + TICK
    order = platform.order(h, acct, side="buy", type="limit", qty="0.01", limit_price=str(limit))
    platform.wait_status(h, acct, order["id"], "accepted")
    push_until(platform, k)
    assert platform.client.get(f"{BASE}/{acct}/orders/{order['id']}", headers=h).json()["status"] == "accepted"
    crossing = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == crossing.price < limit
    [fill] = fills_of(platform, h, acct)
    assert fill["ts_event"] == crossing.ts_event  # not any earlier trade
    assert fill["liquidity_side"] == "maker"


def test_stop_buy_triggers_at_the_first_trade_through_the_stop(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(5)
    px = prices(platform)
    c = platform.cursor
    k = next(i for i in range(c + 3, len(px)) if px[i] > max(px[c:i]) + TICK)
    stop = max(px[c:k]) + TICK  # above every earlier trade; reached first by trade k
    order = platform.order(h, acct, side="buy", type="stop", qty="0.01", stop_price=str(stop))
    platform.wait_status(h, acct, order["id"], "accepted")
    push_until(platform, k)
    trigger = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == trigger.price >= stop
    assert fills_of(platform, h, acct)[0]["ts_event"] == trigger.ts_event


def test_stop_limit_buy_waits_for_its_trigger_then_works_as_a_limit(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(5)
    px = prices(platform)
    c = platform.cursor
    # trigger k: a new high; limit = one tick under the trigger price; j: first trade after k at or under the
    # limit; and some trade before k already at or under the limit (which must not fill the untriggered order)
    found = None
    for k in range(c + 2, len(px) - 1):
        if px[k] <= max(px[c:k]):
            continue
        limit = px[k] - TICK
        if not any(p <= limit for p in px[c:k]):
            continue
        j = next((i for i in range(k + 1, len(px)) if px[i] <= limit), None)
        if j is not None:
            found = (k, j, limit)
            break
    assert found is not None, "no stop-limit scenario in the recorded trades"
    k, j, limit = found
    stop = px[k]
    order = platform.order(
        h, acct, side="buy", type="stop_limit", qty="0.01", stop_price=str(stop), limit_price=str(limit)
    )
    platform.wait_status(h, acct, order["id"], "accepted")
    push_until(platform, j)  # through the trigger, which is above the limit: triggered, not filled
    assert platform.client.get(f"{BASE}/{acct}/orders/{order['id']}", headers=h).json()["status"] == "accepted"
    assert fills_of(platform, h, acct) == []
    crossing = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == crossing.price <= limit
    assert fills_of(platform, h, acct)[0]["ts_event"] == crossing.ts_event


# -- rejections, idempotency, cancels ----------------------------------------------------------------------


def test_selling_what_a_cash_account_does_not_hold_is_rejected_with_a_reason(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    order = platform.order(h, acct, side="sell", type="market", qty="0.01")
    rejected = platform.wait_status(h, acct, order["id"], "rejected", "filled", "canceled")
    assert rejected["status"] == "rejected"
    assert "short selling" in rejected["reason"] and "cash account" in rejected["reason"]
    platform.push_trades(3)
    platform.settle()
    assert fills_of(platform, h, acct) == []
    acct_view = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    assert Decimal(acct_view["cash"]) == 100000


def test_a_buy_beyond_the_cash_is_rejected(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h, balance="100")
    order = platform.order(h, acct, side="buy", type="limit", qty="0.01", limit_price="39000")
    rejected = platform.wait_status(h, acct, order["id"], "rejected", "accepted")
    assert rejected["status"] == "rejected" and "exceeds the uncommitted cash" in rejected["reason"]


def test_a_client_order_id_retry_returns_the_same_order_and_creates_nothing(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    ticket = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "limit", "qty": "0.001"}
    first = platform.client.post(
        f"{BASE}/{acct}/orders", headers=h, json={**ticket, "limit_price": "1000", "client_order_id": "abc-1"}
    )
    assert first.status_code == 201, first.text
    platform.wait_status(h, acct, first.json()["id"], "accepted")
    for body in ({**ticket, "limit_price": "1000"},):  # a retry (a changed one is 409: test_idempotency_*)
        again = platform.client.post(f"{BASE}/{acct}/orders", headers=h, json={**body, "client_order_id": "abc-1"})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        assert Decimal(again.json()["limit_price"]) == 1000 and again.json()["client_order_id"] == "abc-1"
        # the place route writes its JSON itself: the very document GET (through the OrderOut model) answers
        got = platform.client.get(f"{BASE}/{acct}/orders/{first.json()['id']}", headers=h)
        assert again.headers["content-type"] == got.headers["content-type"] == "application/json"
        assert again.json() == got.json()
    accepting = {"status", "ts_last"}  # what the broker's acceptance changed since the 201
    assert {k: v for k, v in first.json().items() if k not in accepting} == {
        k: v for k, v in got.json().items() if k not in accepting
    }
    listed = platform.client.get(f"{BASE}/{acct}/orders", headers=h).json()
    assert [o["id"] for o in listed] == [first.json()["id"]]
    # client order ids are per account: another account may use the same one
    other = platform.account(h)
    r = platform.client.post(
        f"{BASE}/{other}/orders", headers=h, json={**ticket, "limit_price": "1000", "client_order_id": "abc-1"}
    )
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]


def test_cancel_open_filled_and_unknown_orders(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    working = platform.order(h, acct, side="buy", type="limit", qty="0.001", limit_price="1000")
    platform.wait_status(h, acct, working["id"], "accepted")
    r = platform.client.delete(f"{BASE}/{acct}/orders/{working['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled" and r.json()["reason"] == "user"
    assert Decimal(platform.wait_status(h, acct, working["id"], "canceled")["filled_qty"]) == 0
    again = platform.client.delete(f"{BASE}/{acct}/orders/{working['id']}", headers=h)
    assert_problem(again, 409, "canceled")
    filled, _ = fill_market(platform, h, acct, "buy", "0.001")
    r = platform.client.delete(f"{BASE}/{acct}/orders/{filled['id']}", headers=h)
    assert_problem(r, 409, "filled", "only open orders")
    assert platform.client.get(f"{BASE}/{acct}/orders/{filled['id']}", headers=h).json()["cancel_requested"] is False
    r = platform.client.delete(f"{BASE}/{acct}/orders/no-such-order", headers=h)
    assert_problem(r, 404, "no-such-order")
    r = platform.client.get(f"{BASE}/{acct}/orders/no-such-order", headers=h)
    assert_problem(r, 404, "no-such-order")
    # the canceled limit released its reservation: the account is whole except the one fill
    a = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    assert Decimal(a["cash"]) == 100000 - Decimal("0.001") * Decimal(filled["avg_fill_price"])


def test_malformed_orders_are_422_with_a_message(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    t = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy"}
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({**t, "type": "market", "qty": "0.01", "notional": "100"}, ("exactly one of qty or notional",)),
        ({**t, "type": "market"}, ("exactly one of qty or notional",)),
        ({**t, "type": "limit", "qty": "0.01"}, ("limit order needs limit_price",)),
        ({**t, "type": "market", "qty": "0.01", "limit_price": "39000"}, ("takes no limit_price",)),
        ({**t, "type": "stop", "qty": "0.01"}, ("needs stop_price",)),
        ({**t, "type": "limit", "notional": "100", "limit_price": "39000"}, ("notional is only for market",)),
        ({**t, "type": "limit", "qty": "0.01", "limit_price": "39000.005"}, ("off the tick size", "0.01")),
        ({**t, "type": "market", "qty": "0.0000001"}, ("under the lot size",)),
        ({**t, "type": "market", "qty": "0.0000015"}, ("lot size",)),
        ({**t, "symbol": "DOGE/USDT", "type": "market", "qty": "1"}, ("unknown instrument", "DOGE/USDT.BINANCE")),
        ({**t, "venue": "KRAKEN", "type": "market", "qty": "1"}, ("unknown instrument",)),
        ({**t, "type": "market", "qty": "abc"}, ("qty",)),
        ({**t, "type": "market", "qty": "-0.01"}, ("qty", "greater than 0")),
        ({**t, "type": "market", "qty": "0"}, ("qty", "greater than 0")),
        ({**t, "type": "market", "qty": "NaN"}, ("qty",)),
        ({**t, "type": "market", "qty": "Infinity"}, ("qty",)),
        ({**t, "type": "market", "qty": [1]}, ("qty",)),
        ({**t, "type": "market", "qty": "0.01", "side": "hold"}, ("side",)),
        ({**t, "type": "iceberg", "qty": "0.01"}, ("type",)),
        ({**t, "type": "market", "qty": "0.01", "time_in_force": "forever"}, ("time_in_force",)),
        ({**t, "type": "market", "qty": "0.01", "client_order_id": "has space"}, ("client_order_id",)),
        ({**t, "type": "market", "qty": "0.01", "client_order_id": "x" * 65}, ("client_order_id",)),
        ({**t, "type": "market", "qty": "0.01", "leverage": 10}, ("leverage",)),
        ({"venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.01"}, ("symbol",)),
    ]
    for body, words in cases:
        r = platform.client.post(f"{BASE}/{acct}/orders", headers=h, json=body)
        assert_problem(r, 422, *words)
    assert platform.client.get(f"{BASE}/{acct}/orders", headers=h).json() == []  # nothing was stored


# -- listing -----------------------------------------------------------------------------------------------


def test_order_list_filters_and_pages_newest_first(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    o1, _ = fill_market(platform, h, acct, "buy", "0.01")  # filled
    o2 = platform.order(h, acct, side="buy", type="limit", qty="0.001", limit_price="1000")  # stays open
    platform.wait_status(h, acct, o2["id"], "accepted")
    o3 = platform.order(h, acct, side="buy", type="limit", qty="0.001", limit_price="1001")
    platform.wait_status(h, acct, o3["id"], "accepted")
    assert platform.client.delete(f"{BASE}/{acct}/orders/{o3['id']}", headers=h).status_code == 200  # canceled
    o4 = platform.order(h, acct, side="sell", type="market", qty="0.5")  # more than held: rejected
    platform.wait_status(h, acct, o4["id"], "rejected")
    o5 = platform.order(h, acct, side="sell", type="limit", qty="0.005", limit_price="100000")  # stays open
    platform.wait_status(h, acct, o5["id"], "accepted")
    ids = {"o1": o1["id"], "o2": o2["id"], "o3": o3["id"], "o4": o4["id"], "o5": o5["id"]}
    name = {v: k for k, v in ids.items()}

    def listed(params: list[tuple[str, str]] | dict[str, Any]) -> list[str]:
        r = platform.client.get(f"{BASE}/{acct}/orders", headers=h, params=params)
        assert r.status_code == 200, r.text
        return [name[o["id"]] for o in r.json()]

    assert listed({}) == ["o5", "o4", "o3", "o2", "o1"]
    assert listed({"state": "open"}) == ["o5", "o2"]
    assert listed({"state": "closed"}) == ["o4", "o3", "o1"]
    assert listed({"state": "all"}) == ["o5", "o4", "o3", "o2", "o1"]
    assert listed({"status": "filled"}) == ["o1"]
    assert listed([("status", "filled"), ("status", "canceled")]) == ["o3", "o1"]
    assert listed({"status": "accepted", "state": "closed"}) == []
    assert listed({"status": "rejected", "state": "closed"}) == ["o4"]
    assert listed({"side": "sell"}) == ["o5", "o4"]
    assert listed({"side": "buy", "state": "open"}) == ["o2"]
    assert listed({"symbol": "BTC/USDT", "venue": "BINANCE"}) == ["o5", "o4", "o3", "o2", "o1"]
    assert listed({"symbol": "ETH/USDT", "venue": "BINANCE"}) == []
    assert listed({"limit": 2}) == ["o5", "o4"]
    assert listed({"limit": 2, "offset": 2}) == ["o3", "o2"]
    assert listed({"limit": 2, "offset": 4}) == ["o1"]
    assert listed({"offset": 5}) == []
    assert listed({"state": "closed", "limit": 1, "offset": 1}) == ["o3"]
    for bad, word in [
        ({"symbol": "BTC/USDT"}, "symbol and venue"),
        ({"status": "lost"}, "status"),
        ({"state": "half"}, "state"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
    ]:
        assert_problem(platform.client.get(f"{BASE}/{acct}/orders", headers=h, params=bad), 422, word)


# -- positions, fills, valuation ---------------------------------------------------------------------------


def test_positions_fills_and_account_after_buys_and_a_partial_sell(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(2)
    b1, t1 = fill_market(platform, h, acct, "buy", "0.01")
    b2, t2 = fill_market(platform, h, acct, "buy", "0.03")
    s1, t3 = fill_market(platform, h, acct, "sell", "0.01")
    p1, p2, p3 = t1.price, t2.price, t3.price
    # by hand: average cost; selling a quarter of the position removes a quarter of the cost
    cost = Decimal("0.01") * p1 + Decimal("0.03") * p2
    realized = Decimal("0.01") * p3 - cost / 4
    remaining_cost = cost - cost / 4
    qty = Decimal("0.03")

    fills = fills_of(platform, h, acct)
    assert [(f["order_id"], f["side"], Decimal(f["price"]), Decimal(f["quantity"])) for f in fills] == [
        (b1["id"], "buy", p1, Decimal("0.01")),
        (b2["id"], "buy", p2, Decimal("0.03")),
        (s1["id"], "sell", p3, Decimal("0.01")),
    ]
    assert [f["ts_event"] for f in fills] == [t1.ts_event, t2.ts_event, t3.ts_event]
    assert [f["order_id"] for f in fills_of(platform, h, acct, order_id=b2["id"])] == [b2["id"]]
    assert [f["order_id"] for f in fills_of(platform, h, acct, limit=1, offset=2)] == [s1["id"]]

    mark = t3.price  # the last trade
    r = platform.client.get(f"{BASE}/{acct}/positions", headers=h)
    assert r.status_code == 200
    [pos] = r.json()
    assert pos["instrument_id"] == "BTC/USDT.BINANCE" and pos["fills"] == 3
    assert Decimal(pos["quantity"]) == qty
    assert Decimal(pos["cost_basis"]) == remaining_cost
    assert Decimal(pos["avg_entry_price"]) == cost / Decimal("0.04")
    assert Decimal(pos["realized_pnl"]) == realized
    assert Decimal(pos["mark_price"]) == mark
    assert Decimal(pos["market_value"]) == qty * mark
    assert Decimal(pos["unrealized_pnl"]) == qty * mark - remaining_cost
    assert pos["ts_opened"] == t1.ts_event and pos["ts_last"] == t3.ts_event

    a = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    cash = Decimal(100000) - Decimal("0.01") * p1 - Decimal("0.03") * p2 + Decimal("0.01") * p3
    assert Decimal(a["cash"]) == cash == Decimal(a["buying_power"])
    assert Decimal(a["equity"]) == cash + Decimal(pos["market_value"])
    assert Decimal(a["realized_pnl"]) == realized
    assert Decimal(a["unrealized_pnl"]) == Decimal(pos["unrealized_pnl"])
    assert Decimal(a["realized_pnl"]) + Decimal(a["unrealized_pnl"]) == Decimal(a["equity"]) - 100000
    assert Decimal(a["commissions"]) == 0

    # the account is re-marked by later trades; cash + market value = equity stays exact
    later = platform.push_trades(3)[-1]
    platform.settle()
    a = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    assert Decimal(a["equity"]) == cash + qty * later.price
    assert Decimal(a["unrealized_pnl"]) == qty * later.price - remaining_cost


def test_selling_everything_leaves_a_flat_position_with_its_realized_pnl(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    _, t1 = fill_market(platform, h, acct, "buy", "0.02")
    _, t2 = fill_market(platform, h, acct, "sell", "0.02")
    realized = Decimal("0.02") * (t2.price - t1.price)
    assert platform.client.get(f"{BASE}/{acct}/positions", headers=h).json() == []
    [flat] = platform.client.get(f"{BASE}/{acct}/positions", headers=h, params={"include_flat": "true"}).json()
    assert Decimal(flat["quantity"]) == 0 and flat["avg_entry_price"] is None
    assert Decimal(flat["realized_pnl"]) == realized and Decimal(flat["unrealized_pnl"]) == 0
    a = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    assert Decimal(a["cash"]) == Decimal(a["equity"]) == 100000 + realized
    assert Decimal(a["realized_pnl"]) == realized and Decimal(a["unrealized_pnl"]) == 0


def test_equity_history_has_snapshots_in_time_order(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(1)
    platform.settle()  # market time is known before the first order (see the report on snapshots at ts 0)
    _, t1 = fill_market(platform, h, acct, "buy", "0.05")
    platform.push_trades(20)
    platform.settle()
    _, t2 = fill_market(platform, h, acct, "sell", "0.02")
    r = platform.client.get(f"{BASE}/{acct}/equity", headers=h)
    assert r.status_code == 200
    points = r.json()
    assert len(points) >= 2  # one per fill at least
    ts = [p["ts"] for p in points]
    assert ts == sorted(ts)
    assert ts[0] >= platform.trades[0].ts_event and ts[-1] <= platform.trades[platform.cursor - 1].ts_event
    for p in points:  # each snapshot is self-consistent: equity − cash is the position's value then
        assert Decimal(p["equity"]) >= Decimal(p["cash"]) > 0
        assert Decimal(p["drawdown"]) >= 0
    cash_after_sell = 100000 - Decimal("0.05") * t1.price + Decimal("0.02") * t2.price
    assert any(Decimal(p["cash"]) == cash_after_sell for p in points)
    first = platform.client.get(f"{BASE}/{acct}/equity", headers=h, params={"start": ts[-1]}).json()
    assert [p["ts"] for p in first] == [t for t in ts if t >= ts[-1]]
    assert_problem(platform.client.get(f"{BASE}/{acct}/equity", headers=h, params={"limit": 0}), 422, "limit")
    beyond_int64 = {"start": 2**108}  # found by schemathesis: a 500 (overflow) before the bound
    assert_problem(platform.client.get(f"{BASE}/{acct}/equity", headers=h, params=beyond_int64), 422, "start")


def test_a_client_order_id_reused_with_different_content_is_409_naming_each_difference(platform: Harness) -> None:
    import json

    from tests.app.test_order_fast_path import through_fast_path

    h = platform.user()
    acct = platform.account(h)
    ticket = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "limit", "qty": "0.001",
              "limit_price": "1000", "client_order_id": "c-1"}  # fmt: skip
    first = platform.client.post(f"{BASE}/{acct}/orders", headers=h, json=ticket)
    assert first.status_code == 201, first.text
    # a retry with the same content, however it is written (decimals by value, the venue's case, defaults spelled
    # out): the original order, 200
    same_content = {**ticket, "qty": "0.0010", "limit_price": "1000.00", "venue": "binance", "time_in_force": "gtc"}
    for retry in (ticket, same_content):
        again = platform.client.post(f"{BASE}/{acct}/orders", headers=h, json=retry)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
    # the same key on a different order: 409 naming each difference, stored value first
    changed = platform.client.post(
        f"{BASE}/{acct}/orders", headers=h, json={**ticket, "side": "sell", "qty": "0.5", "limit_price": "99999"}
    )
    expected = "side buy ≠ sell, qty 0.001 ≠ 0.5, limit_price 1000 ≠ 99999"
    body = assert_problem(changed, 409, f"client_order_id c-1 was used for a different order: {expected}")
    assert body["type"].endswith("/idempotency-key-reused")
    other = platform.client.post(
        f"{BASE}/{acct}/orders",
        headers=h,
        json={**ticket, "type": "stop_limit", "stop_price": "1100", "time_in_force": "ioc"},
    )
    assert_problem(other, 409, "type limit ≠ stop_limit", "stop_price none ≠ 1100", "time_in_force gtc ≠ ioc")
    notional = platform.client.post(
        f"{BASE}/{acct}/orders",
        headers=h,
        json={
            **{k: v for k, v in ticket.items() if k not in ("qty", "limit_price")},
            "type": "market",
            "notional": "50",
        },
    )
    assert_problem(notional, 409, "qty 0.001 ≠ none", "notional none ≠ 50", "limit_price 1000 ≠ none")
    # the fast path does not answer it: it hands the request to the route, which answers once (above)
    conflicting = json.dumps({**ticket, "side": "sell"}).encode()
    handed = through_fast_path(platform, acct, h, conflicting)
    assert handed["status"] == 599 and handed["handed_on"] == [conflicting]
    # nothing was stored or changed
    listed = platform.client.get(f"{BASE}/{acct}/orders", headers=h).json()
    assert [o["id"] for o in listed] == [first.json()["id"]]
    assert listed[0]["side"] == "buy" and Decimal(listed[0]["qty"]) == Decimal("0.001")
