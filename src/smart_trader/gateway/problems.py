"""Errors as problem details (RFC 9457, ``application/problem+json``).

Every error response has ``type`` (a URI naming the problem kind), ``title``, ``status``, ``detail`` (what was
wrong, in words) and ``instance`` (the request path); validation errors add ``errors`` (field locations and
messages). The core's exceptions map to statuses: invalid input 422, rejected by a rule 422, not found 404,
temporary 503; a value the database refuses (``DataError``: PostgreSQL text with a NUL character) 422; unexpected
exceptions become a 500 whose detail hides internals (logged with the request id).
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_trader.core.errors import (
    InvalidInputError,
    NotFoundError,
    RejectedByRulesError,
    SmartTraderError,
    TemporaryError,
)

PROBLEM_JSON = "application/problem+json"
_BASE = "https://smart-trader.dev/problems/"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
log = structlog.get_logger("smart_trader.gateway")


class ProblemError(Exception):
    """Raise to answer with a problem document: ``status`` (HTTP), ``detail`` (what was wrong), ``kind`` (slug)."""

    def __init__(self, status: int, detail: str, kind: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = headers


def problem(
    status: int,
    detail: str,
    instance: str,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem-details response."""
    title = _TITLES.get(status, "Error")
    body = {
        "type": _BASE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_of(exc: SmartTraderError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "not-found"
    if isinstance(exc, RejectedByRulesError):
        return 422, "rejected-by-rule"
    if isinstance(exc, InvalidInputError):
        return 422, "invalid-input"
    if isinstance(exc, TemporaryError):
        return 503, "temporarily-unavailable"
    return 400, "bad-request"


INTERNAL_DETAIL = "internal error; the request id in the logs has the details"


class UnexpectedErrorMiddleware:
    """ASGI middleware: an unexpected exception becomes a 500 problem document *inside* the request-context
    middleware, so the response carries ``X-Request-ID`` and the logged traceback has the request id bound.

    Starlette runs handlers registered for ``Exception`` in its outermost middleware, after the request context
    is gone: a 500 answered there had no request id to quote, and its log line none to match. An exception raised
    after the response started cannot be answered any more and is re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", path=scope["path"])
            await problem(500, INTERNAL_DETAIL, scope["path"])(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on ``app``. Call it before adding the request-context middleware
    (as the app factory does), so that middleware wraps :class:`UnexpectedErrorMiddleware`."""
    app.add_middleware(UnexpectedErrorMiddleware)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem(exc.status, exc.detail, request.url.path, exc.kind, exc.headers)

    @app.exception_handler(SmartTraderError)
    async def _domain(request: Request, exc: SmartTraderError) -> Response:
        status, kind = _status_of(exc)
        return problem(status, str(exc), request.url.path, kind)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem(422, detail, request.url.path, "validation-error", errors=errors)

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # a value the database refuses to hold or compare (PostgreSQL: a NUL character in text); nothing was stored
        log.info("value refused by the database", path=request.url.path, error=str(exc.orig)[:200])
        detail = "a value cannot be stored or looked up: text must not contain NUL (\\u0000) characters"
        return problem(422, detail, request.url.path, "invalid-input")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(exc.status_code, detail, request.url.path, headers=dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)  # raised outside UnexpectedErrorMiddleware
        return problem(500, INTERNAL_DETAIL, request.url.path)
