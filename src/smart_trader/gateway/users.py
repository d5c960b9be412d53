"""Users and API keys in the database (the gateway's tables only). Functions take a SQLAlchemy connection
inside the caller's transaction."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway.security import api_key_hash, dummy_hash, new_api_key, verify_password
from smart_trader.gateway.tables import api_keys, users


@dataclass(frozen=True, slots=True)
class User:
    """A registered user (``created_ns``: ns since the epoch, UTC)."""

    id: str
    email: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new API key: ``key`` is shown once and never stored."""

    id: str
    name: str
    prefix: str
    key: str
    created_ns: int


def register(conn: Connection, email: str, password_hash: str) -> User:
    """Create a user (email compared case-insensitively) with an already computed argon2 ``password_hash``
    (:func:`~smart_trader.gateway.security.hash_password`: slow on purpose, so callers compute it off the
    event loop and outside the write transaction).

    Raises:
        InvalidInputError: the email is already registered.
    """
    user = User(str(uuid.uuid4()), email.strip().lower(), time.time_ns())
    try:
        with conn.begin_nested():
            conn.execute(
                insert(users).values(
                    id=user.id, email=user.email, password_hash=password_hash, created_ns=user.created_ns
                )
            )
    except IntegrityError:
        raise InvalidInputError(f"email {user.email} is already registered") from None
    return user


def authenticate(conn: Connection, email: str, password: str) -> User | None:
    """The user with these credentials, or ``None`` (same work whether or not the email exists)."""
    row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None:
        verify_password(dummy_hash(), password)
        return None
    if not verify_password(row.password_hash, password):
        return None
    return User(row.id, row.email, row.created_ns)


def get_user(conn: Connection, user_id: str) -> User | None:
    """The user with id ``user_id``, or ``None``."""
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else User(row.id, row.email, row.created_ns)


def create_api_key(conn: Connection, user_id: str, name: str) -> IssuedApiKey:
    """Make a new API key for ``user_id``; only its SHA-256 is stored."""
    key = new_api_key()
    issued = IssuedApiKey(str(uuid.uuid4()), name, key[:10], key, time.time_ns())
    conn.execute(
        insert(api_keys).values(
            id=issued.id,
            user_id=user_id,
            name=name,
            prefix=issued.prefix,
            key_hash=api_key_hash(key),
            created_ns=issued.created_ns,
        )
    )
    return issued


def user_of_api_key(conn: Connection, key: str) -> str | None:
    """The user id owning an unrevoked API key, or ``None``."""
    row = conn.execute(
        select(api_keys.c.user_id).where(api_keys.c.key_hash == api_key_hash(key), api_keys.c.revoked_ns.is_(None))
    ).first()
    return None if row is None else str(row.user_id)
