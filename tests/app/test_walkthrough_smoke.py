"""Smoke: a market order fills at the next real trade's price on both databases."""

from __future__ import annotations

from decimal import Decimal

from tests.app.conftest import Harness


def test_market_buy_fills_at_the_next_replayed_trade(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(5)
    order = platform.order(h, acct, side="buy", type="market", qty="0.01")
    assert order["status"] == "new"
    platform.wait_status(h, acct, order["id"], "accepted")
    nxt = platform.push_trades(1)[0]
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert Decimal(filled["avg_fill_price"]) == nxt.price
