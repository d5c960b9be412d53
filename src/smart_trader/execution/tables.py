"""Tables of the execution service: orders and fills.

An order row holds the request as submitted and the state the core's :class:`~smart_trader.execution.orders.Order`
reached (status, filled quantity and cost); the broker rewrites it in the same transaction as the events that
changed it. Quantities and prices are exact decimals; ``created_ns`` is wall-clock, ``ts_*`` are the market
clock (ns since the epoch, UTC).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, UniqueConstraint

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("client_order_id", String(64), nullable=True),
    Column("instrument_id", String(100), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("quantity", ExactDecimal, nullable=True),  # None for a notional order until its first fill
    Column("notional", ExactDecimal, nullable=True),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("status", String(20), nullable=False),
    Column("filled_qty", ExactDecimal, nullable=False),
    Column("filled_cost", ExactDecimal, nullable=False),
    Column("triggered", Boolean, nullable=False),
    Column("reason", String(500), nullable=True),  # why rejected or canceled
    Column("cancel_requested", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("ts_init", BigInteger, nullable=True),  # market clock when the broker took the order
    Column("ts_last", BigInteger, nullable=True),
    UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_client_order_id"),
    Index("ix_orders_account_created", "account_id", "created_ns"),
    Index("ix_orders_status", "status"),
    Index("ix_orders_cancel_requested", "cancel_requested"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False, index=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("instrument_id", String(100), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("commission", ExactDecimal, nullable=False),
    Column("commission_currency", String(16), nullable=False),
    Column("liquidity_side", String(8), nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Index("ix_fills_account_ts", "account_id", "ts_event"),
)
