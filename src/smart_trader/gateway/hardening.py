"""HTTP hardening: security headers on every response, the request-body size limit, and CORS.

- :class:`SecurityHeaders` adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy:
  no-referrer`` and a Content-Security-Policy to every HTTP response: ``default-src 'none'; frame-ancestors 'none'``
  for the API (JSON never needs to load anything), the documentation pages' own policy (``gateway/docs.py`` sets it),
  and a policy allowing only inline styles for the landing page. ``Strict-Transport-Security`` is sent only when the
  request came over TLS (scope scheme ``https``/``wss``, which uvicorn takes from a trusted proxy's
  ``X-Forwarded-Proto``): over plain HTTP a browser ignores it, and sending it on a laptop's ``http://127.0.0.1`` would
  be wrong anyway. Responses that carry credentials or users' data (``/api/v1/auth/*``, ``/api/v1/api-keys*``,
  ``/api/v1/admin/*``) also get
  ``Cache-Control: no-store`` and ``Pragma: no-cache``. Every header list is built once, when the middleware is made.
- :class:`BodySizeLimit` refuses request bodies over ``MAX_BODY_BYTES`` with a 413 problem document: at once from the
  declared ``Content-Length`` (the body is never read), or, for a chunked body, while it streams in (counted, never
  buffered here), as soon as it goes over.
- :func:`add_cors` installs Starlette's CORS middleware for the configured origins only (none by default).

Both middlewares are plain ASGI (not ``BaseHTTPMiddleware``, which wraps every request in tasks and streams): the order
route answers thousands of requests per second through them.
"""

from __future__ import annotations

from typing import Final

import structlog
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_trader.gateway.problems import problem

log = structlog.get_logger("smart_trader.gateway")

Header = tuple[bytes, bytes]

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
LANDING_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS: Final = "max-age=31536000; includeSubDomains"
CREDENTIAL_PREFIXES: Final = ("/api/v1/auth/", "/api/v1/api-keys", "/api/v1/admin/")
"""Responses under these paths may carry tokens, keys or who the caller is: never stored by a cache."""
OWN_CSP_PATHS: Final = frozenset({"/docs", "/docs/oauth2-redirect"})
"""Pages that set their own Content-Security-Policy (hashes of their inline scripts: ``gateway/docs.py``)."""
LANDING_PATH: Final = "/"

_COMMON: Final[list[Header]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_NO_STORE: Final[list[Header]] = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


def _csp(policy: str) -> list[Header]:
    return [(b"content-security-policy", policy.encode("ascii"))]


class SecurityHeaders:
    """ASGI middleware adding the security headers above to every HTTP response (WebSockets pass through).

    Args:
        app: the application.
        hsts: the ``Strict-Transport-Security`` value sent over TLS (empty: never sent).
    """

    def __init__(self, app: ASGIApp, hsts: str = HSTS) -> None:
        self.app = app
        api = _COMMON + _csp(API_CSP)
        kinds = {
            "api": api,
            "credentials": api + _NO_STORE,
            "own-csp": list(_COMMON),
            "landing": _COMMON + _csp(LANDING_CSP),
        }
        tls = [(b"strict-transport-security", hsts.encode("ascii"))] if hsts else []
        self._plain: dict[str, tuple[Header, ...]] = {k: tuple(v) for k, v in kinds.items()}
        self._tls: dict[str, tuple[Header, ...]] = {k: tuple(v + tls) for k, v in kinds.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if path.startswith(CREDENTIAL_PREFIXES):
            kind = "credentials"
        elif path in OWN_CSP_PATHS:
            kind = "own-csp"
        elif path == LANDING_PATH:
            kind = "landing"
        else:
            kind = "api"
        extra = (self._tls if scope.get("scheme") in ("https", "wss") else self._plain)[kind]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def too_large_detail(max_bytes: int) -> str:
    """The 413 problem's detail."""
    return f"the request body is larger than this server accepts ({max_bytes} bytes, MAX_BODY_BYTES)"


class BodySizeLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with a 413 problem document.

    A declared ``Content-Length`` over the limit is answered before the application runs (no byte of the body is
    read; the server discards what the client still sends). A body without a length (chunked) is counted as the
    application reads it; once over the limit the 413 is sent, the application is told the client went away
    (``http.disconnect``), and whatever it still tries to answer is dropped. A body with a length within the limit
    passes untouched (the server never delivers more than the declared length), so the common case costs one scan of
    the request headers.

    Args:
        app: the application.
        max_bytes: the largest body accepted (``settings.max_body_bytes``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:  # the HTTP server refuses malformed lengths before this runs
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:  # no body
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        size = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal size, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    refused = True
                    if not started:
                        await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the application's answer to a body it was cut off from
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # reading the body we cut off failed (a "client disconnected" of the application's own): already answered
            log.debug("body over the limit: the application's error dropped", path=scope["path"], exc_info=True)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("request body too large", path=scope["path"], max_bytes=self.max_bytes)
        await problem(413, too_large_detail(self.max_bytes), scope["path"], "payload-too-large")(scope, receive, send)


CORS_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS: Final = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS: Final = [
    "X-Request-ID",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
CORS_MAX_AGE_SECONDS: Final = 600


def add_cors(app: Starlette, origins: list[str]) -> bool:
    """Add Starlette's CORS middleware to ``app`` (a Starlette/FastAPI app) allowing ``origins``; nothing when the list
    is empty. Credentials mode stays off: the API authenticates with the ``Authorization`` and ``X-API-Key`` headers,
    which CORS allows as request headers, never with cookies, so no origin (a configured ``*`` included) can make a
    browser send a user's credentials along. Returns whether it was added."""
    if not origins:
        return False
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
    )
    return True
