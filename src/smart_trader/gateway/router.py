"""HTTP routes of the gateway: registration, tokens (OAuth2 password flow), refresh with rotation, logout, the
caller's identity, password change, API keys (create, list, revoke).

Sessions: a login opens a session (a refresh-token family, ``sessions`` table); its tokens carry its id (``sid``).
Each refresh returns a new refresh token and invalidates the one presented; presenting an invalidated one again
revokes the family (RFC 9700 §4.14.2). Logout, a password change (other sessions) and disabling a user revoke
sessions; the access tokens of a revoked session stop working at once in every process (``gateway/auth_state.py``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from smart_trader.app.platform import Platform
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.gateway import users
from smart_trader.gateway.auth_state import AuthChange
from smart_trader.gateway.deps import CHALLENGE, CurrentPrincipal, CurrentUser, PlatformDep
from smart_trader.gateway.hashing import PasswordHashing
from smart_trader.gateway.passwords import MAX_LENGTH, check_password
from smart_trader.gateway.problems import ProblemError
from smart_trader.gateway.security import TokenPair
from smart_trader.ops import metrics

router = APIRouter(prefix="/api/v1", tags=["auth"])
NS = 1_000_000_000
BUSY: dict[int | str, dict[str, Any]] = {503: {"description": "the password-hashing pool is saturated (Retry-After)"}}


class RegisterIn(BaseModel):
    """Registration: an email and a password (10 to 128 characters, not easy to guess: see ``gateway/passwords.py``)."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class UserOut(BaseModel):
    """A user (``created_ns``: ns since the epoch, UTC) and their roles."""

    id: str
    email: str
    created_ns: int
    roles: list[str]


class MeOut(UserOut):
    """The caller: the user, and the credential of this request (``session_id`` for a token, ``api_key_id`` for a
    key; ``expires_s``: when the access token expires, seconds since the epoch, UTC)."""

    session_id: str | None
    api_key_id: str | None
    expires_s: int | None


class TokenOut(BaseModel):
    """OAuth2 token response (RFC 6749 §5.1) plus the refresh token; ``expires_in`` in seconds."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshIn(BaseModel):
    """A refresh token to exchange for a new pair (each refresh token works once)."""

    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordIn(BaseModel):
    """A password change: the current password and the new one."""

    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_LENGTH)


class ApiKeyIn(BaseModel):
    """A name for the new API key (to tell keys apart)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="bot", min_length=1, max_length=200)


class ApiKeyOut(BaseModel):
    """A new API key: ``key`` is shown only in this response; send it as ``X-API-Key``."""

    id: str
    name: str
    prefix: str
    key: str
    created_ns: int


class ApiKeyInfoOut(BaseModel):
    """An API key without its secret: ``prefix`` (its first characters), ``created_ns``, ``last_used_ns`` (to the
    minute) and ``revoked_ns`` (ns since the epoch, UTC; ``null`` when it never happened)."""

    id: str
    name: str
    prefix: str
    created_ns: int
    last_used_ns: int | None
    revoked_ns: int | None


def _user_out(user: users.User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_ns=user.created_ns, roles=sorted(r.value for r in user.roles))


def _key_out(k: users.ApiKeyInfo) -> ApiKeyInfoOut:
    return ApiKeyInfoOut(
        id=k.id, name=k.name, prefix=k.prefix, created_ns=k.created_ns, last_used_ns=k.last_used_ns,
        revoked_ns=k.revoked_ns,
    )  # fmt: skip


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _pool(platform: Platform) -> PasswordHashing:
    """The password-hashing pool (``gateway/hashing.py``): never the threads that read the database."""
    assert platform.hashing is not None, "the app factory creates the hashing pool"
    return platform.hashing


async def _policy(platform: Platform, password: str, email: str) -> None:
    """The password policy (zxcvbn: milliseconds of CPU, tens for long passwords) on the hashing pool, off the event
    loop and bounded like hashing."""
    try:
        await _pool(platform).run(check_password, password, email, platform.settings.password_min_score)
    except InvalidInputError as exc:
        raise ProblemError(422, str(exc), "weak-password") from None


