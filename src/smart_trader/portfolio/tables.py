"""Tables of the portfolio service: accounts, positions, the cash ledger and equity snapshots.

Money columns are exact decimals in the account currency; timestamps are ns since the epoch, UTC.
``accounts`` carries the running summary the broker writes with each change (cash, realized P&L,
commissions, equity high-water mark); ``ledger_entries`` is the append-only truth the cash balance
must always equal.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("account_type", String(16), nullable=False),
    Column("starting_balance", ExactDecimal, nullable=False),
    Column("cash", ExactDecimal, nullable=False),
    Column("realized_pnl", ExactDecimal, nullable=False),
    Column("commissions", ExactDecimal, nullable=False),
    Column("equity_peak", ExactDecimal, nullable=False),  # high-water mark of snapshotted equity
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("instrument_id", String(100), primary_key=True),
    Column("quantity", ExactDecimal, nullable=False),  # signed base units
    Column("cost_basis", ExactDecimal, nullable=False),  # signed, quote currency
    Column("multiplier", ExactDecimal, nullable=False),
    Column("realized_pnl", ExactDecimal, nullable=False),
    Column("commissions", ExactDecimal, nullable=False),
    Column("fills", Integer, nullable=False),
    Column("last_fill_price", ExactDecimal, nullable=True),  # the mark when no quote is known
    Column("ts_opened", BigInteger, nullable=True),
    Column("ts_last", BigInteger, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("entry_id", Integer, primary_key=True),  # 1, 2, ... per account, as the core's CashLedger numbers them
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("balance", ExactDecimal, nullable=False),
    Column("ref", String(64), nullable=False),
)

equity_snapshots = Table(
    "equity_snapshots",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),  # market clock, ns UTC
    Column("cash", ExactDecimal, nullable=False),
    Column("equity", ExactDecimal, nullable=False),
    Column("unrealized_pnl", ExactDecimal, nullable=False),
    Column("drawdown", ExactDecimal, nullable=False),  # (peak − equity) / peak, 0 at a new high
    Index("ix_equity_snapshots_account_ts", "account_id", "ts"),
)
