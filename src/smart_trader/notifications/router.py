"""HTTP API of notifications: the caller's inbox (newest first, keyset-paginated), read marks, the kinds sent by
e-mail, and the caller's signed webhook endpoints. A caller only ever reaches their own: someone else's notification
or endpoint is 404, exactly as one that does not exist. Timestamps are ns since the epoch, UTC.

Notifications are made by the notification consumer from domain events (``notifications/consumer.py``); they also
arrive live on the WebSocket channel ``notifications`` (``{"op": "subscribe", "channel": "notifications"}``).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from smart_trader.core.clock import now_ns
from smart_trader.core.errors import InvalidInputError, RejectedByRulesError
from smart_trader.gateway.deps import CurrentUser, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.notifications import store
from smart_trader.notifications.rules import KINDS, Notification
from smart_trader.notifications.webhooks import SecretBox, check_url, new_secret
from smart_trader.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["notifications"])

MAX_ENDPOINTS_PER_USER = 10
"""Webhook endpoints one user may register (each notification is one delivery per endpoint)."""
MAX_PAGE = 100
_CURSOR = re.compile(r"^(\d{1,19})_([0-9a-f-]{36})$")
Kind = Literal[
    "challenge_warning",
    "challenge_breached",
    "challenge_locked",
    "challenge_passed",
    "payment_receipt",
    "challenge_granted",
    "challenge_revoked",
]
assert set(get_args(Kind)) == set(KINDS)  # one list of kinds (rules.KINDS)


class NotificationOut(BaseModel):
    """One notification: ``kind`` (what happened), ``title`` and ``body`` (in words), ``data`` (the event's facts:
    decimals as strings, times ns UTC), ``event_id`` (the domain event it came from), ``created_ns`` (when that event
    happened), ``read_ns`` (when you marked it read, or ``null``)."""

    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    event_id: str
    created_ns: int
    read_ns: int | None


class NotificationPage(BaseModel):
    """A page of notifications, newest first; ``unread``: how many of yours are not read (all pages);
    ``next_cursor``: pass it as ``cursor`` for the next (older) page, ``null`` on the last one."""

    items: list[NotificationOut]
    unread: int
    next_cursor: str | None


class PreferencesIn(BaseModel):
    """The kinds of notification sent to you by e-mail (``[]``: none). Every kind is always in the inbox."""

    model_config = ConfigDict(extra="forbid")

    email: list[Kind] = Field(max_length=len(KINDS))


class PreferencesOut(BaseModel):
    """The kinds sent to you by e-mail, and every kind there is."""

    email: list[str]
    kinds: list[str]


class EndpointIn(BaseModel):
    """A webhook endpoint: an ``https://`` URL on the public Internet, and the kinds it wants (omitted or ``null``:
    every kind)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    kinds: list[Kind] | None = Field(default=None, min_length=1, max_length=len(KINDS))


class EndpointOut(BaseModel):
    """A registered webhook endpoint (its signing secret is shown only when it is created)."""

    id: str
    url: str
    kinds: list[str] | None
    created_ns: int


class EndpointCreated(EndpointOut):
    """A new endpoint with its signing secret, shown this once: verify each request's ``Smart-Trader-Signature``
    (``t=<unix s>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``) with it."""

    secret: str


def _out(n: Notification) -> NotificationOut:
    return NotificationOut(**n.document())


def _endpoint_out(e: store.Endpoint) -> EndpointOut:
    return EndpointOut(id=e.id, url=e.url, kinds=None if e.kinds is None else list(e.kinds), created_ns=e.created_ns)


def loopback_allowed(settings: Settings) -> bool:
    """``WEBHOOK_ALLOW_LOOPBACK``, never in production."""
    return settings.webhook_allow_loopback and settings.environment != "production"


