"""BacktestEngine through SessionFactory: a monitor is valued along each bar's path on real data (its worst equity is
the worst of the path given the position held), monitors change no fill, and a pre-trade check's denials reach the
result as rejected orders with their reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from smart_trader.core.values import from_raw
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.model import Bar
from smart_trader.data.readers import read_file
from smart_trader.data.timeframes import Timeframe
from smart_trader.execution.costs import BpsCommission
from smart_trader.execution.enums import OrderSide, OrderStatus
from smart_trader.execution.events import OrderEvent, OrderRejected
from smart_trader.execution.matching import bar_path, bar_path_offsets
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.portfolio.account import Account
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.strategy.results import BacktestResult
from smart_trader.trading.session import AccountSession, Monitor, SessionFactory
from tests.strategy.builders import bars_table, equity_instrument
from tests.trading.builders import D, RecordingMonitor


class RunningMin:
    """Wants a valuation whenever the equity may be at or below the lowest it has seen: records those (ts, equity)."""

    def __init__(self) -> None:
        self.low: Decimal | None = None
        self.records: list[tuple[int, Decimal]] = []
        self.received = 0

    def on_order_event(self, session: AccountSession, order: Order, event: OrderEvent) -> None:
        return None

    def on_valuation(self, session: AccountSession | None, ts: int, equity: Decimal) -> None:
        self.received += 1
        if self.low is None or equity <= self.low:
            self.low = equity
            self.records.append((ts, equity))

    def equity_band(self, session: AccountSession) -> tuple[Decimal | None, Decimal | None]:
        return self.low, None


class BuyOnce(Strategy):
    """One market buy of ``quantity`` on the first bar, then holds."""

    name: ClassVar[str] = "buy_once"
    defaults: ClassVar[dict[str, object]] = {"quantity": "1"}

    def on_start(self) -> None:
        self.done = False

    def on_bar(self, bar: Bar) -> None:
        if not self.done:
            self.done = True
            self.buy(self.params["quantity"])


def run_with(
    monitors: list[Monitor] | None,
    table,  # type: ignore[no-untyped-def]
    instrument,  # type: ignore[no-untyped-def]
    timeframe: Timeframe,
    strategy: Strategy,
    cash: str,
    **factory: object,
) -> tuple[BacktestEngine, BacktestResult]:
    config = FillConfig(commission=BpsCommission(D(5)))
    make = (lambda _account: monitors) if monitors is not None else None
    sessions = SessionFactory(config, monitors=make, **factory)  # type: ignore[arg-type]
    engine = BacktestEngine(starting_cash=D(cash), fill_config=config, sessions=sessions)
    engine.add_bars(instrument, table, timeframe)
    return engine, engine.run(strategy)


@pytest.fixture(scope="module")
def orcl(shared_data: Path):  # type: ignore[no-untyped-def]
    r = read_file(shared_data / "bars" / "ORCL_1995-2014_1d.yahoo.csv")
    assert r.timeframe is not None
    return r, infer_instrument("ORCL", "NASDAQ", r.price_precision, r.size_precision), r.timeframe


def path_equities(r, instrument, cash: Decimal, quantity: Decimal, first: int) -> list[tuple[int, Decimal]]:  # type: ignore[no-untyped-def]
    """(ts, equity) at every point of every bar's path from bar ``first`` on, holding ``quantity``; the points at the
    bar's open + ``bar_path_offsets`` of its length (the next bar's open less this one's: daily bars)."""
    t = r.table
    pp = instrument.price_precision
    ts = t.column(0).cast("int64").to_pylist()
    cols = [
        [from_raw(int(v.scaleb(pp)), pp) for v in t.column(name).to_pylist()]
        for name in ("open", "high", "low", "close")
    ]
    out = []
    for i in range(first, len(ts)):
        o, h, low, c = (col[i] for col in cols)
        raw = bar_path(*(int(x.scaleb(pp)) for x in (o, h, low, c)))
        offsets = bar_path_offsets(r.timeframe.ns)
        for k, p in enumerate(raw):
            out.append((ts[i] + offsets[k], cash + quantity * from_raw(p, pp) * instrument.multiplier))
    return out


