"""HTTP routes of the gateway: registration, tokens (OAuth2 password flow), refresh, API keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway import users
from smart_trader.gateway.deps import CurrentUser, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.gateway.security import hash_password

router = APIRouter(prefix="/api/v1", tags=["auth"])


class RegisterIn(BaseModel):
    """Registration: an email and a password of 8 to 128 characters."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)


class UserOut(BaseModel):
    """A user (``created_ns``: ns since the epoch, UTC)."""

    id: str
    email: str
    created_ns: int


class TokenOut(BaseModel):
    """OAuth2 token response (RFC 6749 §5.1) plus the refresh token; ``expires_in`` in seconds."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshIn(BaseModel):
    """A refresh token to exchange for a new pair."""

    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=4096)


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


@router.post("/auth/register", status_code=201, response_model=UserOut)
async def register(body: RegisterIn, platform: PlatformDep) -> UserOut:
    """Create a user. 409 when the email is taken."""
    password_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        user = await platform.writer.run(lambda c: users.register(c, body.email, password_hash))
    except InvalidInputError as exc:
        raise ProblemError(409, str(exc), "email-taken") from None
    return UserOut(id=user.id, email=user.email, created_ns=user.created_ns)


@router.post("/auth/token", response_model=TokenOut)
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], platform: PlatformDep) -> TokenOut:
    """OAuth2 password grant: form fields ``username`` (the email) and ``password``. 401 on wrong credentials."""
    user = await platform.read(lambda c: users.authenticate(c, form.username, form.password))
    if user is None:
        raise ProblemError(401, "wrong email or password", "unauthorized", {"WWW-Authenticate": "Bearer"})
    pair = platform.tokens.issue(user.id)
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/auth/refresh", response_model=TokenOut)
async def refresh(body: RefreshIn, platform: PlatformDep) -> TokenOut:
    """Exchange a valid refresh token for a new access and refresh token. 401 when invalid or expired."""
    user_id = platform.tokens.subject(body.refresh_token, "refresh")
    if user_id is None or await platform.read(lambda c: users.get_user(c, user_id)) is None:
        raise ProblemError(401, "invalid or expired refresh token", "unauthorized", {"WWW-Authenticate": "Bearer"})
    pair = platform.tokens.issue(user_id)
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut, tags=["auth"])
async def create_api_key(user_id: CurrentUser, platform: PlatformDep, body: ApiKeyIn | None = None) -> ApiKeyOut:
    """Create an API key for bots (send it as ``X-API-Key``); the key is shown once."""
    name = body.name if body else "bot"
    issued = await platform.writer.run(lambda c: users.create_api_key(c, user_id, name))
    return ApiKeyOut(id=issued.id, name=issued.name, prefix=issued.prefix, key=issued.key, created_ns=issued.created_ns)