@router.get("/notifications", response_model=NotificationPage)
async def list_notifications(
    user_id: CurrentUser,
    platform: PlatformDep,
    unread: Annotated[bool, Query(description="only notifications not read yet")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many")] = 50,
    cursor: Annotated[str | None, Query(max_length=60, description="next_cursor of the previous page")] = None,
) -> NotificationPage:
    """Your notifications, newest first. 422 for a malformed ``cursor``."""
    before = None
    if cursor is not None:
        m = _CURSOR.match(cursor)
        if m is None:
            raise ProblemError(422, "cursor must be the next_cursor of a previous page", "invalid-input")
        before = (int(m.group(1)), m.group(2))

    def load(conn: Any) -> tuple[list[Notification], int]:
        items = store.notifications_of(conn, user_id, unread_only=unread, limit=limit, before=before)
        return items, store.unread_count(conn, user_id)

    items, count = await platform.read(load)
    last = items[-1] if len(items) == limit else None
    return NotificationPage(
        items=[_out(n) for n in items],
        unread=count,
        next_cursor=None if last is None else f"{last.created_ns}_{last.id}",
    )


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
async def mark_read(notification_id: str, user_id: CurrentUser, platform: PlatformDep) -> NotificationOut:
    """Mark one of your notifications read (again: it keeps its first ``read_ns``). 404 for one that is not yours."""
    now = now_ns()
    n = await platform.writer.run(lambda c: store.mark_read(c, user_id, notification_id, now))
    if n is None:
        raise ProblemError(404, f"no notification {notification_id}", "not-found")
    return _out(n)


@router.get("/notifications/preferences", response_model=PreferencesOut)
async def get_preferences(user_id: CurrentUser, platform: PlatformDep) -> PreferencesOut:
    """The kinds sent to you by e-mail (when the platform sends e-mail: ``SMTP_HOST``)."""
    kinds = await platform.read(lambda c: store.email_kinds(c, user_id))
    return PreferencesOut(email=sorted(kinds), kinds=list(KINDS))


@router.put("/notifications/preferences", response_model=PreferencesOut)
async def set_preferences(body: PreferencesIn, user_id: CurrentUser, platform: PlatformDep) -> PreferencesOut:
    """Choose the kinds sent to you by e-mail (from the next notification on)."""
    now = now_ns()
    kinds = await platform.writer.run(lambda c: store.set_email_kinds(c, user_id, body.email, now))
    return PreferencesOut(email=sorted(kinds), kinds=list(KINDS))


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    responses={409: {"description": f"already {MAX_ENDPOINTS_PER_USER} endpoints"}},
)
async def create_endpoint(body: EndpointIn, user_id: CurrentUser, platform: PlatformDep) -> EndpointCreated:
    """Register a webhook endpoint: every notification of the kinds it wants is POSTed to it as JSON, signed
    (``Smart-Trader-Signature``), with ``Smart-Trader-Event-Id`` (the same on every retry: dedupe on it). The signing
    secret is in this answer only. 422 for a URL that is not ``https://`` on a public host (private, loopback and
    link-local addresses, ``localhost`` and intranet names are refused); 409 over the limit per user."""
    settings = platform.settings
    try:
        url = check_url(body.url, allow_loopback=loopback_allowed(settings))
    except InvalidInputError as exc:
        raise ProblemError(422, f"url: {exc}", "invalid-input") from None
    secret = new_secret()
    box = SecretBox(settings.signing_keys()[1])
    sealed = box.encrypt(secret)
    endpoint_id = str(uuid.uuid4())
    now = now_ns()
    try:
        created = await platform.writer.run(
            lambda c: store.create_endpoint(
                c, endpoint_id, user_id, url, body.kinds, sealed, now, MAX_ENDPOINTS_PER_USER
            )
        )
    except RejectedByRulesError as exc:
        raise ProblemError(409, str(exc), "too-many") from None
    return EndpointCreated(**_endpoint_out(created).model_dump(), secret=secret)


@router.get("/webhook-endpoints", response_model=list[EndpointOut])
async def list_endpoints(user_id: CurrentUser, platform: PlatformDep) -> list[EndpointOut]:
    """Your webhook endpoints, oldest first (never their secrets)."""
    endpoints = await platform.read(lambda c: store.endpoints_of(c, user_id))
    return [_endpoint_out(e) for e in endpoints]


@router.delete("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
async def delete_endpoint(endpoint_id: str, user_id: CurrentUser, platform: PlatformDep) -> EndpointOut:
    """Delete one of your webhook endpoints; its deliveries not sent yet are cancelled. 404 for one that is not
    yours."""
    gone = await platform.writer.run(lambda c: store.delete_endpoint(c, user_id, endpoint_id))
    if gone is None:
        raise ProblemError(404, f"no webhook endpoint {endpoint_id}", "not-found")
    return _endpoint_out(gone)
