"""Builds the FastAPI application of one process for its role.

Roles (PRODUCT.md: one package, one image, many roles):

- ``all`` — ``smart-trader up``: API, WebSocket, market-data feed, paper broker and portfolio in one process.
- ``api`` — REST API and WebSocket; stores orders and cancel requests, tells the feed process over Redis.
- ``feed`` — market-data feed, paper broker and portfolio (the trading runtime); serves only the operational
  routes (``/health``, ``/ready``, ``/metrics``).
- ``worker`` — the event backbone's consumers (audit chain, analytics, notifications: ``app/workers.py``) and the
  scheduled monitoring cycle; operational routes only. ``all`` runs them too.

Every role runs the migrations at start (serialized by an advisory lock on PostgreSQL) and the group-commit
writer; the process with the trading runtime (``all``, ``feed``) runs the outbox relay, which with ``REDIS_URL``
appends the events to Redis Streams and publishes the WebSocket documents over Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from smart_trader.app.platform import LAST_PRICES_KEY, Platform
from smart_trader.app.workers import runners as worker_runners
from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.persist import ChallengeBinder
from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import InstrumentId
from smart_trader.data.model import Bar, Trade
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.db.engine import Checkpointer, make_async_engine, make_engine
from smart_trader.db.locks import RuntimeLock
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.writer import BatchWriter
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.gateway import docs, problems, users
from smart_trader.gateway.access import check_routes
from smart_trader.gateway.auth_state import backstop, listen
from smart_trader.gateway.hardening import BodySizeLimit, SecurityHeaders, add_cors
from smart_trader.gateway.hashing import PasswordHashing
from smart_trader.gateway.hub import Hub
from smart_trader.gateway.login_guard import LoginGuard
from smart_trader.gateway.projections import ws_message
from smart_trader.gateway.ratelimit import RateLimiter, RateLimitMiddleware, check_limits
from smart_trader.gateway.security import TokenCodec
from smart_trader.live.bar_history import LiveBarHistory, history_timeframe
from smart_trader.live.bar_recorder import LiveBarRecorder
from smart_trader.live.bars import LiveBarAggregator
from smart_trader.live.feeds import MarketFeed, is_new_market_data
from smart_trader.live.relay import OutboxRelay, redis_deliver
from smart_trader.live.runtime import TradingRuntime
from smart_trader.live.top_of_book import DerivedTopOfBook
from smart_trader.notifications.sender import DeliverySender
from smart_trader.ops import metrics
from smart_trader.ops.logging import RequestContextMiddleware
from smart_trader.risk.limits import RISK_CONTROL_TOPIC
from smart_trader.risk.router import INSTRUMENT_HALTS
from smart_trader.settings import Settings
from smart_trader.trading.session import SessionFactory
from smart_trader.workers.monitoring import MonitoringCycle, Prices
from smart_trader.workers.runner import ConsumerRunner

Role = Literal["all", "api", "feed", "worker"]
ORDERS_CONTROL_TOPIC = "_control.orders"  # an API process tells the feed process that orders are waiting
LIVE_BAR_TIMEFRAMES = ("1s", "1m", "5m", "15m", "1h", "1d")
GIL_SWITCH_SECONDS = 0.0005
GC_THRESHOLDS = (200_000, 100, 100)
log = structlog.get_logger("smart_trader.app")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """How to build the process's market-data feed once the platform is up: ``build`` gets the market-data
    service and returns the feed, started (it runs on the server's event loop); ``timeframe`` names replayed
    bars' timeframe (``None`` for ticks); ``derive_quotes``: the feed carries trades only, so a top of book is
    derived from their aggressor sides (``live/top_of_book.py``) and published as such."""

    build: Callable[[MarketDataService], Awaitable[MarketFeed]]
    timeframe: str | None = None
    description: str = ""
    derive_quotes: bool = False


def create_app(
    settings: Settings | None = None,
    role: Role = "all",
    feed: FeedSpec | None = None,
    fill_config: FillConfig | None = None,
) -> FastAPI:
    """The ASGI application of one process. Nothing connects until the app starts (lifespan)."""
    settings = settings or Settings()
    settings.signing_keys()  # a weak or missing SECRET_KEY stops here, before anything starts

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(app, settings, role, feed, fill_config):
            yield

    app = FastAPI(
        title="Smart Trader",
        version="0.1.0",
        description="Paper trading on real market data: accounts, orders, fills, positions, P&L, market data. "
        "Errors are RFC 9457 problem details. Money and quantities are decimal strings; times are ns since the "
        "epoch, UTC.",
        lifespan=lifespan,
        docs_url=None,  # served offline with its own CSP: gateway/docs.py; no ReDoc
        redoc_url=None,
        # FastAPI's built-in OpenTelemetry hooks check the global providers on every request; metrics come from
        # our own Prometheus instrumentation (ops/metrics.py) instead
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.role = role
    if role in ("all", "api"):
        from smart_trader.execution.fast_path import PlaceOrderFastPath

        app.add_middleware(PlaceOrderFastPath)  # innermost: inside the error and request-context middlewares
    if role in ("all", "api") and settings.rate_limits_enabled:
        check_limits(settings)  # a malformed RATE_LIMIT_* stops here, before anything starts
        app.add_middleware(RateLimitMiddleware)  # per-IP limits, outside the order fast path (gateway/ratelimit.py)
    problems.install(app)
    # outside the error middleware (it drops what the application answers to a body it cut off), before the fast path
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    add_cors(app, settings.cors_origin_list)
    app.add_middleware(SecurityHeaders)  # outermost: every answer gets them, CORS preflights and 413s included
    from smart_trader.ops.router import router as ops_router

    if role in ("all", "api"):
        from smart_trader.challenges.router import router as challenges_router
        from smart_trader.data.router import router as data_router
        from smart_trader.execution.router import router as orders_router
        from smart_trader.gateway.admin_router import router as admin_router
        from smart_trader.gateway.router import router as auth_router
        from smart_trader.gateway.ws import router as ws_router
        from smart_trader.portfolio.router import router as accounts_router
        from smart_trader.risk.router import router as risk_router

        # routes are matched in order, one regular expression each: the order routes (the hot path) come first
        routers = (orders_router, accounts_router, risk_router, challenges_router, data_router, auth_router)
        for r in (*routers, admin_router, ws_router):
            app.include_router(r)
        from smart_trader.analytics.router import router as analytics_router

        app.include_router(analytics_router)  # analytics: leaderboards, an account's performance
        from smart_trader.payments.router import router as payments_router

        app.include_router(payments_router)  # payments: providers' webhooks, challenges granted by hand
        from smart_trader.notifications.router import router as notifications_router

        app.include_router(notifications_router)  # the caller's notifications, e-mail choices, webhook endpoints
    app.include_router(ops_router)
    docs.install(app)
    app.add_api_route("/", _landing, methods=["GET"], include_in_schema=False)
    from smart_trader.gateway.openapi import document

    document(app)  # security schemes and the problem responses of every operation, from gateway/access.py
    check_routes(app.routes)  # every route has an access rule (gateway/access.py), or the app is not built
    return app


LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Smart Trader</title></head>
<body style="font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5">
<h1>Smart Trader</h1>
<p>Paper trading on real market data. This server answers:</p>
<ul>
<li><a href="/docs">/docs</a>: the API (OpenAPI, try every call), under <code>/api/v1</code></li>
<li><a href="/ready">/ready</a>: readiness (database, migrations, the market-data feed)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics; <code>/ws</code>: the WebSocket</li>
</ul>
<p>First steps (register, log in, open a paper account, place orders and watch them fill): the
<b>Walkthrough</b> section of the project's README, a block of curl commands to paste. It starts with:</p>
<pre>curl -X POST http://HOST/api/v1/auth/register -H 'content-type: application/json' \
  -d '{"email": "me@example.com", "password": "a-long-password"}'
curl -X POST http://HOST/api/v1/auth/token -d 'username=me@example.com&amp;password=a-long-password'</pre>
</body></html>
"""


async def _landing(request: Request) -> HTMLResponse:
    """``GET /``: where to go from here (the API docs, readiness, the README walkthrough)."""
    return HTMLResponse(LANDING.replace("HOST", html.escape(request.url.netloc)))


@contextlib.asynccontextmanager
async def _running(
    app: FastAPI, settings: Settings, role: Role, feed: FeedSpec | None, fill_config: FillConfig | None
) -> AsyncIterator[None]:
    # The writer thread hands the GIL back and forth with the event loop at every database call; with Python's
    # default 5 ms switch interval each hand-back can wait 5 ms, which made a batch of 28 orders take 20 ms.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    engine = make_engine(settings.resolved_database_url)
    await asyncio.to_thread(upgrade_to_head, engine)
    async_engine = None if settings.is_sqlite else make_async_engine(settings.resolved_database_url)
    writer = BatchWriter(engine, inline=settings.is_sqlite, async_engine=async_engine)
    writer.start()
    checkpointer = Checkpointer(engine, writer)
    checkpointer.start()
    hub = Hub(settings.ws_queue_size)
    market_data = MarketDataService(settings.home_dir)
    platform = Platform(
        settings,
        engine,
        writer,
        hub,
        TokenCodec(*settings.signing_keys(), settings.access_token_seconds, settings.refresh_token_seconds),
        market_data,
    )
    app.state.platform = platform
    if settings.rate_limits_enabled:  # gateway/ratelimit.py, login_guard.py, hashing.py
        platform.limiter = RateLimiter.from_settings(settings)
    platform.login_guard = LoginGuard.from_settings(settings)
    platform.hashing = PasswordHashing(settings.hash_workers, settings.hash_queue)
    app.state.hub = hub
    app.state.authenticate = platform.authenticate
    app.state.account_owner = platform.account_owner
    app.state.auth = platform.auth
    tasks: list[asyncio.Task[Any]] = []
    recently = time.time_ns() - settings.access_token_seconds * 1_000_000_000
    revoked = await platform.read(lambda c: [s for s, _u in users.revoked_since(c, recently)[0]])
    platform.auth.forget_sessions(revoked)  # sessions revoked while their access tokens may still be alive
    tasks.append(asyncio.create_task(listen(platform.auth)))
    # changes an event did not bring (lost by pub/sub, or made by `smart-trader users`): read back every 5 s
    changed = platform.read
    tasks.append(
        asyncio.create_task(backstop(platform.auth, lambda since: changed(lambda c: users.revoked_since(c, since))))
    )
    bus = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        from smart_trader.gateway.redis_bus import RedisBus

        platform.redis = aioredis.Redis.from_url(settings.redis_url)
        bus = RedisBus(settings.redis_url, hub)
        await bus.start()  # attaches itself to the hub
        deliver = redis_deliver(
            settings.redis_url,
            retention_ms=int(settings.event_stream_retention_hours * 3600_000),
            stream_prefix=settings.event_stream_prefix,
        )
    loop = asyncio.get_running_loop()
    # the backbone's consumers (app/workers.py): in this process for `up`, alone for `serve --role worker`
    runners: list[ConsumerRunner] = []
    if role in ("all", "worker"):
        runners = worker_runners(settings, engine, writer)
    if not settings.redis_url:

        def publish_all(messages: list[tuple[str, str]]) -> None:
            for topic, message in messages:
                hub.publish(topic, message)

        def deliver(rows: Sequence[Any]) -> None:
            messages = [(r.topic, ws_message(r.payload, r.id)) for r in rows]
            loop.call_soon_threadsafe(publish_all, messages)  # one wake-up of the event loop per batch

    # One relay per deployment, in the process running the trading runtime: events of one order then leave in
    # the order they were written (an API process's `submitted` event commits before the runtime can accept it).
    relay = OutboxRelay(writer, deliver, blocking=bool(settings.redis_url))
    runtime: TradingRuntime | None = None
    runtime_lock = RuntimeLock(engine)
    if role in ("all", "feed"):
        await asyncio.to_thread(runtime_lock.acquire)
        relay.start()  # one relay per deployment, in the process holding the runtime's lock: its order is THE order
        # challenge accounts: their sessions get the challenge's monitor; its state, events and promotions are
        # written with each batch (challenges/persist.py)
        clock = MarketClock()
        challenges = ChallengeBinder(clock)
        runtime = TradingRuntime(
            engine,
            writer,
            platform.instrument,
            hub.publish,
            fill_config,
            notify_outbox=relay.wake,
            # with Redis, other processes may subscribe; without, only this process's WebSockets can
            wanted=lambda topic: hub.bus is not None or hub.subscriber_count(topic) > 0,
            default_limits=OrderLimits(settings.max_open_orders, settings.max_orders_per_second),
            # the registry adds each session's risk limits (a check after these) and its high-water mark monitor
            sessions=SessionFactory(fill_config, challenges.checks, challenges.monitors_of),
            persisters=[challenges],
            loaders=[challenges.load],
            resets=[challenges.clear],
            actives=[challenge_store.open_challenge_accounts],
            clock=clock,
        )
        challenges.wake = runtime.write_due
        platform.runtime = runtime
        platform.market = runtime.market
        rt = runtime

        def notify(rows: list[Mapping[str, Any]] | None = None) -> None:
            if rows:
                rt.orders_received(rows)
            else:
                rt.orders_waiting()

        platform.notify_orders = notify
        await runtime.start()
        tasks.append(asyncio.create_task(_listen_for_risk_controls(hub, runtime)))
        # portfolio_var_95 / portfolio_drawdown over the loaded accounts, every few seconds (live/accounts.py)
        tasks.append(asyncio.create_task(runtime.accounts.risk_gauges_loop(metrics.RISK_GAUGES)))
        if role == "feed":
            tasks.append(asyncio.create_task(_listen_for_orders(hub, runtime)))
        if feed is not None:
            tasks.append(asyncio.create_task(_run_feed(platform, runtime, feed)))
        if platform.redis is not None:
            tasks.append(asyncio.create_task(_share_prices(platform, runtime)))
    elif platform.redis is not None:

        def tell_feed(rows: list[Mapping[str, Any]] | None = None) -> None:
            hub.publish(ORDERS_CONTROL_TOPIC, "{}")

        platform.notify_orders = tell_feed
        tasks.append(asyncio.create_task(_read_shared_prices(platform)))
    # Long-lived objects (modules, the app, loaded accounts) leave the collector's generations, and young
    # collections run less often: a server's requests free their objects by reference counting, and full
    # collections over thousands of connections and orders were the p99 latency spikes.
    for w in runners:
        w.start()
    monitoring: MonitoringCycle | None = None
    sender: DeliverySender | None = None
    if role in ("all", "worker"):
        sender = DeliverySender.from_settings(settings, writer)  # e-mails and outgoing webhooks of notifications
        sender.start()
        monitoring = MonitoringCycle(
            engine,
            _latest_prices(platform, runtime),
            settings.monitoring_interval_seconds,
            settings.market_data_stale_seconds,
        )
        monitoring.start()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.info(
        "started",
        role=role,
        database=engine.url.render_as_string(hide_password=True),
        redis=bool(settings.redis_url),
        feed=feed.description if feed else None,
    )
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if runtime is not None:
            await runtime.stop()
        runtime_lock.release()
        # the backbone's pieces stop within a bound each: what they leave is delivered again (at least once) after a
        # restart, while a stop that never returned would keep the process from exiting
        await _bounded(relay.stop(), "outbox relay")
        for w in runners:
            await _bounded(w.stop(), f"consumer {w.name}")
        if monitoring is not None:
            await _bounded(monitoring.stop(), "monitoring cycle")
        if sender is not None:
            await _bounded(sender.stop(), "notification sender")
        if bus is not None:
            await bus.stop()
        if platform.redis is not None:
            await platform.redis.aclose()
        if platform.limiter is not None:
            await platform.limiter.aclose()
        if platform.login_guard is not None:
            await platform.login_guard.aclose()
        if platform.hashing is not None:
            platform.hashing.close()
        await checkpointer.stop()  # before the writer: no round pauses or resumes a stopped writer
        await asyncio.to_thread(writer.stop)
        await writer.aclose()
        engine.dispose()
        await checkpointer.close()  # after every other connection: see Checkpointer.close
        log.info("stopped", role=role)


async def _run_feed(platform: Platform, runtime: TradingRuntime, spec: FeedSpec) -> None:
    """Drive the runtime from the feed. Tick feeds also get live bars for the standard timeframes (published on the
    ``bars`` channel) and, when trades-only, a derived top of book. The closed bars of every feed (a bars replay's own
    bars too) are kept in memory for ``GET /market/bars`` (``platform.live_bars``, ``live/bar_history.py``); only a
    feed of new market data (a live exchange: :func:`is_new_market_data`) also has its one-minute bars stored, a
    replay never writes to the market-data store. When the feed ends or fails, the runtime is told (``/ready``, a
    WebSocket notice, new orders rejected)."""
    replayed = Timeframe.parse(spec.timeframe) if spec.timeframe else None
    kept = history_timeframe(replayed)
    kept_name = str(kept)
    recorder: LiveBarRecorder | None = None
    recording: asyncio.Task[None] | None = None
    runtime.quotes_derived = spec.derive_quotes
    book = DerivedTopOfBook() if spec.derive_quotes else None
    try:
        feed = await spec.build(platform.market_data)
        if replayed is None and is_new_market_data(feed):
            recorder = LiveBarRecorder(platform.market_data)
            recording = asyncio.create_task(recorder.run())
            runtime.follow_wall_clock()  # live: day resets and flat-by times on time, trade or no trade
        history = platform.live_bars = LiveBarHistory(kept, recorded=recorder is not None)
        # one aggregator per timeframe, so every closed bar's timeframe is known: (name, aggregator, published)
        aggregators = (
            [(t, LiveBarAggregator([Timeframe.parse(t)]), True) for t in LIVE_BAR_TIMEFRAMES]
            if replayed is None
            else [(kept_name, LiveBarAggregator([kept]), False)]  # replayed bars are published by on_event
        )

        def closed(name: str, bar: Bar, published: bool) -> None:
            if published:
                runtime.publish_bar(bar, name)
            if name == kept_name:
                history.add(bar)
                if recorder is not None:
                    recorder.add(bar)

        async for event in feed:
            processed = runtime.on_event(event, spec.timeframe)
            if processed.instrument_id not in history:
                history.begin(processed.instrument_id, processed.ts_event)
            for name, aggregator, published in aggregators:
                for bar in aggregator.update(processed):
                    closed(name, bar, published)
            if book is not None and type(event) is Trade:
                quote = book.update(event)  # the feed's own time: on_event shifts it once, like the trade
                if quote is not None:
                    runtime.on_event(quote)
        for name, aggregator, published in aggregators:  # the replay is over: its last bars are complete
            for bar in aggregator.flush():
                closed(name, bar, published)
        log.info("feed finished", events=runtime.events_processed)
        runtime.feed_ended(f"{spec.description or 'the feed'} ended after {runtime.events_processed:,} events",
                           bar_topics=LIVE_BAR_TIMEFRAMES)  # fmt: skip
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("the market-data feed stopped")
        runtime.feed_ended(f"{type(exc).__name__}: {exc}", failed=True, bar_topics=LIVE_BAR_TIMEFRAMES)
    finally:
        if recording is not None:
            recording.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recording
        if recorder is not None:  # also when its task was cancelled before it ever ran (a feed that never waited)
            with contextlib.suppress(Exception):
                await asyncio.shield(recorder.flush())


async def _listen_for_orders(hub: Hub, runtime: TradingRuntime) -> None:
    """Feed role: wake the order taker whenever an API process says orders are waiting (over Redis)."""
    sub = hub.attach(queue_size=10_000)
    hub.subscribe(sub, ORDERS_CONTROL_TOPIC)
    try:
        while True:
            await sub.wait()
            sub.drain()
            runtime.orders_waiting()
    finally:
        hub.detach(sub)


async def _listen_for_risk_controls(hub: Hub, runtime: TradingRuntime) -> None:
    """Apply an account's new limits or trading state as soon as a risk manager changes them (any API process)."""
    sub = hub.attach(queue_size=10_000)
    hub.subscribe(sub, RISK_CONTROL_TOPIC)
    try:
        while True:
            await sub.wait()
            for account_id in dict.fromkeys(sub.drain()):
                if account_id == INSTRUMENT_HALTS:
                    await runtime.accounts.reload_instrument_halts()
                    continue
                runtime.limits_changed(account_id)  # the order taker waits for it before that account's next order
    finally:
        hub.detach(sub)


async def _bounded(stopping: Awaitable[None], what: str, seconds: float = 10.0) -> None:
    """Await a component's stop for at most ``seconds``; log and go on when it does not finish."""
    try:
        async with asyncio.timeout(seconds):
            await stopping
    except TimeoutError:
        log.warning("stop timed out; going on", component=what, seconds=seconds)


def _latest_prices(platform: Platform, runtime: TradingRuntime | None) -> Prices | None:
    """The latest prices the monitoring cycle watches: this process's runtime, else the hash the feed shares in
    Redis, else none."""
    if runtime is not None:
        market = runtime.market

        async def local() -> dict[str, dict[str, Any]]:
            return {str(iid): p.as_dict() for iid, p in market.prices.items()}

        return local
    redis = platform.redis
    if redis is None:
        return None

    async def shared() -> dict[str, dict[str, Any]]:
        raw = await redis.hgetall(LAST_PRICES_KEY)
        return {(k.decode() if isinstance(k, bytes) else str(k)): orjson.loads(v) for k, v in raw.items()}

    return shared


async def _share_prices(platform: Platform, runtime: TradingRuntime, every: float = 0.5) -> None:
    """Feed role with Redis: publish the latest prices to the hash the API processes read."""
    assert platform.redis is not None
    while True:
        await asyncio.sleep(every)
        values = {iid: orjson.dumps(p.as_dict()) for iid, p in runtime.market.prices.items()}
        if values:
            with contextlib.suppress(Exception):
                await platform.redis.hset(LAST_PRICES_KEY, mapping=values)


async def _read_shared_prices(platform: Platform, every: float = 0.5) -> None:
    """API role with Redis: refresh the marks the feed process shares."""
    assert platform.redis is not None
    while True:
        with contextlib.suppress(Exception):
            raw = await platform.redis.hgetall(LAST_PRICES_KEY)
            marks: dict[InstrumentId, Decimal] = {}
            for k, v in raw.items():
                mark = orjson.loads(v).get("mark")
                if mark is not None:
                    marks[InstrumentId(k.decode())] = Decimal(mark)
            platform.shared_marks = marks
        await asyncio.sleep(every)
