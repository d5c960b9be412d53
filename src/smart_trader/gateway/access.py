"""Who may do what: roles, the authenticated caller (:class:`Principal`), and the one declarative table of access
rules every HTTP route and WebSocket channel is checked against.

Roles (role-based access control, least privilege; a user holds one or more):

- ``trader``: trades and reads their own accounts only (registration makes traders);
- ``risk_manager``: reads every account's orders, positions, fills, equity and risk; halts and resumes accounts and
  sets their limits; does not trade;
- ``admin``: users, roles, lockouts and configuration; reads no account it does not own.

:data:`ROUTES` maps ``(method, path template)`` to a :class:`Rule`; :func:`rule_for` finds the rule of a request, and
:func:`~smart_trader.gateway.deps.current_user` / :func:`~smart_trader.gateway.deps.account_access` enforce it. A route
missing from the table is refused when the application is built (:func:`check_routes`), and the access tests are
generated from this table, so a new route cannot ship without a rule. :data:`WS_CHANNELS` does the same for the
WebSocket's channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from starlette.routing import BaseRoute, Mount, WebSocketRoute


class Role(StrEnum):
    """A role a user may hold (see the module docstring)."""

    TRADER = "trader"
    RISK_MANAGER = "risk_manager"
    ADMIN = "admin"


RateClass = Literal["auth", "orders", "reads", "ws", "webhooks", "ops"]
"""The rate-limit class of a route (``gateway/ratelimit.py``): authentication, order entry, reads, WebSocket
connects, payment providers' webhooks (per address), operational endpoints (not limited)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request or WebSocket.

    Attributes:
        user_id: the user's id.
        roles: the roles the user holds now.
        key_id: the API key used, or ``None`` for a token.
        session_id: the session (``sid`` claim: refresh-token family) of an access token, or ``None`` for a key.
        expires_s: when the credential stops working (access token ``exp``, seconds since the epoch, UTC), or
            ``None`` (API keys do not expire; they are revoked).
    """

    user_id: str
    roles: frozenset[Role]
    key_id: str | None = None
    session_id: str | None = None
    expires_s: int | None = None

    def has(self, roles: Iterable[Role]) -> bool:
        """True when the principal holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def rate_key(self) -> str:
        """What per-user rate limits count against: the user, whichever credential (token or any of their API keys)
        is used — more keys do not buy more requests."""
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Rule:
    """Access to one route or channel.

    Attributes:
        roles: roles allowed. Empty with ``public``: no credentials needed.
        account: the path (or the channel request) names an account: a caller holding a role of ``roles`` reaches
            only accounts they own; one holding a role of ``any_account`` reaches every account.
        any_account: roles that reach every account (risk managers' reads and controls).
        public: no credentials (registration, login, health).
        rate: the route's rate-limit class.
        own_resource: the path names a resource of the caller (an API key, a notification, a webhook endpoint):
            someone else's is 404.
    """

    roles: frozenset[Role] = frozenset()
    account: bool = False
    any_account: frozenset[Role] = frozenset()
    public: bool = False
    rate: RateClass = "reads"
    own_resource: bool = False

    @property
    def allowed(self) -> frozenset[Role]:
        """Every role that may call the route at all (others get 403)."""
        return self.roles | self.any_account


ALL_ROLES = frozenset(Role)
TRADER = frozenset({Role.TRADER})
RISK = frozenset({Role.RISK_MANAGER})
ADMIN = frozenset({Role.ADMIN})

_PUBLIC_AUTH = Rule(public=True, rate="auth")
_PUBLIC_OPS = Rule(public=True, rate="ops")
_ANY_USER = Rule(roles=ALL_ROLES)
_OWN_ACCOUNT_READ = Rule(roles=TRADER, account=True, any_account=RISK)
_OWN_ACCOUNT_TRADE = Rule(roles=TRADER, account=True, rate="orders")
_RISK_CONTROL = Rule(account=True, any_account=RISK, rate="orders")
_ADMIN = Rule(roles=ADMIN)

