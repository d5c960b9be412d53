"""Per-account limits and trading state in the database (risk's table), and the daily equity closes the value at
risk rests on (read from portfolio's equity snapshots). Functions take a connection inside the caller's transaction.
Times are ns since the epoch, UTC; quantities in base units, notionals in quote currency, the collar in basis points.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway.hub import accounts_topic
from smart_trader.portfolio.tables import equity_snapshots
from smart_trader.risk.tables import account_limits, instrument_halts

ACTIVE = "active"
HALTED = "halted"


@dataclass(frozen=True, slots=True)
class StoredLimits:
    """What a risk manager set for one account. ``max_open_orders`` / ``max_orders_per_second``: ``None`` means the
    platform's defaults; the other limits: ``None`` means not checked.

    Attributes:
        max_order_quantity: most base units in one order.
        max_order_notional: most quote currency one order may be worth.
        max_position: largest absolute position of any instrument (base units, working orders of the side counted).
        price_collar_bps: farthest a limit or stop price may be from the last price (basis points).
    """

    account_id: str
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None
    trading_state: str = ACTIVE
    reason: str | None = None
    updated_ns: int | None = None
    updated_by: str | None = None
    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    price_collar_bps: Decimal | None = None


def _stored(r: Any) -> StoredLimits:
    return StoredLimits(
        r.account_id,
        r.max_open_orders,
        r.max_orders_per_second,
        r.trading_state,
        r.reason,
        r.updated_ns,
        r.updated_by,
        r.max_order_quantity,
        r.max_order_notional,
        r.max_position,
        r.price_collar_bps,
    )


def limits_of(conn: Connection, account_id: str) -> StoredLimits:
    """An account's stored limits and state (the defaults, active, when none were set)."""
    row = conn.execute(select(account_limits).where(account_limits.c.account_id == account_id)).first()
    return StoredLimits(account_id) if row is None else _stored(row)


def all_limits(conn: Connection, account_ids: list[str]) -> dict[str, StoredLimits]:
    """Stored limits of several accounts (absent ones are not in the result)."""
    if not account_ids:
        return {}
    rows = conn.execute(select(account_limits).where(account_limits.c.account_id.in_(account_ids)))
    return {r.account_id: _stored(r) for r in rows}


def _upsert(conn: Connection, account_id: str, by: str | None, event: str, **values: object) -> StoredLimits:
    """Write ``values`` to the account's row and the ``risk.<event>`` event (stream ``accounts``, partition key the
    account, for the audit trail; its WebSocket document on the account's topic has the type ``risk``)."""
    now = time.time_ns()
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = upsert(account_limits).values(account_id=account_id, updated_ns=now, updated_by=by, **values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[account_limits.c.account_id], set_={"updated_ns": now, "updated_by": by, **values}
        )
    )
    topic = accounts_topic(account_id)
    body = {"type": "risk", "event": event, "topic": topic, "account_id": account_id, "actor": by, **values}
    row = event_row(topic, f"risk.{event}", body, now, stream="accounts", partition_key=account_id)
    conn.execute(insert(outbox), [row])
    return limits_of(conn, account_id)


def set_limits(
    conn: Connection,
    account_id: str,
    max_open_orders: int | None,
    max_orders_per_second: int | None,
    by: str,
    *,
    max_order_quantity: Decimal | None = None,
    max_order_notional: Decimal | None = None,
    max_position: Decimal | None = None,
    price_collar_bps: Decimal | None = None,
) -> StoredLimits:
    """Set every limit of an account at once (a PUT: ``None`` returns the open-orders and rate limits to the
    platform's defaults, and removes the others), recorded as ``risk.limits_set`` (``by``: the risk manager)."""
    return _upsert(
        conn,
        account_id,
        by,
        "limits_set",
        max_open_orders=max_open_orders,
        max_orders_per_second=max_orders_per_second,
        max_order_quantity=max_order_quantity,
        max_order_notional=max_order_notional,
        max_position=max_position,
        price_collar_bps=price_collar_bps,
    )


def set_state(conn: Connection, account_id: str, state: str, reason: str | None, by: str) -> StoredLimits:
    """Halt (``HALTED`` with a reason) or resume (``ACTIVE``) an account, recorded as ``risk.account_halted`` or
    ``risk.account_resumed`` (``by``: who did it — a risk manager's user id, or the payment provider whose refund
    revoked a challenge)."""
    event = "account_halted" if state == HALTED else "account_resumed"
    return _upsert(conn, account_id, by, event, trading_state=state, reason=reason)


