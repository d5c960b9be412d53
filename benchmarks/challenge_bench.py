"""Challenge evaluation at scale (issue 10): N challenge accounts holding one instrument, a replayed real trade stream.

Every account is a margin account with an :class:`~smart_trader.trading.session.AccountSession` built by
:class:`~smart_trader.trading.session.SessionFactory` with one
:class:`~smart_trader.challenges.monitor.ChallengeMonitor` (pre-trade check + monitor) on a fresh evaluator of the
program's first phase, ``watch``-ed by one :class:`~smart_trader.trading.dispatch.MarketDispatcher` on a
:class:`~smart_trader.core.clock.MarketClock`. Each opens its position with a market order through its own session
and broker, filled at the first trade's price (setup, timed apart). Position sizes are drawn from a seeded
distribution (notional ÷ account size log-uniform in ``--leverage``, mostly shorts: the tiled BTC/USDT path below
rises ~16% over 200k trades and barely dips) so that the daily-loss floors are crossed progressively, at many
different prices along the stream. Prices are never altered.

The replay feeds each trade through the steps of ``TradingRuntime.on_event`` (``live/runtime.py``): advance the
market clock (day resets are clock alerts), update the mark, let the brokers with working orders match the trade
(the working index: the flattening orders after a breach), ``flush_stale``, then ``on_price`` when the instrument has
exposed sessions. Timed apart, in the same process on the same stream:

- **baseline**: the same accounts and positions through sessions without monitors (what the stream costs with no
  challenge);
- **challenges**: with the monitors. Counted: session valuations (visits of the exposure index and stale flushes),
  evaluator ``on_valuation`` calls, breaches and locks; breach-to-lock latency = wall-clock time from the start of
  processing the trade that crossed a floor to the moment that session's trading state becomes ``halted``
  (``AccountSession.set_state`` is wrapped for the run; one ``perf_counter_ns`` per trade in both runs, and one
  ``thread_time_ns`` per trade in the challenge run, to tell the CPU time of the slowest halting trades from time
  the machine gave to other processes). A breach's flattening orders that the dispatcher left out of the working
  index are added by the bench (and counted), so they fill on the next trade.

Both replays run with the platform's collector settings (``app/factory.py``: ``gc.freeze()`` after start-up, then
thresholds 200,000/100/100; ``--gc python`` for Python's 700/10/10); collector pauses during the run are reported.

A correctness cross-check follows (not timed): for a seeded sample of accounts a fresh evaluator is given the same
opening fill and then valued on every trade (exact Decimal equity, in cents as ``ChallengeMonitor`` gives the rules)
until it breaches; the breach (trade, rule, floor,
equity) and every warning must equal the banded run's. Exit status 1 when they differ.

Data: Binance BTC/USDT trades (``../shared/data/trades/BTCUSDT_2021-01-08.binance.trades.parquet``, 2,001 trades)
tiled to ``--trades`` rows by ``benchmarks/tiling.py`` (repeat, shift time, rescale prices so the series stays
continuous).

    .venv/bin/python benchmarks/challenge_bench.py --accounts 50000 --trades 200000 --program ftmo-2step \
        [--json FILE] [--check-accounts 200] [--seed 10] [--leverage 0.25 20] [--long-share 0.1] [--gc platform|python]
        [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from machine import machine as machine_info
from smart_trader.challenges import ChallengeBreached, ChallengeEvaluator, ChallengeLocked, ChallengeWarning, programs
from smart_trader.challenges.monitor import ChallengeMonitor
from smart_trader.challenges.program import Program, to_cents
from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import AccountId, InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import from_raw
from smart_trader.data.catalog import infer_instrument
from smart_trader.execution.enums import OrderSide, OrderType
from smart_trader.execution.orders import OrderRequest
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, SessionFactory, TradingState
from tiling import tile_binance_trades

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TRADES_FILE = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
PROVENANCE = (
    "Binance BTC/USDT spot trades 2021-01-08 00:00:00 to 00:00:46 UTC, copied unchanged from NautilusTrader's "
    "test data (../shared/data/README.md)"
)
PRICE_DECIMALS = 2
SIZE_DECIMALS = 6
GC_THRESHOLDS = (200_000, 100, 100)  # the platform's, set after start-up with gc.freeze() (app/factory.py)


# -- data -------------------------------------------------------------------------------------------------------------
@dataclass
class Stream:
    """The replayed trades: ns timestamps, exact prices, raw prices and sizes (ints at the file's precisions)."""

    ts: list[int]
    price: list[Decimal]
    price_raw: list[int]
    size_raw: list[int]
    tiling: str


def load_stream(trades: int) -> Stream:
    """``trades`` real BTC/USDT trades, tiled from the recording (see the module docstring)."""
    frame = pl.read_parquet(DATA / TRADES_FILE)
    tiled, tiling = tile_binance_trades(frame, trades, PRICE_DECIMALS)
    ts = (tiled["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64) * 1_000_000).tolist()
    raw = np.rint(tiled["price"].to_numpy() * 10**PRICE_DECIMALS).astype(np.int64).tolist()
    size = np.rint(tiled["quantity"].to_numpy() * 10**SIZE_DECIMALS).astype(np.int64).tolist()
    return Stream(ts, [from_raw(r, PRICE_DECIMALS) for r in raw], raw, size, tiling.describe("trades"))


# -- accounts ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One account: its id, side and quantity (base units) opened at the first trade."""

    account_id: str
    side: OrderSide
    quantity: Decimal
    leverage: float


def account_specs(
    n: int, price: Decimal, size: Decimal, seed: int, lev: tuple[float, float], long_share: float
) -> list[Spec]:
    """Seeded positions: notional ÷ account size log-uniform in ``lev``, long with probability ``long_share``."""
    rng = np.random.default_rng(seed)
    leverage = np.exp(rng.uniform(np.log(lev[0]), np.log(lev[1]), n))
    longs = rng.random(n) < long_share
    lot = Decimal(1).scaleb(-SIZE_DECIMALS)
    out = []
    for i in range(n):
        qty = (Decimal(float(leverage[i])) * size / price).quantize(lot)
        side = OrderSide.BUY if longs[i] else OrderSide.SELL
        out.append(Spec(f"CH-{i:06d}", side, qty, float(leverage[i])))
    return out


@dataclass
class Book:
    """Sessions of one run, on their own clock, marks and dispatcher."""

    instrument: Instrument
    clock: MarketClock
    marks: dict[InstrumentId, Decimal]
    dispatcher: MarketDispatcher
    sessions: list[AccountSession]
    monitors: dict[str, ChallengeMonitor]
    opened: dict[str, tuple[Decimal, Decimal]]  # account id → (signed quantity, cash) right after the opening fill
    setup_seconds: float


def build(specs: list[Spec], stream: Stream, instrument: Instrument, program: Program | None, size: Decimal) -> Book:
    """Sessions for ``specs`` (with a challenge monitor each when ``program`` is given), positions opened by a market
    order through each session, filled by its broker at the first trade; the dispatcher then values and indexes
    them."""
    started = time.perf_counter()
    iid = instrument.id
    ts0 = stream.ts[0]
    clock = MarketClock(ts0)
    marks: dict[InstrumentId, Decimal] = {iid: stream.price[0]}
    dispatcher = MarketDispatcher(lambda _i: instrument, marks.get)
    monitors: dict[str, ChallengeMonitor] = {}
    if program is not None:

        def checks(account: Account) -> list[ChallengeMonitor]:
            evaluator = ChallengeEvaluator(program, 0, size, ts0, account_id=account.account_id)
            monitor = monitors[account.account_id] = ChallengeMonitor(evaluator)
            return [monitor]

        factory = SessionFactory(checks=checks, monitors=lambda a: [monitors[a.account_id]])
    else:
        factory = SessionFactory()
    instruments = {iid: instrument}
    sessions = []
    opened: dict[str, tuple[Decimal, Decimal]] = {}
    for spec in specs:
        account = Account(AccountId(spec.account_id), instrument.quote_currency, AccountType.MARGIN, marks.get)
        account.deposit(ts0, size)
        session = factory(account, instruments, clock, last_price=marks.get)
        dispatcher.watch(session)
        order = session.submit(OrderRequest(iid, spec.side, OrderType.MARKET, quantity=spec.quantity), ts0)
        if not order.is_open:
            raise SystemExit(f"{spec.account_id}: opening order {order.status.value}")
        session.broker.on_trade(iid, ts0, stream.price_raw[0], None)
        if session.account.quantity(iid) == 0:
            raise SystemExit(f"{spec.account_id}: opening order not filled")
        opened[spec.account_id] = (account.quantity(iid), account.cash)
        sessions.append(session)
    dispatcher.flush_stale(ts0)
    return Book(instrument, clock, marks, dispatcher, sessions, monitors, opened, time.perf_counter() - started)


# -- the replay -------------------------------------------------------------------------------------------------------
@dataclass
class Counters:
    """What the instrumented challenge run counts."""

    valuations: int = 0  # AccountSession.value calls (exposure-index visits + stale flushes)
    flushed: int = 0  # valuations made by MarketDispatcher.flush_stale (sessions stale after a fill or an event)
    in_flush: int = 0
    evaluations: int = 0  # ChallengeEvaluator.on_valuation calls
    halts: list[tuple[AccountSession, int]] = field(default_factory=list)


@dataclass
class RunResult:
    """One timed replay."""

    trades: int
    seconds: float
    cpu_seconds: float
    latencies_ns: list[int] = field(default_factory=list)
    halted_at: dict[str, int] = field(default_factory=dict)  # account id → trade index of its halt
    valued_in_halting_trades: list[tuple[int, int]] = field(default_factory=list)  # (halts, valuations) per trade
    flatten_sessions: int = 0
    gc_pauses_ms: dict[int, list[float]] = field(default_factory=dict)  # generation → pauses of the collector
    slowest: list[tuple[float, float, int, int, int]] = field(default_factory=list)  # ms, CPU ms, trade, halts, vals


class Instrumented:
    """Class-level wrappers counting valuations and evaluations and time-stamping halts, for the challenge run only."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.saved: list[tuple[type, str, Any]] = []

    def __enter__(self) -> Instrumented:
        c = self.counters
        value, flush_stale = AccountSession.value, MarketDispatcher.flush_stale
        set_state, on_valuation = AccountSession.set_state, ChallengeEvaluator.on_valuation
        halted = TradingState.HALTED
        clock_ns = time.perf_counter_ns

        def counted_value(self: AccountSession, ts: int, marks: Any = None) -> Any:
            c.valuations += 1
            if c.in_flush:
                c.flushed += 1
            return value(self, ts, marks)

        def flagged_flush_stale(self: MarketDispatcher, ts: int, marks: Any = None) -> None:
            c.in_flush += 1
            try:
                flush_stale(self, ts, marks)
            finally:
                c.in_flush -= 1

        def timed_set_state(self: AccountSession, state: TradingState, reason: str = "") -> None:
            if state is halted and self.state is not halted:
                c.halts.append((self, clock_ns()))
            set_state(self, state, reason)

        def counted_on_valuation(self: ChallengeEvaluator, ts: int, **kw: Any) -> Any:
            c.evaluations += 1
            return on_valuation(self, ts, **kw)

        self._patch(AccountSession, "value", counted_value)
        self._patch(MarketDispatcher, "flush_stale", flagged_flush_stale)
        self._patch(AccountSession, "set_state", timed_set_state)
        self._patch(ChallengeEvaluator, "on_valuation", counted_on_valuation)
        return self

    def _patch(self, cls: type, name: str, fn: Callable[..., Any]) -> None:
        self.saved.append((cls, name, cls.__dict__[name]))
        setattr(cls, name, fn)

    def __exit__(self, *exc: object) -> None:
        for cls, name, fn in reversed(self.saved):
            setattr(cls, name, fn)


def replay(
    book: Book,
    stream: Stream,
    counters: Counters | None,
    profile: cProfile.Profile | None = None,
    gc_thresholds: tuple[int, int, int] = GC_THRESHOLDS,
) -> RunResult:
    """Feed every trade through the runtime's steps (see the module docstring); timed."""
    iid = book.instrument.id
    clock, marks, dispatch = book.clock, book.marks, book.dispatcher
    working, exposed, stale = dispatch.working, dispatch.exposed, dispatch.stale
    halts = counters.halts if counters is not None else []
    latencies: list[int] = []
    halted_at: dict[str, int] = {}
    per_trade: list[tuple[int, int]] = []
    valued = counters.valuations if counters is not None else 0
    flatten = 0
    clock_ns = time.perf_counter_ns
    rows = zip(stream.ts, stream.price, stream.price_raw, stream.size_raw, strict=True)
    pauses: dict[int, list[float]] = {}
    gc_start = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = clock_ns()
        else:
            pauses.setdefault(info["generation"], []).append((clock_ns() - gc_start[0]) / 1e6)

    slowest: list[tuple[float, float, int, int, int]] = []
    cpu_ns = time.thread_time_ns if counters is not None else int  # CPU time of a halting trade, challenge run only
    cpu_start = 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(*gc_thresholds)
    gc.callbacks.append(on_gc)
    if profile is not None:
        profile.enable()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for k, (ts, price, raw, size) in enumerate(rows):
        start = clock_ns()
        if counters is not None:
            cpu_start = cpu_ns()
        clock.advance_to(ts)  # day resets run here, as clock alerts
        marks[iid] = price
        books = working.get(iid)
        if books:
            for session in list(books):
                session.broker.on_trade(iid, ts, raw, size)
            dispatch.unwork(iid)
        if stale:
            dispatch.flush_stale(ts)
        if exposed.get(iid):
            dispatch.on_price(iid, ts, price)
        if halts:
            assert counters is not None
            per_trade.append((len(halts), counters.valuations - valued))
            took = (clock_ns() - start) / 1e6
            if len(slowest) < 10 or took > slowest[-1][0]:
                cpu = (cpu_ns() - cpu_start) / 1e6
                slowest.append((round(took, 3), round(cpu, 3), k, len(halts), counters.valuations - valued))
                slowest.sort(reverse=True)
                del slowest[10:]
            for session, at in halts:
                latencies.append(at - start)
                halted_at[session.account_id] = k
                # a breach's flattening orders the dispatcher left out of the working index (at d36c7c2 nothing put
                # them there): the bench adds them, so they fill on the next trade as they do once that is fixed
                if session.broker.has_open_orders(iid) and session not in working.get(iid, ()):
                    dispatch.work(session, iid)
                    flatten += 1
            halts.clear()
        if counters is not None:
            valued = counters.valuations
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if profile is not None:
        profile.disable()
    gc.callbacks.remove(on_gc)
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    return RunResult(len(stream.ts), seconds, cpu, latencies, halted_at, per_trade, flatten, pauses, slowest)


def events_of(book: Book, session: AccountSession) -> list[Any]:
    """The challenge events a session's monitor produced (kept by the monitor, or in ``session.new_events`` in older
    trees)."""
    events = getattr(book.monitors[session.account_id], "events", None)
    return list(events) if events is not None else list(getattr(session, "new_events", []))


# -- cross-check ------------------------------------------------------------------------------------------------------
def _event_key(e: object) -> tuple[object, ...]:
    if isinstance(e, ChallengeWarning):
        return ("warning", e.rule, str(e.level), e.ts_event, str(e.value))
    if isinstance(e, ChallengeBreached):
        return ("breach", e.rule, e.ts_event, str(e.floor), str(e.equity))
    if isinstance(e, ChallengeLocked):
        return ("locked", e.rule, e.ts_event, str(e.floor), str(e.equity))
    return (type(e).__name__, getattr(e, "ts_event", None))


def cross_check(
    book: Book, run: RunResult, stream: Stream, program: Program, size: Decimal, sample: int, seed: int
) -> dict[str, Any]:
    """A fresh evaluator per sampled account valued on every trade (see the module docstring)."""
    rng = np.random.default_rng(seed + 1)
    picks = sorted(rng.choice(len(book.sessions), size=min(sample, len(book.sessions)), replace=False).tolist())
    ts0 = stream.ts[0]
    n = len(stream.ts)
    agree, breach_agree, differ, evaluations = 0, 0, [], 0
    started = time.perf_counter()
    for i in picks:
        session = book.sessions[i]
        aid = session.account_id
        qty, cash = book.opened[aid]  # as opened (the banded run may have flattened it since)
        balance = to_cents(cash + qty * stream.price[0])  # the rules compare cents (CHALLENGES.md §7), as the monitor
        ref = ChallengeEvaluator(program, 0, size, ts0, account_id=aid)
        events = list(ref.on_fill(ts0, balance=balance, equity=balance, opened=True, flat=False))
        breach_at: int | None = None
        stop = run.halted_at.get(aid, n - 1)
        for k in range(n):
            evaluations += 1
            equity = to_cents(cash + qty * stream.price[k])
            out = ref.on_valuation(stream.ts[k], balance=balance, equity=equity, flat=False)
            if out:
                events += out
                if any(isinstance(e, ChallengeBreached) for e in out):
                    breach_at = k
                    break
            if k >= stop:
                break
        mine = [_event_key(e) for e in events_of(book, session) if isinstance(e, ChallengeWarning | ChallengeBreached)]
        theirs = [_event_key(e) for e in events if isinstance(e, ChallengeWarning | ChallengeBreached)]
        same_breach = breach_at == run.halted_at.get(aid) and [e for e in mine if e[0] == "breach"] == [
            e for e in theirs if e[0] == "breach"
        ]
        breach_agree += same_breach
        same = mine == theirs and same_breach
        if same:
            agree += 1
        else:
            differ.append({"account": aid, "banded": mine, "reference": theirs, "halt_trade": run.halted_at.get(aid),
                           "reference_breach_trade": breach_at})  # fmt: skip
    breached = sum(1 for i in picks if book.sessions[i].account_id in run.halted_at)
    return {
        "accounts": len(picks),
        "breached_in_sample": breached,
        "agree": agree,
        "breach_agree": breach_agree,
        "differ": differ[:5],
        "differences": len(differ),
        "reference_evaluations": evaluations,
        "seconds": time.perf_counter() - started,
    }


# -- report -----------------------------------------------------------------------------------------------------------


def percentile(values: list[int], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; 0 when empty."""
    if not values:
        return 0.0
    s = sorted(values)
    return float(s[min(len(s) - 1, max(0, round(q * len(s)) - 1))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--program", default="ftmo-2step", choices=sorted(programs()))
    parser.add_argument("--size", type=Decimal, default=Decimal(100_000), help="account size (one of the program's)")
    parser.add_argument("--leverage", type=float, nargs=2, default=(0.25, 20.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--long-share", type=float, default=0.1, help="share of long positions (the rest short)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--check-accounts", type=int, default=200, help="sample of the correctness cross-check")
    parser.add_argument(
        "--gc",
        choices=("platform", "python"),
        default="platform",
        help="collector thresholds in the replays: the platform's (200000, 100, 100) or Python's (700, 10, 10)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--profile", type=Path, help="cProfile the challenge replay into this file (slower run)")
    args = parser.parse_args(argv)

    info = {**machine_info(), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    program = programs()[args.program]
    stream = load_stream(args.trades)
    instrument = infer_instrument("BTC/USDT", "BINANCE", PRICE_DECIMALS, SIZE_DECIMALS)
    specs = account_specs(args.accounts, stream.price[0], args.size, args.seed, tuple(args.leverage), args.long_share)
    print(f"{info['date']}, {info['machine']}, Python {info['python']}, commit {info['commit']}")
    print(f"load average before: {info['load_before']}")
    print(f"stream: {stream.tiling}")
    prices = np.asarray(stream.price_raw) / 10**PRICE_DECIMALS
    print(f"prices {prices[0]:.2f} first, {prices.min():.2f}..{prices.max():.2f}, {prices[-1]:.2f} last")

    base_book = build(specs, stream, instrument, None, args.size)
    print(f"baseline setup: {len(base_book.sessions):,} sessions in {base_book.setup_seconds:.1f} s")
    thresholds = GC_THRESHOLDS if args.gc == "platform" else (700, 10, 10)
    base = replay(base_book, stream, None, gc_thresholds=thresholds)
    print(f"baseline: {base.trades:,} trades in {base.seconds:.3f} s = {base.trades / base.seconds:,.0f} trades/s")
    base_setup = base_book.setup_seconds
    del base_book
    gc.collect()

    book = build(specs, stream, instrument, program, args.size)
    ex = book.dispatcher.exposed[instrument.id]
    heap0 = len(ex.lows) + len(ex.highs)
    print(f"challenge setup: {len(book.sessions):,} sessions in {book.setup_seconds:.1f} s ({heap0:,} band edges)")
    counters = Counters()
    profile = cProfile.Profile() if args.profile else None
    with Instrumented(counters):
        run = replay(book, stream, counters, profile, thresholds)
    if profile is not None:
        profile.dump_stats(args.profile)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())

    breaches = sum(1 for m in book.monitors.values() if m.evaluator.breach is not None)
    rules: dict[str, int] = {}
    for m in book.monitors.values():
        if m.evaluator.breach is not None:
            rules[m.evaluator.breach.rule] = rules.get(m.evaluator.breach.rule, 0) + 1
    warnings = sum(sum(isinstance(e, ChallengeWarning) for e in events_of(book, s)) for s in book.sessions)
    halted = sum(s.state is TradingState.HALTED for s in book.sessions)
    flat = sum(not s.account.quantity(instrument.id) for s in book.sessions)
    lat = run.latencies_ns
    breach_trades = sorted(run.halted_at.values())
    distinct_prices = len({stream.price_raw[k] for k in breach_trades})
    visits = counters.valuations - counters.flushed
    ratio = (run.trades / run.seconds) / (base.trades / base.seconds)
    result: dict[str, Any] = {
        **info,
        "load_after": load_after,
        "command": "benchmarks/challenge_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "data": {"file": TRADES_FILE, "provenance": PROVENANCE, "tiling": stream.tiling},
        "accounts": args.accounts,
        "program": args.program,
        "account_size": str(args.size),
        "leverage": list(args.leverage),
        "long_share": args.long_share,
        "seed": args.seed,
        "gc_thresholds": list(thresholds),
        "baseline": {
            "setup_seconds": round(base_setup, 2),
            "seconds": round(base.seconds, 4),
            "cpu_seconds": round(base.cpu_seconds, 4),
            "trades_per_second": round(base.trades / base.seconds),
        },
        "challenges": {
            "setup_seconds": round(book.setup_seconds, 2),
            "seconds": round(run.seconds, 4),
            "cpu_seconds": round(run.cpu_seconds, 4),
            "trades_per_second": round(run.trades / run.seconds),
            "ratio_to_baseline": round(ratio, 4),
            "evaluations": counters.evaluations,
            "evaluations_per_second": round(counters.evaluations / run.seconds),
            "evaluations_per_trade": round(counters.evaluations / run.trades, 4),
            "session_valuations": counters.valuations,
            "exposure_visits_per_trade": round(visits / run.trades, 4),
            "exposure_visits_share_of_accounts": visits / run.trades / args.accounts,
            "stale_flush_valuations": counters.flushed,
            "breaches": breaches,
            "breach_rules": rules,
            "breaches_at_distinct_prices": distinct_prices,
            "first_breach_trade": breach_trades[0] if breach_trades else None,
            "last_breach_trade": breach_trades[-1] if breach_trades else None,
            "warnings": warnings,
            "halted": halted,
            "flattened": flat,
            "flatten_orders_left_out_of_working_index": run.flatten_sessions,
            "trades_with_halts": len(run.valued_in_halting_trades),
            "max_halts_in_one_trade": max((h for h, _ in run.valued_in_halting_trades), default=0),
            "max_valuations_in_one_halting_trade": max((v for _, v in run.valued_in_halting_trades), default=0),
            "slowest_halting_trades": [
                {"ms": ms, "cpu_ms": cpu, "trade": k, "halts": h, "valuations": v} for ms, cpu, k, h, v in run.slowest
            ],
            "gc": {
                str(g): {"collections": len(p), "max_ms": round(max(p), 3), "total_ms": round(sum(p), 1)}
                for g, p in sorted(run.gc_pauses_ms.items())
            },
            "band_edges_at_start": heap0,
            "band_edges_at_end": len(ex.lows) + len(ex.highs),
            "latency_ms": {
                "count": len(lat),
                "p50": percentile(lat, 0.50) / 1e6,
                "p99": percentile(lat, 0.99) / 1e6,
                "max": (max(lat) if lat else 0) / 1e6,
                "mean": (statistics.fmean(lat) if lat else 0) / 1e6,
            },
        },
    }
    c = result["challenges"]
    print(
        f"challenges: {run.trades:,} trades in {run.seconds:.3f} s = {c['trades_per_second']:,} trades/s "
        f"({ratio:.4f}x baseline); CPU {run.cpu_seconds:.3f} s"
    )
    print(
        f"  evaluations {counters.evaluations:,} ({c['evaluations_per_second']:,}/s, {c['evaluations_per_trade']} per "
        f"trade); session valuations {counters.valuations:,} (exposure-index visits {visits:,} = "
        f"{c['exposure_visits_per_trade']} per trade of {args.accounts:,} accounts; stale flushes {counters.flushed:,})"
    )
    print(
        f"  breaches {breaches:,} {rules} at {distinct_prices:,} distinct prices (trades {c['first_breach_trade']}.."
        f"{c['last_breach_trade']}); warnings {warnings:,}; halted {halted:,}; flat at the end {flat:,}"
    )
    lm = c["latency_ms"]
    print(
        f"  breach-to-lock latency: p50 {lm['p50']:.3f} ms, p99 {lm['p99']:.3f} ms, max {lm['max']:.3f} ms "
        f"({lm['count']:,} halts)"
    )
    print(
        f"  {c['trades_with_halts']:,} trades halted someone; at most {c['max_halts_in_one_trade']:,} halts and "
        f"{c['max_valuations_in_one_halting_trade']:,} valuations in one trade"
    )
    print(f"  slowest halting trades (ms, CPU ms, trade, halts, valuations): {run.slowest[:5]}")
    print(f"  garbage collections during the run: {c['gc']}")
    print(f"  band edges in the heaps: {heap0:,} at start, {c['band_edges_at_end']:,} at the end")
    print(f"load average after: {load_after}")

    status = 0
    if args.check_accounts:
        check = cross_check(book, run, stream, program, args.size, args.check_accounts, args.seed)
        result["cross_check"] = check
        print(
            f"cross-check: {check['agree']}/{check['accounts']} accounts agree with a fresh evaluator valued on every "
            f"trade, {check['breach_agree']} on their breach (trade, rule, floor, equity); "
            f"{check['breached_in_sample']} breached in the sample; {check['reference_evaluations']:,} "
            f"reference evaluations in {check['seconds']:.1f} s)"
        )
        if check["differences"]:
            print(json.dumps(check["differ"], indent=1, default=str))
            status = 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
