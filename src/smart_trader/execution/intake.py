"""Order intake: storing received orders (status ``new``) with their ``order.submitted`` outbox events,
idempotently by ``(account, client_order_id)``, many orders per statement.

:func:`store_orders` is a :class:`~smart_trader.db.writer.Bulk` function: the writer hands it every order
received during one batch and it writes them with one executemany per table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, tuple_

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.db.outbox import event_row, outbox
from smart_trader.execution.enums import OrderStatus
from smart_trader.execution.orders import OrderRequest
from smart_trader.execution.store import new_order_id, order_view
from smart_trader.execution.tables import orders
from smart_trader.gateway.hub import orders_topic

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Received:
    """An order as received by the API, already validated against its instrument; ``actor``: the user id who
    submitted it (an API key's user), and ``request_id`` the request's id, both recorded in its ``order.submitted``
    event for the audit trail."""

    account_id: str
    request: OrderRequest
    symbol: str
    venue: str
    actor: str | None = None
    request_id: str | None = None  # the HTTP request's X-Request-ID (the audit record's request id)


def _row(r: Received, now: int) -> dict[str, Any]:
    q = r.request
    return {
        "id": new_order_id(),
        "account_id": r.account_id,
        "client_order_id": q.client_order_id,
        "instrument_id": q.instrument_id,
        "symbol": r.symbol,
        "venue": r.venue,
        "side": q.side.value,
        "type": q.type.value,
        "time_in_force": q.time_in_force.value,
        "quantity": q.quantity,
        "notional": q.notional,
        "limit_price": q.limit_price,
        "stop_price": q.stop_price,
        "status": OrderStatus.NEW.value,
        "filled_qty": ZERO,
        "filled_cost": ZERO,
        "triggered": False,
        "reason": None,
        "cancel_requested": False,
        "created_ns": now,
        "ts_init": None,
        "ts_last": None,
    }


def _event(row: dict[str, Any], actor: str | None, request_id: str | None) -> dict[str, Any]:
    topic = orders_topic(row["account_id"])
    body = {
        "type": "order",
        "topic": topic,
        "event": "submitted",
        "account_id": row["account_id"],
        "order_id": row["id"],
        "actor": actor,
        "request_id": request_id,
        "order": order_view(row),
    }
    return event_row(
        topic, "order.submitted", body, row["created_ns"], stream="orders", partition_key=row["account_id"]
    )


def store_orders(
    conn: Connection, received: list[Received], now_ns: Callable[[], int] = wall_clock_ns
) -> list[tuple[Any, bool]]:
    """Store each received order unless its account already has one with its ``client_order_id`` (also within
    this call), created at ``now_ns()`` (wall clock, ns UTC); returns, per item, the stored row (a mapping) and
    whether it was created.

    Raises:
        IntegrityError: a client order id stored meanwhile by another process (the writer then retries each
            item alone, and the retry finds it).
    """
    keyed = {(r.account_id, r.request.client_order_id) for r in received if r.request.client_order_id is not None}
    existing: dict[tuple[str, str], Any] = {}
    if keyed:
        q = select(orders).where(tuple_(orders.c.account_id, orders.c.client_order_id).in_(list(keyed)))
        existing = {(row.account_id, row.client_order_id): row._mapping for row in conn.execute(q)}
    now = now_ns()
    out: list[tuple[Any, bool]] = []
    new_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for r in received:
        coid = r.request.client_order_id
        if coid is not None and (r.account_id, coid) in existing:
            out.append((existing[(r.account_id, coid)], False))
            continue
        row = _row(r, now)
        if coid is not None:
            existing[(r.account_id, coid)] = row
        new_rows.append(row)
        events.append(_event(row, r.actor, r.request_id))
        out.append((row, True))
    if new_rows:
        conn.execute(insert(orders), new_rows)
        conn.execute(insert(outbox), events)
    return out
