"""The trading runtime: the paper broker and the portfolio of every account, driven by a market-data feed,
persisted through the outbox. One runtime runs per deployment (``smart-trader up``, or the ``feed`` role); API
processes only store new orders and cancel requests.

:class:`TradingRuntime` orchestrates: :class:`~smart_trader.live.intake.OrderTaker` takes the stored orders and cancel
requests into each account's pipeline (:class:`~smart_trader.trading.session.AccountSession`, loaded by
:class:`~smart_trader.live.accounts.AccountRegistry`); :meth:`TradingRuntime.on_event` advances the market clock,
publishes the event (:class:`~smart_trader.live.market_publisher.MarketPublisher`) and routes it through the
:class:`~smart_trader.trading.dispatch.MarketDispatcher` to the brokers and monitors;
:class:`~smart_trader.live.unit_of_work.BatchUnitOfWork` writes what changed in one transaction per batch, each
subpackage's rows by its contributor (``execution/persist.py``, ``portfolio/persist.py``, then ``persisters``).

Time: the broker runs on the market clock (``clock_ns``, the last event's ``ts_event``, ns UTC); a replay that would
go back before the stored clock is shifted forward, so order events never go back in time across restarts.
Wall-clock times (``created_ns``, ``updated_ns``) come from ``now_ns``.

Crash safety: memory is only ever ahead of the database by the batch being written. If a batch fails to commit,
every account is dropped and rebuilt from the database; if the process dies, the next start rebuilds every account
by replaying its stored ledger through the core and restores its working orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from smart_trader.core.clock import MarketClock
from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import from_raw
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.timeframes import Timeframe
from smart_trader.db.writer import BatchWriter
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.matching import bar_path, bar_path_offsets
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.execution.persist import OrderPersister
from smart_trader.live.accounts import AccountBook, AccountRegistry, durable_ids
from smart_trader.live.feeds import MarketEvent
from smart_trader.live.intake import OrderTaker
from smart_trader.live.market_publisher import MarketPublisher, Publish
from smart_trader.live.market_state import MarketState
from smart_trader.live.unit_of_work import BatchUnitOfWork, Persister
from smart_trader.ops import metrics
from smart_trader.portfolio.persist import PortfolioPersister
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, SessionFactory

log = structlog.get_logger("smart_trader.runtime")

_TRADES_SEEN = metrics.MARKET_EVENTS.labels("trade")
_QUOTES_SEEN = metrics.MARKET_EVENTS.labels("quote")
_BARS_SEEN = metrics.MARKET_EVENTS.labels("bar")
FEED_ENDED_STATES = ("ended", "failed")


class TradingRuntime:
    """Brokers and accounts of every account that has orders, on one market clock.

    Args:
        engine: the database (reads run in threads; writes go through ``writer``).
        writer: the group-commit writer shared with the API.
        instrument: looks an instrument up by id (raises :class:`NotFoundError` when unknown).
        publish: sends a market-data message (topic, JSON text) to the WebSocket hub.
        config: commission, slippage and participation of the paper broker.
        notify_outbox: called after each commit (every batch writes outbox events; wakes the relay).
        wanted: whether a topic may have receivers (default: always); messages nobody receives are not built.
        poll_seconds: how often stored orders are looked for when nobody says they are waiting.
        snapshot_seconds: how often equity of accounts with open positions is snapshotted.
        default_limits: every account's pre-trade limits (open orders, submissions per wall-clock second) unless a
            risk manager set others (``risk/store.py``, re-read by :meth:`limits_changed`).
        sessions: builds each account's pipeline (checks and monitors); default: none of either.
        persisters: contributors written after execution's and portfolio's in every batch (e.g. challenges').
        now_ns: the wall clock, ns since the epoch, UTC (outbox and account ``created_ns`` / ``updated_ns``, the
            risk limits' change times).
        loaders: read with each account's connection as it loads, before its session is built.
        actives: more sources of the accounts to load at start (see :class:`AccountRegistry`).
        clock: the market clock (default a new one; given when a contributor built beforehand needs it).
        resets: called when every account is dropped after a failed write, before they load again.
    """

    def __init__(
        self,
        engine: Engine,
        writer: BatchWriter,
        instrument: Callable[[InstrumentId], Instrument],
        publish: Publish,
        config: FillConfig | None = None,
        notify_outbox: Callable[[], None] = lambda: None,
        wanted: Callable[[str], bool] = lambda _topic: True,
        poll_seconds: float = 0.25,
        snapshot_seconds: float = 1.0,
        default_limits: OrderLimits | None = None,
        sessions: SessionFactory | None = None,
        persisters: Sequence[Persister[Any]] = (),
        now_ns: Callable[[], int] = wall_clock_ns,
        loaders: Sequence[Callable[[Connection, str], None]] = (),
        resets: Sequence[Callable[[], None]] = (),
        actives: Sequence[Callable[[Connection], Iterable[str]]] = (),
        clock: MarketClock | None = None,
    ) -> None:
        self.engine = engine
        self.now_ns = now_ns
        self.instrument = instrument
        self.config = config or FillConfig()
        self.snapshot_seconds = snapshot_seconds
        self.market = MarketState()
        # the feed's market time (a replay's too); alerts run as it reaches them
        self.clock = clock if clock is not None else MarketClock()
        self.dispatch = MarketDispatcher(instrument, self.market.mark)
        self.publisher = MarketPublisher(publish, wanted)
        self.orders = OrderPersister(self._order_closed, now_ns)
        self.portfolio = PortfolioPersister(self.clock, now_ns)
        self.uow = BatchUnitOfWork(writer, [self.orders, self.portfolio, *persisters], self._loaded, self._reset,
                                   notify_outbox)  # fmt: skip
        self.accounts = AccountRegistry(
            engine, instrument, sessions or SessionFactory(self.config), self.clock, self.market, self.dispatch,
            self.orders, self.portfolio, lambda s: self.orders.listener(s, self.uow.changes), default_limits, now_ns,
            loaders, resets, actives,
        )  # fmt: skip
        self.taker = OrderTaker(engine, self.accounts, self.dispatch, self.clock, instrument, self.orders,
                                self._feed_gone, poll_seconds, self._changed)  # fmt: skip
        self.time_floor_ns = 0
        self._shift = 0
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.events_processed = 0
        self.quotes_derived = False  # quotes are estimates from trades (live/top_of_book.py): never matched against
        self.feed_state = "starting"  # starting → running → ended | failed (see feed_ended)
        self.feed_detail = ""

    @property
    def clock_ns(self) -> int:
        """The market clock: the latest ``ts_event`` processed (shifted past the stored clock for a restarted replay),
        ns since the epoch, UTC; the stored clock before the first event."""
        return self.clock.now_ns()

    @property
    def books(self) -> dict[str, AccountBook]:
        """The loaded accounts by id."""
        return self.accounts.books

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Read the stored clock, load the active accounts, then start taking orders, persisting and snapshotting."""
        self.time_floor_ns = await asyncio.to_thread(self.accounts.stored_clock)
        self.clock.advance_to(self.time_floor_ns)
        await self.accounts.load_active()
        loops = (self.taker.loop(), self._persist_loop(), self._snapshot_loop(), self.accounts.limits_loop())
        self._tasks = [asyncio.create_task(c) for c in loops]
        self.taker.wanted.set()

    def follow_wall_clock(self, every: float = 1.0, now_ns: Callable[[], int] | None = None) -> asyncio.Task[None]:
        """Live trading on an exchange feed: also advance the market clock to the wall clock (``now_ns``, ns UTC)
        every ``every`` seconds, so day resets, flat-by times and overnight breaches fire on time on a quiet market
        (no trade needed to move the clock). Never for a replay: its time is the data's."""
        wall = now_ns or self.now_ns

        async def tick() -> None:
            while True:
                await asyncio.sleep(every)
                self.tick(wall())

        task = asyncio.create_task(tick())
        self._tasks.append(task)
        return task

    def tick(self, now_ns: int) -> None:
        """The wall clock reads ``now_ns`` (ns UTC): run the alerts due, value and persist what they changed."""
        if now_ns <= self.clock.now_ns():
            return
        self.clock.advance_to(now_ns)
        if self.dispatch.stale:
            self.dispatch.flush_stale(now_ns)
        if self.uow.changes:
            self._dirty.set()

    async def stop(self) -> None:
        """Stop the loops after writing everything still in memory."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.uow.wait_inflight()  # a write its cancelled loop left running
        await self.flush()

    # -- orders and accounts (delegated) ------------------------------------------------------
    def orders_waiting(self) -> None:
        """Tell the runtime new orders or cancel requests are stored (wakes the order taker, which reads them)."""
        self.taker.orders_waiting()

    def orders_received(self, rows: list[Mapping[str, Any]]) -> None:
        """Hand over order rows just stored in this process (no database read needed to take them). Rows that
        get lost here (a crash) are still ``new`` in the database and taken by the next poll or start."""
        self.taker.orders_received(rows)

    async def take_orders(self) -> int:
        """Take the orders handed over and, when due, the stored ones (:meth:`OrderTaker.take_orders`)."""
        return await self.taker.take_orders()

    def limits_changed(self, account_id: str) -> asyncio.Task[None]:
        """A risk manager changed an account's limits or trading state: re-read them before this runtime takes any
        further order of that account."""
        return self.accounts.limits_changed(account_id)

    def _order_closed(self, session: AccountSession, order: Order) -> None:
        session.broker.forget(order.order_id)  # stored; memory holds working orders only
        self.taker.closed(order.order_id)  # a poll read before this commit must not take it again

    def _feed_gone(self) -> str | None:
        if self.feed_state not in FEED_ENDED_STATES:
            return None
        what = "failed" if self.feed_state == "failed" else "ended"
        return (
            f"the market-data feed {what} ({self.feed_detail}): no price will come to fill this order; "
            "restart with a source that continues (e.g. `smart-trader up --loop`, or --exchange for live data)"
        )

    # -- market data ----------------------------------------------------------------------
    def feed_ended(self, detail: str, failed: bool = False, bar_topics: tuple[str, ...] = ()) -> None:
        """The feed will send nothing more (a replay without ``--loop`` reached its end, or the feed failed):
        remember it (``/ready`` reports it and answers 503), tell WebSocket subscribers of every instrument seen
        (a ``{"type": "feed", "event": "ended" | "failed", ...}`` message on its trades, quotes and ``bar_topics``
        timeframes' bars topics), and reject new orders from now on with a reason (they could never fill)."""
        self.feed_state = "failed" if failed else "ended"
        self.feed_detail = detail
        message = {
            "event": self.feed_state,
            "detail": detail,
            "ts_event": self.clock_ns,
            "events": self.events_processed,
        }
        self.publisher.feed_ended(list(self.market.prices), message, bar_topics)

    def on_event(self, event: MarketEvent, timeframe: str | None = None) -> MarketEvent:
        """Process one market event: update prices, publish it, match working orders, value the exposed accounts.
        Returns the event as processed (its ``ts_event`` shifted forward when a replay restarts before the stored
        clock). ``timeframe`` names a bar's timeframe (e.g. ``"1m"``) for its topic."""
        ts = event.ts_event + self._shift
        if ts <= self.time_floor_ns and self.events_processed == 0:
            self._shift = self.time_floor_ns - event.ts_event + 1
            ts = event.ts_event + self._shift
        if self._shift:
            event = event._replace(ts_event=ts)
        self.clock.advance_to(ts)
        self.events_processed += 1
        if self.feed_state == "starting":
            self.feed_state = "running"
        iid = event.instrument_id
        last = self.market.get(iid)
        dispatch = self.dispatch
        sessions = dispatch.working.get(iid)
        if type(event) is Trade:
            last.price, last.size, last.trade_ts = event.price, event.size, ts
            _TRADES_SEEN.inc()
            self.publisher.trade(event)
            if sessions:
                for session in list(sessions):
                    session.broker.on_trade(iid, ts, event.price_raw, event.size_raw)
        elif type(event) is Quote:
            last.bid, last.ask, last.quote_ts = event.bid, event.ask, ts
            last.bid_size, last.ask_size = event.bid_size, event.ask_size
            last.quote_derived = self.quotes_derived
            _QUOTES_SEEN.inc()
            self.publisher.quote(event, self.quotes_derived)
            if sessions and not self.quotes_derived:
                for session in list(sessions):
                    b = session.broker
                    b.on_quote(iid, ts, event.bid_raw, event.ask_raw, event.bid_size_raw, event.ask_size_raw)
        else:
            assert type(event) is Bar
            # the bar's path starts at its open: fills made at the open are valued there; the mark follows the path
            # and ends at the close (a breach's evidence quotes the price it was valued at)
            last.price, last.trade_ts = event.open, ts
            _BARS_SEEN.inc()
            self.publisher.bar(event, timeframe or "bar")
            if sessions:
                for session in list(sessions):
                    v = event.volume_raw
                    session.broker.on_bar(iid, ts, event.open_raw, event.high_raw, event.low_raw, event.close_raw, v)
        if sessions:
            dispatch.unwork(iid)
        if dispatch.stale:
            dispatch.flush_stale(ts)
        if dispatch.exposed.get(iid):
            if type(event) is Bar:  # the bar's path at the times every judge of a bar uses (bar_path_offsets)
                path = bar_path(event.open_raw, event.high_raw, event.low_raw, event.close_raw)
                offsets = bar_path_offsets(_timeframe_ns(timeframe))
                for k, p in enumerate(path):
                    at = ts + offsets[k]
                    self.clock.advance_to(at)
                    last.price = from_raw(p, event.price_precision)
                    dispatch.on_price(iid, at, last.price)
            else:
                mark = self.market.mark(iid)
                if mark is not None:
                    dispatch.on_price(iid, ts, mark)
        if type(event) is Bar:
            last.price = event.close
        if self.uow.changes:
            self._dirty.set()
        return event

    def publish_bar(self, bar: Bar, timeframe: str) -> None:
        """Publish a bar of ``timeframe`` (replayed, or built live from ticks: no matching, its ticks were matched)."""
        self.publisher.bar(bar, timeframe)

    # -- persistence ----------------------------------------------------------------------
    def write_due(self) -> None:
        """A contributor has something to write (a monitor changed without an order event): a batch is due."""
        self._dirty.set()

    def _changed(self) -> None:
        if self.uow.changes:
            self._dirty.set()

    def _loaded(self) -> list[AccountSession]:
        return list(self.accounts.sessions_loaded())

    async def _persist_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()

    async def flush(self, snapshot: bool = False) -> None:
        """Write every change made in memory so far (with ``snapshot``, also equity snapshots of accounts with open
        positions) in one transaction (:meth:`BatchUnitOfWork.flush`); if it fails, every account is rebuilt from
        the database."""
        await self.uow.flush(snapshot)

    async def _reset(self) -> None:
        """Memory got ahead of the database: forget every account and every change not yet written, and load the
        active accounts again from what is stored (their working orders work on; events since the failed write
        are replayed by the market, not by memory)."""
        self.uow.discard()
        self.taker.poll_due = True
        await self.accounts.reset()

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_seconds)
            try:
                self.accounts.update_gauges()
                await self.flush(snapshot=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("equity snapshot failed")


__all__ = ["FEED_ENDED_STATES", "AccountBook", "MarketEvent", "TradingRuntime", "durable_ids"]


@functools.cache
def _timeframe_ns(timeframe: str | None) -> int | None:
    """Length of a bar of ``timeframe`` (``"1m"``...) in ns, ``None`` when unknown."""
    if timeframe is None:
        return None
    try:
        return Timeframe.parse(timeframe).ns
    except InvalidInputError:
        return None
