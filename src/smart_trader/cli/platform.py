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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from smart_trader.core.clock import parse_utc
from smart_trader.core.errors import InvalidInputError
from smart_trader.data.timeframes import Timeframe
from smart_trader.samples import Sample, default_sample
from smart_trader.settings import Settings

from .common import cli_errors, console
from .common import settings as load_settings

if TYPE_CHECKING:
    from smart_trader.app.factory import FeedSpec
    from smart_trader.data.service import MarketDataService
    from smart_trader.live.feeds import MarketFeed

Role = Literal["all", "api", "feed"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
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


def serve_app(settings: Settings, role: Role, feed: FeedSpec | None, host: str, port: int) -> None:
    """Run the role's app under uvicorn (uvloop, httptools) until SIGINT/SIGTERM; in-flight requests finish,
    then the runtime writes what it holds and the database closes."""
    import uvicorn

    from smart_trader.app.factory import create_app

    app = create_app(settings, role, feed)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=10,
        access_log=False,
    )
    uvicorn.Server(config).run()


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
    from smart_trader.ops.logging import configure_logging

    with cli_errors():
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_json)
        settings.check_production(exposed=host not in LOOPBACK)
        if replay is None and not store and exchange is None:
            sample = default_sample()
            if sample is None:
                raise InvalidInputError(NO_SOURCE)
            if symbol is not None or venue is not None:
                raise InvalidInputError("--symbol/--venue name the instrument of --replay, --store or --exchange")
            console.print(f"no source given: replaying {sample.description}")
            _import_sample(settings, sample)
            store, symbol, venue, kind, timeframe = True, sample.symbol, sample.venue, sample.kind, sample.timeframe
            speed = speed or sample.speed
            loop = True if loop is None else loop
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
    serve_app(settings, "all", feed, host, port)


def _import_sample(settings: Settings, sample: Sample) -> None:
    """Import the packaged sample's files into the store (idempotent: a second ``up`` adds nothing)."""
    from smart_trader.data.service import MarketDataService

    service = MarketDataService(settings.home_dir)
    for file in sample.files:
        service.import_file(file, symbol=sample.symbol, venue=sample.venue)


def serve(
    role: Annotated[str, typer.Option(help="api (REST + WebSocket) or feed (market data, broker, portfolio)")],
    replay: ReplayOpt = None,
    store: StoreOpt = False,
    exchange: ExchangeOpt = None,
    symbol: SymbolOpt = None,
    venue: VenueOpt = None,
    speed: SpeedOpt = "1",
    loop: LoopOpt = None,
    kind: KindOpt = None,
    timeframe: TimeframeOpt = None,
    fmt: FormatOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    host: HostOpt = "0.0.0.0",
    port: PortOpt = 8000,
) -> None:
    """Run one role against DATABASE_URL and REDIS_URL (PostgreSQL and Redis): several ``api`` processes and one
    ``feed`` process share the database and the event stream."""
    from smart_trader.ops.logging import configure_logging

    with cli_errors():
        if role not in ("api", "feed"):
            raise InvalidInputError(f"--role must be api or feed, got {role!r}")
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_json)
        settings.check_production(exposed=True)
        if settings.is_sqlite:
            raise InvalidInputError(
                "serve runs one role of a multi-process deployment: set DATABASE_URL to a PostgreSQL database "
                "(the embedded SQLite file is for `smart-trader up`, every role in one process)"
            )
        if not settings.redis_url and role == "api":
            console.print(
                "warning: REDIS_URL is not set: this API process cannot tell a feed process about orders "
                "(the feed polls the database every 0.25 s) nor share WebSocket updates"
            )
        feed = None
        if role == "feed":
            feed = build_feed(
                settings, replay, store, exchange, symbol, venue, speed or "1", bool(loop), kind, timeframe, fmt,
                start, end,
            )  # fmt: skip
            if feed is None:
                raise InvalidInputError(NO_SOURCE)
    serve_app(settings, role, feed, host, port)  # type: ignore[arg-type]