V1 = "/api/v1"
ROUTES: dict[tuple[str, str], Rule] = {
    # gateway: credentials and sessions
    ("POST", f"{V1}/auth/register"): _PUBLIC_AUTH,
    ("POST", f"{V1}/auth/token"): _PUBLIC_AUTH,
    ("POST", f"{V1}/auth/refresh"): _PUBLIC_AUTH,
    ("POST", f"{V1}/auth/logout"): Rule(roles=ALL_ROLES, rate="auth"),
    ("GET", f"{V1}/auth/me"): _ANY_USER,
    ("POST", f"{V1}/auth/password"): Rule(roles=ALL_ROLES, rate="auth"),
    ("POST", f"{V1}/api-keys"): Rule(roles=ALL_ROLES, rate="auth"),
    ("GET", f"{V1}/api-keys"): _ANY_USER,
    ("DELETE", f"{V1}/api-keys/{{key_id}}"): Rule(roles=ALL_ROLES, rate="auth", own_resource=True),
    # portfolio
    ("POST", f"{V1}/accounts"): Rule(roles=TRADER, rate="orders"),
    ("GET", f"{V1}/accounts"): Rule(roles=TRADER),
    ("GET", f"{V1}/accounts/{{account_id}}"): _OWN_ACCOUNT_READ,
    ("GET", f"{V1}/accounts/{{account_id}}/positions"): _OWN_ACCOUNT_READ,
    ("GET", f"{V1}/accounts/{{account_id}}/fills"): _OWN_ACCOUNT_READ,
    ("GET", f"{V1}/accounts/{{account_id}}/equity"): _OWN_ACCOUNT_READ,
    # execution
    ("POST", f"{V1}/accounts/{{account_id}}/orders"): _OWN_ACCOUNT_TRADE,
    ("GET", f"{V1}/accounts/{{account_id}}/orders"): _OWN_ACCOUNT_READ,
    ("GET", f"{V1}/accounts/{{account_id}}/orders/{{order_id}}"): _OWN_ACCOUNT_READ,
    ("DELETE", f"{V1}/accounts/{{account_id}}/orders/{{order_id}}"): _OWN_ACCOUNT_TRADE,
    # risk
    ("GET", f"{V1}/accounts/{{account_id}}/limits"): _OWN_ACCOUNT_READ,
    ("PUT", f"{V1}/accounts/{{account_id}}/limits"): _RISK_CONTROL,
    ("POST", f"{V1}/accounts/{{account_id}}/halt"): _RISK_CONTROL,
    ("POST", f"{V1}/accounts/{{account_id}}/resume"): _RISK_CONTROL,
    ("GET", f"{V1}/risk/accounts"): Rule(roles=RISK),
    ("GET", f"{V1}/risk/instrument-halts"): Rule(roles=RISK),
    ("POST", f"{V1}/risk/instrument-halts"): Rule(roles=RISK, rate="orders"),
    ("POST", f"{V1}/risk/instrument-halts/resume"): Rule(roles=RISK, rate="orders"),
    ("GET", f"{V1}/accounts/{{account_id}}/risk"): _OWN_ACCOUNT_READ,
    # challenges (a challenge id names the caller's own challenge; risk managers read every one)
    ("GET", f"{V1}/challenges/programs"): _ANY_USER,
    ("POST", f"{V1}/challenges/programs"): Rule(roles=RISK | ADMIN, rate="orders"),
    ("POST", f"{V1}/challenges"): Rule(roles=TRADER, rate="orders"),
    ("GET", f"{V1}/challenges"): Rule(roles=TRADER),
    ("GET", f"{V1}/challenges/{{challenge_id}}"): Rule(roles=TRADER | RISK),
    ("GET", f"{V1}/challenges/{{challenge_id}}/events"): Rule(roles=TRADER | RISK),
    # analytics: leaderboards for every signed-in user (public names only), an account's performance for its owner
    ("GET", f"{V1}/leaderboards"): _ANY_USER,
    ("GET", f"{V1}/accounts/{{account_id}}/performance"): _OWN_ACCOUNT_READ,
    # notifications: the caller's own inbox, e-mail choices and webhook endpoints (someone else's → 404)
    ("GET", f"{V1}/notifications"): _ANY_USER,
    ("POST", f"{V1}/notifications/{{notification_id}}/read"): Rule(roles=ALL_ROLES, own_resource=True),
    ("GET", f"{V1}/notifications/preferences"): _ANY_USER,
    ("PUT", f"{V1}/notifications/preferences"): _ANY_USER,
    ("POST", f"{V1}/webhook-endpoints"): Rule(roles=ALL_ROLES, rate="auth"),
    ("GET", f"{V1}/webhook-endpoints"): _ANY_USER,
    ("DELETE", f"{V1}/webhook-endpoints/{{endpoint_id}}"): Rule(roles=ALL_ROLES, rate="auth", own_resource=True),
    # payments: providers' webhooks (public: the provider's signature is the credential) and grants by hand
    ("POST", f"{V1}/webhooks/stripe"): Rule(public=True, rate="webhooks"),
    ("POST", f"{V1}/webhooks/paypal"): Rule(public=True, rate="webhooks"),
    ("POST", f"{V1}/admin/challenges/grants"): Rule(roles=ADMIN, rate="orders"),
    # market data
    ("GET", f"{V1}/instruments"): _ANY_USER,
    ("GET", f"{V1}/market/bars"): _ANY_USER,
    ("GET", f"{V1}/market/quote"): _ANY_USER,
    # administration
    ("GET", f"{V1}/admin/users"): _ADMIN,
    ("GET", f"{V1}/admin/users/{{user_id}}"): _ADMIN,
    ("PATCH", f"{V1}/admin/users/{{user_id}}"): _ADMIN,
    ("DELETE", f"{V1}/admin/users/{{user_id}}/lockout"): _ADMIN,
    ("GET", f"{V1}/admin/config"): _ADMIN,
    # operations and documentation (``/metrics`` has its own guard: loopback clients or METRICS_TOKEN)
    ("GET", "/health"): _PUBLIC_OPS,
    ("GET", "/ready"): _PUBLIC_OPS,
    ("GET", "/metrics"): _PUBLIC_OPS,
    ("GET", "/"): _PUBLIC_OPS,
    ("GET", "/docs"): _PUBLIC_OPS,
    ("GET", "/docs/oauth2-redirect"): _PUBLIC_OPS,
    ("GET", "/openapi.json"): _PUBLIC_OPS,
    ("WS", "/ws"): Rule(roles=ALL_ROLES, rate="ws"),
}
"""Access rule of every route, by (HTTP method, path template); ``WS`` for the WebSocket endpoint. Routes under
``/static/`` (the documentation's assets, a mount) are public."""

