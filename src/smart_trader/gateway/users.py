"""Users, API keys and sessions in the database (the gateway's tables only). Functions take a SQLAlchemy connection
inside the caller's transaction; times are ns since the epoch, UTC."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway.access import Role, format_roles, parse_roles
from smart_trader.gateway.security import api_key_hash, new_api_key
from smart_trader.gateway.tables import api_keys, sessions, users


@dataclass(frozen=True, slots=True)
class User:
    """A registered user (``created_ns``/``disabled_ns``: ns since the epoch, UTC; ``disabled_ns`` ``None`` when
    active)."""

    id: str
    email: str
    created_ns: int
    roles: frozenset[Role] = frozenset({Role.TRADER})
    disabled_ns: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new API key: ``key`` is shown once and never stored."""

    id: str
    name: str
    prefix: str
    key: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A stored API key without its secret (``*_ns``: ns since the epoch, UTC; ``None`` when it never happened)."""

    id: str
    name: str
    prefix: str
    created_ns: int
    last_used_ns: int | None
    revoked_ns: int | None


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Who an API key belongs to (the key's id, its user)."""

    key_id: str
    user_id: str


def _user(row: object) -> User:
    return User(
        row.id,  # type: ignore[attr-defined]
        row.email,  # type: ignore[attr-defined]
        row.created_ns,  # type: ignore[attr-defined]
        parse_roles(row.roles),  # type: ignore[attr-defined]
        row.disabled_ns,  # type: ignore[attr-defined]
    )


def register(conn: Connection, email: str, password_hash: str, roles: Iterable[Role] = (Role.TRADER,)) -> User:
    """Create a user (email compared case-insensitively) with an already computed argon2 ``password_hash``
    (slow on purpose, so callers compute it off the event loop and outside the write transaction). Registration
    through the API makes traders; the ``smart-trader users`` command may give other roles.

    Raises:
        InvalidInputError: the email is already registered.
    """
    now = time.time_ns()
    user = User(str(uuid.uuid4()), email.strip().lower(), now, frozenset(roles))
    try:
        with conn.begin_nested():
            conn.execute(
                insert(users).values(
                    id=user.id,
                    email=user.email,
                    password_hash=password_hash,
                    created_ns=user.created_ns,
                    roles=format_roles(user.roles),
                    updated_ns=now,
                )
            )
    except IntegrityError:
        raise InvalidInputError(f"email {user.email} is already registered") from None
    record(conn, "user.registered", user.id, {"roles": sorted(user.roles)}, actor=user.id)
    return user


def credentials(conn: Connection, email: str) -> tuple[User, str] | None:
    """The user registered with ``email`` and their password hash, or ``None``."""
    row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    return None if row is None else (_user(row), row.password_hash)


def password_hash_of(conn: Connection, user_id: str) -> str | None:
    """The stored argon2 hash of a user's password, or ``None`` for an unknown user."""
    value = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar()
    return None if value is None else str(value)


def get_user(conn: Connection, user_id: str) -> User | None:
    """The user with id ``user_id``, or ``None``."""
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else _user(row)


def user_by_email(conn: Connection, email: str) -> User | None:
    """The user registered with ``email`` (case-insensitive), or ``None``."""
    row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    return None if row is None else _user(row)


def list_users(conn: Connection, limit: int = 100, offset: int = 0) -> list[User]:
    """Users by registration time (oldest first)."""
    q = select(users).order_by(users.c.created_ns, users.c.id).limit(limit).offset(offset)
    return [_user(r) for r in conn.execute(q)]


