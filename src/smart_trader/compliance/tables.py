"""The audit log table: append-only (the database refuses UPDATE and DELETE through triggers, migration 0008)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from smart_trader.db.metadata import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, 3... without gaps
    Column("ts_ns", BigInteger, nullable=False),  # appended at, ns UTC
    Column("actor", String(36), nullable=True),  # user id; None: the platform
    Column("action", String(64), nullable=False),
    Column("subject", String(100), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("event_id", String(64), nullable=True, unique=True),
    Column("payload_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
