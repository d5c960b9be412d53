"""``sma_cross`` written in peer libraries — backtesting.py, vectorbt, backtrader — and as a plain NumPy
loop, for the peer-agreement test (``tests/strategy/test_peer_agreement.py``) and the benchmark (``run.py``):
the code that is benchmarked is the code whose trades are tested against ours.

The strategy everywhere (Smart Trader's ``sma_cross``): simple moving averages of the close, ``fast`` and
``slow`` bars; a cross up is ``fast > slow`` on this bar and ``fast < slow`` on the previous one
(backtesting.py's ``lib.crossover``), a cross down the mirror. On a cross up while flat, buy with all the
cash at the next bar's open, floored to whole lots; on a cross down while long, sell the whole position at
the next bar's open. Long only, no commission, no slippage. An order decided on the last bar never fills.

Every runner returns a :class:`PeerRun`: the trades in entry order (the last one may still be open), as
decimals at the data's precision, and the final equity, cash + position × last close (a float: the peers
keep money in binary floats).

Conventions of the peers and how each is matched here (the test names them where they show):

- **Sizing** — backtesting.py buys ``int(margin_available × (1 − ε) // price)`` whole units; for lots below
  one unit ``backtesting.lib.FractionalBacktest(fractional_unit=lot)`` multiplies prices by the lot so that a
  unit is one lot. vectorbt floors with float arithmetic, ``size // size_granularity * size_granularity``,
  which loses a lot now and then when the lot (``1e-8``) is not a binary fraction, so it gets the same
  per-lot prices and ``size_granularity=1``. backtrader sizes when the order is placed; the all-in size at
  the next open is only known with ``cheat_on_open=True`` (``next_open`` runs at the next bar's open, before
  the broker matches, and orders placed there fill at that open).
- **Open trade at the end** — backtesting.py (``finalize_trades=False``), vectorbt and backtrader all leave it
  open and mark it to the last close in the final equity, as we do.
- **Crossing** — vectorbt's ``crossed_above`` also counts a cross *through a touch* (``fast < slow``, then
  ``fast == slow``, then ``fast > slow``); here its moving averages go through :func:`strict_crosses`.
- **Moving averages** — ours sums the fixed-point prices exactly (the engine gives ``SMA`` the price
  precision), so exactly equal averages are equal floats; backtesting.py's is pandas ``rolling().mean()`` (a
  running, Kahan-compensated sum); vectorbt's a running cumulative sum; backtrader's ``math.fsum`` of each
  window; ``numpy.mean`` of each window is our ``SMA`` without a precision. The float ones differ in the last
  bits, which decides a cross where the two averages are equal or within a few ulps; :func:`exact_signs`
  gives the exact answer from integer window sums.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from decimal import Decimal

import backtesting
import backtrader as bt
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import vectorbt as vbt
from backtesting.lib import FractionalBacktest, crossover

from smart_trader.data.schema import raw_from_decimal
from smart_trader.strategy.results import BacktestResult

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Signals = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade in the units of the data: ns UTC, quote currency, base units. An open trade has no exit."""

    entry_ns: int
    exit_ns: int | None
    entry_price: Decimal
    exit_price: Decimal | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class PeerRun:
    """A peer's trades (entry order), its final equity (float), the seconds its run took and, for the model of
    vectorbt's tolerance (:func:`run_numpy`), the cash that tolerance dropped."""

    name: str
    trades: list[Trade]
    final_equity: float
    seconds: float
    dropped_cash: Decimal = Decimal(0)


