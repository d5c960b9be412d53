"""The live WebSocket stream ``/ws``: authenticate, then subscribe to topics of the :class:`~.hub.Hub`.

Protocol (JSON text frames):

Messages are JSON objects in text frames (binary frames holding UTF-8 JSON are accepted too).

1. Authenticate with ``/ws?token=...`` or, without it, with the first message ``{"op": "auth", "token": "..."}``
   within 10 s (reply ``{"type": "authenticated"}``). The token is an access JWT or an API key, checked by
   ``await app.state.authenticate(token) -> Principal | None``. A missing or invalid token closes the socket with
   code 1008 and a reason. The socket is closed with 1008 later too, when its credentials end: the access token
   expires ("token expired"), or its session, API key or user is revoked or disabled (``app.state.auth``, the
   process's :class:`~smart_trader.gateway.auth_state.AuthState`, when present).
2. ``{"op": "subscribe", "channel": C, ...}`` / ``{"op": "unsubscribe", "channel": C, ...}`` where ``C`` is
   ``quotes``, ``trades`` (fields ``symbol``, ``venue``), ``bars`` (``symbol``, ``venue``, ``timeframe`` like
   ``"1m"``), ``orders`` or ``accounts`` (``account_id``; the account must belong to the user, checked by
   ``await app.state.account_owner(account_id) -> user_id | None``), ``notifications`` (no fields: the caller's own
   notifications, topic ``notifications.<user id>``). Reply ``{"type": "subscribed", "topic": T}``
   / ``{"type": "unsubscribed", "topic": T}``, or ``{"type": "error", "message": "..."}`` for anything invalid
   (the connection stays open). A request's ``"id"`` (string or integer), if any, is echoed in its reply.
   ``{"op": "ping"}`` → ``{"type": "pong"}``.
3. Updates arrive as the JSON text published on the hub, unchanged (objects with ``"type"`` and ``"topic"``).

Each connection has one writer task draining its bounded queue (``settings.ws_queue_size`` messages) into
``send_text``; replies go through the same queue, so a reply precedes the updates of the topic it subscribed. A
client that lets its queue fill up is disconnected with code 1013 ("try again later") and counted in
``websocket_clients_dropped_total``; it never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import instrument_id
from smart_trader.data.timeframes import Timeframe
from smart_trader.gateway.access import WS_CHANNELS, Principal
from smart_trader.gateway.hub import (
    Hub,
    Subscriber,
    accounts_topic,
    bars_topic,
    challenges_topic,
    notifications_topic,
    orders_topic,
    quotes_topic,
    trades_topic,
)
from smart_trader.gateway.problems import ProblemError
from smart_trader.ops.metrics import WEBSOCKET_CONNECTIONS_ACTIVE

log = logging.getLogger(__name__)

router = APIRouter()

AUTH_TIMEOUT_S = 10.0
"""Seconds a client without ``?token=`` has to send its ``auth`` message."""
CLOSE_TIMEOUT_S = 5.0
"""Seconds allowed to send a close frame (a stuck client's socket may never drain)."""
MAX_TOPICS_PER_CONNECTION = 500
MAX_FIELD_LENGTH = 128

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_INTERNAL_ERROR = 1011

CHANNELS = ("quotes", "trades", "bars", "orders", "accounts", "challenges", "notifications")
_PONG = '{"type":"pong"}'
_AUTHENTICATED = '{"type":"authenticated"}'
_DISCONNECTED = (WebSocketDisconnect, WebSocketDisconnected, OSError)  # OSError: uvicorn's ClientDisconnected


class _BadRequestError(Exception):
    """A client message that cannot be honoured; its text is sent back as the error message."""


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    """Serve one WebSocket client: authenticate, then stream the topics it subscribes to (see module doc)."""
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    principal = await _authenticate(websocket)
    if principal is None:
        return
    platform = getattr(websocket.app.state, "platform", None)
    limiter = getattr(platform, "limiter", None)
    if limiter is not None:
        try:
            await limiter.check_principal(websocket, principal, "ws")
        except ProblemError as exc:
            await _close(websocket, CLOSE_POLICY_VIOLATION, exc.detail[:120])
            return
    await _Connection(websocket, hub, principal).run()


async def _authenticate(websocket: WebSocket) -> Principal | None:
    """The principal behind the query token or the first message's token; None after closing the socket."""
    token = websocket.query_params.get("token")
    by_message = not token
    if by_message:
        try:
            message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_S)
        except TimeoutError:
            await _close(websocket, CLOSE_POLICY_VIOLATION, "authentication timeout")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        token = _auth_token(message)
        if token is None:
            await _close(
                websocket, CLOSE_POLICY_VIOLATION, 'authentication required: ?token= or {"op": "auth", "token": ...}'
            )
            return None
    try:
        principal: Principal | None = await websocket.app.state.authenticate(token)
    except Exception:
        log.exception("websocket authentication failed")
        await _close(websocket, CLOSE_INTERNAL_ERROR, "authentication unavailable")
        return None
    if principal is None:
        await _close(websocket, CLOSE_POLICY_VIOLATION, "invalid or expired token")
        return None
    if by_message:
        try:
            await websocket.send_text(_AUTHENTICATED)
        except _DISCONNECTED:
            return None
    return principal