def changed_since(conn: Connection, since_ns: int) -> list[str]:
    """Accounts whose limits or trading state changed at or after ``since_ns``."""
    q = select(account_limits.c.account_id).where(account_limits.c.updated_ns >= since_ns)
    return [str(r.account_id) for r in conn.execute(q)]


# -- daily equity closes -----------------------------------------------------------------------------------------------
def daily_close_points(conn: Connection, account_id: str, days: int) -> list[tuple[int, Decimal]]:
    """``(UTC day, equity)`` of the last snapshot of each of the latest ``days`` UTC days (market clock; day =
    ``ts // NS_PER_DAY``) having a snapshot, oldest first. One index seek per day (``ix_equity_snapshots_account_ts``),
    however many snapshots a day holds (one a second while positions are open). Days without a snapshot are skipped,
    not filled: the runtime snapshots every second while positions are open, so such a day is one whose equity did
    not move, or one the platform did not run (its move then lands in the next day's return)."""
    s = equity_snapshots.c
    points: list[tuple[int, Decimal]] = []
    before: int | None = None
    for _ in range(days):
        q = select(s.ts, s.equity).where(s.account_id == account_id)
        if before is not None:
            q = q.where(s.ts < before)
        row = conn.execute(q.order_by(s.ts.desc(), s.id.desc()).limit(1)).first()
        if row is None:
            break
        day = int(row.ts) // NS_PER_DAY
        points.append((day, row.equity))
        before = day * NS_PER_DAY  # the start of its UTC day
    points.reverse()
    return points


def daily_closes(conn: Connection, account_id: str, days: int) -> list[Decimal]:
    """The equities of :func:`daily_close_points` (account currency), oldest first."""
    return [equity for _day, equity in daily_close_points(conn, account_id, days)]


def daily_close_points_of(
    conn: Connection, account_ids: Iterable[str], days: int
) -> dict[str, list[tuple[int, Decimal]]]:
    """:func:`daily_close_points` of several accounts on one connection (``days`` index seeks per account at most;
    an account without snapshots maps to an empty list)."""
    return {aid: daily_close_points(conn, aid, days) for aid in account_ids}


def halt_instrument(conn: Connection, instrument_id: str, reason: str, by: str | None) -> None:
    """Halt ``instrument_id`` for every account (a new order on it is refused by every session's risk checks, naming
    the reason); halting it again replaces the reason. Recorded as ``risk.instrument_halted`` (``by``: the risk
    manager)."""
    now = time.time_ns()
    values = {"reason": reason, "updated_ns": now, "updated_by": by}
    conn.execute(delete(instrument_halts).where(instrument_halts.c.instrument_id == instrument_id))
    conn.execute(insert(instrument_halts), [{"instrument_id": instrument_id, **values}])
    _instrument_event(conn, "risk.instrument_halted", instrument_id, by, reason, now)


def resume_instrument(conn: Connection, instrument_id: str, by: str | None = None) -> bool:
    """Lift an instrument's halt, recorded as ``risk.instrument_resumed`` (``by``: the risk manager); ``False`` when
    it was not halted (nothing changed, nothing recorded)."""
    done = conn.execute(delete(instrument_halts).where(instrument_halts.c.instrument_id == instrument_id))
    if not done.rowcount:
        return False
    _instrument_event(conn, "risk.instrument_resumed", instrument_id, by, None, time.time_ns())
    return True


def _instrument_event(
    conn: Connection, event_type: str, instrument_id: str, by: str | None, reason: str | None, now: int
) -> None:
    """An instrument halt's event: platform-wide, so stream ``admin`` with the instrument as partition key (its topic
    is no WebSocket channel)."""
    body = {"instrument_id": instrument_id, "actor": by, "reason": reason}
    row = event_row(f"admin.{instrument_id}", event_type, body, now, stream="admin", partition_key=instrument_id)
    conn.execute(insert(outbox), [row])


def halted_instruments(conn: Connection) -> dict[str, str]:
    """Every halted instrument with its reason."""
    q = select(instrument_halts).order_by(instrument_halts.c.instrument_id)
    return {str(r.instrument_id): str(r.reason) for r in conn.execute(q)}
