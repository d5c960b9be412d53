"""Tables of the gateway: users, their API keys (hashes only; secrets are never stored) and their sessions (one row
per refresh-token family)."""

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
    Column("roles", String(200), nullable=False, server_default="trader"),  # space-separated (gateway/access.py)
    Column("disabled_ns", BigInteger, nullable=True),  # set: every credential of the user is refused
    Column("password_changed_ns", BigInteger, nullable=True),
    Column("updated_ns", BigInteger, nullable=True, index=True),  # last change of roles, disabled or password
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
    Column("revoked_ns", BigInteger, nullable=True, index=True),
    Column("last_used_ns", BigInteger, nullable=True),  # recorded at most once a minute per process
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),  # the ``sid`` claim of its access and refresh tokens
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("refresh_jti", String(64), nullable=False),  # the one refresh token of the family still valid
    Column("created_ns", BigInteger, nullable=False),
    Column("refreshed_ns", BigInteger, nullable=True),
    Column("expires_ns", BigInteger, nullable=False),  # of the current refresh token
    Column("revoked_ns", BigInteger, nullable=True, index=True),
    Column("revoked_reason", String(200), nullable=True),  # logout, refresh token reuse, password change...
)