async def _open_session(platform: Platform, user_id: str) -> TokenPair:
    session_id = str(uuid.uuid4())
    pair = platform.tokens.issue(user_id, session_id)
    await platform.writer.run(
        lambda c: users.open_session(c, session_id, user_id, pair.refresh_jti, pair.refresh_expires_s * NS)
    )
    return pair


@router.post(
    "/auth/register", status_code=201, response_model=UserOut, responses={409: {"description": "taken"}, **BUSY}
)
async def register(body: RegisterIn, platform: PlatformDep) -> UserOut:
    """Create a user with the ``trader`` role. 409 when the email is taken; 422 when the password is too short or
    too easy to guess (the detail says why)."""
    await _policy(platform, body.password, str(body.email))
    password_hash = await _pool(platform).hash(body.password)
    try:
        user = await platform.writer.run(lambda c: users.register(c, body.email, password_hash))
    except InvalidInputError as exc:
        raise ProblemError(409, str(exc), "email-taken") from None
    return _user_out(user)


@router.post(
    "/auth/token", response_model=TokenOut, responses={401: {"description": "wrong email or password"}, **BUSY}
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, platform: PlatformDep
) -> TokenOut:
    """OAuth2 password grant: form fields ``username`` (the email) and ``password``; opens a session. 401 on wrong
    credentials or a disabled user (the same answer: a disabled user's password is not confirmed); 429 while failed
    attempts back off or the account is temporarily locked (``Retry-After`` says when to try again)."""
    email, ip = form.username.strip().lower(), _client_ip(request)
    guard = platform.login_guard
    if guard is not None:
        await guard.before(email, ip)
    found = await platform.read(lambda c: users.credentials(c, email))
    # an unknown email is checked against a real hash all the same: the time does not tell which emails exist
    ok = await _pool(platform).verify(found[1] if found is not None else None, form.password)
    if not ok or found is None:
        metrics.LOGIN_FAILURES.labels("credentials").inc()
        if guard is not None:
            await guard.failed(email, ip)
        raise ProblemError(401, "wrong email or password", "unauthorized", CHALLENGE)
    user = found[0]
    if user.disabled_ns is not None:  # the same answer as a wrong password: a guess is not confirmed
        metrics.LOGIN_FAILURES.labels("disabled").inc()
        raise ProblemError(401, "wrong email or password", "unauthorized", CHALLENGE)
    if guard is not None:
        await guard.succeeded(email, ip)
    return _token_out(await _open_session(platform, user.id))


@router.post("/auth/refresh", response_model=TokenOut, responses={401: {"description": "invalid or used token"}})
async def refresh(body: RefreshIn, platform: PlatformDep) -> TokenOut:
    """Exchange a refresh token for a new access and refresh token; the one presented stops working. 401 when it is
    invalid, expired, of an ended session, or was already used — reuse revokes the whole session (a copy may have
    been stolen): log in again."""
    claims = platform.tokens.decode(body.refresh_token, "refresh")
    if claims is None:
        raise ProblemError(401, "invalid or expired refresh token", "unauthorized", CHALLENGE)
    pair = platform.tokens.issue(claims.sub, claims.sid)
    expires_ns = pair.refresh_expires_s * NS
    rotation = await platform.writer.run(
        lambda c: users.rotate_refresh(c, claims.sid, claims.jti, pair.refresh_jti, expires_ns)
    )
    if rotation.outcome == "reused":
        platform.auth.publish(AuthChange(claims.sub, (claims.sid,)))
        raise ProblemError(
            401,
            "this refresh token was already used: the session is revoked (a copy may have been stolen); log in again",
            "refresh-token-reused",
            CHALLENGE,
        )
    if rotation.outcome != "ok":
        raise ProblemError(401, "this session has ended: log in again", "unauthorized", CHALLENGE)
    state = await platform.auth.user(claims.sub)
    if state is None or state.disabled:
        raise ProblemError(401, "the token's user is disabled or no longer exists", "unauthorized", CHALLENGE)
    return _token_out(pair)