@dataclass(frozen=True)
class PeerBars:
    """One bar series as every runner reads it.

    ``frame`` is the float ``Open, High, Low, Close, Volume`` frame indexed by bar open time (UTC); its
    prices are ``raw / 10**price_precision``, the same doubles our indicators see. ``lot`` is the lot size
    (base units) every runner floors quantities to.
    """

    frame: pd.DataFrame
    ts: I64
    raw_open: I64
    raw_close: I64
    price_precision: int
    lot: Decimal

    @classmethod
    def from_table(cls, table: pa.Table, price_precision: int, lot: Decimal) -> PeerBars:
        """From normalized bars (:mod:`smart_trader.data.schema`) at ``price_precision``."""
        raw = {c: raw_from_decimal(table.column(c)) for c in ("open", "high", "low", "close")}
        scale = 10.0**price_precision
        ts = np.asarray(table.column("ts_event").cast(pa.int64()).to_numpy(), dtype=np.int64)
        columns = {c.capitalize(): v / scale for c, v in raw.items()}
        columns["Volume"] = np.asarray(table.column("volume").cast(pa.float64()).to_numpy(zero_copy_only=False))
        frame = pd.DataFrame(columns, index=pd.DatetimeIndex(pd.to_datetime(ts, utc=True), name="time"))
        return cls(frame, ts, raw["open"], raw["close"], price_precision, lot)

    @property
    def size_places(self) -> int:
        """Decimals of a quantity (those of the lot size)."""
        return max(0, -int(self.lot.as_tuple().exponent))

    def slice(self, n: int) -> PeerBars:
        """The first ``n`` bars."""
        return PeerBars(
            self.frame.iloc[:n], self.ts[:n], self.raw_open[:n], self.raw_close[:n], self.price_precision, self.lot
        )

    def price(self, value: float) -> Decimal:
        """A peer's float price as the decimal at the data's precision nearest to it."""
        return _at(value, self.price_precision)

    def quantity(self, value: float) -> Decimal:
        """A peer's float quantity as the decimal at the lot's precision nearest to it."""
        return _at(value, self.size_places)


def _at(value: float, places: int) -> Decimal:
    return Decimal(value).quantize(Decimal(1).scaleb(-places))


def our_trades(result: BacktestResult) -> list[Trade]:
    """Our trades from a long-only run: closed round trips, then the position still open at the end."""
    out = [
        Trade(rt.entry_ts, rt.exit_ts, rt.entry_price, rt.exit_price, rt.quantity)
        for rt in sorted(result.round_trips, key=lambda r: r.entry_ts)
    ]
    if result.open_positions:
        last = result.fills[-1]
        out.append(Trade(last.ts_event, None, last.price, None, last.quantity))
    return out


def first_difference(ours: list[Trade], theirs: list[Trade]) -> tuple[int, Trade | None, Trade | None] | None:
    """(index, ours, theirs) of the first trade that differs, or ``None`` when the lists are equal."""
    for k in range(max(len(ours), len(theirs))):
        a = ours[k] if k < len(ours) else None
        b = theirs[k] if k < len(theirs) else None
        if a != b:
            return k, a, b
    return None


# -- signals ------------------------------------------------------------------------------------
def strict_crosses(fast: F64, slow: F64) -> Signals:
    """+1 where ``fast`` crosses above ``slow`` (above now, below on the previous bar), −1 the mirror, else 0."""
    out = np.zeros(len(fast), dtype=np.int8)
    with np.errstate(invalid="ignore"):
        out[1:] += (fast[1:] > slow[1:]) & (fast[:-1] < slow[:-1])
        out[1:] -= (fast[1:] < slow[1:]) & (fast[:-1] > slow[:-1])
    return out


def exact_signs(raw_close: I64, fast: int, slow: int) -> Signals:
    """Exact sign of SMA(fast) − SMA(slow) per bar from fixed-point closes: the sign of
    ``slow × Σfast − fast × Σslow`` in integers (0 during warm-up and on exact ties)."""
    csum = np.concatenate(([0], np.cumsum(raw_close, dtype=np.int64)))
    if len(raw_close) and int(csum[-1]) >= 2**62 // slow:
        raise OverflowError("closes too large for exact int64 window sums")
    n = len(raw_close)
    out = np.zeros(n, dtype=np.int8)
    if n >= slow:
        end = np.arange(slow, n + 1)
        diff = slow * (csum[end] - csum[end - fast]) - fast * (csum[end] - csum[end - slow])
        out[slow - 1 :] = np.sign(diff)
    return out


