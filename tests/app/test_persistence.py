"""Persistence across a restart: stop the app (clean shutdown) and start a new one on the same database; what the
API shows is unchanged and working orders keep working against the continuing replay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.app.conftest import Harness
from tests.app.test_orders import fill_market

BASE = "/api/v1/accounts"


def snapshot(h: Harness, headers: dict[str, str], acct: str) -> dict[str, Any]:
    """Everything the API shows of an account."""
    out: dict[str, Any] = {}
    for name, path, params in [
        ("accounts", BASE, {}),
        ("account", f"{BASE}/{acct}", {}),
        ("orders", f"{BASE}/{acct}/orders", {}),
        ("fills", f"{BASE}/{acct}/fills", {}),
        ("positions", f"{BASE}/{acct}/positions", {"include_flat": "true"}),
        ("equity", f"{BASE}/{acct}/equity", {}),
    ]:
        r = h.client.get(path, headers=headers, params=params)
        assert r.status_code == 200, r.text
        out[name] = r.json()
    return out


def test_restart_keeps_everything_and_working_orders_still_fill(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(3)
    _, t1 = fill_market(platform, h, acct, "buy", "0.04")
    _, t2 = fill_market(platform, h, acct, "sell", "0.01")
    px = [t.price for t in platform.trades]
    c = platform.cursor
    # a limit buy that the next few trades do not reach and a later one crosses
    k = next(i for i in range(c + 3, len(px)) if px[i] + Decimal("0.01") < min(px[c:i]))
    limit = px[k] + Decimal("0.01")
    working = platform.order(
        h, acct, side="buy", type="limit", qty="0.01", limit_price=str(limit), client_order_id="w1"
    )
    platform.wait_status(h, acct, working["id"], "accepted")
    platform.push_trades(2)
    platform.settle()
    before = snapshot(platform, h, acct)
    assert len(before["fills"]) == 2 and len(before["orders"]) == 3

    platform.restart()

    after = snapshot(platform, h, acct)
    assert [a["id"] for a in after["accounts"]] == [acct]
    assert after["orders"] == before["orders"]
    assert after["fills"] == before["fills"]
    assert after["equity"] == before["equity"]
    a0, a1 = before["account"], after["account"]
    for field in ("cash", "realized_pnl", "commissions", "starting_balance", "buying_power"):
        assert a1[field] == a0[field], field
    assert Decimal(a1["cash"]) == 100000 - Decimal("0.04") * t1.price + Decimal("0.01") * t2.price
    [p0], [p1] = before["positions"], after["positions"]
    for field in ("quantity", "cost_basis", "avg_entry_price", "realized_pnl", "fills", "ts_opened", "ts_last"):
        assert p1[field] == p0[field], field
    # a new process has seen no trade yet: positions are marked at their last fill price until one comes
    assert Decimal(p1["mark_price"]) == t2.price

    # the same client order id is still recognized after the restart
    r = platform.client.post(
        f"{BASE}/{acct}/orders",
        headers=h,
        json={"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "limit", "qty": "0.01",
              "limit_price": str(limit), "client_order_id": "w1"},
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["id"] == working["id"]

    # the restored limit order works on: not before its crossing trade, exactly at it
    if platform.cursor < k:
        platform.push_trades(k - platform.cursor)
    platform.settle()
    crossing = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, working["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == crossing.price
    fills = platform.client.get(f"{BASE}/{acct}/fills", headers=h).json()
    assert len(fills) == 3 and fills[-1]["order_id"] == working["id"]
    assert fills[-1]["ts_event"] >= crossing.ts_event  # a replay restarted before the stored clock is shifted on
    a2 = platform.client.get(f"{BASE}/{acct}", headers=h).json()
    assert Decimal(a2["cash"]) == Decimal(a1["cash"]) - Decimal("0.01") * crossing.price
