"""The runtime's order taker: orders the API stored with status ``new`` (handed over in-process, or read from the
database when woken or every ``poll_seconds``) are submitted to their account's pipeline with the id they were given;
cancel requests of working orders are carried out. Orders closed recently are remembered after the broker forgot
them, so a poll read before their close was stored does not take them again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy import Engine

from smart_trader.core.clock import Clock
from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution import store as order_store
from smart_trader.execution.events import OrderRejected
from smart_trader.execution.orders import Order
from smart_trader.execution.persist import OrderPersister
from smart_trader.live.accounts import AccountBook, AccountRegistry, durable_ids
from smart_trader.trading.dispatch import MarketDispatcher

log = structlog.get_logger("smart_trader.runtime")
CLOSED_IDS_KEPT = 100_000  # ids of recently closed orders remembered after the broker forgot them


class OrderTaker:
    """Takes stored orders and cancel requests into the accounts' pipelines.

    Args:
        engine: the database (reads run in threads).
        accounts: the loaded accounts (loading those not loaded yet).
        dispatch: the market-event dispatcher (an accepted order starts working on its instrument).
        clock: the market clock (the time orders are submitted and canceled at, ns UTC).
        instrument: looks an instrument up by id (raises :class:`NotFoundError` when unknown).
        orders: execution's contributor (remembers each taken order's stored fields).
        feed_gone: why no order can fill any more (the feed ended or failed), or ``None`` while it runs.
        poll_seconds: how often the database is read for orders not handed over.
        taken: called after each round of taking (the runtime then writes what changed).
    """

    def __init__(
        self,
        engine: Engine,
        accounts: AccountRegistry,
        dispatch: MarketDispatcher,
        clock: Clock,
        instrument: Callable[[InstrumentId], Instrument],
        orders: OrderPersister,
        feed_gone: Callable[[], str | None],
        poll_seconds: float = 0.25,
        taken: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.dispatch = dispatch
        self.clock = clock
        self.instrument = instrument
        self.orders = orders
        self.feed_gone = feed_gone
        self.poll_seconds = poll_seconds
        self.taken = taken
        self.wanted = asyncio.Event()
        self.poll_due = True
        self._received: list[Mapping[str, Any]] = []
        self._closed_ids: OrderedDict[str, None] = OrderedDict()
        self._last_poll = 0.0
        self._reject_ids = durable_ids("R")

    def orders_waiting(self) -> None:
        """New orders or cancel requests are stored: read them at the next turn."""
        self.poll_due = True
        self.wanted.set()

    def orders_received(self, rows: list[Mapping[str, Any]]) -> None:
        """Hand over order rows just stored in this process (no database read needed to take them)."""
        self._received.extend(rows)
        self.wanted.set()

    def closed(self, order_id: str) -> None:
        """``order_id`` closed and is stored so: never take it again (remembered for the last ``CLOSED_IDS_KEPT``)."""
        self._closed_ids[order_id] = None
        while len(self._closed_ids) > CLOSED_IDS_KEPT:
            self._closed_ids.popitem(last=False)

    async def loop(self) -> None:
        """Take orders whenever woken, and at least every ``poll_seconds``."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 a wait_for cancelled as its timeout fires could leave
            # this task "cancelling" for ever, and shutdown waited on it (seen in the test suite, ~1 run in 10)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self.wanted.wait()
            self.wanted.clear()
            try:
                await self.take_orders()
            except Exception:
                log.exception("taking orders failed")
                await asyncio.sleep(self.poll_seconds)

    async def take_orders(self) -> int:
        """Submit the orders handed over (:meth:`orders_received`), then, when none were or a poll is due, the stored
        new orders and cancel requests not held yet; returns how many were taken."""
        rows: list[Any] = self._received
        self._received = []
        taken = sum([await self._take_logged(row) for row in rows])
        now = time.monotonic()
        if self.poll_due or not rows or now - self._last_poll >= self.poll_seconds:
            self.poll_due = False
            self._last_poll = now
            unknown = [k.id for k in await asyncio.to_thread(self._pending) if not self._holds(k)]
            if unknown:
                for row in await asyncio.to_thread(self._rows, unknown):
                    taken += await self._take_logged(row._mapping)
        self.taken()
        return taken

    def _holds(self, key: Any) -> bool:
        """Whether a pending order (:func:`~smart_trader.execution.store.pending_orders`'s key columns) is one this
        runtime already took and that asks nothing more of it (no cancel request)."""
        if key.cancel_requested:
            return False
        if key.id in self._closed_ids:
            return True
        book = self.accounts.books.get(key.account_id)
        return book is not None and OrderId(key.id) in book.broker.orders

    async def _take_logged(self, row: Mapping[str, Any]) -> int:
        try:
            return await self._take(row)
        except Exception:
            log.exception("could not take order", order_id=row["id"], account_id=row["account_id"])
            return 0

    async def _take(self, row: Mapping[str, Any]) -> int:
        """Submit one stored order to its account's pipeline, or carry out its cancel request; 1 when it did."""
        reload = self.accounts.reloads.get(row["account_id"])
        if reload is not None:  # a halt or new limits announced before this order: applied first
            with contextlib.suppress(Exception):
                await asyncio.shield(reload)
        book = await self.accounts.book_or_quarantine(row["account_id"])
        if book is None:
            return 0
        broker = book.broker
        oid = OrderId(row["id"])
        known = broker.orders.get(oid)
        now = self.clock.now_ns()
        if row["status"] != "new" or known is not None or oid in self._closed_ids:
            # a cancel request, or an order taken already (its acceptance being written, or closed and stored)
            if known is not None and known.is_open and row["cancel_requested"]:
                self.orders.cancel_requested(oid)
                book.session.cancel(oid, now)
                return 1
            return 0
        self.orders.remember(row)
        request = order_store.request_of(row)
        gone = self.feed_gone()
        if gone is not None:
            self._reject(book, Order(oid, request, ts_init=now), gone)
            return 1
        with contextlib.suppress(NotFoundError):  # the broker rejects an unknown instrument
            broker.instruments.setdefault(request.instrument_id, self.instrument(request.instrument_id))
        order = book.session.submit(request, now, oid)
        if order.is_open:
            self.dispatch.work(book.session, order.instrument_id)
            if row["cancel_requested"]:
                book.session.cancel(oid, now)
        if self.dispatch.stale:  # a market order filled at once: its monitors value the account now
            self.dispatch.flush_stale(now)
        return 1

    def _reject(self, book: AccountBook, order: Order, reason: str) -> None:
        """Reject ``order`` without the broker (nothing can fill it): the same event path as a broker rejection, so
        it is stored with its reason, announced on the orders channel and forgotten after the commit."""
        now = self.clock.now_ns()
        event = OrderRejected(self._reject_ids(), order.order_id, now, now, reason)
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