@router.post("/auth/logout", status_code=204, responses={422: {"description": "an API key has no session"}})
async def logout(who: CurrentPrincipal, platform: PlatformDep) -> Response:
    """End the session of the access token sent (its access and refresh tokens stop working at once, everywhere).
    422 with an API key: keys are revoked with ``DELETE /api/v1/api-keys/{key_id}``."""
    sid = who.session_id
    if sid is None:
        raise ProblemError(422, "an API key has no session: revoke it with DELETE /api/v1/api-keys/{key_id}")
    await platform.writer.run(lambda c: users.revoke_session(c, sid, "logout"))
    platform.auth.publish(AuthChange(who.user_id, (sid,)))
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeOut)
async def me(who: CurrentPrincipal, platform: PlatformDep) -> MeOut:
    """The caller: user, roles, and the credential used."""
    user = await platform.read(lambda c: users.get_user(c, who.user_id))
    if user is None:
        raise ProblemError(401, "the token's user no longer exists", "unauthorized", CHALLENGE)
    return MeOut(
        **_user_out(user).model_dump(), session_id=who.session_id, api_key_id=who.key_id, expires_s=who.expires_s
    )


@router.post("/auth/password", status_code=204, responses={401: {"description": "wrong current password"}, **BUSY})
async def change_password(body: PasswordIn, who: CurrentPrincipal, request: Request, platform: PlatformDep) -> Response:
    """Change the caller's password. Every other session ends (their tokens stop working at once); the session of
    this request goes on (all sessions end when the request was made with an API key; API keys stay valid). 401
    when ``current_password`` is wrong (counted as a failed login of the account: 429 while backing off); 422 when
    the new password is too weak."""
    user_id = who.user_id
    user = await platform.read(lambda c: users.get_user(c, user_id))
    stored = await platform.read(lambda c: users.password_hash_of(c, user_id))
    if user is None or stored is None:
        raise ProblemError(401, "the token's user no longer exists", "unauthorized", CHALLENGE)
    # a wrong current password is a failed login of the account: a stolen token or key cannot guess it freely
    guard, ip = platform.login_guard, _client_ip(request)
    if guard is not None:
        await guard.before(user.email, ip)
    if not await _pool(platform).verify(stored, body.current_password):
        metrics.LOGIN_FAILURES.labels("current-password").inc()
        if guard is not None:
            await guard.failed(user.email, ip)
        raise ProblemError(401, "the current password is wrong", "unauthorized", CHALLENGE)
    await _policy(platform, body.new_password, user.email)
    if body.new_password == body.current_password:
        raise ProblemError(422, "the new password is the current one", "weak-password")
    new_hash = await _pool(platform).hash(body.new_password)
    ended = await platform.writer.run(lambda c: users.set_password(c, user_id, new_hash, who.session_id))
    platform.auth.publish(AuthChange(user_id, tuple(ended)))
    return Response(status_code=204)


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut, tags=["auth"])
async def create_api_key(user_id: CurrentUser, platform: PlatformDep, body: ApiKeyIn | None = None) -> ApiKeyOut:
    """Create an API key for bots (send it as ``X-API-Key``); the key is shown once."""
    name = body.name if body else "bot"
    issued = await platform.writer.run(lambda c: users.create_api_key(c, user_id, name))
    return ApiKeyOut(id=issued.id, name=issued.name, prefix=issued.prefix, key=issued.key, created_ns=issued.created_ns)


@router.get("/api-keys", response_model=list[ApiKeyInfoOut], tags=["auth"])
async def list_api_keys(
    user_id: CurrentUser,
    platform: PlatformDep,
    include_revoked: Annotated[bool, Query(description="also list revoked keys")] = False,
) -> list[ApiKeyInfoOut]:
    """The caller's API keys, newest first (never the keys themselves: ``prefix`` tells them apart)."""
    keys = await platform.read(lambda c: users.list_api_keys(c, user_id, include_revoked))
    return [_key_out(k) for k in keys]


@router.delete("/api-keys/{key_id}", response_model=ApiKeyInfoOut, tags=["auth"])
async def revoke_api_key(key_id: str, user_id: CurrentUser, platform: PlatformDep) -> ApiKeyInfoOut:
    """Revoke one of the caller's API keys: it stops working at once in every process, and WebSockets opened with it
    are closed (code 1008). 404 for a key that is not the caller's."""
    try:
        info = await platform.writer.run(lambda c: users.revoke_api_key(c, user_id, key_id))
    except NotFoundError as exc:
        raise ProblemError(404, str(exc), "not-found") from None
    platform.auth.publish(AuthChange(user_id, key_id=key_id))
    return _key_out(info)
