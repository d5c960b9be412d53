"""``smart-trader users``: user administration on the server, straight against the database of ``DATABASE_URL``
(or the embedded SQLite file) — how the first administrator is made, since registration through the API only makes
traders.

Changes reach running servers within seconds (they re-read what changed every 5 s), at once when ``REDIS_URL`` is
set (the same revocation event the admin API publishes).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from smart_trader.core.errors import InvalidInputError, NotFoundError

from .common import cli_errors, console
from .common import settings as load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from smart_trader.gateway.users import User

app = typer.Typer(help="Users and roles (run on the server: works on the database directly).", no_args_is_help=True)
RoleOpt = Annotated[list[str], typer.Option("--role", help="trader, risk_manager or admin (repeatable)")]


def _engine() -> Engine:
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import upgrade_to_head

    engine = make_engine(load_settings().resolved_database_url)
    upgrade_to_head(engine)
    return engine


def _roles(names: list[str]) -> frozenset[object]:
    from smart_trader.gateway.access import Role

    known = {r.value: r for r in Role}
    bad = [n for n in names if n not in known]
    if bad:
        raise InvalidInputError(f"unknown role {', '.join(bad)}: expected {', '.join(known)}")
    return frozenset(known[n] for n in names)


def _valid_email(email: str) -> str:
    """The email as the API's registration would accept it (``EmailStr``: email-validator, no DNS lookup).

    Raises:
        InvalidInputError: not an email address.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInputError(f"invalid email {email.strip()!r}: {exc}") from None


def _find(engine: Engine, email: str) -> User:
    from smart_trader.gateway import users

    with engine.connect() as conn:
        user = users.user_by_email(conn, email)
    if user is None:
        raise NotFoundError(f"no user {email.strip().lower()}")
    return user


def _announce(user_id: str, sessions: list[str], user_changed: bool = True) -> None:
    """Publish the revocation event to running servers when they share a Redis (else they see it within 5 s)."""
    settings = load_settings()
    if not settings.redis_url:
        return
    import redis

    from smart_trader.gateway.auth_state import AUTH_TOPIC, AuthChange
    from smart_trader.gateway.redis_bus import DEFAULT_PREFIX

    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.publish(
            DEFAULT_PREFIX + AUTH_TOPIC, AuthChange(user_id, tuple(sessions), user_changed=user_changed).to_json()
        )
    finally:
        client.close()


def _print(user: User) -> None:
    roles = ", ".join(sorted(str(r) for r in user.roles))
    state = "disabled" if user.disabled_ns is not None else "active"
    console.print(f"{user.email}  id {user.id}  roles {roles}  {state}", highlight=False)


@app.command()
def create(
    email: Annotated[str, typer.Argument(help="the user's email")],
    role: RoleOpt = ["admin"],  # noqa: B006 (Typer needs a list default)
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create a user with the given roles (default: admin). The password is asked for (twice), or read from stdin."""
    with cli_errors():
        from smart_trader.gateway import users
        from smart_trader.gateway.passwords import check_password
        from smart_trader.gateway.security import hash_password

        roles = _roles(role)
        email = _valid_email(email)
        settings = load_settings()
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        check_password(password, email, settings.password_min_score)
        engine = _engine()
        password_hash = hash_password(password)
        with engine.begin() as conn:
            user = users.register(conn, email, password_hash, roles)  # type: ignore[arg-type]
        _print(user)


@app.command()
def grant(email: str, role: Annotated[str, typer.Argument(help="trader, risk_manager or admin")]) -> None:
    """Give a user one more role."""
    _change_roles(email, role, add=True)


@app.command()
def revoke(email: str, role: Annotated[str, typer.Argument(help="trader, risk_manager or admin")]) -> None:
    """Take a role from a user (a user keeps at least one)."""
    _change_roles(email, role, add=False)


def _change_roles(email: str, role: str, add: bool) -> None:
    with cli_errors():
        from smart_trader.gateway import users

        (changed,) = _roles([role])
        engine = _engine()
        user = _find(engine, email)
        roles = user.roles | {changed} if add else user.roles - {changed}
        with engine.begin() as conn:
            user = users.update_user(conn, user.id, roles)  # type: ignore[arg-type]
        _announce(user.id, [])
        _print(user)


@app.command()
def disable(email: str) -> None:
    """Disable a user: every credential (tokens, API keys) stops working and their WebSockets close."""
    _set_disabled(email, True)


@app.command()
def enable(email: str) -> None:
    """Enable a disabled user again (they log in anew; their API keys work again)."""
    _set_disabled(email, False)


def _set_disabled(email: str, disabled: bool) -> None:
    with cli_errors():
        from smart_trader.gateway import users

        engine = _engine()
        user = _find(engine, email)
        with engine.begin() as conn:
            ended = users.revoke_sessions(conn, user.id, "user disabled") if disabled else []
            user = users.update_user(conn, user.id, disabled=disabled)
        _announce(user.id, ended)
        _print(user)


@app.command("list")
def list_users(limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000) -> None:
    """Users, oldest first, with their roles and state."""
    with cli_errors():
        from smart_trader.gateway import users

        engine = _engine()
        with engine.connect() as conn:
            for user in users.list_users(conn, limit):
                _print(user)