def update_user(
    conn: Connection,
    user_id: str,
    roles: Iterable[Role] | None = None,
    disabled: bool | None = None,
    actor: str | None = None,
) -> User:
    """Set a user's roles and/or disable (or re-enable) them. Disabling does not revoke sessions here: callers do
    (:func:`revoke_sessions`), to announce the ended ones.

    Raises:
        NotFoundError: no such user.
        InvalidInputError: an empty set of roles.

    ``actor``: who made the change (the administrator's user id; ``None``: the ``smart-trader users`` command).
    """
    now = time.time_ns()
    values: dict[str, object] = {"updated_ns": now}
    if roles is not None:
        roles = frozenset(roles)
        if not roles:
            raise InvalidInputError("a user needs at least one role (to lock a user out, disable them)")
        values["roles"] = format_roles(roles)
    if disabled is not None:
        values["disabled_ns"] = now if disabled else None
    result = conn.execute(update(users).where(users.c.id == user_id).values(**values))
    if result.rowcount == 0:
        raise NotFoundError(f"no user {user_id}")
    user = get_user(conn, user_id)
    assert user is not None
    change: dict[str, object] = {}
    if roles is not None:
        change["roles"] = sorted(user.roles)
    if disabled is not None:
        change["disabled"] = disabled
    record(conn, "user.updated", user_id, change, actor=actor)
    return user


def set_password(conn: Connection, user_id: str, password_hash: str, keep_session: str | None) -> list[str]:
    """Store a new password hash and end every session of the user but ``keep_session``; returns the ids of the
    sessions ended.

    Raises:
        NotFoundError: no such user.
    """
    now = time.time_ns()
    result = conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, password_changed_ns=now, updated_ns=now)
    )
    if result.rowcount == 0:
        raise NotFoundError(f"no user {user_id}")
    record(conn, "user.password_changed", user_id, {}, actor=user_id)
    return revoke_sessions(conn, user_id, "password changed", keep=keep_session)


# -- API keys --------------------------------------------------------------------------------


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
    record(
        conn, "api_key.created", user_id, {"key_id": issued.id, "name": name, "prefix": issued.prefix}, actor=user_id
    )
    return issued


def list_api_keys(conn: Connection, user_id: str, include_revoked: bool = False) -> list[ApiKeyInfo]:
    """A user's API keys, newest first (revoked ones only when asked)."""
    q = select(api_keys).where(api_keys.c.user_id == user_id)
    if not include_revoked:
        q = q.where(api_keys.c.revoked_ns.is_(None))
    rows = conn.execute(q.order_by(api_keys.c.created_ns.desc(), api_keys.c.id))
    return [ApiKeyInfo(r.id, r.name, r.prefix, r.created_ns, r.last_used_ns, r.revoked_ns) for r in rows]


def revoke_api_key(conn: Connection, user_id: str, key_id: str) -> ApiKeyInfo:
    """Revoke a user's API key (revoking it again changes nothing).

    Raises:
        NotFoundError: the user has no key ``key_id`` (someone else's key is not revealed).
    """
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_id}")
    revoked = row.revoked_ns
    if revoked is None:
        revoked = time.time_ns()
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_ns=revoked))
        record(conn, "api_key.revoked", user_id, {"key_id": key_id}, actor=user_id)
    return ApiKeyInfo(row.id, row.name, row.prefix, row.created_ns, row.last_used_ns, revoked)


def owner_of_api_key(conn: Connection, key: str) -> KeyOwner | None:
    """The key id and user of an unrevoked API key, or ``None``."""
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.user_id).where(
            api_keys.c.key_hash == api_key_hash(key), api_keys.c.revoked_ns.is_(None)
        )
    ).first()
    return None if row is None else KeyOwner(str(row.id), str(row.user_id))


def touch_api_key(conn: Connection, key_id: str, used_ns: int) -> None:
    """Record that a key was used at ``used_ns``."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_ns=used_ns))


# -- sessions (refresh-token families) ---------------------------------------------------------


def open_session(conn: Connection, session_id: str, user_id: str, refresh_jti: str, expires_ns: int) -> None:
    """Record a new session (a login) whose only valid refresh token is ``refresh_jti``."""
    conn.execute(
        insert(sessions).values(
            id=session_id, user_id=user_id, refresh_jti=refresh_jti, created_ns=time.time_ns(), expires_ns=expires_ns
        )
    )
    record(conn, "user.login", user_id, {"session_id": session_id}, actor=user_id)


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of presenting a refresh token: ``ok`` (rotated), ``reused`` (an earlier token of the family:
    the family is now revoked), ``revoked`` or ``unknown`` session."""

    outcome: str
    user_id: str | None = None


