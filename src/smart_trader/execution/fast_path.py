"""The order route's fast path: ``POST /api/v1/accounts/{account_id}/orders`` answered before FastAPI's routing.

Order submission is the platform's hottest request, and FastAPI's generic machinery around it (routing through
every route, dependency solving, request/response wrappers, exit stacks) cost about as much CPU as storing the
order. :class:`PlaceOrderFastPath` takes a well-formed order (a JSON object body that validates as
:class:`~smart_trader.execution.router.OrderIn`) straight to :func:`~smart_trader.execution.router.place`, the
function the FastAPI route calls too. Anything else — another content type, a body that does not validate, bad
credentials, an unknown instrument, an order breaking its instrument's rules — goes on to FastAPI unchanged, with
the body replayed, so every error is answered by the documented route exactly as before (nothing was stored: those
checks all come before the write). It sits inside the request-context and unexpected-error middlewares, so request
ids, logs and ``api_response_duration_seconds`` (labelled with the route's template) are the same either way.
"""

from __future__ import annotations

import re

import orjson
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_trader.core.errors import SmartTraderError
from smart_trader.execution.router import OrderIn, place, place_order, router
from smart_trader.gateway.problems import ProblemError

ORDERS_PATH = re.compile(r"/api/v1/accounts/([^/]+)/orders")
MAX_BODY_BYTES = 64 * 1024  # larger bodies (no valid order is near this) take the regular route
# the regular route: Starlette's router puts the matched route in the scope, and the request-context middleware
# labels metrics and logs with its path template
PLACE_ORDER_ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is place_order)


class PlaceOrderFastPath:
    """ASGI middleware answering well-formed order submissions itself (see the module docstring).

    Args:
        app: the rest of the application (FastAPI's exception middleware and router).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ORDERS_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages, complete = await _read_body(receive)
        replay = _replaying(messages, receive)
        answer = None
        if complete:
            body = b"".join(m.get("body", b"") for m in messages)
            answer = await self._answer(scope, replay, match.group(1), body)
        if answer is None:
            await self.app(scope, replay, send)
            return
        content, status = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, scope: Scope, receive: Receive, account_id: str, body: bytes) -> tuple[bytes, int] | None:
        """The order's JSON and status, or ``None`` to leave the request to the regular route."""
        try:
            ticket = OrderIn.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError):
            return None
        scope["route"] = PLACE_ORDER_ROUTE
        try:
            return await place(account_id, ticket, Request(scope, receive))
        except (ProblemError, HTTPException, RequestValidationError, SmartTraderError):
            # raised before anything was stored (the write raises database errors only): the route answers it,
            # mapped by the application's exception handlers
            return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


async def _read_body(receive: Receive) -> tuple[list[Message], bool]:
    """The messages of the request body as received, and whether they hold all of it (False: the body is larger
    than :data:`MAX_BODY_BYTES` or the client went away)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, False
        if not message.get("more_body", False):
            return messages, True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read, in order, then the original's."""
    pending = list(reversed(messages))

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
