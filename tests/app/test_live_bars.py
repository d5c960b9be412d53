"""``GET /market/bars`` during replays, on the real platform: a replay (looping or not, of ticks or of bars) writes
nothing into the market-data store, its bars are served from memory after the stored ones, and no bar is ever later
than the replay's clock; a feed of new market data (a live exchange) still has its one-minute bars stored.

In process (``create_app``, SQLite) and, marked slow, against real ``smart-trader up`` processes: the two reported
cases (``up --replay <BTC trades> --speed max --loop``, and the default ``up`` replaying the packaged 1-minute
sample)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from smart_trader.app.factory import FeedSpec, create_app
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.schema import Kind, PriceType, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.store import DatasetInfo
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.feeds import MarketEvent, MarketFeed
from smart_trader.live.replay import replay_file, replay_store
from smart_trader.samples import default_sample
from tests.app import servers
from tests.app.conftest import BTC_TRADES, PASSWORD, make_settings, real_trades

MINUTE = 60_000_000_000
BTC = {"symbol": "BTC/USDT", "venue": "BINANCE"}
Get = Callable[..., Any]


def _login(client: TestClient) -> dict[str, str]:
    client.post("/api/v1/auth/register", json={"email": "bars@example.com", "password": PASSWORD})
    token = client.post("/api/v1/auth/token", data={"username": "bars@example.com", "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _clock(get: Get, instrument: dict[str, str]) -> int:
    """The replay clock as the API shows it: the latest trade time (a bar's open time for a bars replay)."""
    r = get("/api/v1/market/quote", params=instrument)
    assert r.status_code == 200, r.text
    return int(r.json()["trade_ts"])


def _bars_before_clock(get: Get, instrument: dict[str, str], **params: Any) -> tuple[list[int], int]:
    """``/market/bars``' open times, checked against the clock read right after the request (which is at least the
    clock the answer was cut at): none later, strictly increasing. Returns them and that clock."""
    r = get("/api/v1/market/bars", params={**instrument, "limit": 10_000, **params})
    assert r.status_code == 200, r.text
    clock = _clock(get, instrument)
    ts = [b["ts_event"] for b in r.json()]
    assert all(t <= clock for t in ts), (ts[-3:], clock)
    assert all(a < b for a, b in itertools.pairwise(ts))
    return ts, clock


def _replay_while(get: Get, instrument: dict[str, str], until: Callable[[list[int], int], bool]) -> list[int]:
    """Check ``/market/bars`` (1m, 5m, 1h) over and over while the replay runs, until ``until(minutes, clock)``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for tf in ("5m", "1h"):
            _bars_before_clock(get, instrument, timeframe=tf)
        minutes, clock = _bars_before_clock(get, instrument, timeframe="1m")
        if until(minutes, clock):
            return minutes
        time.sleep(0.05)
    pytest.fail("the replay did not get there in time")


def _datasets(home: Path) -> list[DatasetInfo]:
    return MarketDataService(home).datasets()


@pytest.fixture
def looping_trades(tmp_path: Path, shared_data: Path) -> Iterator[tuple[TestClient, list[DatasetInfo], int]]:
    """``up --replay <BTC trades> --loop --speed max`` in process: the client, the datasets stored before the app
    started (the trades, imported as ``up`` imports them) and the first trade's time."""
    settings = make_settings(tmp_path, "sqlite", None)
    _inst, trades = real_trades(shared_data, MarketDataService(settings.home_dir))
    before = _datasets(settings.home_dir)

    async def build(svc: MarketDataService) -> MarketFeed:
        return replay_file(svc, shared_data / BTC_TRADES, "BTC/USDT", "BINANCE", speed=None, loop=True)

    app = create_app(settings, "all", FeedSpec(build, None, "looping replay", derive_quotes=True))
    with TestClient(app) as client:
        yield client, before, trades[0].ts_event
    assert _datasets(settings.home_dir) == before  # after shutdown too: nothing was flushed into the store


def test_a_looping_trades_replay_serves_its_own_minutes_and_stores_nothing(
    looping_trades: tuple[TestClient, list[DatasetInfo], int], tmp_path: Path
) -> None:
    client, before, first = looping_trades
    auth = _login(client)

    def get(path: str, **kw: Any) -> Any:
        return client.get(path, headers=auth, **kw)

    start = first - first % MINUTE
    minutes = _replay_while(get, BTC, lambda ts, clock: len(ts) >= 5 and clock >= start + 6 * MINUTE)
    # 46 s of real trades, looping: its own minutes, one after the other from the recording's first
    assert minutes[0] == start and minutes == [start + i * MINUTE for i in range(len(minutes))]
    assert _datasets(tmp_path / "home") == before


def test_a_bars_replay_serves_the_stored_bars_only_up_to_its_clock(tmp_path: Path) -> None:
    """The default ``up``: the packaged 1-minute sample replayed from the store as bars (here 600×, looping). Before,
    ``/market/bars?start=...`` answered with the whole stored sample, hours ahead of the replay."""
    sample = default_sample()
    assert sample is not None
    settings = make_settings(tmp_path, "sqlite", None)
    service = MarketDataService(settings.home_dir)
    for f in sample.files:
        service.import_file(f, symbol=sample.symbol, venue=sample.venue)
    before = service.datasets()
    stored = service.bars(sample.symbol, sample.venue, Timeframe.parse("1m"))
    stored_ts = ts_ns(stored).tolist()

    async def build(svc: MarketDataService) -> MarketFeed:
        return replay_store(svc, sample.symbol, sample.venue, Kind.BARS, Timeframe.parse("1m"), speed=600, loop=True)

    instrument = {"symbol": sample.symbol, "venue": sample.venue}
    app = create_app(settings, "all", FeedSpec(build, "1m", "replay of the sample"))
    with TestClient(app) as client:
        auth = _login(client)

        def get(path: str, **kw: Any) -> Any:
            return client.get(path, headers=auth, **kw)

        deadline = time.monotonic() + 30
        while client.get("/api/v1/market/quote", params=instrument, headers=auth).status_code == 404:
            assert time.monotonic() < deadline, "the replay did not start"
            time.sleep(0.02)
        later, clock = _bars_before_clock(get, instrument, start=stored_ts[-100])  # the reported request
        assert later == [] and clock < stored_ts[-100]
        minutes = _replay_while(get, instrument, lambda ts, _clock: len(ts) >= 5)
        # the first pass is the stored sample itself: its first minutes
        assert minutes == stored_ts[: len(minutes)]
    assert service.datasets() == before


class _LiveTrades:
    """A feed of new market data, as a live exchange feed is (``new_market_data``): here the real BTC/USDT trades,
    then the end."""

    new_market_data = True

    def __init__(self, events: list[MarketEvent]) -> None:
        self.events = events
        self.clock_ns: int | None = None
        self.events_emitted = 0

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        return self._run()

    async def _run(self) -> AsyncIterator[MarketEvent]:
        for e in self.events:
            self.clock_ns = e.ts_event
            self.events_emitted += 1
            yield e


def test_the_minutes_of_new_market_data_are_still_stored(tmp_path: Path, shared_data: Path) -> None:
    settings = make_settings(tmp_path, "sqlite", None)
    _inst, trades = real_trades(shared_data, MarketDataService(settings.home_dir))
    feed = _LiveTrades(list(trades))

    async def build(_svc: MarketDataService) -> MarketFeed:
        return feed

    app = create_app(settings, "all", FeedSpec(build, None, "live trades"))
    key = DatasetKey("BINANCE", "BTC/USDT", Kind.BARS, Timeframe.parse("1m"), PriceType.LAST)
    with TestClient(app) as client:
        auth = _login(client)
        deadline = time.monotonic() + 30
        while not any(d.key == key for d in _datasets(settings.home_dir)):
            assert time.monotonic() < deadline, "the live minute was not stored"
            time.sleep(0.05)
        bars = client.get("/api/v1/market/bars", params={**BTC, "timeframe": "1m"}, headers=auth).json()
    [recorded] = [d for d in _datasets(settings.home_dir) if d.key == key]
    assert recorded.rows == 1 and len(bars) == 1
    assert bars[0]["ts_event"] == trades[0].ts_event - trades[0].ts_event % MINUTE
    assert Decimal(bars[0]["open"]) == trades[0].price and Decimal(bars[0]["close"]) == trades[-1].price
    assert Decimal(bars[0]["volume"]) == sum((t.size for t in trades), Decimal(0))


def _server_get(server: servers.Server, headers: dict[str, str]) -> Get:
    def get(path: str, **kw: Any) -> Any:
        return httpx.get(server.url + path, headers=headers, timeout=10, **kw)

    return get


@pytest.mark.slow
def test_up_looping_a_trades_replay_at_max_speed_leaves_the_store_as_it_was(tmp_path: Path, shared_data: Path) -> None:
    """The reported case: ``up --replay <BTC trades> --symbol BTC/USDT --venue BINANCE --speed max --loop``."""
    home = tmp_path / "home"
    server = servers.start(
        servers.replay_args(["up"], shared_data, "max"),
        {"SMART_TRADER_HOME": str(home), "DATABASE_URL": "", "REDIS_URL": ""},
        tmp_path / "server.log",
    )
    try:
        server.wait_ready()
        before = _datasets(home)  # the trades, imported by `up`
        assert [d.key.kind for d in before] == [Kind.TRADES]
        get = _server_get(server, servers.login(server.url, "loop@example.com"))
        minutes = _replay_while(get, BTC, lambda ts, _clock: len(ts) >= 5)
        assert minutes == [minutes[0] + i * MINUTE for i in range(len(minutes))]
    finally:
        assert server.stop() in (0, -15), server.log_tail()
    assert _datasets(home) == before


@pytest.mark.slow
def test_the_default_up_serves_no_bar_beyond_its_replay_clock(tmp_path: Path) -> None:
    """The reported case: the default ``up`` (the packaged sample as stored bars, 60×) and
    ``/market/bars?...&start=1651700000000000000`` (2022-05-04 21:33 UTC) while the clock is minutes into the day."""
    sample = default_sample()
    assert sample is not None
    home = tmp_path / "home"
    server = servers.start(
        ["up"], {"SMART_TRADER_HOME": str(home), "DATABASE_URL": "", "REDIS_URL": ""}, tmp_path / "server.log"
    )
    instrument = {"symbol": sample.symbol, "venue": sample.venue}
    try:
        server.wait_ready()
        before = _datasets(home)
        get = _server_get(server, servers.login(server.url, "default@example.com"))
        later, clock = _bars_before_clock(get, instrument, start=1_651_700_000_000_000_000)
        assert later == [] and clock < 1_651_700_000_000_000_000
        minutes = _replay_while(get, instrument, lambda ts, _clock: len(ts) >= 3)
        assert minutes[0] == 1_651_622_400_000_000_000  # 2022-05-04 00:00, the sample's first minute
    finally:
        assert server.stop() in (0, -15), server.log_tail()
    assert _datasets(home) == before
