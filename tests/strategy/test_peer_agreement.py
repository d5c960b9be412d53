"""Peer agreement: our ``sma_cross`` (fast 10, slow 30) and the same strategy in backtesting.py, vectorbt and
backtrader, on real data — ORCL daily (Yahoo) and ETH/BTC 5-minute (Binance) — with fills at the next
bar's open, all-in sizing floored to whole lots and no commission.

Trade lists (entry and exit time, entry and exit price, quantity; the trade still open at the end
included) must be equal, the peers' floats read at the data's precision, and final equity must agree to
half a unit of the last price decimal. Every difference is a named convention of a peer, asserted with
its count:

- **whole units** — backtesting.py trades whole units. ORCL's lot is 1 share (``infer_instrument`` on
  whole-share volumes), so it matches as is; ETH/BTC's lot is 1e-8 ETH, matched with
  ``FractionalBacktest(fractional_unit=1e-8)`` (prices per lot, whole lots).
- **cash tolerance** — vectorbt zeroes a cash balance within ``rel_tol = 1e-9`` of zero
  (``vectorbt.utils.math_.add_nb``): the leftover of an all-in buy (less than one lot's worth) is dropped,
  later all-in quantities come out smaller, and ``final_value()`` (built from the order cash flows) still
  counts the dropped cash. Exact model: :func:`run_numpy` with ``zero_dust_below=10**9``.
- **float size granularity** — vectorbt's ``size // size_granularity * size_granularity`` with
  ``size_granularity=1e-8`` (not a binary fraction) loses one more lot now and then; prices per lot with
  ``size_granularity=1`` avoid it.
- **crossing through a touch** — vectorbt's ``crossed_above`` also fires on ``fast < slow, fast == slow,
  fast > slow``; ours (and backtesting.py's ``crossover``) needs strictly below on the previous bar.
- **moving-average arithmetic** — exact fixed-point window sums (ours), pandas' running Kahan sum
  (backtesting.py), a running cumulative sum (vectorbt), ``math.fsum`` per window (backtrader), and
  ``numpy.mean`` per window: the cross each gives is checked against exact integer arithmetic on every bar.

The peer implementations live in ``benchmarks/peers.py`` so the benchmark times exactly this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from benchmarks.peers import (
    PeerBars,
    PeerRun,
    Trade,
    crosses_by_method,
    exact_crosses,
    exact_signs,
    first_difference,
    our_trades,
    run_backtesting_py,
    run_backtrader,
    run_numpy,
    run_vectorbt,
    vectorbt_signals,
)

from smart_trader.core.instruments import Instrument
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.engine import BacktestEngine

pytestmark = pytest.mark.slow

FAST, SLOW = 10, 30
VECTORBT_REL_TOL = 10**9  # vectorbt.utils.math_.rel_tol = 1e-9


@dataclass(frozen=True)
class Case:
    """One recording and what our run of it is known to give."""

    file: str
    symbol: str
    cash: int  # quote currency; ETH/BTC: 10 BTC keeps quantities in lots (~1e10) far inside a float's exact range
    trades: int  # ours, the one still open at the end included
    open_at_end: bool
    exact_ties: int  # bars where SMA(10) == SMA(30) exactly
    touch_crosses: int  # extra vectorbt crosses through a touch
    vectorbt_quantities_differ: int  # trades whose quantity vectorbt's cash tolerance changes
    vectorbt_lots_short: int  # the most lots vectorbt's quantity is below ours
    granularity_losses: int  # trades where size_granularity=lot in float loses a lot against per-lot prices


CASES = [
    Case(
        "bars/ORCL_1995-2014_1d.yahoo.csv",
        "ORCL",
        cash=100_000,
        trades=97,
        open_at_end=True,
        exact_ties=1,
        touch_crosses=1,
        vectorbt_quantities_differ=0,
        vectorbt_lots_short=0,
        granularity_losses=0,
    ),
    Case(
        "bars/ETH-BTC_2018-01_5m.binance.feather",
        "ETH-BTC",
        cash=10,
        trades=138,
        open_at_end=False,
        exact_ties=0,
        touch_crosses=0,
        vectorbt_quantities_differ=137,
        vectorbt_lots_short=58,
        granularity_losses=136,
    ),
]


@dataclass(frozen=True)
class Ours:
    """Our run of a case, and the bars as the peers read them."""

    case: Case
    instrument: Instrument
    bars: PeerBars
    trades: list[Trade]
    final_equity: Decimal
    crosses: npt.NDArray[np.int8]  # the cross signal our strategy saw on every bar

    def equity_agrees(self, peer: float) -> bool:
        """A peer's float final equity is ours to half a unit of the price's last decimal."""
        return abs(Decimal(peer) - self.final_equity) <= Decimal(1).scaleb(-self.instrument.price_precision) / 2


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.symbol)
def ours(request: pytest.FixtureRequest, shared_data: Path) -> Ours:
    case: Case = request.param
    r = read_file(shared_data / case.file)
    instrument = infer_instrument(case.symbol, "LOCAL", r.price_precision, r.size_precision)
    assert r.timeframe is not None
    engine = BacktestEngine(starting_cash=Decimal(case.cash))
    engine.add_bars(instrument, r.table, r.timeframe)
    strategy = SmaCross(fast=FAST, slow=SLOW)
    result = engine.run(strategy)
    trades = our_trades(result)
    assert len(trades) == case.trades
    assert (trades[-1].exit_ns is None) is case.open_at_end
    bars = PeerBars.from_table(r.table, r.price_precision, instrument.lot_size)
    crosses = np.asarray(strategy.cross.history, dtype=np.int8)
    return Ours(case, instrument, bars, trades, result.stats.final_equity, crosses)


def assert_same_trades(ours: Ours, peer: PeerRun) -> None:
    diff = first_difference(ours.trades, peer.trades)
    assert diff is None, f"{peer.name}: trade #{diff[0]} differs: ours {diff[1]}, theirs {diff[2]}"


def test_lot_sizes_come_from_the_files_precisions(ours: Ours) -> None:
    expected = {"ORCL": Decimal(1), "ETH-BTC": Decimal("1e-8")}[ours.case.symbol]
    assert ours.instrument.lot_size == expected


def test_every_sma_implementation_crosses_where_exact_arithmetic_does(ours: Ours) -> None:
    # Moving-average arithmetic: the implementations differ in the last bits, which can only flip the sign of
    # fast − slow where the two are (almost) equal. On these recordings none does: the exact ties (ORCL has one)
    # come out exactly equal in every implementation too, so no cross differs from the exact ones.
    raw = ours.bars.raw_close
    assert int(np.count_nonzero(exact_signs(raw, FAST, SLOW)[SLOW - 1 :] == 0)) == ours.case.exact_ties
    exact = exact_crosses(raw, FAST, SLOW)
    close = ours.bars.frame["Close"].to_numpy()
    crosses = {"smart_trader": ours.crosses, **crosses_by_method(close, FAST, SLOW)}
    differing = {name: int(np.count_nonzero(c != exact)) for name, c in crosses.items()}
    assert differing == dict.fromkeys(differing, 0)


def test_plain_numpy_loop_in_exact_integers_gives_our_trades_and_equity(ours: Ours) -> None:
    peer = run_numpy(ours.bars, FAST, SLOW, Decimal(ours.case.cash))
    assert_same_trades(ours, peer)
    assert Decimal(peer.final_equity) == Decimal(float(ours.final_equity))


def test_backtesting_py_gives_our_trades_and_equity(ours: Ours) -> None:
    # Whole units: ORCL trades whole shares in both; ETH/BTC runs through FractionalBacktest(fractional_unit=1e-8).
    # The last ORCL trade stays open in both (finalize_trades=False) and is marked to the last close.
    peer = run_backtesting_py(ours.bars, FAST, SLOW, float(ours.case.cash))
    assert_same_trades(ours, peer)
    assert ours.equity_agrees(peer.final_equity), f"{peer.final_equity!r} != {ours.final_equity}"


def test_backtrader_with_cheat_on_open_gives_our_trades_and_equity(ours: Ours) -> None:
    peer = run_backtrader(ours.bars, FAST, SLOW, float(ours.case.cash))
    assert_same_trades(ours, peer)
    assert ours.equity_agrees(peer.final_equity), f"{peer.final_equity!r} != {ours.final_equity}"


def test_vectorbt_gives_our_trades_but_for_its_cash_tolerance(ours: Ours) -> None:
    case, cash = ours.case, Decimal(ours.case.cash)
    peer = run_vectorbt(ours.bars, FAST, SLOW, float(cash))
    model = run_numpy(ours.bars, FAST, SLOW, cash, zero_dust_below=VECTORBT_REL_TOL)
    # vectorbt is exactly our strategy with its cash tolerance: same trades as the exact model of it ...
    diff = first_difference(model.trades, peer.trades)
    assert diff is None, f"vectorbt vs the model of its cash tolerance, trade #{diff[0]}: {diff[1]} / {diff[2]}"
    # ... whose final_value() still counts the cash its simulation dropped.
    expected = Decimal(model.final_equity) + model.dropped_cash
    assert abs(Decimal(peer.final_equity) - expected) <= Decimal(1).scaleb(-ours.instrument.price_precision) / 2
    # Against ours: same entry and exit times and prices on every trade; quantities differ where the dropped
    # dust cost a lot (ETH/BTC: lots worth ~1e-9 BTC are always dust at rel_tol 1e-9 of ~10 BTC; ORCL: never).
    assert len(peer.trades) == len(ours.trades)
    same_times_and_prices = [
        (a.entry_ns, a.exit_ns, a.entry_price, a.exit_price) == (b.entry_ns, b.exit_ns, b.entry_price, b.exit_price)
        for a, b in zip(ours.trades, peer.trades, strict=True)
    ]
    assert all(same_times_and_prices)
    lot = ours.instrument.lot_size
    lots_short = [int((a.quantity - b.quantity) / lot) for a, b in zip(ours.trades, peer.trades, strict=True)]
    assert min(lots_short) >= 0
    assert sum(1 for d in lots_short if d) == case.vectorbt_quantities_differ
    assert max(lots_short) == case.vectorbt_lots_short
    assert (model.dropped_cash > 0) is (case.vectorbt_quantities_differ > 0)


def test_vectorbt_float_size_granularity_loses_lots_that_per_lot_prices_keep(ours: Ours) -> None:
    per_lot = run_vectorbt(ours.bars, FAST, SLOW, float(ours.case.cash))
    per_unit = run_vectorbt(ours.bars, FAST, SLOW, float(ours.case.cash), per_lot=False)
    pairs = list(zip(per_lot.trades, per_unit.trades, strict=True))
    assert all(b.quantity <= a.quantity for a, b in pairs)  # a float floor by 1e-8 only ever loses
    assert sum(1 for a, b in pairs if b.quantity < a.quantity) == ours.case.granularity_losses  # ORCL: 1.0 is exact


def test_vectorbt_crossed_above_also_counts_a_cross_through_a_touch(ours: Ours) -> None:
    close = ours.bars.frame["Close"].to_numpy()
    strict_up, strict_down = vectorbt_signals(close, FAST, SLOW)
    touch_up, touch_down = vectorbt_signals(close, FAST, SLOW, touch=True)
    extra = np.flatnonzero((touch_up != strict_up) | (touch_down != strict_down))
    assert len(extra) == ours.case.touch_crosses
    signs = exact_signs(ours.bars.raw_close, FAST, SLOW)
    assert all(signs[i - 1] == 0 for i in extra)  # the bar before each extra cross is an exact tie
    if len(extra):
        touched = run_vectorbt(ours.bars, FAST, SLOW, float(ours.case.cash), touch=True)
        diff = first_difference(ours.trades, touched.trades)
        assert diff is not None and diff[2] is not None
        assert diff[2].entry_ns == int(ours.bars.ts[extra[0] + 1])  # it enters on the bar after the touch
