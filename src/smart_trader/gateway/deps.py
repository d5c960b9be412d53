"""Who is calling: the ``current_user`` dependency (Bearer access JWT or ``X-API-Key``), and account access.

Each is one flat dependency that reads the headers itself: FastAPI's per-request cost grows with the number of
dependency nodes, and these run on every request. The OpenAPI document still declares both schemes
(:func:`document_security`), so ``/docs`` and API clients see how to authenticate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from smart_trader.app.platform import Platform, get_platform
from smart_trader.gateway.problems import ProblemError

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
TOKEN_URL = "/api/v1/auth/token"
PUBLIC_PATHS = {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/refresh"}


async def current_user(request: Request) -> str:
    """The caller's user id, from ``X-API-Key`` (checked first) or ``Authorization: Bearer <access JWT>``.

    Raises:
        ProblemError: 401 when no credentials are sent, or the token or key is invalid or expired.
    """
    platform: Platform = request.app.state.platform
    headers = request.headers
    api_key = headers.get("x-api-key")
    if api_key:
        user_id = await platform.user_of_api_key(api_key)
        if user_id is None:
            raise ProblemError(401, "invalid or revoked API key", "unauthorized", _CHALLENGE)
        return user_id
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        raise ProblemError(
            401, "not authenticated: send 'Authorization: Bearer <token>' or 'X-API-Key'", "unauthorized", _CHALLENGE
        )
    user_id = platform.tokens.subject(token.strip(), "access")
    if user_id is None:
        raise ProblemError(401, "invalid or expired access token", "unauthorized", _CHALLENGE)
    return user_id


async def owned_account(account_id: str, request: Request) -> str:
    """The path's ``account_id`` when it belongs to the authenticated caller (a dependency, or a plain call from a
    hot endpoint that avoids dependency resolution).

    Raises:
        ProblemError: 401 as :func:`current_user`; 404 when there is no such account or it is someone else's
            (existence is not revealed).
    """
    user_id = await current_user(request)
    platform: Platform = request.app.state.platform
    if await platform.account_owner(account_id) != user_id:
        raise ProblemError(404, f"no account {account_id}", "not-found")
    return account_id


CurrentUser = Annotated[str, Depends(current_user)]
PlatformDep = Annotated[Platform, Depends(get_platform)]
OwnedAccount = Annotated[str, Depends(owned_account)]


def document_security(app: FastAPI) -> None:
    """Declare the two credential schemes in the OpenAPI document (OAuth2 password flow with bearer tokens, and
    the ``X-API-Key`` header) and require one of them on every ``/api/v1`` operation except registration and
    token issuance."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}}},
            "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/v1/") or path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
