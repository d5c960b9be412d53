"""The event-driven engine: merges market-data streams in timestamp order and drives a strategy, the
paper broker and the account — the same components the live platform runs.

Order of work for each event (bar, trade or quote), all at the event's time:
1. the paper broker matches working orders against it (fills post to the account; ``on_fill``);
2. the instrument's cursor advances, so indicators and marks include the event;
3. the strategy's ``on_bar`` / ``on_trade`` / ``on_quote`` runs; orders it submits work from the next event.

Bars become known at their close (``ts_event`` + timeframe); equal timestamps are ordered by the order
the streams were added. Indicators are computed over each whole series before the run (vectorized)
and revealed one value per event through :class:`~smart_trader.strategy.api.IndicatorSeries`, so a
strategy never sees the future.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import islice, repeat

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from smart_trader.core.clock import Alert, AlertCallback, MarketClock
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import AccountId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import from_raw
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.schema import Kind
from smart_trader.data.timeframes import Timeframe
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.events import OrderEvent, OrderFilled
from smart_trader.execution.matching import bar_path, bar_path_offsets
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.paper_broker import FillConfig, PaperBroker
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.strategy.api import IndicatorSeries, Strategy
from smart_trader.strategy.indicators import Indicator
from smart_trader.strategy.results import BacktestResult, build_result
from smart_trader.strategy.streams import Stream, bars_stream, quotes_stream, trades_stream
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, SessionFactory

ProgressCallback = Callable[[int, int], None]


class BacktestEngine:
    """Runs one strategy over recorded market data with the paper broker and an exact account.

    Args:
        starting_cash: initial deposit (account currency).
        currency: account currency; defaults to the quote currency of the first instrument added.
        fill_config: commission, slippage and participation of the paper broker.
        account_type: ``cash`` (default; no shorting) or ``margin``.
        sessions: builds the account's trading pipeline (pre-trade checks and monitors, e.g. a challenge's rules);
            default: the paper broker alone with ``fill_config``. The same factory the live platform uses.
    """

    def __init__(
        self,
        *,
        starting_cash: Decimal,
        currency: str | None = None,
        fill_config: FillConfig | None = None,
        account_type: AccountType = AccountType.CASH,
        sessions: SessionFactory | None = None,
    ) -> None:
        if starting_cash <= 0:
            raise InvalidInputError(f"starting cash must be positive, got {starting_cash}")
        self.starting_cash = starting_cash
        self.currency = currency
        self.fill_config = fill_config or FillConfig()
        self.account_type = account_type
        self.sessions = sessions or SessionFactory(self.fill_config)
        self.streams: list[Stream] = []
        self.instruments: dict[InstrumentId, Instrument] = {}
        self._primary: dict[InstrumentId, Stream] = {}
        self._bar_timeframe: Timeframe | None = None
        self._now = 0
        self._k = 0
        self._fill_marks: list[tuple[int, int, float, float]] = []
        self._instrument_index: dict[InstrumentId, int] = {}
        self.account: Account
        self.broker: PaperBroker
        self.session: AccountSession
        self.clock = _EngineClock(self)
        self.dispatcher: MarketDispatcher
        self._strategy: Strategy | None = None

    # -- data -----------------------------------------------------------------------------
    def _add(self, stream: Stream) -> None:
        inst = stream.instrument
        known = self.instruments.get(inst.id)
        if known is not None and known != inst:
            raise InvalidInputError(f"instrument {inst.id} added twice with different definitions")
        self.instruments[inst.id] = inst
        self._primary.setdefault(inst.id, stream)
        self.streams.append(stream)

    def add_bars(self, instrument: Instrument, table: pa.Table, timeframe: Timeframe) -> None:
        """Add normalized bars (see :mod:`smart_trader.data.schema`) of ``instrument``, one per ``timeframe``.

        Raises:
            InvalidInputError: prices at another precision than the instrument's (e.g. mid bars built
                from quotes, which need one more decimal), or timestamps not strictly increasing.
        """
        _check_precision(table, ("open", "high", "low", "close"), instrument)
        stream = bars_stream(instrument, table, timeframe.ns)
        if len(stream) > 1 and not bool(np.all(np.diff(stream.ts_event) > 0)):
            raise InvalidInputError(f"bars of {instrument.id} must have strictly increasing timestamps")
        self._add(stream)
        if self._bar_timeframe is None or timeframe < self._bar_timeframe:
            self._bar_timeframe = timeframe

    def add_trades(self, instrument: Instrument, table: pa.Table) -> None:
        """Add normalized trades of ``instrument``.

        Raises:
            InvalidInputError: prices at another precision than the instrument's.
        """
        _check_precision(table, ("price",), instrument)
        self._add(trades_stream(instrument, table))

    def add_quotes(self, instrument: Instrument, table: pa.Table) -> None:
        """Add normalized quotes of ``instrument``.

        Raises:
            InvalidInputError: prices at another precision than the instrument's.
        """
        _check_precision(table, ("bid_price", "ask_price"), instrument)
        self._add(quotes_stream(instrument, table))

    # -- TradingContext ---------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """Simulated time, ns since the epoch, UTC."""
        return self._now

    def submit(self, request: OrderRequest) -> Order:
        """Submit an order through the account's pipeline (checks, then the paper broker) at the simulated time."""
        return self.session.submit(request, self._now)

    def cancel(self, order_id: OrderId) -> Order:
        """Cancel a working order at the simulated time."""
        return self.session.cancel(order_id, self._now)

    def open_orders(self, instrument_id: InstrumentId | None = None) -> list[Order]:
        """Working orders."""
        return self.broker.open_orders(instrument_id)

    def instrument(self, instrument_id: InstrumentId | None = None) -> Instrument:
        """An instrument of the run; the first one added when ``None``.

        Raises:
            NotFoundError: no such instrument in this run.
        """
        if instrument_id is None:
            return self.streams[0].instrument
        try:
            return self.instruments[instrument_id]
        except KeyError:
            raise NotFoundError(
                f"instrument {instrument_id} is not in this run ({', '.join(self.instruments)})"
            ) from None

    def register_indicator(
        self, indicator: Indicator, instrument_id: InstrumentId | None, source: str = "close"
    ) -> IndicatorSeries:
        """Compute ``indicator`` over the instrument's ``source`` series and return its revealed history."""
        stream = self._primary[self.instrument(instrument_id).id]
        precision = stream.instrument.price_precision + (1 if source == "mid" else 0)
        values = indicator.compute(stream.source(source), precision)
        return IndicatorSeries(indicator, values, stream.cursor)

    def _mark(self, instrument_id: InstrumentId) -> Decimal | None:
        stream = self._primary.get(instrument_id)
        if stream is None or stream.cursor.i < 0:
            return None
        raw, precision = stream.mark_raw(stream.cursor.i)
        return from_raw(raw, precision)

    # -- run ------------------------------------------------------------------------------
    def run(self, strategy: Strategy, progress: ProgressCallback | None = None) -> BacktestResult:
        """Run ``strategy`` over all added data and return the result.

        Raises:
            InvalidInputError: no data was added, or instruments are quoted in different currencies.
        """
        if not self.streams or not any(len(s) for s in self.streams):
            raise InvalidInputError("no market data to run on: add bars, trades or quotes first")
        currency = self.currency or self.streams[0].instrument.quote_currency
        others = sorted({i.quote_currency for i in self.instruments.values()} - {currency})
        if others:
            raise InvalidInputError(f"the account holds {currency}; instruments quoted in {', '.join(others)} need FX")
        first_ts = min(int(s.ts_event[0]) for s in self.streams if len(s))
        self.account = Account(AccountId("BACKTEST-001"), currency, self.account_type, mark_provider=self._mark)
        self.account.deposit(first_ts, self.starting_cash)
        self.clock = _EngineClock(self)
        self.session = self.sessions(self.account, self.instruments, self.clock, last_price=self._mark)
        self.broker = self.session.broker
        self.broker.listeners.append(self._on_order_event)
        self.dispatcher = MarketDispatcher(self.instruments.__getitem__, self._mark)
        self.dispatcher.watch(self.session)
        self._strategy = strategy
        self._fill_marks = []
        self._instrument_index = {iid: k for k, iid in enumerate(self.instruments)}
        for s in self.streams:
            s.cursor.i = -1
        self._now = first_ts
        started = time.perf_counter()
        strategy.bind(self)
        strategy.on_start()
        # The loop allocates millions of short-lived objects that hold no reference cycles; the cyclic
        # garbage collector's passes over the growing set of orders and fills cost a third of the run
        # time, so it is paused until the result is built (reference counting still frees memory).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if len(self.streams) == 1 and self.streams[0].kind is Kind.BARS:
                if strategy.wake_series is not None and strategy.wake_series.cursor is self.streams[0].cursor:
                    self._run_bars_on_signal(self.streams[0], strategy, strategy.wake_series.values, progress)
                else:
                    self._run_bars(self.streams[0], strategy, progress)
            else:
                self._run_merged(strategy, progress)
            strategy.on_stop()
            run_seconds = time.perf_counter() - started
            return build_result(self, strategy, run_seconds)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _on_order_event(self, order: Order, event: OrderEvent) -> None:
        strategy = self._strategy
        assert strategy is not None
        fill = event.fill if type(event) is OrderFilled else None
        if fill is not None:  # recorded for the equity curve, which results.py rebuilds after the run
            k = self._instrument_index[fill.instrument_id]
            signed = float(fill.quantity) if fill.side is OrderSide.BUY else -float(fill.quantity)
            self._fill_marks.append((self._k, k, signed, float(self.account.cash)))
        strategy.on_order_event(order, event)
        if fill is not None:
            strategy.on_fill(fill)

    def _run_bars(self, stream: Stream, strategy: Strategy, progress: ProgressCallback | None) -> None:
        """Hot loop for the common case of one bar stream (no merge)."""
        inst = stream.instrument
        iid = inst.id
        cols = stream.columns
        n = len(stream)
        rows = iter(
            zip(
                repeat(iid, n),
                stream.ts_event.tolist(),
                cols["open"],
                cols["high"],
                cols["low"],
                cols["close"],
                cols["volume"],
                repeat(inst.price_precision, n),
                repeat(inst.size_precision, n),
                strict=True,
            )
        )
        close_ts = stream.ts_order.tolist()
        cursor = stream.cursor
        working = self.broker.working_list(iid)
        broker_on_bar = self.broker.on_bar
        on_bar = strategy.on_bar
        new = tuple.__new__
        chunk = max(n // 100, 10_000)
        watched = bool(self.session.monitors)  # valuations and alerts only for a session with monitors
        i = 0
        for start in range(0, n, chunk):
            for row in islice(rows, chunk):
                if working:
                    self._k = i
                    self._now = row[1]
                    broker_on_bar(iid, row[1], row[2], row[3], row[4], row[5], row[6])
                if watched:
                    self._k = i
                    self._now = row[1]
                    self._watch_bar(iid, row[1], row[2], row[3], row[4], row[5], inst.price_precision, close_ts[i])
                cursor.i = i
                self._now = close_ts[i]
                on_bar(new(Bar, row))
                i += 1
            if progress is not None:
                progress(min(start + chunk, n), n)

    def _run_bars_on_signal(
        self, stream: Stream, strategy: Strategy, signal: npt.NDArray[np.float64], progress: ProgressCallback | None
    ) -> None:
        """One bar stream, ``on_bar`` only where ``signal`` is non-zero; bars with working orders are still
        matched one by one. Gives the same orders and fills as :meth:`_run_bars` for such a strategy."""
        inst = stream.instrument
        iid = inst.id
        cols = stream.columns
        o, h, lo, c, v = cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"]
        ts_open = stream.ts_event.tolist()
        close_ts = stream.ts_order.tolist()
        wake = np.flatnonzero(np.nan_to_num(signal) != 0).tolist()
        wake.append(len(stream))  # sentinel
        cursor = stream.cursor
        working = self.broker.working_list(iid)
        broker_on_bar = self.broker.on_bar
        on_bar = strategy.on_bar
        pp, sp = inst.price_precision, inst.size_precision
        n = len(stream)
        watched = bool(self.session.monitors)
        i = 0
        k = 0
        while i < n:
            if working:
                self._k = i
                cursor.i = i - 1  # marks seen from on_fill are the last close before this open
                self._now = ts_open[i]
                broker_on_bar(iid, ts_open[i], o[i], h[i], lo[i], c[i], v[i])  # type: ignore[arg-type]
            if watched and (working or self.dispatcher.stale or self.dispatcher.exposed_sessions(iid)):
                self._k = i
                self._now = ts_open[i]
                self._watch_bar(iid, ts_open[i], o[i], h[i], lo[i], c[i], pp, close_ts[i])  # type: ignore[arg-type]
            elif not working and wake[k] > i:
                i = wake[k]  # nothing working and no signal before this bar: skip ahead
                if i >= n:
                    break
                continue
            if wake[k] == i:
                k += 1
                cursor.i = i
                self._now = close_ts[i]
                on_bar(Bar(iid, ts_open[i], o[i], h[i], lo[i], c[i], v[i], pp, sp))  # type: ignore[arg-type]
            i += 1
        cursor.i = n - 1
        if progress is not None:
            progress(n, n)

    def merged_order(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(ts_order, stream index, row index) of every event, sorted by time then stream then row."""
        ts = np.concatenate([s.ts_order for s in self.streams])
        sid = np.concatenate([np.full(len(s), k, dtype=np.int64) for k, s in enumerate(self.streams)])
        row = np.concatenate([np.arange(len(s), dtype=np.int64) for s in self.streams])
        order = np.lexsort((row, sid, ts))
        return ts[order], sid[order], row[order]

    def _run_merged(self, strategy: Strategy, progress: ProgressCallback | None) -> None:
        """General loop: any number of bar, trade and quote streams, merged by time."""
        ts_all, sids, rows = self.merged_order()
        n = len(ts_all)
        step = max(n // 100, 1)
        broker = self.broker
        watched = bool(self.session.monitors)
        dispatcher = self.dispatcher
        for k, (t, sid, i) in enumerate(zip(ts_all.tolist(), sids.tolist(), rows.tolist(), strict=True)):
            self._k = k
            s = self.streams[sid]
            inst = s.instrument
            iid = inst.id
            c = s.columns
            pp, sp = inst.price_precision, inst.size_precision
            if s.kind is Kind.BARS:
                ts_open = int(s.ts_event[i])
                row = (iid, ts_open, c["open"][i], c["high"][i], c["low"][i], c["close"][i], c["volume"][i], pp, sp)
                if broker.has_open_orders(iid):
                    self._now = ts_open
                    broker.on_bar(*row[:7])
                if watched:
                    self._now = ts_open
                    self._watch_bar(iid, ts_open, row[2], row[3], row[4], row[5], pp, t)
                s.cursor.i = i
                self._now = t
                strategy.on_bar(Bar(*row))
            elif s.kind is Kind.TRADES:
                self._now = t
                price, size = c["price"][i], c["size"][i]
                assert price is not None and size is not None
                if broker.has_open_orders(iid):
                    broker.on_trade(iid, t, price, size)
                s.cursor.i = i
                if watched:
                    self.clock.advance_to(t)
                    dispatcher.flush_stale(t)
                    dispatcher.on_price(iid, t, from_raw(price, pp))
                side, tid = c["aggressor_side"][i], c["trade_id"][i]
                strategy.on_trade(Trade(iid, t, price, size, side, tid, pp, sp))
            else:
                self._now = t
                bid, ask = c["bid_price"][i], c["ask_price"][i]
                assert bid is not None and ask is not None
                bs, asz = c["bid_size"][i], c["ask_size"][i]
                if broker.has_open_orders(iid):
                    broker.on_quote(iid, t, bid, ask, bs, asz)
                s.cursor.i = i
                if watched:
                    self.clock.advance_to(t)
                    dispatcher.flush_stale(t)
                    mark = self._mark(iid)
                    if mark is not None:
                        dispatcher.on_price(iid, t, mark)
                strategy.on_quote(Quote(iid, t, bid, ask, bs, asz, pp, sp))
            if progress is not None and k % step == 0:
                progress(k, n)
        if progress is not None:
            progress(n, n)

    def _watch_bar(
        self, iid: InstrumentId, ts: int, o: int, h: int, low: int, c: int, precision: int, close_ts: int
    ) -> None:
        """A watched session (monitors) meets a bar opening at ``ts`` and known at ``close_ts`` (ns UTC): alerts due
        run, fills just made are valued, then the bar's path (:func:`~smart_trader.execution.matching.bar_path`, the
        broker's own) is valued point by point at the times of
        :func:`~smart_trader.execution.matching.bar_path_offsets` (alerts between them run in between), so the worst
        equity inside the bar (low for longs, high for shorts) is judged."""
        self.clock.advance_to(ts)
        dispatcher = self.dispatcher
        if dispatcher.stale:  # fills at this bar's open: valued at the open (the cursor is still on the last bar)
            opening = from_raw(o, precision)
            dispatcher.flush_stale(ts, lambda i: opening if i == iid else self._mark(i))
        if dispatcher.exposed_sessions(iid):
            offsets = bar_path_offsets(close_ts - ts)
            for k, p in enumerate(bar_path(o, h, low, c)):
                at = ts + offsets[k]
                self.clock.advance_to(at)
                dispatcher.on_price(iid, at, from_raw(p, precision))

    @property
    def fill_marks(self) -> list[tuple[int, int, float, float]]:
        """(event index, instrument index, signed quantity, cash after) of every fill, for the equity curve."""
        return self._fill_marks

    @property
    def bar_timeframe(self) -> Timeframe | None:
        """Shortest bar timeframe of the run (``None`` when it has no bars)."""
        return self._bar_timeframe


def _check_precision(table: pa.Table, columns: tuple[str, ...], instrument: Instrument) -> None:
    """Prices must be decimals at the instrument's precision: the engine reads them as fixed-point integers."""
    for name in columns:
        scale = table.schema.field(name).type.scale
        if scale != instrument.price_precision:
            raise InvalidInputError(
                f"{name} of {instrument.id} has {scale} decimals but the instrument's prices have "
                f"{instrument.price_precision} (tick {instrument.tick_size}); for quote data use bid or ask bars"
            )


class _EngineClock:
    """The backtest's market clock: its time is the engine's simulated time; alerts run as the engine reaches them
    (:meth:`advance_to`, called only while the session has monitors)."""

    __slots__ = ("_alerts", "_engine")

    def __init__(self, engine: BacktestEngine) -> None:
        self._engine = engine
        self._alerts = MarketClock(0)

    def now_ns(self) -> int:
        """The engine's simulated time, ns since the epoch, UTC."""
        return self._engine.now_ns

    def set_alert(self, ts_ns: int, callback: AlertCallback) -> Alert:
        """See :meth:`smart_trader.core.clock.Clock.set_alert`."""
        return self._alerts.set_alert(ts_ns, callback)

    def advance_to(self, ts_ns: int) -> None:
        """Run the alerts due at or before ``ts_ns`` (ns UTC), each at its own time."""
        self._alerts.advance_to(ts_ns)
