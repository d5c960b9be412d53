"""Per-account limits and trading state in the database (risk's table only; functions take a connection inside
the caller's transaction). Times are ns since the epoch, UTC."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from smart_trader.risk.tables import account_limits

ACTIVE = "active"
HALTED = "halted"


@dataclass(frozen=True, slots=True)
class StoredLimits:
    """What a risk manager set for one account: ``None`` limits mean the platform's defaults."""

    account_id: str
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None
    trading_state: str = ACTIVE
    reason: str | None = None
    updated_ns: int | None = None
    updated_by: str | None = None


def limits_of(conn: Connection, account_id: str) -> StoredLimits:
    """An account's stored limits and state (the defaults, active, when none were set)."""
    row = conn.execute(select(account_limits).where(account_limits.c.account_id == account_id)).first()
    if row is None:
        return StoredLimits(account_id)
    return StoredLimits(
        account_id,
        row.max_open_orders,
        row.max_orders_per_second,
        row.trading_state,
        row.reason,
        row.updated_ns,
        row.updated_by,
    )


def all_limits(conn: Connection, account_ids: list[str]) -> dict[str, StoredLimits]:
    """Stored limits of several accounts (absent ones are not in the result)."""
    if not account_ids:
        return {}
    rows = conn.execute(select(account_limits).where(account_limits.c.account_id.in_(account_ids)))
    return {
        r.account_id: StoredLimits(
            r.account_id,
            r.max_open_orders,
            r.max_orders_per_second,
            r.trading_state,
            r.reason,
            r.updated_ns,
            r.updated_by,
        )
        for r in rows
    }


def _upsert(conn: Connection, account_id: str, by: str | None, **values: object) -> StoredLimits:
    now = time.time_ns()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(account_limits).values(account_id=account_id, updated_ns=now, updated_by=by, **values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[account_limits.c.account_id], set_={"updated_ns": now, "updated_by": by, **values}
        )
    )
    return limits_of(conn, account_id)


def set_limits(
    conn: Connection, account_id: str, max_open_orders: int | None, max_orders_per_second: int | None, by: str
) -> StoredLimits:
    """Set an account's limits (``None``: back to the platform's default)."""
    return _upsert(conn, account_id, by, max_open_orders=max_open_orders, max_orders_per_second=max_orders_per_second)


def set_state(conn: Connection, account_id: str, state: str, reason: str | None, by: str) -> StoredLimits:
    """Halt (``HALTED`` with a reason) or resume (``ACTIVE``) an account."""
    return _upsert(conn, account_id, by, trading_state=state, reason=reason)


def changed_since(conn: Connection, since_ns: int) -> list[str]:
    """Accounts whose limits or trading state changed at or after ``since_ns``."""
    q = select(account_limits.c.account_id).where(account_limits.c.updated_ns >= since_ns)
    return [str(r.account_id) for r in conn.execute(q)]