def exact_crosses(raw_close: I64, fast: int, slow: int) -> Signals:
    """Crosses of the exact SMAs (same definition as :func:`strict_crosses`)."""
    sign = exact_signs(raw_close, fast, slow).astype(np.float64)
    return strict_crosses(sign, np.zeros_like(sign))


def _rolling_sma(values: F64, n: int) -> pd.Series:
    """backtesting.py's own example indicator (``backtesting.test.SMA``)."""
    return pd.Series(values).rolling(n).mean()


def _fsum_sma(values: F64, n: int) -> F64:
    """backtrader's ``SMA`` (``Average.once``): ``math.fsum`` of each window / n."""
    out = np.full(len(values), np.nan)
    v = values.tolist()
    for i in range(n - 1, len(v)):
        out[i] = math.fsum(v[i - n + 1 : i + 1]) / n
    return out


def crosses_by_method(close: F64, fast: int, slow: int) -> dict[str, Signals]:
    """Crosses from each peer's moving averages and from ``numpy.mean`` of each window (our ``SMA`` without a
    price precision), to count where they part from the exact ones."""
    windows = np.lib.stride_tricks.sliding_window_view

    def numpy_mean(n: int) -> F64:
        out = np.full(len(close), np.nan)
        out[n - 1 :] = windows(close, n).mean(axis=1)
        return out

    return {
        "numpy.mean": strict_crosses(numpy_mean(fast), numpy_mean(slow)),
        "backtesting.py": strict_crosses(_rolling_sma(close, fast).to_numpy(), _rolling_sma(close, slow).to_numpy()),
        "vectorbt": strict_crosses(vbt.MA.run(close, fast).ma.to_numpy(), vbt.MA.run(close, slow).ma.to_numpy()),
        "backtrader": strict_crosses(_fsum_sma(close, fast), _fsum_sma(close, slow)),
    }


# -- backtesting.py -----------------------------------------------------------------------------
class _BacktestingPySmaCross(backtesting.Strategy):  # type: ignore[misc]
    fast = 10
    slow = 30

    def init(self) -> None:
        self.sma_fast = self.I(_rolling_sma, self.data.Close, self.fast)
        self.sma_slow = self.I(_rolling_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma_fast, self.sma_slow):
            if not self.position:
                self.buy()  # size defaults to all the equity available, whole units
        elif crossover(self.sma_slow, self.sma_fast):
            self.position.close()


def run_backtesting_py(bars: PeerBars, fast: int, slow: int, cash: float) -> PeerRun:
    """sma_cross in backtesting.py: market orders fill at the next open (``trade_on_close=False``); whole units,
    or whole lots through ``FractionalBacktest`` when the lot is below one unit."""
    started = time.perf_counter()
    kw = {"cash": cash, "commission": 0.0, "trade_on_close": False, "exclusive_orders": False}
    unit = float(bars.lot) if bars.lot < 1 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open at the end of backtest"
        if unit == 1.0:
            runner = backtesting.Backtest(bars.frame, _BacktestingPySmaCross, **kw, finalize_trades=False)
        else:
            runner = FractionalBacktest(
                bars.frame, _BacktestingPySmaCross, fractional_unit=unit, **kw, finalize_trades=False
            )
        stats = runner.run(fast=fast, slow=slow)
    seconds = time.perf_counter() - started
    closed = stats["_trades"]
    trades = [
        Trade(int(t_in.value), int(t_out.value), bars.price(p_in), bars.price(p_out), bars.quantity(q))
        for t_in, t_out, p_in, p_out, q in zip(
            closed["EntryTime"], closed["ExitTime"], closed["EntryPrice"], closed["ExitPrice"], closed["Size"],
            strict=True,
        )
    ]  # fmt: skip
    for t in stats["_strategy"].trades:  # still open; FractionalBacktest leaves these in lots at per-lot prices
        entry_ns = int(bars.ts[t.entry_bar])
        trades.append(Trade(entry_ns, None, bars.price(t.entry_price / unit), None, bars.quantity(t.size * unit)))
    trades.sort(key=lambda t: t.entry_ns)
    return PeerRun("backtesting.py", trades, float(stats["Equity Final [$]"]), seconds)


