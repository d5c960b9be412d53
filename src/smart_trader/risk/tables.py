"""Tables of risk: per-account limits and trading state set by a risk manager (absent row: the defaults of the
settings, trading active). Quantities are in the instrument's base units (contracts for futures), notionals in its
quote currency, the price collar in basis points of the last price (``risk/checks.py``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

account_limits = Table(
    "account_limits",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("max_open_orders", Integer, nullable=True),  # None: the settings' default
    Column("max_orders_per_second", Integer, nullable=True),  # None: the settings' default
    Column("max_order_quantity", ExactDecimal, nullable=True),  # None: no limit (migration 0004)
    Column("max_order_notional", ExactDecimal, nullable=True),  # None: no limit
    Column("max_position", ExactDecimal, nullable=True),  # None: no limit
    Column("price_collar_bps", ExactDecimal, nullable=True),  # None: no collar
    Column("trading_state", String(16), nullable=False, server_default="active"),  # active | halted
    Column("reason", String(500), nullable=True),  # why it was halted
    Column("updated_ns", BigInteger, nullable=False),
    Column("updated_by", String(36), nullable=True),  # user id of the risk manager
)

instrument_halts = Table(
    "instrument_halts",
    metadata,
    Column("instrument_id", String(100), primary_key=True),  # halted for every account (a platform-wide halt)
    Column("reason", String(500), nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("updated_by", String(36), nullable=True),  # user id of the risk manager
)
