"""Execution's persistence contributor to the runtime's batches (:mod:`smart_trader.live.unit_of_work`): the order
events the brokers emitted become order updates, fills and one ``order.<event>`` outbox event each, written to
execution's own tables (and the outbox) in the batch's transaction.

It also remembers, for every order the runtime holds, what the stored row has and the core :class:`Order` does not
(symbol, venue, ``created_ns``, ``cancel_requested``), so an order event carries the same order document as the REST
API (:func:`~smart_trader.execution.store.order_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.db.outbox import event_row, outbox
from smart_trader.execution import store
from smart_trader.execution.events import OrderEvent, OrderFilled
from smart_trader.execution.orders import Order
from smart_trader.execution.tables import orders as orders_table
from smart_trader.gateway.hub import orders_topic
from smart_trader.ops import metrics
from smart_trader.trading.session import AccountSession


class OrderChange(NamedTuple):
    """One order event as a broker emitted it, with the order's status and document right after it (an order
    changes again before the batch is written)."""

    session: AccountSession
    order: Order
    event: OrderEvent
    status: str
    view: dict[str, Any]


class _Stored(NamedTuple):
    symbol: str
    venue: str
    created_ns: int
    cancel_requested: bool


@dataclass(slots=True)
class OrderRows:
    """What one batch writes to execution's tables and the outbox."""

    order_inserts: list[dict[str, Any]] = field(default_factory=list)  # orders the runtime made (a flattening)
    order_updates: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    closed: list[tuple[AccountSession, Order]] = field(default_factory=list)  # orders stored as closed


def event_name(event: OrderEvent) -> str:
    """The event's name in outbox event types and documents: ``accepted``, ``fill``, ``canceled``..."""
    name = type(event).__name__.removeprefix("Order").lower()
    return {"filled": "fill"}.get(name, name)


class OrderPersister:
    """Order updates, fills and order outbox events of a batch (a :class:`~smart_trader.live.unit_of_work.Persister`).

    Args:
        on_closed: called after the commit for every order the batch stored as closed (the runtime forgets it).
        now_ns: the wall clock of the outbox rows' ``created_ns`` (ns UTC).
    """

    def __init__(
        self,
        on_closed: Callable[[AccountSession, Order], None] = lambda _s, _o: None,
        now_ns: Callable[[], int] = wall_clock_ns,
    ) -> None:
        self.on_closed = on_closed
        self.now_ns = now_ns
        self._stored: dict[str, _Stored] = {}

    # -- what the stored rows hold --------------------------------------------------------------
    def remember(self, row: Mapping[str, Any]) -> None:
        """Keep what the stored order ``row`` holds beyond the core order (taken or restored by the runtime)."""
        self._stored[row["id"]] = _Stored(row["symbol"], row["venue"], row["created_ns"], bool(row["cancel_requested"]))

    def cancel_requested(self, order_id: str) -> None:
        """The order's owner asked to cancel it (its documents say so from now on)."""
        stored = self._stored.get(order_id)
        if stored is not None:
            self._stored[order_id] = stored._replace(cancel_requested=True)

    def clear(self) -> None:
        """Forget every order (the runtime rebuilds its accounts from the database)."""
        self._stored.clear()

    def view(self, account_id: str, order: Order) -> dict[str, Any]:
        """The order document (REST API fields, :func:`~smart_trader.execution.store.order_view`) of ``order`` as it
        is now."""
        stored = self._stored.get(order.order_id)
        if stored is None:  # an order not taken from a stored row: no creation time known (0)
            symbol, _, venue = order.request.instrument_id.rpartition(".")
            stored = _Stored(symbol, venue, 0, False)
        row = store.order_row(
            order, account_id, stored.symbol, stored.venue, stored.created_ns, stored.cancel_requested
        )
        return store.order_view(row)

    def listener(self, session: AccountSession, changes: list[OrderChange]) -> Callable[[Order, OrderEvent], None]:
        """A broker listener appending each event of ``session``'s orders to ``changes``, with its order document."""
        append = changes.append
        view = self.view
        account_id = session.account_id

        def on_event(order: Order, event: OrderEvent) -> None:
            append(OrderChange(session, order, event, order.status.value, view(account_id, order)))

        return on_event

    # -- the batch ---------------------------------------------------------------------------
    def collect(
        self, changes: Sequence[OrderChange], accounts: Sequence[AccountSession], snapshot: bool
    ) -> OrderRows | None:
        """The rows of ``changes`` (``None`` when there are none): each order's latest columns, the fills, and one
        outbox event per order event carrying the order as it was at that event."""
        if not changes:
            return None
        rows = OrderRows(statuses=[c.status for c in changes])
        now = self.now_ns()
        last: dict[str, tuple[AccountSession, Order]] = {}
        for session, order, event, _status, view in changes:
            last[order.order_id] = (session, order)
            aid = session.account_id
            topic = orders_topic(aid)
            payload: dict[str, Any] = {
                "type": "order",
                "topic": topic,
                "event": event_name(event),
                "account_id": aid,
                "order_id": order.order_id,
                "ts_event": event.ts_event,
            }
            if isinstance(event, OrderFilled):
                f = store.fill_row(event.fill, aid)
                rows.fills.append(f)
                payload["fill"] = {k: v for k, v in f.items() if k != "account_id"}
            payload["order"] = view
            rows.outbox.append(
                event_row(
                    topic,
                    f"order.{payload['event']}",
                    payload,
                    now,
                    event_id=event.event_id,
                    version=event.version,
                    stream="orders",
                    partition_key=aid,
                    ts_event=event.ts_event,
                    ts_init=event.ts_init,
                )
            )
        for oid, (session, order) in last.items():
            if oid not in self._stored:  # made in the runtime (a challenge's flattening), never stored by the API
                symbol, _, venue = order.request.instrument_id.rpartition(".")
                rows.order_inserts.append(store.order_row(order, session.account_id, symbol, venue, now, False))
                self._stored[oid] = _Stored(symbol, venue, now, False)
                if not order.is_open:
                    rows.closed.append((session, order))
                continue
            rows.order_updates.append({"_id": oid, **store.order_changes(order)})
            if not order.is_open:
                rows.closed.append((session, order))
        return rows

    def write(self, conn: Connection, rows: OrderRows) -> None:
        """Write the batch's new orders, order updates, fills and order events in the caller's transaction."""
        if rows.order_inserts:
            conn.execute(insert(orders_table), rows.order_inserts)
        store.update_orders(conn, rows.order_updates)
        store.insert_fills(conn, rows.fills)
        if rows.outbox:
            conn.execute(insert(outbox), rows.outbox)

    def after_commit(self, rows: OrderRows) -> None:
        """Count the stored statuses and fills (metrics) and hand every closed order to ``on_closed``."""
        for session, order in rows.closed:
            self._stored.pop(order.order_id, None)
            self.on_closed(session, order)
        for status in rows.statuses:
            metrics.ORDERS.labels(status).inc()
        for f in rows.fills:
            metrics.FILLS.inc()
            metrics.TRADING_VOLUME.labels(f["commission_currency"]).inc(float(f["quantity"] * f["price"]))
