"""HTTP routes of administration (role ``admin``, ``gateway/access.py``): users, their roles and state, login
lockouts, and the running configuration (secrets masked)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.gateway import users
from smart_trader.gateway.access import Role
from smart_trader.gateway.auth_state import AuthChange
from smart_trader.gateway.deps import CurrentPrincipal, PlatformDep
from smart_trader.gateway.problems import ProblemError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
SECRET_MARKERS = ("secret", "token", "password", "key", "url")  # a setting whose name holds one is masked


class AdminUserOut(BaseModel):
    """A user as an administrator sees them (``*_ns``: ns since the epoch, UTC)."""

    id: str
    email: str
    created_ns: int
    roles: list[Role]
    disabled: bool
    disabled_ns: int | None


class LoginStatusOut(BaseModel):
    """Failed logins in a row and until when (seconds since the epoch, UTC) the account is locked, if it is."""

    failures: int
    locked_until_s: float | None


class AdminUserDetailOut(AdminUserOut):
    """A user with their login throttling state."""

    login: LoginStatusOut | None


class UserPatchIn(BaseModel):
    """A change of a user: the full set of ``roles`` and/or ``disabled`` (disabling ends every session and closes
    the user's WebSockets; their API keys stop working while disabled)."""

    model_config = ConfigDict(extra="forbid")
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=3)
    disabled: bool | None = None


def _out(u: users.User) -> AdminUserOut:
    return AdminUserOut(
        id=u.id, email=u.email, created_ns=u.created_ns, roles=sorted(u.roles), disabled=u.disabled_ns is not None,
        disabled_ns=u.disabled_ns,
    )  # fmt: skip


@router.get("/users", response_model=list[AdminUserOut])
async def list_users(
    who: CurrentPrincipal,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AdminUserOut]:
    """Users by registration time, paginated with ``limit``/``offset``."""
    return [_out(u) for u in await platform.read(lambda c: users.list_users(c, limit, offset))]


async def _user(platform: Any, user_id: str) -> users.User:
    user: users.User | None = await platform.read(lambda c: users.get_user(c, user_id))
    if user is None:
        raise ProblemError(404, f"no user {user_id}", "not-found")
    return user


@router.get("/users/{user_id}", response_model=AdminUserDetailOut, responses={503: {"description": "Redis down"}})
async def get_user(user_id: str, who: CurrentPrincipal, platform: PlatformDep) -> AdminUserDetailOut:
    """One user, with failed logins and lockout."""
    user = await _user(platform, user_id)
    login = None
    if platform.login_guard is not None:
        try:
            failures, locked_until = await platform.login_guard.status(user.email)
        except Exception:
            raise ProblemError(503, "the login throttling store (Redis) does not answer", "unavailable") from None
        login = LoginStatusOut(failures=failures, locked_until_s=locked_until)
    return AdminUserDetailOut(**_out(user).model_dump(), login=login)


@router.patch("/users/{user_id}", response_model=AdminUserOut, responses={409: {"description": "own admin role"}})
async def update_user(user_id: str, body: UserPatchIn, who: CurrentPrincipal, platform: PlatformDep) -> AdminUserOut:
    """Set a user's roles or disable/enable them; effective at once in every process. 409 when an administrator
    would remove their own ``admin`` role or disable themselves (ask another administrator, or use the
    ``smart-trader users`` command on the server)."""
    if user_id == who.user_id and (body.disabled or (body.roles is not None and Role.ADMIN not in body.roles)):
        raise ProblemError(409, "an administrator cannot disable themselves or drop their own admin role", "conflict")
    roles = None if body.roles is None else frozenset(body.roles)

    def change(conn: Any) -> tuple[users.User, list[str]]:
        ended = users.revoke_sessions(conn, user_id, "user disabled") if body.disabled else []
        return users.update_user(conn, user_id, roles, body.disabled, actor=who.user_id), ended

    try:
        user, ended = await platform.writer.run(change)
    except NotFoundError as exc:
        raise ProblemError(404, str(exc), "not-found") from None
    except InvalidInputError as exc:
        raise ProblemError(422, str(exc), "invalid-user-change") from None
    platform.auth.publish(AuthChange(user_id, tuple(ended), user_changed=True))
    return _out(user)


@router.delete("/users/{user_id}/lockout", status_code=204, responses={503: {"description": "Redis down"}})
async def lift_lockout(user_id: str, who: CurrentPrincipal, platform: PlatformDep) -> Response:
    """Lift a login lockout and the backoff of a user's failed logins (the per-IP backoff stays)."""
    user = await _user(platform, user_id)
    if platform.login_guard is not None:
        try:
            await platform.login_guard.lift(user.email)
        except Exception:
            raise ProblemError(503, "the login throttling store (Redis) does not answer", "unavailable") from None
    await platform.writer.run(lambda c: users.record(c, "user.lockout_lifted", user_id, {}, actor=who.user_id))
    return Response(status_code=204)


@router.get("/config")
async def config(who: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """The running configuration (environment variables' values; every setting whose name says secret, token,
    password, key or URL masked)."""
    values = platform.settings.model_dump(mode="json")
    for name, value in values.items():
        if isinstance(value, str) and value and any(m in name for m in SECRET_MARKERS):  # a new secret is masked too
            values[name] = "***"
    return values
