"""Tables of the gateway: users and their API keys (hashes only; secrets are never stored)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table

from smart_trader.db.metadata import metadata

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string format
    Column("created_ns", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # first characters, shown to the user to tell keys apart
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the whole key
    Column("created_ns", BigInteger, nullable=False),
    Column("revoked_ns", BigInteger, nullable=True),
)
