"""The trading runtime: the paper broker and the portfolio of every account, driven by a market-data feed,
persisted through the outbox.

One runtime runs per deployment (in ``smart-trader up``, or in the ``feed`` role); API processes only store
new orders and cancel requests. The runtime:

1. takes orders the API stored with status ``new`` (notified in-process, over Redis, or by polling every
   ``poll_seconds``) and submits them to the account's :class:`~smart_trader.execution.paper_broker.PaperBroker`
   with the id they were given; open-order cancel requests likewise;
2. feeds every market event to the brokers with working orders on its instrument (fills post to the core
   :class:`~smart_trader.portfolio.account.Account`);
3. writes every resulting change — order rows, fills, ledger entries, positions, the account summary, equity
   snapshots and one outbox event per order event — in one transaction per batch (group commit);
4. snapshots equity of accounts with open positions every ``snapshot_seconds`` and updates the metrics.

Time: the broker runs on the market clock (``clock_ns``, the last event's ``ts_event``, ns UTC). On start the
runtime reads the latest time already stored and shifts a replay that would go back before it forward, so
order events never go back in time across restarts.

Crash safety: memory is only ever ahead of the database by the batch being written. If a batch fails to commit,
the affected accounts are dropped from memory and rebuilt from the database when next needed; if the process
dies, the next start rebuilds every account by replaying its stored ledger through the core and restores its
working orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
import structlog
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.core.clock import MarketClock
from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import from_raw
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.db.outbox import event_row, outbox
from smart_trader.db.writer import BatchWriter
from smart_trader.execution import store as order_store
from smart_trader.execution.events import OrderEvent, OrderFilled, OrderRejected
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.matching import bar_path
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import FillConfig, PaperBroker
from smart_trader.execution.tables import fills as fills_table
from smart_trader.execution.tables import orders as orders_table
from smart_trader.gateway.hub import accounts_topic, bars_topic, orders_topic, quotes_topic, trades_topic
from smart_trader.live.feeds import MarketEvent
from smart_trader.live.market_state import MarketState
from smart_trader.ops import metrics
from smart_trader.portfolio import store as account_store
from smart_trader.portfolio.account import Account
from smart_trader.portfolio.tables import accounts as accounts_table
from smart_trader.portfolio.tables import equity_snapshots, ledger_entries, positions
from smart_trader.risk import store as risk_store
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, SessionFactory, TradingState

log = structlog.get_logger("smart_trader.runtime")
Publish = Callable[[str, str], None]
_TRADES_SEEN = metrics.MARKET_EVENTS.labels("trade")
_QUOTES_SEEN = metrics.MARKET_EVENTS.labels("quote")
_BARS_SEEN = metrics.MARKET_EVENTS.labels("bar")
FEED_ENDED_STATES = ("ended", "failed")
CLOSED_IDS_KEPT = 100_000  # ids of recently closed orders remembered after the broker forgot them
QUARANTINE_SECONDS = 30.0  # an account that failed to load is retried after this long
LIMITS_RECHECK_SECONDS = 5.0  # changed risk limits and halts are re-read from the database this often


def _json(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def durable_ids(prefix: str) -> Callable[[], str]:
    """Ids unique across processes and restarts: ``<prefix>-<12 random hex>-<n, 12 digits>`` (zero-padded, so
    one run's ids sort in the order they were made)."""
    run = uuid.uuid4().hex[:12]
    return map(f"{prefix}-{run}-{{:012d}}".format, itertools.count(1)).__next__


@dataclass(slots=True, eq=False)
class AccountBook:
    """One loaded account: its trading pipeline (:class:`AccountSession`: account, broker, checks, monitors), and what
    of it is already stored."""

    session: AccountSession
    persisted_entries: int
    peak: Decimal
    dirty_instruments: set[InstrumentId] = field(default_factory=set)
    last_equity: Decimal | None = None

    @property
    def account(self) -> Account:
        """The exact account."""
        return self.session.account

    @property
    def broker(self) -> PaperBroker:
        """The account's paper broker."""
        return self.session.broker


class _Change(NamedTuple):
    """One order event as the broker emitted it, with the order's status and view right after it."""

    book: AccountBook
    order: Order
    event: OrderEvent
    status: str
    view: dict[str, Any]


@dataclass(slots=True)
class _Batch:
    """Everything one commit writes, snapshotted on the event loop."""

    order_updates: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    closed: list[tuple[AccountBook, Order]] = field(default_factory=list)  # orders this batch stored as closed

    def __bool__(self) -> bool:
        return bool(self.order_updates or self.accounts or self.snapshots)


class TradingRuntime:
    """Brokers and accounts of every account that has orders, on one market clock.

    Args:
        engine: the database (reads run in threads; writes go through ``writer``).
        writer: the group-commit writer shared with the API.
        instrument: looks an instrument up by id (raises :class:`NotFoundError` when unknown).
        publish: sends a market-data message (topic, JSON text) to the WebSocket hub.
        wanted: whether a topic may have receivers (default: always); messages nobody receives are not built.
        config: commission, slippage and participation of the paper broker.
        notify_outbox: called after a commit that wrote outbox events (wakes the relay).
        default_limits: every account's pre-trade limits (open orders, submissions per wall-clock second) unless a
            risk manager set others (``risk/store.py``, re-read by :meth:`reload_limits`).
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
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.instrument = instrument
        self.publish = publish
        self.wanted = wanted
        self.config = config or FillConfig()
        self.sessions = sessions or SessionFactory(self.config)
        self.notify_outbox = notify_outbox
        self.poll_seconds = poll_seconds
        self.snapshot_seconds = snapshot_seconds
        self.default_limits = default_limits or OrderLimits()
        self._reloads: dict[str, asyncio.Task[None]] = {}  # account id → re-read of its limits in progress
        self.market = MarketState()
        self.books: dict[str, AccountBook] = {}
        self.clock = MarketClock()  # the feed's market time (a replay's too); alerts run as it reaches them
        self.dispatch = MarketDispatcher(instrument, self.market.mark)
        self.time_floor_ns = 0
        self._shift = 0
        self._changes: list[_Change] = []
        self._write_lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None
        self._last_poll = 0.0
        self._quarantine: dict[str, float] = {}  # account id → monotonic time it failed to load
        self._orders_wanted = asyncio.Event()
        self._received: list[Mapping[str, Any]] = []
        self._closed_ids: OrderedDict[str, None] = OrderedDict()
        self._poll_due = True
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.events_processed = 0
        self.quotes_derived = False  # quotes are estimates from trades (live/top_of_book.py): never matched against
        self.feed_state = "starting"  # starting → running → ended | failed (see feed_ended)
        self.feed_detail = ""
        self._reject_ids = durable_ids("R")
        self._session_books: dict[AccountSession, AccountBook] = {}

    @property
    def clock_ns(self) -> int:
        """The market clock: the latest ``ts_event`` processed (shifted past the stored clock for a restarted replay),
        ns since the epoch, UTC; the stored clock before the first event."""
        return self.clock.now_ns()

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Read the stored clock, then start taking orders, persisting and snapshotting."""
        self.time_floor_ns = await asyncio.to_thread(self._stored_clock)
        self.clock.advance_to(self.time_floor_ns)
        await self._load_active_accounts()
        loop_tasks = (self._take_orders_loop(), self._persist_loop(), self._snapshot_loop(), self._limits_loop())
        self._tasks = [asyncio.create_task(c) for c in loop_tasks]
        self._orders_wanted.set()

    async def stop(self) -> None:
        """Stop the loops after writing everything still in memory."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._inflight is not None:  # a write its cancelled loop left running
            await asyncio.gather(self._inflight, return_exceptions=True)
        await self.flush()

    def _stored_clock(self) -> int:
        with self.engine.connect() as conn:
            a = conn.execute(select(func.max(orders_table.c.ts_last))).scalar() or 0
            b = conn.execute(select(func.max(equity_snapshots.c.ts))).scalar() or 0
        return int(max(a, b))

    def _active_accounts(self) -> list[str]:
        """Accounts with working orders (to restore them) or open positions (their equity moves with prices)."""
        with self.engine.connect() as conn:
            q = select(orders_table.c.account_id).where(orders_table.c.status.in_(order_store.OPEN_STATUSES))
            ids = {str(r.account_id) for r in conn.execute(q.distinct())}
            for r in conn.execute(select(positions.c.account_id, positions.c.quantity)):
                if r.quantity:
                    ids.add(str(r.account_id))
        return sorted(ids)

    async def _load_active_accounts(self) -> None:
        for account_id in await asyncio.to_thread(self._active_accounts):
            await self._book_or_quarantine(account_id)

    async def _book_or_quarantine(self, account_id: str) -> AccountBook | None:
        """:meth:`book`, but an account that fails to load (a damaged ledger, an instrument gone from the catalog)
        is logged and left alone for ``QUARANTINE_SECONDS`` instead of stopping everyone else's orders."""
        failed = self._quarantine.get(account_id)
        if failed is not None and time.monotonic() - failed < QUARANTINE_SECONDS:
            return None
        try:
            book = await self.book(account_id)
        except Exception:
            self._quarantine[account_id] = time.monotonic()
            log.exception("account could not be loaded; its orders wait", account_id=account_id)
            return None
        self._quarantine.pop(account_id, None)
        return book

    def orders_waiting(self) -> None:
        """Tell the runtime new orders or cancel requests are stored (wakes the order taker, which reads them)."""
        self._poll_due = True
        self._orders_wanted.set()

    def orders_received(self, rows: list[Mapping[str, Any]]) -> None:
        """Hand over order rows just stored in this process (no database read needed to take them). Rows that
        get lost here (a crash) are still ``new`` in the database and taken by the next poll or start."""
        self._received.extend(rows)
        self._orders_wanted.set()

    # -- market data ----------------------------------------------------------------------
    def feed_ended(self, detail: str, failed: bool = False, bar_topics: tuple[str, ...] = ()) -> None:
        """The feed will send nothing more (a replay without ``--loop`` reached its end, or the feed failed):
        remember it (``/ready`` reports it and answers 503), tell WebSocket subscribers of every instrument seen
        (a ``{"type": "feed", "event": "ended" | "failed", ...}`` message on its trades, quotes and ``bar_topics``
        timeframes' bars topics), and reject new orders from now on with a reason (they could never fill)."""
        self.feed_state = "failed" if failed else "ended"
        self.feed_detail = detail
        for iid in list(self.market.prices):
            message = {
                "event": self.feed_state,
                "detail": detail,
                "instrument_id": iid,
                "ts_event": self.clock_ns,
                "events": self.events_processed,
            }
            for topic in (trades_topic(iid), quotes_topic(iid), *(bars_topic(iid, tf) for tf in bar_topics)):
                if self.wanted(topic):
                    self.publish(topic, _json({"type": "feed", "topic": topic, **message}))

    def on_event(self, event: MarketEvent, timeframe: str | None = None) -> MarketEvent:
        """Process one market event: update prices, publish it, match working orders. Returns the event as
        processed (its ``ts_event`` shifted forward when a replay restarts before the stored clock).
        ``timeframe`` names a bar's timeframe (e.g. ``"1m"``) for its topic."""
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
        books = dispatch.working.get(iid)
        if type(event) is Trade:
            last.price, last.size, last.trade_ts = event.price, event.size, ts
            _TRADES_SEEN.inc()
            self._publish(trades_topic(iid), "trade", _trade, event)
            if books:
                for session in list(books):
                    session.broker.on_trade(iid, ts, event.price_raw, event.size_raw)
        elif type(event) is Quote:
            last.bid, last.ask, last.quote_ts = event.bid, event.ask, ts
            last.bid_size, last.ask_size = event.bid_size, event.ask_size
            last.quote_derived = self.quotes_derived
            _QUOTES_SEEN.inc()
            self._publish(quotes_topic(iid), "quote", _quote, event, derived=self.quotes_derived)
            if books and not self.quotes_derived:
                for session in list(books):
                    b = session.broker
                    b.on_quote(iid, ts, event.bid_raw, event.ask_raw, event.bid_size_raw, event.ask_size_raw)
        else:
            assert type(event) is Bar
            last.price, last.trade_ts = event.close, ts
            _BARS_SEEN.inc()
            self.publish_bar(event, timeframe or "bar")
            if books:
                for session in list(books):
                    v = event.volume_raw
                    session.broker.on_bar(iid, ts, event.open_raw, event.high_raw, event.low_raw, event.close_raw, v)
        if books:
            dispatch.unwork(iid)
        if dispatch.stale:
            dispatch.flush_stale(ts)
        if dispatch.exposed.get(iid):
            if type(event) is Bar:
                pp = event.price_precision
                path = bar_path(event.open_raw, event.high_raw, event.low_raw, event.close_raw)
                dispatch.on_prices(iid, ts, [from_raw(p, pp) for p in path])
            else:
                mark = self.market.mark(iid)
                if mark is not None:
                    dispatch.on_price(iid, ts, mark)
        if self._changes:
            self._dirty.set()
        return event

    def publish_bar(self, bar: Bar, timeframe: str) -> None:
        """Publish a bar of ``timeframe`` (replayed, or built live from ticks: no matching, its ticks were matched)."""
        self._publish(bars_topic(bar.instrument_id, timeframe), "bar", _bar, bar, timeframe=timeframe)

    def _publish(
        self, topic: str, kind: str, fields: Callable[[Any], dict[str, Any]], record: Any, **extra: Any
    ) -> None:
        """Serialize and publish a market-data message, only when someone may receive it (a replay at full speed
        makes millions of them)."""
        if self.wanted(topic):
            self.publish(topic, _json({"type": kind, "topic": topic, **extra, **fields(record)}))

    # -- accounts and orders ----------------------------------------------------------------
    def _listener(self, book: AccountBook) -> Callable[[Order, OrderEvent], None]:
        changes = self._changes
        aid = book.account.account_id

        def on_event(order: Order, event: OrderEvent) -> None:
            # the order as it is right after this event (a batch may hold several events of one order)
            changes.append(_Change(book, order, event, order.status.value, _order_view(order, aid)))
            if isinstance(event, OrderFilled):
                book.dirty_instruments.add(event.fill.instrument_id)

        return on_event

    def _load_book(
        self, account_id: str
    ) -> tuple[Account, list[Order], Decimal, int, tuple[OrderLimits, str | None]] | None:
        with self.engine.connect() as conn:
            row = account_store.get_account(conn, account_id)
            if row is None:
                return None
            fills = order_store.fills_by_id(conn, account_id)
            account = account_store.load_account(conn, row, fills, self.instrument)
            working = [order_store.order_of(r) for r in order_store.open_orders_of(conn, account_id)]
            controls = self._controls(conn, account_id)
        return account, working, row.equity_peak, len(account.ledger.entries), controls

    def _controls(self, conn: Connection, account_id: str) -> tuple[OrderLimits, str | None]:
        """An account's limits in force and halt reason (``None``: trading), from what a risk manager stored."""
        stored = risk_store.limits_of(conn, account_id)
        d = self.default_limits
        halted = (stored.reason or "halted by a risk manager") if stored.trading_state == risk_store.HALTED else None
        limits = OrderLimits(  # the stored values where a risk manager set them (risk/limits.py), else the defaults
            d.max_open_orders if stored.max_open_orders is None else stored.max_open_orders,
            d.max_submissions_per_second if stored.max_orders_per_second is None else stored.max_orders_per_second,
        )
        return limits, halted

    async def _limits_loop(self, every: float = LIMITS_RECHECK_SECONDS) -> None:
        """Re-read the limits changed in the database since the last look (a risk control event lost by pub/sub, or an
        API process without Redis): a halt is late by seconds, never ignored."""
        since = time.time_ns()
        while True:
            await asyncio.sleep(every)
            now = time.time_ns()
            try:
                changed = await asyncio.to_thread(self._limits_changed_since, since - 2_000_000_000)
            except Exception:
                log.exception("could not re-read the accounts' risk limits")
                continue
            for account_id in changed:
                if account_id in self.books:
                    self.limits_changed(account_id)
            since = now

    def _limits_changed_since(self, since_ns: int) -> list[str]:
        with self.engine.connect() as conn:
            return risk_store.changed_since(conn, since_ns)

    def limits_changed(self, account_id: str) -> asyncio.Task[None]:
        """A risk manager changed an account's limits or trading state: re-read them (:meth:`reload_limits`) before
        this runtime takes any further order of that account (see :meth:`_take`)."""
        task = asyncio.get_running_loop().create_task(self.reload_limits(account_id))
        self._reloads[account_id] = task
        task.add_done_callback(
            lambda t: self._reloads.pop(account_id, None) if self._reloads.get(account_id) is t else None
        )
        return task

    async def reload_limits(self, account_id: str) -> None:
        """Apply an account's limits and trading state as stored now (a risk manager changed them); an account not
        loaded gets them when it loads."""
        book = self.books.get(account_id)
        if book is None:
            return

        def read() -> tuple[OrderLimits, str | None]:
            with self.engine.connect() as conn:
                return self._controls(conn, account_id)

        limits, halted = await asyncio.to_thread(read)
        book.broker.limits = limits
        _apply_halt(book.session, halted)

    async def book(self, account_id: str) -> AccountBook | None:
        """The loaded account ``account_id`` (loading it from the database the first time), or ``None``."""
        book = self.books.get(account_id)
        if book is not None:
            return book
        loaded = await asyncio.to_thread(self._load_book, account_id)
        if loaded is None:
            return None
        book = self.books.get(account_id)  # loaded meanwhile by another task
        if book is not None:
            return book
        account, working, peak, entries, (limits, halted) = loaded
        account.mark_provider = self.market.mark
        instruments = {o.instrument_id: self.instrument(o.instrument_id) for o in working}
        session = self.sessions(
            account, instruments, self.clock, self.market.mark, ids=durable_ids, limits=limits,
            rate_clock=time.monotonic_ns,  # submissions per wall-clock second, whatever the replay's speed
        )  # fmt: skip
        _apply_halt(session, halted)
        book = AccountBook(session, entries, peak)
        self._session_books[session] = book
        session.broker.listeners.append(self._listener(book))
        for order in working:
            session.broker.restore(order)
            self.dispatch.work(session, order.instrument_id)
        self.books[account_id] = book
        self.dispatch.watch(session)
        return book

    async def take_orders(self) -> int:
        """Submit new orders handed over in this process (:meth:`orders_received`), then, when none were or a poll
        is due, the stored new orders and cancel requests this runtime does not hold yet; returns how many were
        taken."""
        rows: list[Any] = self._received
        self._received = []
        taken = sum([await self._take_logged(row) for row in rows])
        now = time.monotonic()
        if self._poll_due or not rows or now - self._last_poll >= self.poll_seconds:
            self._poll_due = False
            self._last_poll = now
            unknown = [k.id for k in await asyncio.to_thread(self._pending) if not self._holds(k)]
            if unknown:
                for row in await asyncio.to_thread(self._rows, unknown):
                    taken += await self._take_logged(row._mapping)
        if self._changes:
            self._dirty.set()
        return taken

    def _holds(self, key: Any) -> bool:
        """Whether a pending order (:func:`~smart_trader.execution.store.pending_orders`'s key columns) is one this
        runtime already took and that asks nothing more of it (no cancel request)."""
        if key.cancel_requested:
            return False
        if key.id in self._closed_ids:
            return True
        book = self.books.get(key.account_id)
        return book is not None and OrderId(key.id) in book.broker.orders

    async def _take_logged(self, row: Mapping[str, Any]) -> int:
        try:
            return await self._take(row)
        except Exception:
            log.exception("could not take order", order_id=row["id"], account_id=row["account_id"])
            return 0

    async def _take(self, row: Mapping[str, Any]) -> int:
        """Submit one stored order to its account's broker, or carry out its cancel request; 1 when it did."""
        reload = self._reloads.get(row["account_id"])
        if reload is not None:  # a halt or new limits announced before this order: applied first
            with contextlib.suppress(Exception):
                await asyncio.shield(reload)
        book = await self._book_or_quarantine(row["account_id"])
        if book is None:
            return 0
        broker = book.broker
        oid = OrderId(row["id"])
        known = broker.orders.get(oid)
        if row["status"] != "new" or known is not None or oid in self._closed_ids:
            # a cancel request, or an order taken already (its acceptance being written, or closed and stored)
            if known is not None and known.is_open and row["cancel_requested"]:
                book.session.cancel(oid, self.clock_ns)
                return 1
            return 0
        request = order_store.request_of(row)
        if self.feed_state in FEED_ENDED_STATES:
            self._reject(book, Order(oid, request, ts_init=self.clock_ns), self._feed_gone_reason())
            return 1
        with contextlib.suppress(NotFoundError):  # the broker rejects an unknown instrument
            broker.instruments.setdefault(request.instrument_id, self.instrument(request.instrument_id))
        order = book.session.submit(request, self.clock_ns, oid)
        if order.is_open:
            self.dispatch.work(book.session, order.instrument_id)
            if row["cancel_requested"]:
                book.session.cancel(oid, self.clock_ns)
        if self.dispatch.stale:  # a market order filled at once: its monitors value the account now
            self.dispatch.flush_stale(self.clock_ns)
        return 1

    def _feed_gone_reason(self) -> str:
        what = "failed" if self.feed_state == "failed" else "ended"
        return (
            f"the market-data feed {what} ({self.feed_detail}): no price will come to fill this order; "
            "restart with a source that continues (e.g. `smart-trader up --loop`, or --exchange for live data)"
        )

    def _reject(self, book: AccountBook, order: Order, reason: str) -> None:
        """Reject ``order`` without the broker (nothing can fill it): the same event path as a broker rejection, so
        it is stored with its reason, announced on the orders channel and forgotten after the commit."""
        event = OrderRejected(self._reject_ids(), order.order_id, self.clock_ns, self.clock_ns, reason)
        order.apply(event)
        book.broker.orders[order.order_id] = order
        for listener in book.broker.listeners:
            listener(order, event)

    def _pending(self) -> list[Any]:
        with self.engine.connect() as conn:
            return order_store.pending_orders(conn)

    def _rows(self, order_ids: list[str]) -> list[Any]:
        with self.engine.connect() as conn:
            return order_store.orders_by_id(conn, order_ids)

    async def _take_orders_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 a wait_for cancelled as its timeout fires could leave
            # this task "cancelling" for ever, and shutdown waited on it (seen in the test suite, ~1 run in 10)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._orders_wanted.wait()
            self._orders_wanted.clear()
            try:
                await self.take_orders()
            except Exception:
                log.exception("taking orders failed")
                await asyncio.sleep(self.poll_seconds)

    # -- persistence ----------------------------------------------------------------------
    async def _persist_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()

    async def flush(self, snapshot: bool = False) -> None:
        """Write every change made in memory so far (with ``snapshot``, also equity snapshots of accounts with open
        positions) in one transaction. One write at a time; a write is not abandoned when the caller is cancelled;
        if it fails, the runtime rebuilds every account from the database (:meth:`_reset`)."""
        async with self._write_lock:
            batch = self._collect(snapshot)
            if not batch:
                return
            self._inflight = asyncio.ensure_future(self.writer.run(lambda conn: _write(conn, batch)))
            try:
                await asyncio.shield(self._inflight)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing the broker's changes failed; rebuilding every account from the database")
                await self._reset()
                return
            self._after_commit(batch)

    async def _reset(self) -> None:
        """Memory got ahead of the database: forget every account and every change not yet written, and load the
        active accounts again from what is stored (their working orders work on; events since the failed write
        are replayed by the market, not by memory)."""
        for book in self.books.values():
            self.dispatch.forget(book.session)
        self.books.clear()
        self._session_books.clear()
        self._changes[:] = []
        self._poll_due = True
        await self._load_active_accounts()

    def _after_commit(self, batch: _Batch) -> None:
        for book, order in batch.closed:
            book.broker.forget(order.order_id)  # stored; memory holds working orders only
            self._closed_ids[order.order_id] = None  # a poll read before this commit must not take it again
        while len(self._closed_ids) > CLOSED_IDS_KEPT:
            self._closed_ids.popitem(last=False)
        for status in batch.statuses:
            metrics.ORDERS.labels(status).inc()
        for f in batch.fills:
            metrics.FILLS.inc()
            metrics.TRADING_VOLUME.labels(f["commission_currency"]).inc(float(f["quantity"] * f["price"]))
        if batch.outbox:
            self.notify_outbox()

    def _collect(self, snapshot: bool) -> _Batch:
        """Snapshot the changes (and, with ``snapshot``, equity of accounts with open positions) as rows."""
        batch = _Batch()
        changes, self._changes[:] = list(self._changes), []
        batch.statuses = [c.status for c in changes]
        now = time.time_ns()
        touched: dict[int, AccountBook] = {}
        last_by_order: dict[str, Order] = {}
        book_of: dict[str, AccountBook] = {}
        for book, order, event, _status, view in changes:
            touched[id(book)] = book
            last_by_order[order.order_id] = order
            book_of[order.order_id] = book
            aid = book.account.account_id
            topic = orders_topic(aid)
            payload: dict[str, Any] = {
                "type": "order",
                "topic": topic,
                "event": _event_name(event),
                "account_id": aid,
                "order_id": order.order_id,
                "ts_event": event.ts_event,
            }
            if isinstance(event, OrderFilled):
                f = order_store.fill_row(event.fill, aid)
                batch.fills.append(f)
                payload["fill"] = {k: v for k, v in f.items() if k != "account_id"}
            payload["order"] = view
            batch.outbox.append(event_row(topic, f"order.{payload['event']}", payload, now))
        for oid, order in last_by_order.items():
            batch.order_updates.append({"_id": oid, **order_store.order_changes(order)})
            if not order.is_open:
                batch.closed.append((book_of[oid], order))
        books = list(touched.values())
        if snapshot:
            books += [b for b in self.books.values() if id(b) not in touched and _has_position(b)]
        for book in books:
            self._collect_account(book, batch, now, snapshot or id(book) in touched)
        return batch

    def _collect_account(self, book: AccountBook, batch: _Batch, now: int, value: bool) -> None:
        account = book.account
        aid = account.account_id
        entries = account.ledger.entries[book.persisted_entries :]
        batch.ledger += [account_store.ledger_row(aid, e) for e in entries]
        book.persisted_entries = len(account.ledger.entries)
        for iid in book.dirty_instruments:
            pos = account.positions.get(iid)
            if pos is not None:
                batch.positions.append(
                    {
                        "account_id": aid,
                        "instrument_id": iid,
                        "quantity": pos.quantity,
                        "cost_basis": pos.cost_basis,
                        "multiplier": pos.multiplier,
                        "realized_pnl": pos.realized_pnl,
                        "commissions": pos.commissions,
                        "fills": pos.fills,
                        "ts_opened": pos.ts_opened,
                        "ts_last": pos.ts_last,
                        "last_fill_price": account.mark(iid),
                    }
                )
        book.dirty_instruments.clear()
        equity: Decimal | None = None
        unrealized: Decimal | None = None
        with contextlib.suppress(NotFoundError):
            equity, unrealized = account.equity, account.unrealized_pnl
        # no snapshot before the first market event: its time would be unknown (0)
        changed = value and self.clock_ns > 0 and equity is not None and (entries or equity != book.last_equity)
        if equity is not None and unrealized is not None and changed:
            book.peak = max(book.peak, equity)
            book.last_equity = equity
            batch.snapshots.append(
                {
                    "account_id": aid,
                    "ts": self.clock_ns,
                    "cash": account.cash,
                    "equity": equity,
                    "unrealized_pnl": unrealized,
                    "drawdown": account_store.drawdown(equity, book.peak),
                }
            )
        if entries or changed:
            batch.accounts.append(
                {
                    "_id": aid,
                    "cash": account.cash,
                    "realized_pnl": account.realized_pnl,
                    "commissions": account.commissions,
                    "equity_peak": book.peak,
                    "updated_ns": now,
                }
            )
            topic = accounts_topic(aid)
            view = {
                "type": "account",
                "topic": topic,
                "account_id": aid,
                "cash": account.cash,
                "equity": equity,
                "unrealized_pnl": unrealized,
                "realized_pnl": account.realized_pnl,
                "commissions": account.commissions,
                "ts": self.clock_ns,
            }
            batch.outbox.append(event_row(topic, "account.updated", view, now))

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_seconds)
            try:
                self._update_gauges()
                await self.flush(snapshot=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("equity snapshot failed")

    def _update_gauges(self) -> None:
        pnl: dict[str, Decimal] = {}
        worst = Decimal(0)
        for book in self.books.values():
            a = book.account
            try:
                total = a.realized_pnl + a.unrealized_pnl
                equity = a.equity
            except NotFoundError:
                continue
            pnl[a.currency] = pnl.get(a.currency, Decimal(0)) + total
            worst = max(worst, account_store.drawdown(equity, max(book.peak, equity)))
        for currency, value in pnl.items():
            metrics.TRADING_PNL.labels(currency).set(float(value))
        metrics.PORTFOLIO_DRAWDOWN.set(float(worst))


_ORDER_UPDATE = update(orders_table).where(orders_table.c.id == bindparam("_id"))
_ACCOUNT_UPDATE = update(accounts_table).where(accounts_table.c.id == bindparam("_id"))


def _write(conn: Connection, batch: _Batch) -> None:
    """One batch in the caller's transaction: each table written with one executemany statement."""
    if batch.order_updates:
        conn.execute(_ORDER_UPDATE, batch.order_updates)
    if batch.fills:
        conn.execute(insert(fills_table), batch.fills)
    if batch.ledger:
        conn.execute(insert(ledger_entries), batch.ledger)
    if batch.positions:
        upsert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
        stmt = upsert(positions)
        keys = ("account_id", "instrument_id")
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c.name: stmt.excluded[c.name] for c in positions.c if c.name not in keys}
        )
        conn.execute(stmt, batch.positions)
    if batch.accounts:
        conn.execute(_ACCOUNT_UPDATE, batch.accounts)
    if batch.snapshots:
        conn.execute(insert(equity_snapshots), batch.snapshots)
    if batch.outbox:
        conn.execute(insert(outbox), batch.outbox)


