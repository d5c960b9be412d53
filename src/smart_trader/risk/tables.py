"""Tables of risk: per-account limits and trading state set by a risk manager (absent row: the defaults of the
settings, trading active)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table

from smart_trader.db.metadata import metadata

account_limits = Table(
    "account_limits",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("max_open_orders", Integer, nullable=True),  # None: the settings' default
    Column("max_orders_per_second", Integer, nullable=True),  # None: the settings' default
    Column("trading_state", String(16), nullable=False, server_default="active"),  # active | halted
    Column("reason", String(500), nullable=True),  # why it was halted
    Column("updated_ns", BigInteger, nullable=False),
    Column("updated_by", String(36), nullable=True),  # user id of the risk manager
)
