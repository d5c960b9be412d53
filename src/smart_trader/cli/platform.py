"""``smart-trader up`` (every role in one process) and ``smart-trader serve --role api|feed``.

Market-data sources: ``--replay FILE`` (imported into the store, then replayed), ``--store`` (a stored range),
``--exchange NAME`` (live through ccxt); ``up`` without one replays the sample shipped in the package, looping
(``smart_trader/samples``). The source is checked before the server starts: a missing file, an unknown symbol or
an unreachable exchange stops with a message saying how to give a source, and a non-zero exit.

The server (FastAPI, SQLAlchemy, uvicorn) and data modules are imported when a command runs, not when the command
line is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from smart_trader.core.clock import parse_utc
from smart_trader.core.errors import InvalidInputError, SmartTraderError, TemporaryError
from smart_trader.data.timeframes import Timeframe
from smart_trader.samples import Sample, default_sample
from smart_trader.settings import Settings

from .common import cli_errors, console, start_logging
from .common import settings as load_settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from smart_trader.app.factory import FeedSpec
    from smart_trader.data.service import MarketDataService
    from smart_trader.live.feeds import MarketFeed

Role = Literal["all", "api", "feed"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DB_CONNECT_TIMEOUT_SECONDS = 10
NO_SOURCE = (
    "no market-data source, and this build ships no sample to replay (smart_trader/samples): replay a recorded "
    "file with --replay FILE --symbol S --venue V (e.g. --replay trades.parquet --symbol BTC/USDT --venue BINANCE "
    "--loop), replay stored data with --store --symbol S --venue V, or stream live with --exchange binance "
    "--symbol BTC/USDT"
)

ReplayOpt = Annotated[Path | None, typer.Option("--replay", help="file to replay (any format `data import` reads)")]
StoreOpt = Annotated[bool, typer.Option("--store", help="replay stored data of --symbol/--venue")]
ExchangeOpt = Annotated[str | None, typer.Option(help="live feed from this ccxt exchange (e.g. binance)")]
SymbolOpt = Annotated[str | None, typer.Option(help="instrument symbol, e.g. BTC/USDT")]
VenueOpt = Annotated[str | None, typer.Option(help="venue, e.g. BINANCE (default: the exchange's name)")]
SpeedOpt = Annotated[
    str | None, typer.Option(help="replay speed: N × real time, or 'max' (default 1; the packaged sample: 60)")
]
LoopOpt = Annotated[
    bool | None,
    typer.Option("--loop/--no-loop", help="replay again from the start, forever (default: only the packaged sample)"),
]
KindOpt = Annotated[str | None, typer.Option(help="stored kind to replay: trades, quotes or bars")]
TimeframeOpt = Annotated[str | None, typer.Option(help="bars: timeframe to replay (e.g. 1m)")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="reader format of --replay (detected if omitted)")]
StartOpt = Annotated[str | None, typer.Option(help="store replay: start (ISO-8601 UTC)")]
EndOpt = Annotated[str | None, typer.Option(help="store replay: end, exclusive (ISO-8601 UTC)")]
HostOpt = Annotated[str, typer.Option(help="interface to listen on")]
PortOpt = Annotated[int, typer.Option(help="HTTP port")]


def _speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise InvalidInputError(f"--speed must be a positive number or 'max', got {text!r}")
    return value


def build_feed(
    settings: Settings,
    replay: Path | None,
    store: bool,
    exchange: str | None,
    symbol: str | None,
    venue: str | None,
    speed: str,
    loop: bool,
    kind: str | None,
    timeframe: str | None,
    fmt: str | None,
    start: str | None,
    end: str | None,
) -> FeedSpec | None:
    """Check the market-data source the options name and return how to build its feed (``None``: no source).

    Raises:
        InvalidInputError / NotFoundError / DataValidationError: a bad option, file, symbol or stored range.
        FeedUnavailableError: the exchange cannot be reached.
    """
    from smart_trader.app.factory import FeedSpec
    from smart_trader.data.schema import Kind
    from smart_trader.data.service import MarketDataService

    sources = sum([replay is not None, store, exchange is not None])
    if sources > 1:
        raise InvalidInputError("give one market-data source: --replay, --store or --exchange")
    if sources == 0:
        return None
    pace = _speed(speed)
    tf = Timeframe.parse(timeframe) if timeframe else None
    if exchange is not None:
        if not symbol:
            raise InvalidInputError("--exchange needs --symbol, e.g. --symbol BTC/USDT")
        return _exchange_feed(exchange, symbol)
    if not symbol or not venue:
        raise InvalidInputError("--replay and --store need --symbol and --venue")
    service = MarketDataService(settings.home_dir)
    from smart_trader.live.replay import replay_file, replay_store

    if replay is not None:
        if not replay.exists():
            raise FileNotFoundError(2, "no such file", str(replay))
        console.print(f"importing {replay} as {symbol} on {venue} ...")
        feed = replay_file(
            service, replay, symbol, venue, fmt, Kind(kind) if kind else None, timeframe=tf, speed=pace, loop=loop
        )
    else:
        stored = {d.key.kind for d in service.datasets(symbol, venue)}
        chosen = Kind(kind) if kind else next((k for k in (Kind.TRADES, Kind.QUOTES, Kind.BARS) if k in stored), None)
        if chosen is None:
            raise InvalidInputError(f"nothing stored for {symbol} on {venue}: import a file first, or use --replay")
        feed = replay_store(
            service,
            symbol,
            venue,
            chosen,
            tf if chosen is Kind.BARS else None,
            parse_utc(start) if start else None,
            parse_utc(end) if end else None,
            speed=pace,
            loop=loop,
        )
    bar_tf = str(feed.timeframe) if feed.timeframe else None

    async def ready(_svc: MarketDataService) -> MarketFeed:
        return feed

    what = f"replay of {feed.instrument.id} {feed.kind} at {'max speed' if pace is None else f'{pace:g}x'}"
    derive = feed.kind is Kind.TRADES and not any(d.key.kind is Kind.QUOTES for d in service.datasets(symbol, venue))
    return FeedSpec(ready, bar_tf, what + (" (looping)" if loop else ""), derive_quotes=derive)


def _exchange_feed(name: str, symbol: str) -> FeedSpec:
    from smart_trader.app.factory import FeedSpec
    from smart_trader.live.exchange_feed import ExchangeFeed, make_live_exchange

    async def probe() -> None:  # fail before the server starts when the exchange cannot be reached
        feed = ExchangeFeed(make_live_exchange(name), symbol)
        try:
            await feed.start()
        finally:
            await feed.close()

    asyncio.run(probe())

    async def build(svc: MarketDataService) -> MarketFeed:
        feed = ExchangeFeed(make_live_exchange(name), symbol)
        await feed.start()
        if feed.instrument is not None:
            with contextlib.suppress(InvalidInputError):  # an existing, differing definition is kept
                svc.catalog.add(feed.instrument)
        return feed

    return FeedSpec(build, None, f"live {symbol} from {name}")


def listen(host: str, port: int, command: str) -> list[socket.socket]:
    """Bind the server's listening sockets now, before the banner, the sample import and the application's start:
    a busy port is then one line at once, not a traceback after the whole start-up (uvicorn binds only after the
    application started, and would have taken the runtime lock first). The sockets go to uvicorn (:func:`serve_app`).

    Raises:
        InvalidInputError: the port is in use, needs privileges, or ``host`` is no address of this machine.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInputError(f"cannot listen on {host}: {exc.strerror} (--host)") from None
    addresses = list(dict.fromkeys((family, address) for family, _t, _p, _c, address in infos))
    sockets: list[socket.socket] = []
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            if len(addresses) > 1 and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue  # e.g. "localhost" on a machine without IPv6: the other address serves
            for bound in sockets:
                bound.close()
            raise InvalidInputError(_listen_error(exc, host, port, command)) from None
        sockets.append(sock)
    if not sockets:
        raise InvalidInputError(f"cannot listen on {host}:{port}: no usable address (--host)")
    return sockets