WS_CHANNELS: dict[str, Rule] = {
    "quotes": _ANY_USER,
    "trades": _ANY_USER,
    "bars": _ANY_USER,
    "orders": _OWN_ACCOUNT_READ,
    "accounts": _OWN_ACCOUNT_READ,
    "challenges": _OWN_ACCOUNT_READ,
    "notifications": _ANY_USER,  # the topic is always the caller's own (notifications.<user id>)
}
"""Access rule of every WebSocket channel (``account`` rules: the request's ``account_id``)."""

STATIC_PREFIX = "/static"


def rule_for(method: str, template: str) -> Rule | None:
    """The rule of ``method`` (``HEAD`` counts as ``GET``) on ``template`` (the route's path template), or ``None``."""
    if method == "HEAD":
        method = "GET"
    return ROUTES.get((method, template))


def route_methods(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """Every (method, path template) an application serves (``WS`` for WebSocket routes; the ``/static`` mount of
    the documentation's assets skipped). Routers included in a FastAPI app are flattened with FastAPI's
    ``iter_route_contexts`` (FastAPI ≥ 0.16x keeps them as included-router entries in ``app.routes``)."""
    out: list[tuple[str, str]] = []
    for route, path, methods in _flat(list(routes)):
        if isinstance(route, Mount):
            if not path.startswith(STATIC_PREFIX):
                out.extend((m, path + p) for m, p in route_methods(route.routes))
        elif isinstance(route, WebSocketRoute):
            out.append(("WS", path))
        else:
            out.extend((m, path) for m in sorted(methods or ()) if m != "HEAD")
    return out


def _flat(routes: list[BaseRoute]) -> list[tuple[BaseRoute, str, set[str] | None]]:
    """(route, full path, methods) of every route, included routers flattened."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are plain routes of the app
        return [(r, getattr(r, "path", ""), getattr(r, "methods", None)) for r in routes]
    out: list[tuple[BaseRoute, str, set[str] | None]] = []
    for ctx in iter_route_contexts(routes):
        route = ctx.original_route
        kind = route if isinstance(route, Mount | WebSocketRoute) else ctx.route
        out.append((kind, ctx.path or "", None if isinstance(route, WebSocketRoute) else ctx.methods))
    return out


def check_routes(routes: Iterable[BaseRoute]) -> None:
    """Refuse an application with a route :data:`ROUTES` has no rule for.

    Raises:
        RuntimeError: naming the routes without a rule (a programming error: add them to :data:`ROUTES`).
    """
    missing = [f"{m} {p}" for m, p in route_methods(routes) if (m, p) not in ROUTES]
    if missing:
        raise RuntimeError(f"routes without an access rule in gateway/access.py ROUTES: {', '.join(missing)}")


def parse_roles(text: str) -> frozenset[Role]:
    """The roles stored as space-separated names (unknown names are ignored: a role removed from the code grants
    nothing)."""
    known = {r.value for r in Role}
    return frozenset(Role(n) for n in text.split() if n in known)


def format_roles(roles: Iterable[Role]) -> str:
    """Roles as stored: space-separated names in a fixed order."""
    return " ".join(sorted(Role(r).value for r in roles))