# -- vectorbt -----------------------------------------------------------------------------------
def vectorbt_signals(close: F64, fast: int, slow: int, *, touch: bool = False) -> tuple[Signals, Signals]:
    """(entries, exits) as booleans on the signal bar from vectorbt's MAs: with ``touch=True`` vectorbt's own
    ``ma_crossed_above/below`` (a cross through a touch counts), else :func:`strict_crosses`."""
    f, s = vbt.MA.run(close, fast), vbt.MA.run(close, slow)
    if touch:
        return f.ma_crossed_above(s).to_numpy(), f.ma_crossed_below(s).to_numpy()
    cross = strict_crosses(f.ma.to_numpy(), s.ma.to_numpy())
    return cross > 0, cross < 0


def run_vectorbt(
    bars: PeerBars, fast: int, slow: int, cash: float, *, touch: bool = False, per_lot: bool = True
) -> PeerRun:
    """sma_cross in vectorbt: signals shifted one bar and filled at that bar's open (``price=open``), all the
    cash (``size=inf``), whole lots. ``per_lot=False`` passes ``size_granularity=lot`` on unit prices instead.

    vectorbt gets NumPy arrays, not the frame: with pandas 3 it turns a tz-aware index into an array of
    ``Timestamp`` objects several times per call (about 6 s per million bars), which is not its simulation.
    """
    started = time.perf_counter()
    entries, exits = vectorbt_signals(bars.frame["Close"].to_numpy(), fast, slow, touch=touch)
    unit = float(bars.lot) if per_lot else 1.0
    pf = vbt.Portfolio.from_signals(
        bars.frame["Close"].to_numpy() * unit,
        np.concatenate(([False], entries[:-1])),  # decided at the close of bar i, filled at the open of i + 1
        np.concatenate(([False], exits[:-1])),
        price=bars.frame["Open"].to_numpy() * unit,
        size=np.inf,
        size_granularity=1.0 if per_lot else float(bars.lot),
        init_cash=float(cash),  # a float: vectorbt reads the ints 0 and 1 as InitCashMode values
        fees=0.0,
        direction="longonly",
        accumulate=False,
    )
    records = pf.trades.values
    final = float(pf.final_value())
    seconds = time.perf_counter() - started
    trades = []
    for r in records.tolist():  # (id, col, size, entry_idx, entry_price, fees, exit_idx, exit_price, ..., status, ..)
        closed = r[12] == 1
        trades.append(
            Trade(
                int(bars.ts[r[3]]),
                int(bars.ts[r[6]]) if closed else None,
                bars.price(r[4] / unit),
                bars.price(r[7] / unit) if closed else None,
                bars.quantity(r[2] * unit),
            )
        )
    return PeerRun("vectorbt", trades, final, seconds)


# -- backtrader ---------------------------------------------------------------------------------
class _BacktraderSmaCross(bt.Strategy):  # type: ignore[misc]
    params = (("fast", 10), ("slow", 30), ("lot_places", 0))

    def __init__(self) -> None:
        self.sma_fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        self.sma_slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.signal = 0
        self.fills: list[tuple[int, float, float]] = []

    def next(self) -> None:  # at the close of bar i: decide
        f0, f1, s0, s1 = self.sma_fast[0], self.sma_fast[-1], self.sma_slow[0], self.sma_slow[-1]
        self.signal = 1 if f0 > s0 and f1 < s1 else -1 if f0 < s0 and f1 > s1 else 0

    def next_open(self) -> None:  # at the open of bar i + 1, before the broker matches: act
        if self.signal > 0 and not self.position:
            self.buy(size=floor_lots(self.broker.getcash(), self.data.open[0], self.p.lot_places))
        elif self.signal < 0 and self.position:
            self.close()

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.fills.append((len(self.data) - 1, order.executed.price, order.executed.size))


