"""Backtest results: fills, round trips, the equity curve, statistics and their files on disk.

The equity curve is float64 (a statistic); the ledger behind ``final_equity`` is exact. The curve is
sampled after every bar of the shortest bar timeframe (bar close times), or every second for runs
on trades or quotes only: equity = cash + Σ quantity × mark × multiplier, marks being the last bar
close, trade price or quote mid of each instrument.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from smart_trader.analytics.stats import RoundTrip, Stats, compute_stats, periods_per_year
from smart_trader.core.clock import ns_to_datetime
from smart_trader.core.instruments import AssetClass
from smart_trader.execution.events import Fill
from smart_trader.execution.orders import Order
from smart_trader.strategy.round_trips import build_round_trips

if TYPE_CHECKING:
    from smart_trader.strategy.api import Strategy
    from smart_trader.strategy.engine import BacktestEngine

_TRADING_DAYS = {AssetClass.EQUITY: 252, AssetClass.FX: 260, AssetClass.INDEX: 252, AssetClass.FUTURE: 252}


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    ``equity_ts`` are ns UTC (int64), ``equity`` the account equity at those times (float64, account
    currency). ``stats.final_equity`` is the exact ledger value.
    """

    strategy: str
    params: dict[str, Any]
    instruments: list[str]
    currency: str
    stats: Stats
    round_trips: list[RoundTrip]
    fills: list[Fill]
    orders: list[Order]
    equity_ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    open_positions: dict[str, str] = field(default_factory=dict)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``stats.json``, ``trades.csv``, ``fills.csv``, ``equity.csv`` and ``chart.png`` into ``out_dir``
        (created if needed). Returns the paths by name."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "stats": out_dir / "stats.json",
            "trades": out_dir / "trades.csv",
            "fills": out_dir / "fills.csv",
            "equity": out_dir / "equity.csv",
            "chart": out_dir / "chart.png",
        }
        doc = {
            "strategy": self.strategy,
            "params": {k: str(v) if isinstance(v, Decimal) else v for k, v in self.params.items()},
            "instruments": self.instruments,
            "currency": self.currency,
            "open_positions": self.open_positions,
            **self.stats.to_dict(),
        }
        paths["stats"].write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        with paths["trades"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "instrument_id",
                    "side",
                    "quantity",
                    "entry_time",
                    "entry_price",
                    "exit_time",
                    "exit_price",
                    "pnl",
                    "commission",
                ]
            )
            for rt in self.round_trips:
                w.writerow([
                    rt.instrument_id, rt.side, rt.quantity, ns_to_datetime(rt.entry_ts).isoformat(), rt.entry_price,
                    ns_to_datetime(rt.exit_ts).isoformat(), rt.exit_price, rt.pnl, rt.commission,
                ])  # fmt: skip
        with paths["fills"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "fill_id",
                    "order_id",
                    "instrument_id",
                    "side",
                    "quantity",
                    "price",
                    "commission",
                    "liquidity",
                    "ts_event",
                    "time",
                ]
            )
            for f in self.fills:
                w.writerow([
                    f.fill_id, f.order_id, f.instrument_id, f.side.value, f.quantity, f.price, f.commission,
                    f.liquidity_side.value, f.ts_event, ns_to_datetime(f.ts_event).isoformat(),
                ])  # fmt: skip
        with paths["equity"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["ts_event", "time", "equity"])
            for t, e in zip(self.equity_ts.tolist(), self.equity.tolist(), strict=True):
                w.writerow([t, ns_to_datetime(t).isoformat(), repr(e)])
        from smart_trader.analytics.chart import write_chart  # matplotlib loads only when a chart is drawn

        write_chart(
            paths["chart"], self.equity_ts, self.equity, title=f"{self.strategy} on {', '.join(self.instruments)}"
        )
        return paths