def _text(message: Mapping[str, Any]) -> str | None:
    """The text of a received frame: a text frame, or a binary frame holding UTF-8 (None if it does not)."""
    text: str | None = message.get("text")
    if text is None:
        data: bytes | None = message.get("bytes")
        if data is None:
            return None
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return None
    return text


def _auth_token(message: Mapping[str, Any]) -> str | None:
    text = _text(message)
    if text is None:
        return None
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict) or request.get("op") != "auth":
        return None
    token = request.get("token")
    return token if isinstance(token, str) and token else None


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code`` and ``reason`` (≤ 123 bytes), giving up after ``CLOSE_TIMEOUT_S`` on a stuck socket."""
    with contextlib.suppress(*_DISCONNECTED, TimeoutError):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


class _Connection:
    """One authenticated client: a hub subscriber, a reader task (requests) and a writer task (updates)."""

    def __init__(self, websocket: WebSocket, hub: Hub, principal: Principal) -> None:
        self.websocket = websocket
        self.hub = hub
        self.principal = principal
        self.user_id = principal.user_id
        self.sub: Subscriber = hub.attach()
        self.ended: str | None = None  # why the credentials ended (the socket closes with 1008)
        self._tasks: tuple[asyncio.Task[None], ...] = ()

    def _end(self, reason: str) -> None:
        """The credentials were revoked or expired: stop streaming; :meth:`run` closes with 1008 and ``reason``."""
        if self.ended is None:
            self.ended = reason
        for task in self._tasks:
            task.cancel()

    async def end(self, reason: str) -> None:
        """:meth:`_end`, as the coroutine :class:`~smart_trader.gateway.auth_state.AuthState` awaits."""
        self._end(reason)

    async def run(self) -> None:
        sub = self.sub
        writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read())
        self._tasks = (reader, writer)
        expires = self.principal.expires_s
        timer = None
        if expires is not None:  # an access token: the socket ends with it
            loop = asyncio.get_running_loop()
            timer = loop.call_later(max(0.0, expires - time.time()), self._end, "token expired")
        auth = getattr(self.websocket.app.state, "auth", None)
        if auth is not None:
            auth.watch(self, self.principal, self.end)

        def stop_writer() -> None:
            writer.cancel()

        sub.on_drop = stop_writer
        WEBSOCKET_CONNECTIONS_ACTIVE.inc()
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            WEBSOCKET_CONNECTIONS_ACTIVE.dec()
            if timer is not None:
                timer.cancel()
            if auth is not None:
                auth.unwatch(self)
            self.hub.detach(sub)
            reader.cancel()
            writer.cancel()
            results = await asyncio.gather(reader, writer, return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        for exc in failed:
            log.error("websocket connection task failed", exc_info=exc)
        if self.ended is not None:
            await _close(self.websocket, CLOSE_POLICY_VIOLATION, self.ended)
        elif sub.dropped:
            await _close(self.websocket, CLOSE_TRY_AGAIN_LATER, "client too slow: send queue full")
        elif failed:
            await _close(self.websocket, CLOSE_INTERNAL_ERROR, "internal error")

    async def _write(self) -> None:
        sub = self.sub
        queue = sub.queue
        send = self.websocket.send_text
        try:
            while True:
                if not queue:
                    await sub.wait()
                    if sub.closed:
                        return
                while queue:
                    await send(queue.popleft())
        except _DISCONNECTED:
            return

    async def _read(self) -> None:
        receive = self.websocket.receive
        while True:
            try:
                message = await receive()
            except _DISCONNECTED:
                return
            if message["type"] == "websocket.disconnect":
                return
            text = _text(message)
            reply = _error("a message must be UTF-8 JSON", None) if text is None else await self._handle(text)
            if not self.sub.put(reply):
                return

    async def _handle(self, text: str) -> str:
        """The serialized reply to one client message (never raises for bad input)."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _error("invalid JSON", None)
        if not isinstance(request, dict):
            return _error("a message must be a JSON object", None)
        request_id = request.get("id")
        if not (isinstance(request_id, str | int) and not isinstance(request_id, bool)):
            request_id = None
        op = request.get("op")
        try:
            if op == "ping":
                return _PONG if request_id is None else _reply({"type": "pong"}, request_id)
            if op == "subscribe":
                topic = await self._topic(request, check_owner=True)
                sub = self.sub
                if sub.closed:  # dropped while the ownership check was awaited
                    raise _BadRequestError("connection closing")
                if topic not in sub.topics and len(sub.topics) >= MAX_TOPICS_PER_CONNECTION:
                    raise _BadRequestError(f"too many subscriptions (at most {MAX_TOPICS_PER_CONNECTION})")
                self.hub.subscribe(sub, topic)
                return _reply({"type": "subscribed", "topic": topic}, request_id)
            if op == "unsubscribe":
                topic = await self._topic(request, check_owner=False)
                self.hub.unsubscribe(self.sub, topic)
                return _reply({"type": "unsubscribed", "topic": topic}, request_id)
            if op == "auth":
                raise _BadRequestError("already authenticated")
            raise _BadRequestError(f"unknown op {op!r}: expected subscribe, unsubscribe or ping")
        except _BadRequestError as exc:
            return _error(str(exc), request_id)

    async def _topic(self, request: dict[str, Any], check_owner: bool) -> str:
        """The topic a subscribe/unsubscribe request names. Raises _BadRequestError."""
        channel = request.get("channel")
        rule = WS_CHANNELS.get(channel) if isinstance(channel, str) else None
        if rule is not None and check_owner and not self.principal.has(rule.allowed):
            needed = " or ".join(sorted(r.value for r in rule.allowed))
            raise _BadRequestError(f"channel {channel!r} needs the role {needed}")
        if channel in ("quotes", "trades", "bars"):
            iid = instrument_id(_field(request, "symbol"), _field(request, "venue"))
            if channel == "quotes":
                return quotes_topic(iid)
            if channel == "trades":
                return trades_topic(iid)
            try:
                timeframe = Timeframe.parse(_field(request, "timeframe"))
            except InvalidInputError as exc:
                raise _BadRequestError(str(exc)) from None
            return bars_topic(iid, str(timeframe))
        if channel in ("orders", "accounts", "challenges"):
            account_id = _field(request, "account_id")
            if check_owner:
                try:
                    owner = await self.websocket.app.state.account_owner(account_id)
                except Exception:
                    log.exception("websocket account ownership check failed")
                    raise _BadRequestError("could not check the account, try again") from None
                reaches_all = self.principal.has(WS_CHANNELS[channel].any_account)
                if owner is None or (owner != self.user_id and not reaches_all):
                    raise _BadRequestError("account not found")
            topic = {"orders": orders_topic, "accounts": accounts_topic, "challenges": challenges_topic}[channel]
            return topic(account_id)
        if channel == "notifications":  # always the caller's own: no field names another user
            return notifications_topic(self.user_id)
        if channel is None:
            raise _BadRequestError("missing field 'channel'")
        raise _BadRequestError(f"unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}")


def _field(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if value is None:
        raise _BadRequestError(f"missing field {name!r}")
    if not isinstance(value, str) or not value.strip():
        raise _BadRequestError(f"field {name!r} must be a non-empty string")
    if len(value) > MAX_FIELD_LENGTH:
        raise _BadRequestError(f"field {name!r} is longer than {MAX_FIELD_LENGTH} characters")
    return value.strip()


def _reply(body: dict[str, Any], request_id: str | int | None) -> str:
    if request_id is not None:
        body["id"] = request_id
    return orjson.dumps(body).decode()


def _error(message: str, request_id: str | int | None) -> str:
    return _reply({"type": "error", "message": message}, request_id)