def rotate_refresh(conn: Connection, session_id: str, presented_jti: str, new_jti: str, expires_ns: int) -> Rotation:
    """Rotate a session's refresh token: only the latest token of the family may be used, once (OAuth 2.0
    Security Best Current Practice, RFC 9700 §4.14.2: refresh token rotation with reuse detection). Presenting an
    older one revokes the whole family: whoever holds a copy (the thief or the user) must log in again."""
    row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
    if row is None:
        return Rotation("unknown")
    if row.revoked_ns is not None:
        return Rotation("revoked", row.user_id)
    now = time.time_ns()
    result = conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.refresh_jti == presented_jti, sessions.c.revoked_ns.is_(None))
        .values(refresh_jti=new_jti, refreshed_ns=now, expires_ns=expires_ns)
    )
    if result.rowcount == 1:
        return Rotation("ok", row.user_id)
    conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_ns.is_(None))
        .values(revoked_ns=now, revoked_reason="refresh token reused")
    )
    return Rotation("reused", row.user_id)


def revoke_session(conn: Connection, session_id: str, reason: str) -> bool:
    """Revoke one session (logout); False when it was unknown or already revoked."""
    result = conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_ns.is_(None))
        .values(revoked_ns=time.time_ns(), revoked_reason=reason)
        .returning(sessions.c.user_id)
    )
    user_id = result.scalar()
    if user_id is None:
        return False
    record(conn, "user.session_revoked", str(user_id), {"session_id": session_id, "reason": reason}, actor=str(user_id))
    return True


def revoke_sessions(conn: Connection, user_id: str, reason: str, keep: str | None = None) -> list[str]:
    """Revoke every open session of a user but ``keep``; returns their ids."""
    q = select(sessions.c.id).where(sessions.c.user_id == user_id, sessions.c.revoked_ns.is_(None))
    if keep is not None:
        q = q.where(sessions.c.id != keep)
    ids = [str(r.id) for r in conn.execute(q)]
    if ids:
        conn.execute(
            update(sessions).where(sessions.c.id.in_(ids)).values(revoked_ns=time.time_ns(), revoked_reason=reason)
        )
        record(conn, "user.sessions_revoked", user_id, {"session_ids": ids, "reason": reason})
    return ids


def record(
    conn: Connection, event_type: str, user_id: str, payload: dict[str, object], actor: str | None = None
) -> None:
    """Write a user event (stream ``users``, partition key the user) to the outbox in ``conn``'s transaction, for the
    audit trail: ``event_type`` such as ``user.login``, ``api_key.created``; ``payload`` never holds a secret (no
    password, hash, token or key); ``actor`` the user id who acted (``None``: the platform or the CLI)."""
    now = time.time_ns()
    body = {"user_id": user_id, "actor": actor, **payload}
    conn.execute(
        insert(outbox), [event_row(f"users.{user_id}", event_type, body, now, stream="users", partition_key=user_id)]
    )


def revoked_since(conn: Connection, since_ns: int) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """What changed since ``since_ns`` (the cross-process backstop of the revocation events): sessions revoked
    (id, user id), API keys revoked (ids), users changed (ids: roles, disabled or password)."""
    s = [
        (str(r.id), str(r.user_id))
        for r in conn.execute(select(sessions.c.id, sessions.c.user_id).where(sessions.c.revoked_ns >= since_ns))
    ]
    k = [str(r.id) for r in conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_ns >= since_ns))]
    u = [str(r.id) for r in conn.execute(select(users.c.id).where(users.c.updated_ns >= since_ns))]
    return s, k, u
