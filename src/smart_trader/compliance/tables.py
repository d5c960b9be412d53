"""The audit log tables: ``audit_log`` is append-only (the database refuses UPDATE, and DELETE of any record not yet
archived, through triggers: migrations 0008, 0013); ``audit_archives`` records what retention moved to Parquet."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, UniqueConstraint

from smart_trader.db.metadata import metadata

audit_log = Table(
    "audit_log",
    metadata,
    # the key includes ts_ns: on PostgreSQL the table is partitioned by month of ts_ns (compliance/partitions.py), and
    # a partitioned table's keys must hold its partition key; seq alone is unique all the same (the chain's order)
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, 3... without gaps
    Column("ts_ns", BigInteger, primary_key=True, autoincrement=False),  # the event's commit, ns UTC
    Column("actor", String(36), nullable=True),  # user id; None: the platform
    Column("action", String(64), nullable=False),
    Column("subject", String(100), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("payload_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("event_id", "ts_ns", name="uq_audit_log_event_id"),
)

audit_archives = Table(
    "audit_archives",
    metadata,
    Column("first_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("period", String(7), nullable=False),  # the UTC month of its records, YYYY-MM
    Column("records", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),  # the hash of record first_seq − 1 (the chain before the file)
    Column("head_hash", String(64), nullable=False),  # the hash of record last_seq
    Column("file", String(500), nullable=False),  # the Parquet file's name
    Column("file_sha256", String(64), nullable=False),
    Column("archived_ns", BigInteger, nullable=False),  # wall clock, ns UTC
)
"""Archived ranges of the audit chain (retention): their files and chain heads. Append-only like ``audit_log``; a
record of ``audit_log`` may be deleted only when a row here covers its ``seq`` (the database refuses otherwise)."""
