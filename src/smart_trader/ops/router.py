"""Operational routes: ``/health`` (liveness), ``/ready`` (database, migrations at head, Redis when configured,
the market-data feed where this process runs one), ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from smart_trader.app.platform import Platform
from smart_trader.db.migrate import schema_status
from smart_trader.live.runtime import FEED_ENDED_STATES

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is down or the schema is not at head"}})
async def ready(request: Request) -> Response:
    """Readiness: the database answers and its schema is at the newest migration; Redis answers when configured;
    in a process running the trading runtime (``up``, the ``feed`` role), the market-data feed has not ended or
    failed (``checks.feed``: ``state`` starting | running | ended | failed, ``detail``, ``events``, ``clock_ns``).
    200 when all hold, else 503; the body names each check."""
    platform: Platform = request.app.state.platform
    checks: dict[str, Any] = {}
    ok = True
    try:
        status = await platform.in_thread(lambda: schema_status(platform.engine))
        checks["database"] = "ok"
        checks["migrations"] = {"current": status.current, "head": status.head, "at_head": status.at_head}
        ok = status.at_head
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


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process (text exposition format)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