def equity_curve(
    engine: BacktestEngine,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(ts, equity, in-market mask) after every event of the run, vectorized from the fills."""
    streams = engine.streams
    if len(streams) == 1:
        ts = streams[0].ts_order
        sids = np.zeros(len(ts), dtype=np.int64)
        rows = np.arange(len(ts), dtype=np.int64)
    else:
        ts, sids, rows = engine.merged_order()
    n = len(ts)
    start_cash = float(engine.starting_cash)
    cash = np.full(n, start_cash)
    iids = list(engine.instruments)
    qty = np.zeros((len(iids), n))
    if len(streams) == 1:
        marks = streams[0].mark_series()[None, :]  # one stream: its own prices, nothing to merge
    else:
        marks = np.full((len(iids), n), np.nan)
        for k, s in enumerate(streams):
            sel = sids == k
            marks[iids.index(s.instrument.id), sel] = s.mark_series()[rows[sel]]
        # forward-fill marks per instrument; before an instrument's first price its quantity is zero anyway
        for j in range(len(iids)):
            m = marks[j]
            valid = ~np.isnan(m)
            pos = np.maximum.accumulate(np.where(valid, np.arange(n), 0))
            marks[j] = np.where(valid[pos], m[pos], 0.0)
    fm = engine.fill_marks
    if fm:
        ev, inst, dq, cash_after = (np.array(col) for col in zip(*fm, strict=True))
        np.add.at(qty, (inst.astype(np.int64), ev.astype(np.int64)), dq)
        qty = np.cumsum(qty, axis=1)
        idx = np.zeros(n, dtype=np.int64)
        idx[ev.astype(np.int64)] = np.arange(1, len(ev) + 1)  # last fill of an event wins
        idx = np.maximum.accumulate(idx)
        cash = np.concatenate(([start_cash], cash_after))[idx]
    mult = np.array([float(engine.instruments[i].multiplier) for i in iids])[:, None]
    equity = cash + (qty * marks * mult).sum(axis=0)
    return ts, equity, (qty != 0).any(axis=0)


def _sample(ts: npt.NDArray[np.int64], bucket_ns: int) -> npt.NDArray[np.int64]:
    """Indices of the last event in each time bucket."""
    b = ts // bucket_ns
    last = np.flatnonzero(np.diff(b)) if len(b) else np.empty(0, dtype=np.int64)
    return np.append(last, len(ts) - 1) if len(ts) else last


def build_result(engine: BacktestEngine, strategy: Strategy, run_seconds: float) -> BacktestResult:
    """Assemble the :class:`BacktestResult` of a finished run."""
    ts, equity, in_market = equity_curve(engine)
    events = len(ts)
    tf = engine.bar_timeframe
    single_bars = len(engine.streams) == 1 and tf is not None
    if not single_bars:
        keep = _sample(ts, tf.ns if tf is not None else 1_000_000_000)
        ts, equity, in_market = ts[keep], equity[keep], in_market[keep]
    primary = engine.streams[0].instrument
    days = _TRADING_DAYS.get(primary.asset_class, 365)
    session = 23_400 if primary.asset_class is AssetClass.EQUITY else 86_400
    ppy = periods_per_year(tf.seconds if tf is not None else 1, trading_days=days, session_seconds=session)
    multipliers = {i: inst.multiplier for i, inst in engine.instruments.items()}
    round_trips = build_round_trips(engine.broker.fills, multipliers)
    account = engine.account
    stats = compute_stats(
        ts,
        equity,
        round_trips,
        exposure_mask=in_market,
        periods_per_year=ppy,
        bars_processed=events,
        run_seconds=run_seconds,
        starting_equity=engine.starting_cash,
        final_equity=account.equity,
    )
    open_positions = {str(i): str(p.quantity) for i, p in account.positions.items() if p.quantity}
    return BacktestResult(
        strategy=strategy.name,
        params=dict(strategy.params),
        instruments=[str(i) for i in engine.instruments],
        currency=account.currency,
        stats=stats,
        round_trips=round_trips,
        fills=list(engine.broker.fills),
        orders=list(engine.broker.orders.values()),
        equity_ts=ts,
        equity=equity,
        open_positions=open_positions,
    )
