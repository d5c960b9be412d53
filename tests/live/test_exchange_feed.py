"""ExchangeFeed without internet: a fake async exchange answered by a *real* ccxt binance client over the
recorded Binance REST payloads (tests/data/payloads), so ccxt's market and trade parsing runs for real; only
the network is fake. Quotes come from the real Binance book-ticker recording in ../shared/data."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from smart_trader.core.errors import NotFoundError, TemporaryError
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.data.model import Quote, Trade
from smart_trader.data.readers import read_file
from smart_trader.data.schema import ts_ns
from smart_trader.live.exchange_feed import ExchangeFeed, make_live_exchange
from smart_trader.live.feeds import FeedUnavailableError, MarketEvent
from tests.data.test_download import AGG_TRADES, FIRST_TRADE_MS, MS, RecordedBinance

from .conftest import drain, pairwise_non_decreasing, take

TRADE_IDS = [str(t["a"]) for t in AGG_TRADES]  # 966492862 .. 966492871


class GrowingBinance(RecordedBinance):
    """The recorded aggTrades endpoint, showing one more batch of the recorded trades on each request (as if
    they were happening now)."""

    def __init__(self, per_request: int) -> None:
        super().__init__()
        self.visible = 0
        self.per_request = per_request
        self.delivered = 0

    def _agg_trades(self, q: dict[str, str]) -> list[Any]:
        self.visible = min(self.visible + self.per_request, len(AGG_TRADES))
        shown = {t["a"] for t in AGG_TRADES[: self.visible]}
        rows = [t for t in super()._agg_trades(q) if t["a"] in shown]
        self.delivered += len(rows)
        return rows


class FakeBinance:
    """The async ccxt surface :class:`ExchangeFeed` uses; REST answers come from a real sync ccxt binance
    client talking to a recorded session, websocket messages are batches ccxt parsed from the same payloads.

    Args:
        session: the recorded HTTP session.
        ws_trades: websocket batches of raw aggTrades (``None`` = no websocket support); an exception in the
            list is raised by that ``watch_trades`` call (a dropped connection).
        tickers: Binance bookTicker payloads with a ``T`` (ms) timestamp, served in turn by ``fetch_ticker``
            (the last one again when exhausted).
        unreachable: raised by ``load_markets`` (no network).
        trade_failures: raised by the next ``fetch_trades`` calls, one each.
        ws_tickers: serve the tickers through ``watch_ticker`` (websocket) instead of ``fetch_ticker``.
    """

    id = "binance"

    def __init__(
        self,
        session: RecordedBinance,
        *,
        ws_trades: list[Any] | None = None,
        tickers: list[dict[str, Any]] | None = None,
        unreachable: Exception | None = None,
        trade_failures: list[Exception] | None = None,
        ws_tickers: bool = False,
    ) -> None:
        self.rest = ccxt.binance(
            {
                "enableRateLimit": True,
                "rateLimit": 1,
                "session": session,
                "options": {"fetchMarkets": {"types": ["spot"]}},
            }
        )
        self.precisionMode = self.rest.precisionMode
        self.has = {
            "fetchTrades": True,
            "fetchTicker": True,
            "watchTrades": ws_trades is not None,
            "watchTicker": ws_tickers,
        }
        self.ticker_calls: list[str] = []
        self._ws: Iterator[Any] = iter(ws_trades or [])
        self._tickers = list(tickers or [])
        self.unreachable = unreachable
        self.trade_failures = list(trade_failures or [])
        self.since: list[int | None] = []
        self.closed = False

    async def load_markets(self) -> dict[str, Any]:
        if self.unreachable is not None:
            raise self.unreachable
        markets: dict[str, Any] = self.rest.load_markets()
        return markets

    async def fetch_trades(self, symbol: str, since: int | None = None) -> list[Any]:
        self.since.append(since)
        if self.trade_failures:
            raise self.trade_failures.pop(0)
        trades: list[Any] = self.rest.fetch_trades(symbol, since)
        return trades

    async def watch_trades(self, symbol: str) -> list[Any]:
        batch = next(self._ws, None)
        if batch is None:
            await asyncio.Event().wait()  # no more messages: wait like an idle stream
        if isinstance(batch, Exception):
            raise batch
        trades: list[Any] = self.rest.parse_trades(batch, self.rest.market(symbol))
        return trades

    async def watch_ticker(self, symbol: str) -> dict[str, Any]:
        self.ticker_calls.append("watch")
        if not self._tickers:
            await asyncio.Event().wait()  # the stream sends only changes: nothing more
        payload = self._tickers.pop(0)
        return self._parse_ticker(payload, symbol)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        self.ticker_calls.append("fetch")
        return await self._ticker(symbol)

    async def _ticker(self, symbol: str) -> dict[str, Any]:
        payload = self._tickers.pop(0) if len(self._tickers) > 1 else self._tickers[0]
        return self._parse_ticker(payload, symbol)

    def _parse_ticker(self, payload: dict[str, Any], symbol: str) -> dict[str, Any]:
        ticker: dict[str, Any] = self.rest.parse_ticker(payload, self.rest.market(symbol))
        ticker["timestamp"] = payload["T"]
        return ticker

    async def close(self) -> None:
        self.closed = True


def _btc_2021_01(lot: str = "0.000001") -> Instrument:
    """BTC/USDT on Binance as in January 2021 (the quote recording's precisions)."""
    return Instrument.create(
        "BTC/USDT", "binance", asset_class=AssetClass.CRYPTO, base_currency="BTC", quote_currency="USDT",
        tick_size="0.01", lot_size=lot,
    )  # fmt: skip


def _trades_only(ex: FakeBinance, **kwargs: Any) -> ExchangeFeed:
    return ExchangeFeed(
        ex,
        "BTC/USDT",
        quotes=False,
        poll_interval_s=0.001,
        backoff_s=0.001,
        clock=lambda: FIRST_TRADE_MS * MS,
        **kwargs,
    )


def _check_recorded_trades(events: list[MarketEvent]) -> None:
    assert all(type(e) is Trade for e in events)
    trades = [e for e in events if isinstance(e, Trade)]
    assert [t.trade_id for t in trades] == TRADE_IDS
    assert [t.price for t in trades] == [Decimal(r["p"]) for r in AGG_TRADES]
    assert [t.size for t in trades] == [Decimal(r["q"]) for r in AGG_TRADES]
    assert [t.ts_event for t in trades] == [r["T"] * MS for r in AGG_TRADES]
    assert [t.aggressor_side for t in trades] == ["sell" if r["m"] else "buy" for r in AGG_TRADES]
    assert {(t.price_precision, t.size_precision) for t in trades} == {(2, 5)}  # tickSize 0.01, stepSize 0.00001
    assert {t.instrument_id for t in trades} == {"BTC/USDT.BINANCE"}


def test_polling_yields_each_recorded_trade_once_from_an_inclusive_since_cursor() -> None:
    session = GrowingBinance(per_request=3)
    ex = FakeBinance(session)
    feed = _trades_only(ex)

    events = drain(feed, limit=10)

    _check_recorded_trades(events)
    assert feed.modes == {"trades": "polling"}
    assert session.delivered > 10  # the cursor is inclusive: trades came again, and were dropped by id
    assert ex.since[0] == FIRST_TRADE_MS  # starts at the feed's start time
    assert ex.since[1:4] == [AGG_TRADES[i]["T"] for i in (2, 5, 8)]  # then the last trade seen
    assert feed.instrument is not None and feed.instrument.tick_size == Decimal("0.01")
    assert feed.events_emitted == 10 and feed.clock_ns == AGG_TRADES[-1]["T"] * MS


def test_polling_retries_network_failures_with_backoff() -> None:
    ex = FakeBinance(
        GrowingBinance(per_request=10),
        trade_failures=[ccxt.RequestTimeout("binance GET timed out"), ccxt.NetworkError("connection reset")],
    )
    feed = _trades_only(ex)

    events = drain(feed, limit=10)

    _check_recorded_trades(events)
    assert ex.since[:3] == [FIRST_TRADE_MS] * 3  # two failures, then the same request succeeded
    assert feed.last_error is None


def test_websocket_trades_are_deduplicated_by_id_across_overlapping_messages_and_a_reconnect() -> None:
    ws = [AGG_TRADES[0:4], AGG_TRADES[2:6], ccxt.NetworkError("socket closed"), AGG_TRADES[5:10], AGG_TRADES[0:10]]
    ex = FakeBinance(RecordedBinance(), ws_trades=ws)
    feed = _trades_only(ex)

    async def run() -> list[MarketEvent]:
        events = await take(feed, 10)
        await asyncio.sleep(0.05)  # the last message repeats everything: nothing more may come
        assert feed._queue.empty()
        return events

    events = asyncio.run(asyncio.wait_for(run(), 20))

    _check_recorded_trades(events)
    assert feed.modes == {"trades": "websocket"}
    assert ex.since == []  # no REST polling


def test_polled_quotes_are_exact_and_unchanged_quotes_are_not_repeated(shared_data: Path) -> None:
    table = read_file(shared_data / "quotes/BTCUSDT.binance.quotes.parquet").table.slice(0, 20)
    rows = table.to_pylist()
    ts = ts_ns(table).tolist()
    payloads = [
        {
            "symbol": "BTCUSDT",
            "bidPrice": str(r["bid_price"]),
            "bidQty": str(r["bid_size"]),
            "askPrice": str(r["ask_price"]),
            "askQty": str(r["ask_size"]),
            "T": t // MS,
        }
        for r, t in zip(rows, ts, strict=True)
    ]
    payloads = [payloads[0], payloads[0], *payloads[1:]]  # one poll sees no change
    ex = FakeBinance(RecordedBinance(), tickers=payloads)
    feed = ExchangeFeed(ex, "BTC/USDT", _btc_2021_01(), trades=False, poll_interval_s=0.001)

    events = drain(feed, limit=20)

    assert all(type(e) is Quote for e in events)
    quotes = [e for e in events if isinstance(e, Quote)]
    assert [q.ts_event for q in quotes] == ts
    assert [q.bid for q in quotes] == [r["bid_price"] for r in rows]
    assert [q.ask for q in quotes] == [r["ask_price"] for r in rows]
    sizes = [(int(r["bid_size"].scaleb(6)), int(r["ask_size"].scaleb(6))) for r in rows]
    assert [(q.bid_size_raw, q.ask_size_raw) for q in quotes] == sizes
    assert quotes[0].bid == Decimal("39432.99")
    assert feed.modes == {"quotes": "polling"}


def test_websocket_quotes_come_from_watch_ticker() -> None:
    book = {"symbol": "BTCUSDT", "bidPrice": "60759.59", "bidQty": "0.5", "askPrice": "60759.60", "askQty": "0.25"}
    tickers = [{**book, "T": FIRST_TRADE_MS}, {**book, "askPrice": "60760.01", "T": FIRST_TRADE_MS + 7}]
    ex = FakeBinance(RecordedBinance(), tickers=tickers, ws_tickers=True)
    feed = ExchangeFeed(ex, "BTC/USDT", trades=False)

    events = drain(feed, limit=2)

    assert feed.modes == {"quotes": "websocket"}
    assert set(ex.ticker_calls) == {"watch"}
    assert events == [
        Quote(events[0].instrument_id, FIRST_TRADE_MS * MS, 6075959, 6075960, 50000, 25000, 2, 5),
        Quote(events[0].instrument_id, (FIRST_TRADE_MS + 7) * MS, 6075959, 6076001, 50000, 25000, 2, 5),
    ]


def test_trades_and_quotes_together_never_go_back_in_time() -> None:
    late = {"symbol": "BTCUSDT", "bidPrice": "60759.59", "bidQty": "1", "askPrice": "60759.60", "askQty": "2"}
    tickers = [{**late, "T": AGG_TRADES[0]["T"] - 5_000}, {**late, "bidQty": "3", "T": AGG_TRADES[0]["T"] - 4_000}]
    ex = FakeBinance(GrowingBinance(per_request=2), tickers=tickers)
    feed = ExchangeFeed(ex, "BTC/USDT", poll_interval_s=0.001, clock=lambda: FIRST_TRADE_MS * MS)

    events = drain(feed, limit=12)

    assert pairwise_non_decreasing([e.ts_event for e in events])
    assert sum(isinstance(e, Quote) for e in events) == 2
    assert [e.trade_id for e in events if isinstance(e, Trade)] == TRADE_IDS
    assert feed.modes == {"trades": "polling", "quotes": "polling"}


def test_unreachable_exchange_at_start_raises_feed_unavailable_with_how_to_replay() -> None:
    ex = FakeBinance(RecordedBinance(), unreachable=ccxt.ExchangeNotAvailable("binance GET exchangeInfo failed"))
    feed = ExchangeFeed(ex, "BTC/USDT")

    with pytest.raises(FeedUnavailableError) as info:
        drain(feed, limit=1)

    assert isinstance(info.value, TemporaryError)
    message = str(info.value)
    assert "cannot reach binance" in message
    assert "--replay FILE --symbol S --venue V" in message
    assert "ExchangeNotAvailable" in message


def test_a_real_ccxt_pro_client_without_network_raises_feed_unavailable() -> None:
    with socket.socket() as s:  # a local port nothing listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def run() -> None:
        ex = make_live_exchange("binance")
        assert isinstance(ex, ccxt.pro.binance)
        ex.httpsProxy = f"http://127.0.0.1:{port}"
        ex.options["fetchMarkets"] = {"types": ["spot"]}
        feed = ExchangeFeed(ex, "BTC/USDT")
        try:
            await take(feed, 1)
        finally:
            await feed.close()

    with pytest.raises(FeedUnavailableError, match="cannot reach binance"):
        asyncio.run(asyncio.wait_for(run(), 20))


def test_unknown_symbol_and_unknown_exchange_are_named() -> None:
    with pytest.raises(NotFoundError, match="BTC/USDX"):
        drain(ExchangeFeed(FakeBinance(RecordedBinance()), "BTC/USDX"), limit=1)
    with pytest.raises(ValueError, match="binance"):
        make_live_exchange("binanse")


def test_a_price_finer_than_the_instrument_raises_instead_of_rounding() -> None:
    ex = FakeBinance(GrowingBinance(per_request=10))
    coarse = Instrument.create(
        "BTC/USDT", "binance", asset_class=AssetClass.CRYPTO, base_currency="BTC", quote_currency="USDT",
        tick_size="0.01", lot_size="0.0001",
    )  # fmt: skip
    feed = ExchangeFeed(ex, "BTC/USDT", coarse, quotes=False, clock=lambda: FIRST_TRADE_MS * MS)

    with pytest.raises(ValueError, match="amount"):
        drain(feed, limit=1)
