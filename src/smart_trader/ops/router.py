"""Operational routes: ``/health`` (liveness), ``/ready`` (database, migrations at head, Redis when configured,
the market-data feed where this process runs one), ``/metrics`` (Prometheus text format: loopback clients, or any
client sending ``Authorization: Bearer <METRICS_TOKEN>``)."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from smart_trader.app.platform import Platform
from smart_trader.db.migrate import schema_status
from smart_trader.gateway.problems import ProblemError
from smart_trader.live.runtime import FEED_ENDED_STATES

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is down or the schema is behind head"}})
async def ready(request: Request) -> Response:
    """Readiness: the database answers and its schema is at this code's newest migration, or a newer release's
    (``ahead``: that release migrated first during an update; migrations are expand-then-contract); Redis answers
    when configured; in a process running the trading runtime (``up``, the ``feed`` role), the market-data feed has
    not ended or failed (``checks.feed``: ``state`` starting | running | ended | failed, ``detail``, ``events``,
    ``clock_ns``).
    200 when all hold, else 503; the body names each check."""
    platform: Platform = request.app.state.platform
    checks: dict[str, Any] = {}
    ok = True
    try:
        status = await platform.in_thread(lambda: schema_status(platform.engine))
        checks["database"] = "ok"
        ahead = status.ahead
        checks["migrations"] = {"current": status.current, "head": status.head, "at_head": status.at_head}
        if ahead:
            checks["migrations"]["ahead"] = True  # a newer release migrated first (rolling or blue-green update)
        ok = status.at_head or ahead
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
        ok = False
    if platform.redis is not None:
        try:
            await platform.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
            ok = False
    runtime = platform.runtime
    if runtime is not None:
        checks["feed"] = {
            "state": runtime.feed_state,
            "detail": runtime.feed_detail,
            "events": runtime.events_processed,
            "clock_ns": runtime.clock_ns,
        }
        ok = ok and runtime.feed_state not in FEED_ENDED_STATES
    body = {"status": "ready" if ok else "not ready", "checks": checks, "role": request.app.state.role}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


@router.get(
    "/metrics",
    responses={
        401: {"description": "METRICS_TOKEN is set and the request's bearer token is missing or wrong"},
        403: {"description": "a client beyond the loopback interface, and no METRICS_TOKEN is configured"},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (text exposition format). Clients on the loopback interface may always
    scrape; any other client must send ``Authorization: Bearer <METRICS_TOKEN>`` (401 without it or with a wrong
    one; 403 when the server has no ``METRICS_TOKEN``). Behind a reverse proxy on the same host, the client is the
    address the proxy forwards (``X-Forwarded-For`` from ``FORWARDED_ALLOW_IPS``)."""
    check_metrics_access(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def check_metrics_access(request: Request) -> None:
    """Let loopback clients and holders of the metrics token through.

    Raises:
        ProblemError: 403 for a non-loopback client when no ``METRICS_TOKEN`` is configured; 401 when one is and the
            request does not carry it as a bearer token.
    """
    client = request.scope.get("client")
    if client and client[0] in LOOPBACK_HOSTS:
        return
    platform: Platform = request.app.state.platform
    token = platform.settings.metrics_token
    if not token:
        raise ProblemError(
            403,
            "/metrics answers clients on the loopback interface only: set METRICS_TOKEN on the server and send "
            "'Authorization: Bearer <METRICS_TOKEN>' to scrape from elsewhere",
            "forbidden",
        )
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise ProblemError(
            401,
            "/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'",
            "unauthorized",
            {"WWW-Authenticate": "Bearer"},
        )