def test_a_monitor_sees_the_worst_equity_of_every_bar_path_on_real_bars(orcl) -> None:  # type: ignore[no-untyped-def]
    r, instrument, timeframe = orcl
    monitor = RunningMin()
    engine, result = run_with([monitor], r.table, instrument, timeframe, BuyOnce(quantity="1000"), "100000")
    (fill,) = result.fills
    assert fill.quantity == 1000
    cash = D(100_000) - fill.quantity * fill.price - fill.commission
    assert engine.account.cash == cash
    first = [int(x) for x in r.table.column(0).cast("int64").to_pylist()].index(fill.ts_event)  # the fill's bar
    points = path_equities(r, instrument, cash, fill.quantity, first)
    worst = min(e for _, e in points)
    assert monitor.low == worst
    # independently: the worst of a long is at the lowest low held through
    lows = [D(str(v)) for v in r.table.column("low").to_pylist()[first:]]
    assert worst == cash + fill.quantity * min(lows)
    # and every new low of the path (ts, equity) reached the monitor, in order; its first record is the valuation
    # right after the fill (at the bar's open, where it filled), every later one must be the reference's
    reference = RunningMin()
    for ts, e in points:
        reference.on_valuation(None, ts, e)
    after_fill = monitor.records[0][1]
    assert monitor.records[1:] == [x for x in reference.records if x[1] <= after_fill]
    # the band let it skip most points: far fewer valuations than path points
    assert monitor.received < len(points) / 10


def test_a_short_is_judged_at_the_highs(orcl) -> None:  # type: ignore[no-untyped-def]
    r, instrument, timeframe = orcl

    class SellOnce(BuyOnce):
        def on_bar(self, bar: Bar) -> None:
            if not self.done:
                self.done = True
                self.sell(self.params["quantity"])

    from smart_trader.portfolio.account import AccountType

    monitor = RunningMin()
    config = FillConfig()
    engine = BacktestEngine(
        starting_cash=D(100_000),
        account_type=AccountType.MARGIN,
        sessions=SessionFactory(config, monitors=lambda _a: [monitor]),
    )
    engine.add_bars(instrument, r.table.slice(0, 800), timeframe)
    result = engine.run(SellOnce(quantity="500"))
    (fill,) = result.fills
    cash = D(100_000) + fill.quantity * fill.price
    first = [int(x) for x in r.table.column(0).cast("int64").to_pylist()].index(fill.ts_event)
    highs = [D(str(v)) for v in r.table.column("high").to_pylist()[first:800]]
    assert monitor.low == cash - fill.quantity * max(highs)


def test_the_valuation_after_a_fill_is_at_a_price_the_market_reached() -> None:
    inst = equity_instrument()
    # a gap up: the buy fills at 20.00 and the price never goes below 19.00 afterwards
    table = bars_table(
        [
            ("10.00", "10.00", "10.00", "10.00", "1000"),
            ("20.00", "21.00", "19.00", "20.50", "1000"),
            ("20.50", "22.00", "19.50", "21.00", "1000"),
        ]
    )
    monitor = RunningMin()
    engine = BacktestEngine(starting_cash=D(1000), sessions=SessionFactory(FillConfig(), monitors=lambda _a: [monitor]))
    engine.add_bars(inst, table, Timeframe.parse("1m"))
    result = engine.run(BuyOnce(quantity="40"))
    (fill,) = result.fills
    assert fill.price == D("20.00")
    cash = D(1000) - 40 * D("20.00")
    # the worst the account ever was: 40 shares at the 19.00 low
    assert monitor.low == cash + 40 * D("19.00")


# -- monitors change no fill --------------------------------------------------------------------------------------
class EveryBar(SmaCross):
    """sma_cross woken on every bar (the engine's plain bar loop rather than the signal loop)."""

    def on_start(self) -> None:
        super().on_start()
        self.wake_series = None


def fills_of(result: BacktestResult) -> list[tuple[object, ...]]:
    return [(f.fill_id, f.order_id, f.side, f.quantity, f.price, f.commission, f.ts_event) for f in result.fills]


@pytest.fixture(scope="module")
def eth_btc(shared_data: Path):  # type: ignore[no-untyped-def]
    r = read_file(shared_data / "bars" / "ETH-BTC_2018-01_5m.binance.feather")
    inst = infer_instrument("ETH/BTC", "BINANCE", r.price_precision, r.size_precision)
    return r, inst, r.timeframe or Timeframe.parse("5m")