def _has_position(book: AccountBook) -> bool:
    return any(p.quantity for p in book.account.positions.values())


def _event_name(event: OrderEvent) -> str:
    name = type(event).__name__.removeprefix("Order").lower()
    return {"filled": "fill"}.get(name, name)


def _order_view(order: Order, account_id: str) -> dict[str, Any]:
    """The order as the REST API shows it (same field names as ``OrderOut``), for order events."""
    r = order.request
    symbol, _, venue = r.instrument_id.rpartition(".")
    return {
        "id": order.order_id,
        "account_id": account_id,
        "client_order_id": r.client_order_id,
        "symbol": symbol,
        "venue": venue,
        "instrument_id": r.instrument_id,
        "side": r.side.value,
        "type": r.type.value,
        "time_in_force": r.time_in_force.value,
        "qty": order.quantity,
        "notional": r.notional,
        "limit_price": r.limit_price,
        "stop_price": r.stop_price,
        "status": order.status.value,
        "filled_qty": order.filled_qty,
        "avg_fill_price": order.avg_px,
        "reason": None if order.is_open else order_store.close_reason(order),
        "ts_last": order.ts_last,
    }


def _trade(t: Trade) -> dict[str, Any]:
    return {"instrument_id": t.instrument_id, "ts_event": t.ts_event, "price": t.price, "size": t.size}


def _quote(q: Quote) -> dict[str, Any]:
    return {
        "instrument_id": q.instrument_id,
        "ts_event": q.ts_event,
        "bid": q.bid,
        "ask": q.ask,
        "bid_size": q.bid_size,
        "ask_size": q.ask_size,
    }


def _bar(b: Bar) -> dict[str, Any]:
    return {
        "instrument_id": b.instrument_id,
        "ts_event": b.ts_event,
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": b.volume,
    }


__all__ = ["AccountBook", "MarketEvent", "TradingRuntime", "durable_ids"]


def _apply_halt(session: AccountSession, halted: str | None) -> None:
    """Set what a risk manager stored: halted with its reason, or trading."""
    if halted is not None:
        session.set_state(TradingState.HALTED, halted)
    elif session.state is TradingState.HALTED:
        session.set_state(TradingState.ACTIVE)
