"""The event-driven engine: ordering, no look-ahead, fills at the next bar's open, equity and determinism."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.readers import read_file
from smart_trader.data.timeframes import Timeframe
from smart_trader.execution.costs import BpsCommission
from smart_trader.execution.enums import OrderStatus
from smart_trader.execution.events import Fill
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.strategy.api import IndicatorSeries, Strategy
from smart_trader.strategy.builtin import strategy_class
from smart_trader.strategy.builtin.buy_and_hold import BuyAndHold
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.strategy.indicators import SMA

from .builders import MINUTE_NS, T0, bars_table, closes_table, equity_instrument, quotes_table, trades_table

ONE_MINUTE = Timeframe.parse("1m")


class Recorder(Strategy):
    """Buys 10 on the first bar, records what it sees."""

    name: ClassVar[str] = "recorder"

    def on_start(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.fills: list[Fill] = []
        self.sma: IndicatorSeries = self.indicator(SMA(2))
        self.sma_seen: list[float] = []
        self.bought = False

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(("bar", self.now_ns))
        self.sma_seen.append(self.sma.value)
        if not self.bought:
            self.bought = True
            self.buy(10)

    def on_trade(self, trade: Trade) -> None:
        self.seen.append(("trade", trade.ts_event))

    def on_quote(self, quote: Quote) -> None:
        self.seen.append(("quote", quote.ts_event))

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def run(table, strategy: Strategy, cash: str = "100000", **kw) -> tuple[BacktestEngine, object]:  # type: ignore[no-untyped-def]
    engine = BacktestEngine(starting_cash=Decimal(cash), **kw)
    engine.add_bars(equity_instrument(), table, ONE_MINUTE)
    return engine, engine.run(strategy)


def test_market_order_from_on_bar_fills_at_the_next_bars_open() -> None:
    table = bars_table([("10.00", "10.50", "9.50", "10.20", "100"), ("10.30", "10.60", "10.10", "10.40", "100")])
    strat = Recorder()
    engine, _ = run(table, strat)
    assert [(f.price, f.quantity, f.ts_event) for f in strat.fills] == [(Decimal("10.30"), Decimal(10), T0 + MINUTE_NS)]
    assert engine.account.cash == Decimal("100000") - Decimal("103.00")
    assert engine.account.equity == Decimal("100000") - Decimal("103.00") + 10 * Decimal("10.40")


def test_bars_are_seen_at_their_close_time_and_indicators_never_show_the_future() -> None:
    table = closes_table(["1", "2", "3", "4"])
    strat = Recorder()
    run(table, strat)
    assert [t for _, t in strat.seen] == [T0 + (i + 1) * MINUTE_NS for i in range(4)]
    assert np.isnan(strat.sma_seen[0])
    assert strat.sma_seen[1:] == [1.5, 2.5, 3.5]


def test_streams_merge_in_timestamp_order_with_bars_known_at_their_close() -> None:
    inst = equity_instrument()
    engine = BacktestEngine(starting_cash=Decimal(1000))
    engine.add_bars(inst, closes_table(["1.00", "1.00"]), ONE_MINUTE)
    engine.add_trades(inst, trades_table([(T0 + 30 * 10**9, "1.00", "5"), (T0 + 90 * 10**9, "1.01", "5")]))
    engine.add_quotes(inst, quotes_table([(T0 + MINUTE_NS, "0.99", "1.01")]))
    strat = Recorder()
    engine.run(strat)
    kinds = [k for k, _ in strat.seen]
    # trade at 0:30, then at 1:00 the first bar closes (bars stream added first wins ties), the quote, trade 1:30, bar 2
    assert kinds == ["trade", "bar", "quote", "trade", "bar"]


def test_buy_and_hold_equity_is_cash_plus_position_at_the_last_close_exactly() -> None:
    table = closes_table(["10.00", "11.00", "12.50"])
    engine, result = run(table, BuyAndHold(), cash="1000")
    qty = Decimal(1000) // Decimal("11.00")  # all-in notional order fills at the 2nd bar's open, whole shares
    assert engine.account.quantity(engine.instrument().id) == qty
    expected = Decimal(1000) - qty * Decimal("11.00") + qty * Decimal("12.50")
    assert result.stats.final_equity == expected
    assert result.equity[-1] == pytest.approx(float(expected), rel=1e-15)
    assert result.equity.tolist()[0] == 1000.0


def test_equity_curve_matches_the_exact_ledger_after_every_bar(shared_data: Path) -> None:
    r = read_file(shared_data / "bars" / "ETH-BTC_2018-01_5m.binance.feather")
    inst = infer_instrument("ETH/BTC", "BINANCE", r.price_precision, r.size_precision)
    engine = BacktestEngine(starting_cash=Decimal(100), fill_config=FillConfig(commission=BpsCommission(Decimal(10))))
    engine.add_bars(inst, r.table, r.timeframe or Timeframe.parse("5m"))
    result = engine.run(strategy_class("sma_cross")(fast=10, slow=30))
    assert result.stats.number_of_trades > 50
    assert result.equity[-1] == pytest.approx(float(result.stats.final_equity), rel=1e-12)
    # the ledger balances: starting cash - costs + proceeds - commissions
    fills = result.fills
    cash = Decimal(100)
    for f in fills:
        cash += (-1 if f.side == "buy" else 1) * f.quantity * f.price - f.commission
    assert engine.account.cash == cash
    # every sma_cross round trip is one buy and one sell; what follows is the open position
    open_fills = fills[2 * len(result.round_trips) :]
    closed_pnl = sum((rt.pnl for rt in result.round_trips), Decimal(0))
    open_pnl = engine.account.unrealized_pnl - sum((f.commission for f in open_fills), Decimal(0))
    assert result.stats.final_equity - Decimal(100) == closed_pnl + open_pnl


def test_same_inputs_give_identical_fills_and_ids() -> None:
    closes = [str(Decimal(100) + Decimal(i % 17) - Decimal(i % 5) * 2) for i in range(400)]
    runs = []
    for _ in range(2):
        _, res = run(closes_table(closes), strategy_class("sma_cross")(fast=3, slow=7))
        runs.append([(f.fill_id, f.order_id, f.side, f.quantity, f.price, f.ts_event) for f in res.fills])
    assert runs[0] == runs[1]
    assert len(runs[0]) > 10


def test_a_rejected_order_is_reported_to_the_strategy_with_its_reason() -> None:
    class OffTick(Strategy):
        name: ClassVar[str] = "off_tick"

        def on_start(self) -> None:
            self.orders = []

        def on_bar(self, bar: Bar) -> None:
            if not self.orders:
                self.orders.append(self.buy(1, type="limit", limit_price="10.001"))

    strat = OffTick()
    run(closes_table(["10.00", "10.00"]), strat)
    order = strat.orders[0]
    assert order.status is OrderStatus.REJECTED
    assert "tick size" in (order.reject_reason or "")


def test_strategy_parameters_are_checked_and_converted() -> None:
    cls = strategy_class("sma_cross")
    assert cls(fast="5", slow="20").params == {"fast": 5, "slow": 20}
    with pytest.raises(InvalidInputError, match="unknown parameter"):
        cls(fsat=5)
    with pytest.raises(InvalidInputError, match="fast < slow"):
        cls(fast=30, slow=10)
    with pytest.raises(InvalidInputError, match="not a int"):
        cls(fast="ten")
    with pytest.raises(NotFoundError, match="known: buy_and_hold, rsi_reversion, sma_cross"):
        strategy_class("nope")


def test_rsi_reversion_trades_on_real_data(shared_data: Path) -> None:
    r = read_file(shared_data / "bars" / "GBPUSD_2012_1m_bid.fxcm.csv")
    inst = infer_instrument("GBP/USD", "FXCM", r.price_precision, 0)
    engine = BacktestEngine(starting_cash=Decimal(100000))
    engine.add_bars(inst, r.table, ONE_MINUTE)
    result = engine.run(strategy_class("rsi_reversion")())
    assert result.stats.number_of_trades > 10
    assert all(rt.side == "long" for rt in result.round_trips)


def test_running_without_data_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="no market data"):
        BacktestEngine(starting_cash=Decimal(1)).run(BuyAndHold())


def test_waking_only_on_signal_bars_gives_the_same_fills_as_every_bar(shared_data: Path) -> None:
    from smart_trader.strategy.builtin.sma_cross import SmaCross

    class EveryBar(SmaCross):
        def on_start(self) -> None:
            super().on_start()
            self.wake_series = None  # back to on_bar on every bar

    r = read_file(shared_data / "bars" / "GBPUSD_2012_1m_bid.fxcm.csv")
    inst = infer_instrument("GBP/USD", "FXCM", r.price_precision, 0)
    fills = []
    for cls in (SmaCross, EveryBar):
        engine = BacktestEngine(
            starting_cash=Decimal(100000), fill_config=FillConfig(commission=BpsCommission(Decimal(1)))
        )
        engine.add_bars(inst, r.table, ONE_MINUTE)
        result = engine.run(cls())
        fills.append([(f.side, f.quantity, f.price, f.ts_event) for f in result.fills])
        assert result.stats.bars_processed == r.table.num_rows
    assert len(fills[0]) > 1000
    assert fills[0] == fills[1]


def test_no_fill_happens_before_its_order_exists_in_a_merged_run() -> None:
    """Two instruments: an order on B placed when A's bar closes must not fill at B's bar that opened earlier."""
    a, b = equity_instrument("AAA"), equity_instrument("BBB")

    class BuyB(Strategy):
        name: ClassVar[str] = "buy_b"

        def on_bar(self, bar: Bar) -> None:
            flat = self.account.quantity(b.id) == 0
            if bar.instrument_id == a.id and not self.ctx.open_orders(None) and flat:
                self.buy(1, instrument_id=b.id)

    engine = BacktestEngine(starting_cash=Decimal(100000))
    engine.add_bars(a, closes_table(["10.00"] * 6, step=MINUTE_NS), ONE_MINUTE)
    # B's bars are 5 minutes long: the one opening at T0 closes after A's first bars have closed
    b_bars = bars_table(
        [("20.00", "20.00", "20.00", "20.00", "1"), ("21.00", "21.00", "21.00", "21.00", "1")], step=5 * MINUTE_NS
    )
    engine.add_bars(b, b_bars, Timeframe.parse("5m"))
    result = engine.run(BuyB())
    orders = {o.order_id: o for o in result.orders}
    assert result.fills, "the order on B filled at B's next bar"
    for fill in result.fills:
        assert fill.ts_event >= orders[fill.order_id].ts_init
    assert result.fills[0].price == Decimal("21.00")


def test_bars_at_another_precision_than_the_instrument_are_refused() -> None:
    engine = BacktestEngine(starting_cash=Decimal(1000))
    with pytest.raises(InvalidInputError, match="3 decimals but the instrument's prices have 2"):
        engine.add_bars(equity_instrument(), closes_table(["1.000", "1.001"], pp=3), ONE_MINUTE)


def test_the_equity_curve_is_cash_plus_position_at_every_close() -> None:
    closes = ["10.00", "10.50", "11.00", "10.00", "9.50", "12.00"]
    _, result = run(closes_table(closes), BuyAndHold(), cash="1000")
    qty = Decimal(1000) // Decimal("10.50")
    cash = Decimal(1000) - qty * Decimal("10.50")
    expected = [1000.0] + [float(cash + qty * Decimal(c)) for c in closes[1:]]
    assert result.equity.tolist() == pytest.approx(expected, rel=1e-15)
    assert result.equity_ts.tolist() == [T0 + (i + 1) * MINUTE_NS for i in range(len(closes))]
