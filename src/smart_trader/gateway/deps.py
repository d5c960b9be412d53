"""Who is calling: the ``current_user`` dependency (Bearer access JWT or ``X-API-Key``), and account access."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from smart_trader.app.platform import Platform, get_platform
from smart_trader.gateway.problems import ProblemError

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def current_user(
    platform: Annotated[Platform, Depends(get_platform)],
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> str:
    """The caller's user id.

    Raises:
        ProblemError: 401 when no credentials are sent, or the token or key is invalid or expired.
    """
    if api_key:
        user_id = await platform.user_of_api_key(api_key)
        if user_id is None:
            raise ProblemError(401, "invalid or revoked API key", "unauthorized", _CHALLENGE)
        return user_id
    if not token:
        raise ProblemError(
            401, "not authenticated: send 'Authorization: Bearer <token>' or 'X-API-Key'", "unauthorized", _CHALLENGE
        )
    user_id = platform.tokens.subject(token, "access")
    if user_id is None:
        raise ProblemError(401, "invalid or expired access token", "unauthorized", _CHALLENGE)
    return user_id


CurrentUser = Annotated[str, Depends(current_user)]
PlatformDep = Annotated[Platform, Depends(get_platform)]


async def owned_account(account_id: str, user_id: CurrentUser, platform: PlatformDep) -> str:
    """The path's ``account_id`` when it belongs to the caller.

    Raises:
        ProblemError: 404 when there is no such account or it is someone else's (existence is not revealed).
    """
    if await platform.account_owner(account_id) != user_id:
        raise ProblemError(404, f"no account {account_id}", "not-found")
    return account_id


OwnedAccount = Annotated[str, Depends(owned_account)]
