"""Accounts, positions, the cash ledger and equity snapshots in the database.

The core's :class:`~smart_trader.portfolio.account.Account` is the only place the accounting rules live: a stored
account is rebuilt by replaying its ledger through it (deposits and withdrawals directly, trade entries by
re-applying their fill), and what the broker changed in memory is written back as rows. Functions take a
connection inside the caller's transaction; only the portfolio tables are used (fills come in as rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import DataValidationError
from smart_trader.core.ids import AccountId, ClientOrderId, FillId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.db.outbox import event_row, outbox
from smart_trader.execution.enums import LiquiditySide, OrderSide
from smart_trader.execution.events import Fill
from smart_trader.gateway.hub import accounts_topic
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.portfolio.ledger import EntryKind, LedgerEntry
from smart_trader.portfolio.position import Position
from smart_trader.portfolio.tables import accounts, equity_snapshots, ledger_entries, positions

ZERO = Decimal(0)


def create_account(
    conn: Connection,
    user_id: str,
    name: str,
    currency: str,
    starting_balance: Decimal,
    account_type: AccountType = AccountType.CASH,
    now_ns: Callable[[], int] = wall_clock_ns,
    *,
    actor: str | None = None,
) -> dict[str, Any]:
    """Open an account and deposit ``starting_balance`` (through the core ledger's rules) at ``now_ns()`` (wall clock,
    ns UTC), with its ``account.opened`` event (stream ``accounts``, for the audit trail; ``actor``: the user id who
    opened it, ``None`` for the platform's own, such as a promotion's next phase); returns the row.

    Raises:
        InvalidInputError: the starting balance is not a positive finite amount.
    """
    account_id = str(uuid.uuid4())
    now = now_ns()
    core = Account(AccountId(account_id), currency, account_type)
    core.deposit(now, starting_balance)
    row = {
        "id": account_id,
        "user_id": user_id,
        "name": name,
        "currency": core.currency,
        "account_type": account_type.value,
        "starting_balance": starting_balance,
        "cash": core.cash,
        "realized_pnl": ZERO,
        "commissions": ZERO,
        "equity_peak": core.cash,
        "created_ns": now,
        "updated_ns": now,
    }
    conn.execute(insert(accounts), [row])
    write_ledger(conn, account_id, core.ledger.entries)
    conn.execute(insert(outbox), [_opened(row, actor)])
    return row


def _opened(row: Mapping[str, Any], actor: str | None) -> dict[str, Any]:
    """The ``account.opened`` outbox row of a new account row (its WebSocket document's type: ``account_opened``)."""
    topic = accounts_topic(row["id"])
    body = {
        "type": "account_opened",
        "topic": topic,
        "account_id": row["id"],
        "user_id": row["user_id"],
        "actor": actor,
        "name": row["name"],
        "currency": row["currency"],
        "starting_balance": str(row["starting_balance"]),
        "account_type": row["account_type"],
        "created_ns": row["created_ns"],
    }
    return event_row(topic, "account.opened", body, row["created_ns"], stream="accounts", partition_key=row["id"])


def get_account(conn: Connection, account_id: str) -> Row[Any] | None:
    """The account row, or ``None``."""
    return conn.execute(select(accounts).where(accounts.c.id == account_id)).first()


def accounts_of(conn: Connection, user_id: str) -> list[Row[Any]]:
    """A user's accounts, oldest first."""
    return list(conn.execute(select(accounts).where(accounts.c.user_id == user_id).order_by(accounts.c.created_ns)))


def owner_of(conn: Connection, account_id: str) -> str | None:
    """The user id owning an account, or ``None`` when there is no such account."""
    row = conn.execute(select(accounts.c.user_id).where(accounts.c.id == account_id)).first()
    return None if row is None else str(row.user_id)


def positions_of(conn: Connection, account_id: str) -> list[Row[Any]]:
    """An account's position rows (flat ones included: they keep realized P&L)."""
    return list(conn.execute(select(positions).where(positions.c.account_id == account_id)))


def position_of(row: Row[Any]) -> Position:
    """The core :class:`Position` of a stored row."""
    return Position(
        InstrumentId(row.instrument_id),
        row.multiplier,
        row.quantity,
        row.cost_basis,
        row.realized_pnl,
        row.commissions,
        row.fills,
        row.ts_opened,
        row.ts_last,
    )


def ledger_row(account_id: str, e: LedgerEntry) -> dict[str, Any]:
    """The ``ledger_entries`` row of a core ledger entry (``entry_id`` numbers it within the account)."""
    return {
        "account_id": account_id,
        "entry_id": e.entry_id,
        "ts": e.ts,
        "kind": e.kind.value,
        "amount": e.amount,
        "currency": e.currency,
        "balance": e.balance,
        "ref": e.ref,
    }


def insert_ledger_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``ledger_entries`` rows (:func:`ledger_row`), one executemany statement."""
    if rows:
        conn.execute(insert(ledger_entries), list(rows))


def position_row(account_id: str, pos: Position, last_fill_price: Decimal | None) -> dict[str, Any]:
    """The ``positions`` row of a core position (``last_fill_price`` in the quote currency)."""
    return {
        "account_id": account_id,
        "instrument_id": pos.instrument_id,
        "quantity": pos.quantity,
        "cost_basis": pos.cost_basis,
        "multiplier": pos.multiplier,
        "realized_pnl": pos.realized_pnl,
        "commissions": pos.commissions,
        "fills": pos.fills,
        "ts_opened": pos.ts_opened,
        "ts_last": pos.ts_last,
        "last_fill_price": last_fill_price,
    }


_POSITION_KEYS = ("account_id", "instrument_id")


def upsert_positions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace ``positions`` rows (:func:`position_row`) by account and instrument, one executemany
    statement (``INSERT ... ON CONFLICT DO UPDATE`` in the connection's dialect: SQLite or PostgreSQL)."""
    if not rows:
        return
    stmt = (sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert)(positions)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_POSITION_KEYS),
        set_={c.name: stmt.excluded[c.name] for c in positions.c if c.name not in _POSITION_KEYS},
    )
    conn.execute(stmt, list(rows))


