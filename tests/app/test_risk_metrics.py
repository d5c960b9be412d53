"""The risk aggregates on ``/metrics`` and the high-water mark of live sessions, on the running platform (SQLite and
PostgreSQL), fed real BTC/USDT trades: after a fill and a price path that makes a new equity high mid-burst and falls
back, ``portfolio_drawdown{stat="max"}`` is the drawdown a hand computation from the fill and the trades gives, the
stored ``equity_peak`` is that exact high (the 1 s snapshots alone would have missed it: it lasted a few trades
pushed at once), and no series carries an account id."""

from __future__ import annotations

import time
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from smart_trader.risk.drawdown import HighWaterMark
from tests.app.conftest import Harness

D = Decimal
V1 = "/api/v1"
QTY = D("0.02")
BALANCE = D(1000)


def risk_series(platform: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = platform.client.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name.startswith(("portfolio_drawdown", "portfolio_var_95"))
    }


def test_drawdown_aggregate_and_stored_peak_follow_the_exact_high_water_mark(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice, balance=str(BALANCE))
    platform.push_trades(20)
    platform.settle()
    order = platform.order(alice, acct, side="buy", type="market", qty=str(QTY))
    platform.wait_status(alice, acct, order["id"], "accepted")
    platform.push_trades(1)
    platform.wait_status(alice, acct, order["id"], "filled")
    [fill] = platform.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()
    cash = BALANCE - QTY * D(fill["price"]) - D(fill["commission"])
    book = platform.platform.runtime.books[acct]
    assert any(isinstance(m, HighWaterMark) for m in book.session.monitors)

    # the next trades up to one making a new high (equity above the starting balance), then down to a lower price
    prices = [t.price for t in platform.trades]
    start = platform.cursor
    top = next(i for i in range(start, len(prices)) if cash + QTY * prices[i] > BALANCE)
    high = max(range(start, top + 200), key=lambda i: (prices[i], -i))  # the highest of the next few hundred
    low = next(i for i in range(high + 1, len(prices)) if prices[i] < prices[high])
    pushed = platform.push_trades(low + 1 - start)
    platform.settle()

    peak = max(BALANCE, *(cash + QTY * t.price for t in pushed))
    equity = cash + QTY * pushed[-1].price
    expected = ((peak - equity) / peak).quantize(D("1e-12"))
    assert peak > BALANCE and equity < peak and expected > 0
    assert book.high_water.peak == peak  # exact per valuation: every trade at a new high was valued

    deadline = time.monotonic() + 15  # published every 5 s; the peak is stored with the next snapshot (1 s)
    while True:
        series = risk_series(platform)
        drawdown = series.get(("portfolio_drawdown", frozenset({("stat", "max")})))
        stored = D(platform.client.get(f"{V1}/accounts/{acct}", headers=alice).json()["equity_peak"])
        if drawdown is not None and abs(drawdown - float(expected)) < 1e-15 and stored == peak:
            break
        assert time.monotonic() < deadline, (drawdown, float(expected), stored, peak)
        time.sleep(0.1)

    assert series[("portfolio_drawdown_top", frozenset({("rank", "1")}))] == drawdown
    for stat in ("mean", "p50", "p95"):  # one account: every statistic is its value
        assert series[("portfolio_drawdown", frozenset({("stat", stat)}))] == drawdown
    assert all(dict(labels).keys() <= {"stat", "rank"} for _name, labels in series)  # no series per account
    assert ("portfolio_drawdown", frozenset()) not in series
    # a few seconds of market time: no account has the 20 daily returns a VaR needs
    assert not any(name.startswith("portfolio_var_95") for name, _labels in series)