@pytest.mark.parametrize("strategy", [SmaCross, EveryBar], ids=["signal loop", "bar loop"])
def test_monitors_change_no_fill_on_real_bars(eth_btc, strategy: type[SmaCross]) -> None:  # type: ignore[no-untyped-def]
    r, inst, tf = eth_btc
    _, bare = run_with(None, r.table, inst, tf, strategy(fast=10, slow=30), "10")
    idle = RecordingMonitor()  # does nothing, wants no price move
    _, with_idle = run_with([idle], r.table, inst, tf, strategy(fast=10, slow=30), "10")
    busy = RecordingMonitor(band=(D("1E+9"), None))  # every price is a crossing: valued on every path point
    _, with_busy = run_with([busy], r.table, inst, tf, strategy(fast=10, slow=30), "10")
    assert len(bare.fills) > 100
    assert fills_of(with_idle) == fills_of(bare)
    assert fills_of(with_busy) == fills_of(bare)
    assert with_busy.stats.final_equity == with_idle.stats.final_equity == bare.stats.final_equity
    assert with_busy.equity.tolist() == bare.equity.tolist()
    # the monitors were really there: they saw every event (accepted + filled per market order)
    assert len(idle.events) == len(busy.events) == 2 * len(bare.fills)


@pytest.mark.parametrize(
    "strategy",
    [SmaCross, EveryBar],
    ids=["signal loop", "bar loop"],
)
def test_a_monitor_is_valued_after_each_fill_and_on_every_path_point_held(eth_btc, strategy) -> None:  # type: ignore[no-untyped-def]
    r, inst, tf = eth_btc
    busy = RecordingMonitor(band=(D("1E+9"), None))  # every price is a crossing
    _, result = run_with([busy], r.table, inst, tf, strategy(fast=10, slow=30), "10")
    index = {ts: i for i, ts in enumerate(r.table.column(0).cast("int64").to_pylist())}
    fill_bars = [index[f.ts_event] for f in result.fills]
    assert len(set(fill_bars)) == len(fill_bars)  # one fill per bar
    # each fill (at a bar's open) is valued once; the bars entered and held are valued at their 4 path points, from
    # the entry bar up to the exit bar (flat again after the exit's fill) or the end
    exits = fill_bars[1::2] + ([len(index)] if len(fill_bars) % 2 else [])
    held_bars = sum(exit_ - entry for entry, exit_ in zip(fill_bars[0::2], exits, strict=True))
    assert len(busy.valuations) == len(fill_bars) + 4 * held_bars


# -- a pre-trade check in a backtest ------------------------------------------------------------------------------
class MaxQuantity:
    """Denies orders above ``limit`` units."""

    def __init__(self, limit: Decimal) -> None:
        self.limit = limit

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        if request.quantity is not None and request.quantity > self.limit:
            return f"order of {request.quantity} exceeds the maximum quantity of {self.limit}"
        return None


class Ladder(Strategy):
    """Buys 1, 5, 2, 9, 3 units on the first five bars."""

    name: ClassVar[str] = "ladder"
    defaults: ClassVar[dict[str, object]] = {}

    def on_start(self) -> None:
        self.sizes = [1, 5, 2, 9, 3]
        self.rejections: list[str] = []

    def on_bar(self, bar: Bar) -> None:
        if self.sizes:
            self.buy(self.sizes.pop(0))

    def on_order_event(self, order: Order, event: OrderEvent) -> None:
        if isinstance(event, OrderRejected):
            self.rejections.append(event.reason)


def test_a_pre_trade_check_denies_orders_in_a_backtest_with_its_reason(orcl) -> None:  # type: ignore[no-untyped-def]
    r, instrument, timeframe = orcl
    strategy = Ladder()

    def checks(_account: Account) -> list[MaxQuantity]:
        return [MaxQuantity(D(3))]

    engine, result = run_with(None, r.table.slice(0, 50), instrument, timeframe, strategy, "100000", checks=checks)
    by_qty = {o.request.quantity: o for o in result.orders}
    assert sorted(by_qty) == [1, 2, 3, 5, 9]
    for q in (5, 9):
        order = by_qty[D(q)]
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason == f"order of {q} exceeds the maximum quantity of 3"
    for q in (1, 2, 3):
        assert by_qty[D(q)].status is OrderStatus.FILLED
    assert strategy.rejections == [
        "order of 5 exceeds the maximum quantity of 3",
        "order of 9 exceeds the maximum quantity of 3",
    ]
    assert sum(f.quantity for f in result.fills) == 6
    assert all(f.side is OrderSide.BUY for f in result.fills)
    assert engine.account.quantity(instrument.id) == 6