_ACCOUNT_UPDATE = update(accounts).where(accounts.c.id == bindparam("_id"))


def update_accounts(conn: Connection, changes: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite the summary columns (cash, realized P&L, commissions, equity peak, ``updated_ns``) of several accounts,
    each given with its id as ``_id``; one executemany statement."""
    if changes:
        conn.execute(_ACCOUNT_UPDATE, list(changes))


def insert_snapshots(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``equity_snapshots`` rows (account id, ``ts`` ns UTC, cash, equity, unrealized P&L, drawdown)."""
    if rows:
        conn.execute(insert(equity_snapshots), list(rows))


def latest_snapshot_ts(conn: Connection) -> int:
    """The market time of the latest equity snapshot stored (ns UTC); 0 when none was."""
    return int(conn.execute(select(func.max(equity_snapshots.c.ts))).scalar() or 0)


def accounts_with_positions(conn: Connection) -> set[str]:
    """Ids of the accounts holding an open (non-zero) position."""
    # filtered here: quantities are exact decimals (canonical text on SQLite), not numbers SQL compares with 0
    return {str(r.account_id) for r in conn.execute(select(positions.c.account_id, positions.c.quantity)) if r.quantity}


def write_ledger(conn: Connection, account_id: str, entries: list[LedgerEntry]) -> None:
    """Append core ledger entries."""
    if entries:
        conn.execute(insert(ledger_entries), [ledger_row(account_id, e) for e in entries])


def ledger_of(conn: Connection, account_id: str) -> list[Row[Any]]:
    """An account's ledger rows in entry order."""
    return list(
        conn.execute(
            select(ledger_entries).where(ledger_entries.c.account_id == account_id).order_by(ledger_entries.c.entry_id)
        )
    )


def load_account(
    conn: Connection,
    row: Row[Any],
    fills: Mapping[str, Row[Any]],
    instrument: Callable[[InstrumentId], Instrument],
) -> Account:
    """Rebuild the core account by replaying its stored ledger; the rebuilt ledger must equal the stored one.

    Raises:
        DataValidationError: the stored ledger does not replay to itself (a corrupted database).
    """
    account = Account(AccountId(row.id), row.currency, AccountType(row.account_type))
    for e in ledger_of(conn, row.id):
        kind = EntryKind(e.kind)
        if kind is EntryKind.DEPOSIT:
            account.deposit(e.ts, e.amount)
        elif kind is EntryKind.WITHDRAWAL:
            account.withdraw(e.ts, -e.amount)
        elif kind is EntryKind.TRADE:
            f = fills.get(e.ref)
            if f is None:
                raise DataValidationError(f"account {row.id}", "ledger-fill", f"trade entry {e.entry_id} names no fill")
            account.apply_fill(fill_of(f), instrument(InstrumentId(f.instrument_id)))
        rebuilt = account.ledger.entries
        if len(rebuilt) >= e.entry_id and (rebuilt[e.entry_id - 1].balance != e.balance):
            raise DataValidationError(
                f"account {row.id}",
                "ledger-replay",
                f"entry {e.entry_id} balance {e.balance} replays to {rebuilt[e.entry_id - 1].balance}",
            )
    if account.cash != row.cash:
        raise DataValidationError(f"account {row.id}", "ledger-replay", f"cash {row.cash} but ledger {account.cash}")
    return account


def fill_of(row: Row[Any]) -> Fill:
    """The core :class:`Fill` of a stored fill row."""
    return Fill(
        FillId(row.id),
        OrderId(row.order_id),
        None if getattr(row, "client_order_id", None) is None else ClientOrderId(row.client_order_id),
        InstrumentId(row.instrument_id),
        OrderSide(row.side),
        row.quantity,
        row.price,
        row.commission,
        row.commission_currency,
        LiquiditySide(row.liquidity_side),
        row.ts_event,
    )


def drawdown(equity: Decimal, peak: Decimal) -> Decimal:
    """Drawdown from the high-water mark as a fraction: (peak − equity) / peak, 0 when at or above the peak.
    Rounded to 12 decimal places (a ratio for display and metrics, not money)."""
    if peak <= 0 or equity >= peak:
        return ZERO
    return ((peak - equity) / peak).quantize(Decimal("1e-12"))


def equity_history(conn: Connection, account_id: str, start: int | None, end: int | None, limit: int) -> list[Row[Any]]:
    """An account's equity snapshots in time order (``start``/``end`` ns UTC, inclusive)."""
    q = select(equity_snapshots).where(equity_snapshots.c.account_id == account_id)
    if start is not None:
        q = q.where(equity_snapshots.c.ts >= start)
    if end is not None:
        q = q.where(equity_snapshots.c.ts <= end)
    return list(conn.execute(q.order_by(equity_snapshots.c.ts, equity_snapshots.c.id).limit(limit)))
