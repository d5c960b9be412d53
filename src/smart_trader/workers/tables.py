"""The backbone's bookkeeping tables: which events each consumer applied, and where each ordered reader stands."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text

from smart_trader.db.metadata import metadata

consumed = Table(
    "consumed",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("applied_ns", BigInteger, nullable=True),  # when its transaction ran (wall clock, ns UTC)
    Column("error", Text, nullable=True),  # set: a dead letter (set aside after too many failed attempts)
)
"""One row per (consumer, event) applied: the idempotency mark written in the consumer's transaction."""

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("published_ns", BigInteger, nullable=False),  # the position: the last row read, in the relay's order
    Column("outbox_id", BigInteger, nullable=False),
)
"""Where a consumer reading the outbox directly (in-process transport, ordered consumers) stands."""
