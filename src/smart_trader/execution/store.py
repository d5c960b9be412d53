"""Orders and fills in the database: rows to and from the core's :class:`Order`, :class:`OrderRequest` and
:class:`Fill`. Functions take a connection inside the caller's transaction; only the execution tables are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from uuid_utils import uuid7

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.ids import AccountId, ClientOrderId, InstrumentId, OrderId
from smart_trader.db.outbox import event_row, outbox
from smart_trader.execution.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from smart_trader.execution.events import Fill, OrderCanceled, OrderExpired, OrderRejected
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.tables import fills, orders
from smart_trader.gateway.hub import orders_topic

ZERO = Decimal(0)
OPEN_STATUSES = tuple(s.value for s in OrderStatus if s.is_open)  # stored values of working orders


def new_order_id() -> str:
    """A durable, unique order id: a UUID version 7 (RFC 9562: 48-bit Unix milliseconds, then random bits) as text.

    Time-ordered, so new orders land at the end of the primary-key index instead of on a random page of it (each
    random page is one more page written per commit)."""
    return str(uuid7())


def get_order(conn: Connection, account_id: str, order_id: str) -> Row[Any] | None:
    """One order of an account, or ``None``."""
    return conn.execute(select(orders).where(orders.c.id == order_id, orders.c.account_id == account_id)).first()


def list_orders(
    conn: Connection,
    account_id: str,
    *,
    status: Sequence[str] = (),
    instrument_id: str | None = None,
    side: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Row[Any]]:
    """An account's orders, newest first, filtered by status (any of), instrument and side."""
    q = select(orders).where(orders.c.account_id == account_id)
    if status:
        q = q.where(orders.c.status.in_(list(status)))
    if instrument_id:
        q = q.where(orders.c.instrument_id == instrument_id)
    if side:
        q = q.where(orders.c.side == side)
    q = q.order_by(orders.c.created_ns.desc(), orders.c.id.desc()).limit(limit).offset(offset)
    return list(conn.execute(q))


def request_cancel(conn: Connection, account_id: str, order_id: str, actor: str | None = None) -> Row[Any] | None:
    """Mark an open (or not yet accepted) order for cancellation, with its ``order.cancel_requested`` event (stream
    ``orders``; ``actor``: the user id who asked, an API key's user); returns the row before the change, or ``None``
    when there is no such order."""
    row = get_order(conn, account_id, order_id)
    if row is not None and row.status in (OrderStatus.NEW.value, *OPEN_STATUSES):
        conn.execute(update(orders).where(orders.c.id == order_id).values(cancel_requested=True))
        conn.execute(insert(outbox), [_cancel_requested(row, actor)])
    return row


def _cancel_requested(row: Row[Any], actor: str | None) -> dict[str, Any]:
    """The ``order.cancel_requested`` outbox row: an order document as the runtime's events carry it, the order as
    stored now (``cancel_requested`` true)."""
    account_id = str(row.account_id)
    topic = orders_topic(account_id)
    now = wall_clock_ns()
    body = {
        "type": "order",
        "topic": topic,
        "event": "cancel_requested",
        "account_id": account_id,
        "order_id": row.id,
        "actor": actor,
        "order": order_view({**row._mapping, "cancel_requested": True}),
    }
    return event_row(topic, "order.cancel_requested", body, now, stream="orders", partition_key=account_id)


PENDING_KEYS = (orders.c.id, orders.c.account_id, orders.c.cancel_requested, orders.c.created_ns)


def pending_orders(conn: Connection, limit: int = 10_000) -> list[Row[Any]]:
    """Orders the broker has not taken yet (status ``new``) and open orders with a cancel request, oldest first:
    only ``id``, ``account_id``, ``cancel_requested`` and ``created_ns`` (the runtime skips the ones it already
    holds and reads the rest whole with :func:`orders_by_id`); up to ``limit`` of each kind.

    Two indexed lookups (``ix_orders_status``, ``ix_orders_cancel_requested``) rather than one ``OR``, which
    scanned every order ever placed on each poll."""
    new = select(*PENDING_KEYS).where(orders.c.status == OrderStatus.NEW.value).order_by(orders.c.created_ns)
    cancels = (
        select(*PENDING_KEYS)
        .where(orders.c.cancel_requested.is_(True), orders.c.status.in_(OPEN_STATUSES))
        .order_by(orders.c.created_ns)
    )
    # up to ``limit`` of each: cancel requests are never crowded out by new orders the runtime already holds
    rows = [*conn.execute(new.limit(limit)), *conn.execute(cancels.limit(limit))]
    return sorted(rows, key=lambda r: r.created_ns)


def orders_by_id(conn: Connection, order_ids: Sequence[str]) -> list[Row[Any]]:
    """The stored orders with these ids, in ``created_ns`` order."""
    if not order_ids:
        return []
    return list(conn.execute(select(orders).where(orders.c.id.in_(order_ids)).order_by(orders.c.created_ns)))


def open_orders_of(conn: Connection, account_id: str) -> list[Row[Any]]:
    """An account's working orders (accepted or partially filled), oldest first."""
    q = select(orders).where(orders.c.account_id == account_id, orders.c.status.in_(OPEN_STATUSES))
    return list(conn.execute(q.order_by(orders.c.created_ns)))


def request_of(row: Row[Any] | Mapping[str, Any]) -> OrderRequest:
    """The core request stored in an order row (a row, or a mapping of its columns)."""
    r = row._mapping if isinstance(row, Row) else row
    coid = r["client_order_id"]
    return OrderRequest(
        InstrumentId(r["instrument_id"]),
        OrderSide(r["side"]),
        OrderType(r["type"]),
        r["quantity"] if r["notional"] is None else None,
        r["notional"],
        r["limit_price"],
        r["stop_price"],
        TimeInForce(r["time_in_force"]),
        ClientOrderId(coid) if coid is not None else None,
    )


