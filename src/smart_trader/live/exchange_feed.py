"""Live trades and top-of-book quotes of one symbol from a crypto exchange through ccxt: :class:`ExchangeFeed`.

Websocket streams (ccxt.pro ``watch_trades``, ``watch_ticker`` or ``watch_order_book``) are used where the
exchange's ``has`` says it supports them, REST polling (``fetch_trades`` from a ``since`` cursor,
``fetch_ticker`` or ``fetch_order_book(limit=5)``) otherwise. Trades are de-duplicated by trade id (polling
from an inclusive cursor, and reconnecting streams, deliver some trades twice); an unchanged quote is not
repeated. ccxt's floats become exact fixed-point integers with :func:`~smart_trader.data.schema.raw_from_float`
(a value with more decimals than the instrument's precision raises, never rounds).

Network failures (``ccxt.NetworkError``: timeouts, resets, rate limits, exchange not available) are retried
forever with exponential backoff (capped); only the very first call (``load_markets``) failing means the
exchange is unreachable: :class:`~smart_trader.live.feeds.FeedUnavailableError`.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import numpy as np
import numpy.typing as npt
from ccxt.base.decimal_to_precision import TICK_SIZE

from smart_trader.core.clock import NS_PER_MS, now_ns
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import instrument_id
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.data.model import Quote, Trade
from smart_trader.data.schema import raw_from_float
from smart_trader.live.feeds import FeedUnavailableError, MarketEvent

log = logging.getLogger(__name__)


def make_live_exchange(name: str) -> Any:
    """An async ccxt exchange for ``name`` (ccxt id, e.g. ``"binance"``): ccxt.pro (websockets and REST) when
    it has the exchange, else ccxt's async REST client; rate limiter on. Nothing is sent here.

    Raises:
        InvalidInputError: ``name`` is not a ccxt exchange id (the message lists close matches).
    """
    key = name.strip().lower()
    module: Any = ccxt_pro if key in ccxt_pro.exchanges else ccxt_async
    if key not in ccxt.exchanges:
        close = difflib.get_close_matches(key, ccxt.exchanges, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges for the list)"
        raise InvalidInputError(f"unknown exchange {name!r}{hint}")
    return getattr(module, key)({"enableRateLimit": True})


class ExchangeFeed:
    """Live trades and quotes of one symbol as an async iterator of :class:`Trade` and :class:`Quote`.

    ``async for event in feed`` starts the feed when needed (:meth:`start`), runs the trade and quote
    streams concurrently and yields their events with ``ts_event`` = the exchange's timestamp (ms precision,
    as ns UTC; the local clock when the exchange gives none). Time never goes back: an event stamped before
    the previous one (the two streams are not synchronized) is yielded with the previous one's time.
    Leaving the loop (break, cancel) stops the streams; :meth:`close` also closes the exchange.

    Args:
        exchange: an *async* ccxt exchange (ccxt.pro for websockets; see :func:`make_live_exchange`).
        symbol: ccxt unified symbol, e.g. ``"BTC/USDT"``.
        instrument: its definition (precisions, id); derived from the exchange's market when ``None``.
        trades, quotes: which streams to run.
        use_websocket: ``None`` = websockets where ``exchange.has`` says so, ``False`` = always poll.
        poll_interval_s: seconds between two polls of one stream.
        backoff_s: wait after a network failure, doubled on each further failure in a row, at most
            ``max_backoff_s``.
        dedup_window: trade ids remembered to drop repeats.
        clock: current time, ns UTC (the polling cursor starts at the feed's start time; quotes without a
            timestamp get this time).

    Attributes:
        clock_ns: ``ts_event`` of the last event yielded, ``None`` before the first.
        events_emitted: events yielded so far.
        modes: ``{"trades": "websocket" | "polling", "quotes": ...}`` once started.
        last_error: the last network failure, ``None`` when the last call succeeded.

    Raises:
        InvalidInputError: on construction, no stream asked for or a non-positive interval.
    """

    new_market_data = True  # a venue's live data: the platform stores the bars built from it (feeds.is_new_market_data)

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        instrument: Instrument | None = None,
        *,
        trades: bool = True,
        quotes: bool = True,
        use_websocket: bool | None = None,
        poll_interval_s: float = 1.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        dedup_window: int = 10_000,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        if not (trades or quotes):
            raise InvalidInputError("an exchange feed needs trades, quotes or both")
        if poll_interval_s <= 0 or backoff_s <= 0:
            raise InvalidInputError("poll_interval_s and backoff_s must be positive")
        self.exchange = exchange
        self.symbol = symbol
        self.instrument = instrument
        self._want = {"trades": trades, "quotes": quotes}
        self._use_websocket = use_websocket
        self.poll_interval_s = poll_interval_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._seen: OrderedDict[object, None] = OrderedDict()
        self._dedup_window = dedup_window
        self._last_quote: tuple[int, int, int | None, int | None] | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=10_000)
        self._started_ns = 0
        self.modes: dict[str, str] = {}
        self.clock_ns: int | None = None
        self.events_emitted = 0
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        """The exchange's ccxt id."""
        return str(getattr(self.exchange, "id", type(self.exchange).__name__))

    async def start(self) -> None:
        """Load the exchange's markets, check the symbol, derive the instrument if none was given, and pick
        websocket or polling for each stream. Called by the first iteration when not called before.

        Raises:
            FeedUnavailableError: the exchange cannot be reached (``ccxt.NetworkError``, including
                ``ExchangeNotAvailable`` and timeouts); the message says how to replay recorded data instead.
            NotFoundError: the exchange has no such symbol (the message lists close matches).
            InvalidInputError: the market states no usable precision (instrument derivation only).
        """
        try:
            markets: dict[str, Any] = await self.exchange.load_markets()
        except ccxt.NetworkError as exc:
            raise FeedUnavailableError(
                f"cannot reach {self.name} ({type(exc).__name__}: {exc}): start with --replay FILE --symbol S "
                "--venue V to replay recorded data, or check the network"
            ) from exc
        if self.symbol not in markets:
            close = difflib.get_close_matches(self.symbol, list(markets), n=5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise NotFoundError(f"{self.name} has no market {self.symbol!r}{hint}")
        if self.instrument is None:
            self.instrument = instrument_from_market(self.exchange, markets[self.symbol])
        has: dict[str, Any] = getattr(self.exchange, "has", {}) or {}
        ws = self._use_websocket is not False
        if self._want["trades"]:
            self.modes["trades"] = "websocket" if ws and has.get("watchTrades") else "polling"
        if self._want["quotes"]:
            self.modes["quotes"] = (
                "websocket" if ws and (has.get("watchTicker") or has.get("watchOrderBook")) else "polling"
            )
        self._started_ns = self._clock()

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        """The events; see the class docstring. Errors other than network failures end the iteration."""
        return self._run()

    async def close(self) -> None:
        """Close the exchange's connections (``exchange.close()``)."""
        close: Callable[[], Awaitable[Any]] | None = getattr(self.exchange, "close", None)
        if close is not None:
            await close()

    async def _run(self) -> AsyncIterator[MarketEvent]:
        if not self.modes:
            await self.start()
        streams = []
        if "trades" in self.modes:
            streams.append(asyncio.create_task(self._forward(self._trades_loop)))
        if "quotes" in self.modes:
            streams.append(asyncio.create_task(self._forward(self._quotes_loop)))
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Trade | Quote)
                event: MarketEvent = item
                if self.clock_ns is not None and event.ts_event < self.clock_ns:
                    event = event._replace(ts_event=self.clock_ns)
                self.clock_ns = event.ts_event
                self.events_emitted += 1
                yield event
        finally:
            for task in streams:
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)

    async def _forward(self, stream: Callable[[], Awaitable[None]]) -> None:
        """Run one stream; an error that is not a network failure is handed to the consumer."""
        try:
            await stream()
        except Exception as exc:  # the consumer re-raises it
            await self._queue.put(exc)

    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await fn(*args)``, retried on ``ccxt.NetworkError`` with exponential backoff, forever."""
        failures = 0
        while True:
            try:
                result = await fn(*args)
            except ccxt.NetworkError as exc:
                failures += 1
                delay = min(self.backoff_s * 2 ** (failures - 1), self.max_backoff_s)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s %s failed (%s); retry %d in %.1f s", self.name, what, self.last_error, failures, delay)
                await asyncio.sleep(delay)
                continue
            self.last_error = None
            return result

    async def _trades_loop(self) -> None:
        ws = self.modes["trades"] == "websocket"
        since_ms = self._started_ns // NS_PER_MS
        while True:
            if ws:
                page = await self._call("watch_trades", self.exchange.watch_trades, self.symbol)
            else:
                page = await self._call("fetch_trades", self.exchange.fetch_trades, self.symbol, since_ms)
            fresh = [t for t in sorted(page, key=lambda t: int(t["timestamp"])) if self._is_new(t)]
            for trade in self._trades(fresh):
                await self._queue.put(trade)
            if not ws:
                if page:  # inclusive cursor: more trades of the last millisecond may come; ids drop repeats
                    since_ms = max(since_ms, max(int(t["timestamp"]) for t in page))
                await asyncio.sleep(self.poll_interval_s)

    async def _quotes_loop(self) -> None:
        ex, has = self.exchange, getattr(self.exchange, "has", {}) or {}
        ws = self.modes["quotes"] == "websocket"
        while True:
            if ws and has.get("watchTicker"):
                quote = self._quote_from_ticker(await self._call("watch_ticker", ex.watch_ticker, self.symbol))
            elif ws:
                quote = self._quote_from_book(await self._call("watch_order_book", ex.watch_order_book, self.symbol))
            elif has.get("fetchTicker", True):
                quote = self._quote_from_ticker(await self._call("fetch_ticker", ex.fetch_ticker, self.symbol))
            else:
                quote = self._quote_from_book(await self._call("fetch_order_book", ex.fetch_order_book, self.symbol, 5))
            if quote is not None:
                await self._queue.put(quote)
            if not ws:
                await asyncio.sleep(self.poll_interval_s)

    def _is_new(self, trade: dict[str, Any]) -> bool:
        tid = trade.get("id")
        key: object = str(tid) if tid is not None else (trade["timestamp"], trade["price"], trade["amount"])
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._dedup_window:
            self._seen.popitem(last=False)
        return True

    def _trades(self, trades: Sequence[dict[str, Any]]) -> list[Trade]:
        if not trades:
            return []
        inst = self._inst()
        where = f"{self.name} {self.symbol} trades"
        price = raw_from_float(_floats(t["price"] for t in trades), inst.price_precision, file=where, column="price")
        size = raw_from_float(_floats(t["amount"] for t in trades), inst.size_precision, file=where, column="amount")
        return [
            Trade(
                inst.id,
                int(t["timestamp"]) * NS_PER_MS,
                int(p),
                int(s),
                t.get("side") if t.get("side") in ("buy", "sell") else None,
                None if t.get("id") is None else str(t["id"]),
                inst.price_precision,
                inst.size_precision,
            )
            for t, p, s in zip(trades, price, size, strict=True)
        ]

    def _quote_from_ticker(self, ticker: dict[str, Any]) -> Quote | None:
        return self._quote(
            ticker.get("timestamp"),
            ticker.get("bid"),
            ticker.get("ask"),
            ticker.get("bidVolume"),
            ticker.get("askVolume"),
        )

    def _quote_from_book(self, book: dict[str, Any]) -> Quote | None:
        bids, asks = book.get("bids") or [], book.get("asks") or []
        if not bids or not asks:
            return None
        return self._quote(book.get("timestamp"), bids[0][0], asks[0][0], bids[0][1], asks[0][1])

    def _quote(self, ts_ms: Any, bid: Any, ask: Any, bid_size: Any, ask_size: Any) -> Quote | None:
        """A quote, or ``None`` when the source has no bid or ask or nothing changed since the last one."""
        if bid is None or ask is None:
            return None
        inst = self._inst()
        where = f"{self.name} {self.symbol} quotes"
        pp, sp = inst.price_precision, inst.size_precision
        prices = raw_from_float(_floats((bid, ask)), pp, file=where, column="bid/ask")
        sizes = [
            None if v is None else int(raw_from_float(_floats((v,)), sp, file=where, column=name)[0])
            for v, name in ((bid_size, "bidVolume"), (ask_size, "askVolume"))
        ]
        values = (int(prices[0]), int(prices[1]), sizes[0], sizes[1])
        if values == self._last_quote:
            return None
        self._last_quote = values
        ts = self._clock() if ts_ms is None else int(ts_ms) * NS_PER_MS
        return Quote(inst.id, ts, *values, pp, sp)

    def _inst(self) -> Instrument:
        assert self.instrument is not None, "start() sets the instrument"
        return self.instrument


def instrument_from_market(exchange: Any, market: dict[str, Any]) -> Instrument:
    """An :class:`Instrument` from a ccxt market (after ``load_markets``): tick and lot sizes from its
    ``precision`` (tick sizes, or decimals), ``limits.cost.min`` as minimum notional; crypto for spot markets,
    future (multiplier = ``contractSize``) for contracts. The venue is the exchange id upper-cased.

    Raises:
        InvalidInputError: the market states no price or amount precision, or states it in significant digits.
    """
    precision = market.get("precision") or {}

    def step(which: str) -> Decimal:
        value = precision.get(which)
        if value is None:
            raise InvalidInputError(f"{exchange.id} states no {which} precision for {market.get('symbol')}")
        if getattr(exchange, "precisionMode", TICK_SIZE) == TICK_SIZE:
            return Decimal(str(value))
        if float(value) != int(value):
            raise InvalidInputError(f"{exchange.id} states {which} precision {value!r} in significant digits")
        return Decimal(1).scaleb(-int(value))

    contract = bool(market.get("contract"))
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min")
    instrument = Instrument.create(
        str(market["symbol"]),
        str(exchange.id),
        asset_class=AssetClass.FUTURE if contract else AssetClass.CRYPTO,
        base_currency=str(market["base"]),
        quote_currency=str(market["quote"]),
        tick_size=step("price"),
        lot_size=step("amount"),
        min_notional=Decimal(str(min_cost)) if min_cost else 0,
        multiplier=Decimal(str(market.get("contractSize") or 1)) if contract else 1,
    )
    assert instrument.id == instrument_id(str(market["symbol"]), str(exchange.id))
    return instrument


def _floats(values: Any) -> npt.NDArray[np.float64]:
    return np.array([float(v) for v in values], dtype=np.float64)