def _listen_error(exc: OSError, host: str, port: int, command: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use (another smart-trader {command}?): stop it or pass --port N"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} (ports below 1024 need privileges): pass --port N"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine (--host)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_database(settings: Settings, runtime: bool) -> None:
    """Before the banner: PostgreSQL answers, and, for a process that will run the trading runtime (``up``, the
    ``feed`` role), no other runtime holds the database (``db/locks.py``; taken and let go at once: the application
    takes it for good when it starts, and says so in one line too if another process got there in between).

    Raises:
        TemporaryError: the database cannot be reached.
        InvalidInputError: another trading runtime is running on this database.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from smart_trader.db.engine import make_engine
    from smart_trader.db.locks import RuntimeLock

    url = settings.resolved_database_url
    if settings.is_sqlite:
        engine = make_engine(url)  # the lock is a file beside the database: nothing connects
    else:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": DB_CONNECT_TIMEOUT_SECONDS})
    try:
        if not settings.is_sqlite:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:
                raise TemporaryError(database_unreachable(settings, exc)) from None
        if runtime:
            lock = RuntimeLock(engine)
            lock.acquire()
            lock.release()
    finally:
        engine.dispose()


def database_unreachable(settings: Settings, exc: BaseException) -> str:
    """One line: which database could not be reached (password hidden) and the driver's first line of why."""
    from sqlalchemy.engine import make_url

    where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"cannot reach the database {where} (DATABASE_URL): {reason[0] if reason else type(exc).__name__}"


class _StartupGuard:
    """ASGI wrapper keeping a failed application start-up to one line: uvicorn prints the traceback Starlette sends
    with ``lifespan.startup.failed``; this sends the failure without it and keeps the exception, which
    :func:`serve_app` reports through :func:`~smart_trader.cli.common.cli_errors` once uvicorn gave up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def without_traceback(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                message = {"type": message["type"], "message": ""}
            await send(message)

        try:
            await self.app(scope, receive, without_traceback)
        except BaseException as exc:
            self.error = exc
            raise


def startup_error(exc: BaseException, settings: Settings) -> BaseException:
    """What to report for an exception that stopped the application's start-up: Smart Trader's own errors as they are
    (a runtime lock held by another process, a weak key...), a database that cannot be reached in one line, anything
    else as one line naming it (its traceback is logged at DEBUG: LOG_LEVEL=DEBUG shows it)."""
    import logging

    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, SmartTraderError):
        return exc
    if isinstance(exc, OperationalError | ConnectionError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return TemporaryError(database_unreachable(settings, exc))
    logging.getLogger("smart_trader.cli").debug("start-up failed", exc_info=exc)
    first = str(exc).strip().splitlines()
    return SmartTraderError(
        f"could not start: {type(exc).__name__}: {first[0] if first else 'no message'} (LOG_LEVEL=DEBUG logs where)"
    )


def serve_app(
    settings: Settings, role: Role, feed: FeedSpec | None, host: str, port: int, sockets: list[socket.socket]
) -> None:
    """Run the role's app under uvicorn (uvloop, httptools) on ``sockets`` (:func:`listen`) until SIGINT/SIGTERM;
    in-flight requests finish, then the runtime writes what it holds and the database closes. A failed start-up
    (another runtime took the database meanwhile, the database went away...) ends with one line on stderr and a
    non-zero exit, never a traceback."""
    import uvicorn

    from smart_trader.app.factory import create_app

    try:
        with cli_errors():
            guard = _StartupGuard(create_app(settings, role, feed))
        config = uvicorn.Config(
            guard,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_config=None,
            timeout_graceful_shutdown=10,
            access_log=False,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        try:
            uvicorn.Server(config).run(sockets=sockets)
        except SystemExit:
            if guard.error is None:
                raise
            with cli_errors():
                raise startup_error(guard.error, settings) from None
    finally:
        for sock in sockets:
            sock.close()


def up(
    replay: ReplayOpt = None,
    store: StoreOpt = False,
    exchange: ExchangeOpt = None,
    symbol: SymbolOpt = None,
    venue: VenueOpt = None,
    speed: SpeedOpt = None,
    loop: LoopOpt = None,
    kind: KindOpt = None,
    timeframe: TimeframeOpt = None,
    fmt: FormatOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
) -> None:
    """Start Smart Trader in one process: API and WebSocket on --port, the market-data feed, the paper broker
    and the portfolio, on the embedded SQLite database (or DATABASE_URL). Without a source it replays the real
    recording shipped in the package, looping."""
    with cli_errors():
        settings = load_settings()
        start_logging(settings)
        settings.signing_keys()  # refuses a weak SECRET_KEY (or none outside the embedded mode) before starting
        sockets = listen(host, port, "up")  # a busy port is said first, before any work or banner
    with _closing_on_error(sockets), cli_errors():
        check_database(settings, runtime=True)
        if replay is None and not store and exchange is None:
            store, symbol, venue, kind, timeframe, speed, loop = _sample_source(settings, symbol, venue, speed, loop)
        feed = build_feed(
            settings, replay, store, exchange, symbol, venue, speed or "1", bool(loop), kind, timeframe, fmt, start,
            end,
        )  # fmt: skip
        if feed is None:
            raise InvalidInputError(NO_SOURCE)
        console.print(
            f"Smart Trader on http://{host}:{port} (API /api/v1, docs /docs, WebSocket /ws): "
            f"{feed.description}; database {settings.resolved_database_url.split('://')[0]}"
        )
    serve_app(settings, "all", feed, host, port, sockets)


@contextlib.contextmanager
def _closing_on_error(sockets: list[socket.socket]) -> Iterator[None]:
    """Close the listening sockets when the command stops before serving (they are uvicorn's once it runs)."""
    try:
        yield
    except BaseException:
        for sock in sockets:
            sock.close()
        raise


def _sample_source(
    settings: Settings, symbol: str | None, venue: str | None, speed: str | None, loop: bool | None
) -> tuple[bool, str, str, str, str | None, str, bool]:
    """No source given: the packaged real sample, imported into the store, replayed at its own speed, looping.

    Returns ``(store, symbol, venue, kind, timeframe, speed, loop)`` for :func:`build_feed`.

    Raises:
        InvalidInputError: this build ships no sample, or --symbol/--venue were given without a source.
    """
    sample = default_sample()
    if sample is None:
        raise InvalidInputError(NO_SOURCE)
    if symbol is not None or venue is not None:
        raise InvalidInputError("--symbol/--venue name the instrument of --replay, --store or --exchange")
    console.print(f"no source given: replaying {sample.description}")
    _import_sample(settings, sample)
    return (
        True, sample.symbol, sample.venue, sample.kind, sample.timeframe, speed or sample.speed,
        True if loop is None else loop,
    )  # fmt: skip


def _import_sample(settings: Settings, sample: Sample) -> None:
    """Import the packaged sample's files into the store (idempotent: a second ``up`` adds nothing)."""
    from smart_trader.data.service import MarketDataService

    service = MarketDataService(settings.home_dir)
    for file in sample.files:
        service.import_file(file, symbol=sample.symbol, venue=sample.venue)


def serve(
    role: Annotated[
        str,
        typer.Option(
            help="api (REST + WebSocket), feed (market data, broker, portfolio) or worker (event consumers: audit, "
            "analytics, notifications; the scheduled monitoring cycle)"
        ),
    ],
    replay: ReplayOpt = None,
    store: StoreOpt = False,
    exchange: ExchangeOpt = None,
    symbol: SymbolOpt = None,
    venue: VenueOpt = None,
    speed: SpeedOpt = None,
    loop: LoopOpt = None,
    kind: KindOpt = None,
    timeframe: TimeframeOpt = None,
    fmt: FormatOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    host: HostOpt = "0.0.0.0",
    port: PortOpt = 8000,
) -> None:
    """Run one role against DATABASE_URL and REDIS_URL (PostgreSQL and Redis): several ``api`` processes, one
    ``feed`` process and any number of ``worker`` processes share the database and the event streams."""
    with cli_errors():
        if role not in ("api", "feed", "worker"):
            raise InvalidInputError(f"--role must be api, feed or worker, got {role!r}")
        settings = load_settings()
        start_logging(settings)
        if settings.is_sqlite:
            raise InvalidInputError(
                "serve runs one role of a multi-process deployment: set DATABASE_URL to a PostgreSQL database "
                "(the embedded SQLite file is for `smart-trader up`, every role in one process)"
            )
        settings.signing_keys()
        sockets = listen(host, port, f"serve --role {role}")
    with _closing_on_error(sockets), cli_errors():
        check_database(settings, runtime=role == "feed")
        if not settings.redis_url and role == "worker":
            console.print(
                "warning: REDIS_URL is not set: this worker reads the outbox itself, one consumer per replica "
                "(set REDIS_URL to share the load between replicas through Redis Streams consumer groups)"
            )
        if not settings.redis_url and role == "api":
            console.print(
                "warning: REDIS_URL is not set: this API process cannot tell a feed process about orders "
                "(the feed polls the database every 0.25 s) nor share WebSocket updates"
            )
        feed = None
        if role == "feed":
            if replay is None and not store and exchange is None:  # like `up`: the packaged sample
                sample = _sample_source(settings, symbol, venue, speed, loop)
                store, symbol, venue, kind, timeframe, speed, loop = sample
            feed = build_feed(
                settings, replay, store, exchange, symbol, venue, speed or "1", bool(loop), kind, timeframe, fmt,
                start, end,
            )  # fmt: skip
            if feed is None:
                raise InvalidInputError(NO_SOURCE)
        console.print(f"Smart Trader {role} on http://{host}:{port}")
    serve_app(settings, role, feed, host, port, sockets)  # type: ignore[arg-type]
