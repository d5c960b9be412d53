"""Who is calling and may they: the ``principal`` / ``current_user`` dependencies (``X-API-Key`` or a Bearer access
JWT, checked against the route's rule in ``gateway/access.py``), and account access.

Each is one flat dependency that reads the headers itself: FastAPI's per-request cost grows with the number of
dependency nodes, and these run on every request. The OpenAPI document still declares both schemes
(``gateway/openapi.py``), so ``/docs`` and API clients see how to authenticate.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smart_trader.app.platform import Platform, get_platform
from smart_trader.gateway.access import Principal, Rule, rule_for
from smart_trader.gateway.problems import ProblemError

CHALLENGE = {"WWW-Authenticate": "Bearer"}  # RFC 6750 §3: the scheme a 401 expects


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, "unauthorized", CHALLENGE)


async def authenticate(platform: Platform, api_key: str | None, bearer: str | None) -> Principal:
    """The principal behind an API key (checked first) or an access JWT.

    Raises:
        ProblemError: 401 when neither is given, the key is unknown or revoked, the token is invalid, expired or of
            an ended session, or the user no longer exists or is disabled.
    """
    auth = platform.auth
    if api_key:
        owner = await auth.key_owner(api_key)
        if owner is None:
            raise _unauthorized("invalid or revoked API key")
        key_id, user_id = owner
        user = await auth.user(user_id)
        if user is None or user.disabled:
            raise _unauthorized("the API key's user is disabled or no longer exists")
        platform.touch_api_key(key_id)
        return Principal(user_id, user.roles, key_id=key_id)
    if not bearer:
        raise _unauthorized("not authenticated: send 'Authorization: Bearer <token>' or 'X-API-Key'")
    claims = platform.tokens.decode(bearer, "access")
    if claims is None:
        raise _unauthorized("invalid or expired access token")
    if auth.session_revoked(claims.sid):
        raise _unauthorized("this session has ended (logout, password change or revocation): log in again")
    user = await auth.user(claims.sub)
    if user is None or user.disabled:
        raise _unauthorized("the token's user is disabled or no longer exists")
    return Principal(claims.sub, user.roles, session_id=claims.sid, expires_s=claims.exp)


def request_rule(request: Request) -> Rule:
    """The access rule of the request's route (:data:`~smart_trader.gateway.access.ROUTES`).

    Raises:
        ProblemError: 403 for a route without a rule (fail closed; :func:`~smart_trader.gateway.access.check_routes`
            keeps that from shipping).
    """
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if rule is None:
        raise ProblemError(403, "this operation has no access rule", "forbidden")
    return rule


async def principal(request: Request) -> Principal:
    """The authenticated caller, allowed by the route's rule: credentials checked (:func:`authenticate`), then the
    role, then the per-user rate limit of the route's class. Kept in ``request.state.principal``.

    Raises:
        ProblemError: 401 (see :func:`authenticate`); 403 when none of the caller's roles may use the route; 429 over
            the caller's rate limit.
    """
    state = request.scope.setdefault("state", {})
    known: Principal | None = state.get("principal")
    if known is not None:
        return known
    platform: Platform = request.app.state.platform
    rule = request_rule(request)
    headers = request.headers
    scheme, _, token = headers.get("authorization", "").partition(" ")
    who = await authenticate(platform, headers.get("x-api-key"), token.strip() if scheme.lower() == "bearer" else None)
    if not who.has(rule.allowed):
        needed = " or ".join(sorted(r.value for r in rule.allowed))
        raise ProblemError(403, f"this operation needs the role {needed}", "forbidden")
    if platform.limiter is not None:
        await platform.limiter.check_principal(request, who, rule.rate)
    state["principal"] = who
    return who


async def current_user(request: Request) -> str:
    """The caller's user id (see :func:`principal`).

    Raises:
        ProblemError: 401, 403 or 429 as :func:`principal`.
    """
    return (await principal(request)).user_id


async def account_access(account_id: str, request: Request) -> str:
    """The path's ``account_id`` when the caller may use it under the route's rule: their own account, or any
    account for a role the rule lets reach every account (a risk manager's reads and controls). A dependency, or a
    plain call from a hot endpoint that avoids dependency resolution.

    Raises:
        ProblemError: 401/403/429 as :func:`principal`; 404 when there is no such account or the caller may not
            see it (existence is not revealed).
    """
    who = await principal(request)
    platform: Platform = request.app.state.platform
    owner = await platform.account_owner(account_id)
    if owner is None or (owner != who.user_id and not who.has(request_rule(request).any_account)):
        raise ProblemError(404, f"no account {account_id}", "not-found")
    return account_id


owned_account = account_access  # the name the routes were written with

CurrentUser = Annotated[str, Depends(current_user)]
CurrentPrincipal = Annotated[Principal, Depends(principal)]
PlatformDep = Annotated[Platform, Depends(get_platform)]
OwnedAccount = Annotated[str, Depends(account_access)]