def floor_lots(cash: float, price: float, lot_places: int) -> float:
    """All-in quantity in whole lots of ``10**-lot_places``, computed on the decimals the floats print as."""
    lots = int(Decimal(repr(cash)).scaleb(lot_places) / Decimal(repr(price)))
    return float(Decimal(lots).scaleb(-lot_places))


def run_backtrader(bars: PeerBars, fast: int, slow: int, cash: float) -> PeerRun:
    """sma_cross in backtrader with ``cheat_on_open`` (see the module docstring); indicators in runonce mode."""
    started = time.perf_counter()
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars.frame.tz_localize(None)))
    cerebro.addstrategy(_BacktraderSmaCross, fast=fast, slow=slow, lot_places=bars.size_places)
    cerebro.broker.setcash(cash)
    strategy = cerebro.run()[0]
    final = float(cerebro.broker.getvalue())
    seconds = time.perf_counter() - started
    fills = strategy.fills  # (bar index, price, signed size), alternating buy / sell
    trades = []
    for k in range(0, len(fills), 2):
        (bar_in, p_in, q_in), out = fills[k], fills[k + 1] if k + 1 < len(fills) else None
        trades.append(
            Trade(
                int(bars.ts[bar_in]),
                int(bars.ts[out[0]]) if out else None,
                bars.price(p_in),
                bars.price(out[1]) if out else None,
                bars.quantity(q_in),
            )
        )
    return PeerRun("backtrader", trades, final, seconds)


# -- plain NumPy --------------------------------------------------------------------------------
def run_numpy(bars: PeerBars, fast: int, slow: int, cash: Decimal, *, zero_dust_below: int | None = None) -> PeerRun:
    """sma_cross as a minimal loop: the crosses vectorized with NumPy from exact integer window sums
    (:func:`exact_crosses`), then a Python loop over the signal bars only, in exact integers (cash in units
    of tick × lot).

    ``zero_dust_below=10**9`` models vectorbt's float tolerance exactly: a buy that leaves less than
    1/10**9 of the cash it started from sets the cash to zero (``vectorbt.utils.math_.add_nb`` with
    ``rel_tol = 1e-9``); the amounts so dropped are summed in :attr:`PeerRun.dropped_cash`.
    """
    started = time.perf_counter()
    pp, sp = bars.price_precision, bars.size_places
    cross = exact_crosses(bars.raw_close, fast, slow)
    units = int(cash.scaleb(pp + sp))  # cash in 10**-(pp + sp): raw price × quantity in lots
    lot_units = int(bars.lot.scaleb(sp))
    opens = bars.raw_open.tolist()
    held = dropped = 0
    fills: list[tuple[int, int, int]] = []  # (bar, raw price, lots)
    for i in np.flatnonzero(cross[:-1]).tolist():  # a signal on the last bar never fills
        j = i + 1
        if cross[i] > 0 and not held:
            held = units // opens[j] // lot_units * lot_units
            if held:
                rest = units - held * opens[j]
                if zero_dust_below is not None and rest * zero_dust_below <= units:
                    dropped, rest = dropped + rest, 0
                units = rest
                fills.append((j, opens[j], held))
        elif cross[i] < 0 and held:
            units += held * opens[j]
            fills.append((j, opens[j], held))
            held = 0
    final = units + held * int(bars.raw_close[-1])
    seconds = time.perf_counter() - started
    trades = []
    for k in range(0, len(fills), 2):
        (bar_in, p_in, q), out = fills[k], fills[k + 1] if k + 1 < len(fills) else None
        trades.append(
            Trade(
                int(bars.ts[bar_in]),
                int(bars.ts[out[0]]) if out else None,
                Decimal(p_in).scaleb(-pp),
                Decimal(out[1]).scaleb(-pp) if out else None,
                Decimal(q).scaleb(-sp),
            )
        )
    money = -(pp + sp)
    return PeerRun("numpy", trades, float(Decimal(final).scaleb(money)), seconds, Decimal(dropped).scaleb(money))