def order_of(row: Row[Any]) -> Order:
    """Rebuild the core :class:`Order` of a stored working order (status, fills so far, trigger)."""
    request = request_of(row)
    order = Order(OrderId(row.id), request, ts_init=row.ts_init or 0)
    order.status = OrderStatus(row.status)
    order.quantity = row.quantity
    order.filled_qty = row.filled_qty
    order.filled_cost = row.filled_cost
    order.triggered = row.triggered
    order.ts_last = row.ts_last or 0
    return order


def close_reason(order: Order) -> str | None:
    """Why a closed order closed: the rejection or cancel reason (``"user"``, ``"ioc"``, ...), ``"expired"``;
    ``None`` while it works or when it filled."""
    last = order.events[-1] if order.events else None
    if isinstance(last, OrderCanceled | OrderRejected):
        return last.reason
    if isinstance(last, OrderExpired):
        return "expired"
    return order.reject_reason


def order_changes(order: Order) -> dict[str, Any]:
    """The columns the broker rewrites after events changed ``order``."""
    reason = close_reason(order)
    return {
        "status": order.status.value,
        "quantity": order.quantity,
        "filled_qty": order.filled_qty,
        "filled_cost": order.filled_cost,
        "triggered": order.triggered,
        "reason": reason,
        "ts_init": order.ts_init,
        "ts_last": order.ts_last,
    }


def order_view(row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The API's view of a stored order (the fields of ``OrderOut``): decimals exact, ``avg_fill_price`` derived
    from the filled cost, ``created_ns`` wall clock and ``ts_last`` market clock (ns since the epoch, UTC)."""
    r = row._mapping if isinstance(row, Row) else row
    filled = r["filled_qty"]
    return {
        "id": r["id"],
        "account_id": r["account_id"],
        "client_order_id": r["client_order_id"],
        "symbol": r["symbol"],
        "venue": r["venue"],
        "instrument_id": r["instrument_id"],
        "side": r["side"],
        "type": r["type"],
        "time_in_force": r["time_in_force"],
        "qty": r["quantity"],
        "notional": r["notional"],
        "limit_price": r["limit_price"],
        "stop_price": r["stop_price"],
        "status": r["status"],
        "filled_qty": filled,
        "avg_fill_price": (r["filled_cost"] / filled) if filled else None,
        "reason": r["reason"],
        "cancel_requested": r["cancel_requested"],
        "created_ns": r["created_ns"],
        "ts_last": r["ts_last"],
    }


def order_row(
    order: Order, account_id: str, symbol: str, venue: str, created_ns: int, cancel_requested: bool
) -> dict[str, Any]:
    """The ``orders`` row of an order in memory, as it will be once its changes are stored (``symbol``, ``venue``,
    ``created_ns`` wall clock ns UTC and ``cancel_requested`` are what the stored row holds and the core order does
    not); :func:`order_view` of it is the order as the REST API shows it."""
    r = order.request
    return {
        "id": order.order_id,
        "account_id": account_id,
        "client_order_id": r.client_order_id,
        "instrument_id": r.instrument_id,
        "symbol": symbol,
        "venue": venue,
        "side": r.side.value,
        "type": r.type.value,
        "time_in_force": r.time_in_force.value,
        "notional": r.notional,
        "limit_price": r.limit_price,
        "stop_price": r.stop_price,
        "cancel_requested": cancel_requested,
        "created_ns": created_ns,
        **order_changes(order),
    }


_ORDER_UPDATE = update(orders).where(orders.c.id == bindparam("_id"))


def update_orders(conn: Connection, changes: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite the columns the broker changes (:func:`order_changes` plus the order id as ``_id``) of several orders,
    one executemany statement."""
    if changes:
        conn.execute(_ORDER_UPDATE, list(changes))


def insert_fills(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``fills`` rows (:func:`fill_row`), one executemany statement."""
    if rows:
        conn.execute(insert(fills), list(rows))


def latest_ts(conn: Connection) -> int:
    """The latest market time an order event was stored at (``ts_last``, ns UTC); 0 when none was."""
    return int(conn.execute(select(func.max(orders.c.ts_last))).scalar() or 0)


def accounts_with_open_orders(conn: Connection) -> set[str]:
    """Ids of the accounts that have working orders."""
    q = select(orders.c.account_id).where(orders.c.status.in_(OPEN_STATUSES)).distinct()
    return {str(r.account_id) for r in conn.execute(q)}


def fill_row(fill: Fill, account_id: AccountId | str) -> dict[str, Any]:
    """The ``fills`` row of a core fill."""
    return {
        "id": fill.fill_id,
        "order_id": fill.order_id,
        "account_id": account_id,
        "instrument_id": fill.instrument_id,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": fill.commission,
        "commission_currency": fill.commission_currency,
        "liquidity_side": fill.liquidity_side.value,
        "ts_event": fill.ts_event,
    }


def fills_of(
    conn: Connection, account_id: str, *, order_id: str | None = None, limit: int | None = None, offset: int = 0
) -> list[Row[Any]]:
    """An account's fills in execution order (oldest first)."""
    q = select(fills).where(fills.c.account_id == account_id)
    if order_id:
        q = q.where(fills.c.order_id == order_id)
    q = q.order_by(fills.c.ts_event, fills.c.id)
    if limit is not None:
        q = q.limit(limit).offset(offset)
    return list(conn.execute(q))


def fills_by_id(conn: Connection, account_id: str) -> dict[str, Row[Any]]:
    """Every fill of an account by fill id (to replay the ledger)."""
    return {r.id: r for r in conn.execute(select(fills).where(fills.c.account_id == account_id))}
