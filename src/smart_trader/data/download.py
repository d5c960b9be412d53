"""Download bars (OHLCV) and trades from crypto exchanges through ccxt: paginated, resumable, rate limited.

A :class:`Downloader` wraps one ccxt *sync* exchange (built by :func:`make_exchange`, or by the caller
with ``enableRateLimit=True``) and turns a :class:`DownloadRequest` into normalized Arrow tables, one
per exchange page, in the schemas of :mod:`smart_trader.data.schema`.

Pagination:

- **bars** — the next page starts at the last bar's open + timeframe. The bar still forming at download
  time is left out and ends the download: stored, it would stay incomplete, since a resume starts
  after it.
- **trades** — the next page starts at the last trade's time + 1 ms. On a *full* page the trades of its
  last millisecond are held back for the next page (more trades of that millisecond may follow), so
  every page ends on a complete millisecond and resuming after the last stored ``ts_event`` loses
  nothing. Exchanges that page trades by id (Binance ``fromId``) continue by id after the first page;
  an empty Binance time window (``fetch_trades(since)`` covers one hour) is stepped over.
- Rows the previous page already delivered are dropped; a page that brings nothing new and does not
  move the cursor raises :class:`DownloadStalledError` instead of looping.

Rate limit: ccxt throttles every request (``enableRateLimit``; ``rateLimit`` ms per unit of endpoint
cost) — this module never sleeps for it. Network failures and HTTP 418/429 (``ccxt.NetworkError``,
``ccxt.RateLimitExceeded``) are retried with exponential backoff a bounded number of times, then raise
:class:`~smart_trader.core.errors.TemporaryError`.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from smart_trader.core.clock import NS_PER_MS, now_ns, ns_to_datetime
from smart_trader.core.errors import InvalidInputError, NotFoundError, SmartTraderError, TemporaryError
from smart_trader.core.values import decimals_of
from smart_trader.data.schema import TS_TYPE, Kind, decimal_from_raw, raw_from_float, schema_for
from smart_trader.data.timeframes import Timeframe

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class DownloadStalledError(SmartTraderError):
    """The exchange answered a page that does not move the download forward (it ignores the cursor, or a
    full page holds a single millisecond of trades); retrying the same request would loop forever."""


@dataclass(frozen=True, slots=True)
class _TradesPaging:
    """How an exchange pages ``fetch_trades`` beyond ``since``/``limit``."""

    id_param: str | None = None  # param that starts a page at a trade id (inclusive)
    window_ms: int | None = None  # fetch_trades(since) only covers [since, since + window_ms]


_BINANCE_TRADES = _TradesPaging(id_param="fromId", window_ms=3_600_000)
_TRADES_PAGING = dict.fromkeys(("binance", "binanceus", "binanceusdm", "binancecoinm"), _BINANCE_TRADES)


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """What to download.

    Attributes:
        exchange: ccxt exchange id, e.g. ``"binance"`` (must be the downloader's exchange).
        symbol: ccxt unified symbol, e.g. ``"BTC/USDT"`` (spot) or ``"BTC/USDT:USDT"`` (linear swap).
        kind: :attr:`Kind.BARS` or :attr:`Kind.TRADES`.
        timeframe: bar interval; required for bars, must be ``None`` for trades.
        since_ns: first timestamp wanted (inclusive), ns since the epoch, UTC.
        until_ns: end (exclusive), ns since the epoch; ``None`` = up to now.
        page_limit: rows asked per request (the exchange may cap it lower).

    Raises:
        InvalidInputError: on construction, when the fields contradict each other.
    """

    exchange: str
    symbol: str
    kind: Kind
    timeframe: Timeframe | None
    since_ns: int
    until_ns: int | None = None
    page_limit: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in (Kind.BARS, Kind.TRADES):
            raise InvalidInputError(f"can download bars or trades, not {self.kind}")
        if self.kind is Kind.BARS and self.timeframe is None:
            raise InvalidInputError("a bars download needs a timeframe (e.g. 1m)")
        if self.kind is Kind.TRADES and self.timeframe is not None:
            raise InvalidInputError("a trades download takes no timeframe")
        if self.since_ns < 0:
            raise InvalidInputError(f"since_ns {self.since_ns} is before the epoch")
        if self.until_ns is not None and self.until_ns <= self.since_ns:
            raise InvalidInputError(f"until {_iso(self.until_ns)} is not after since {_iso(self.since_ns)}")
        if self.page_limit < 1:
            raise InvalidInputError(f"page_limit must be at least 1, got {self.page_limit}")


def make_exchange(name: str) -> ccxt.Exchange:
    """A ccxt sync exchange for ``name`` (ccxt id, e.g. ``"binance"``) with ccxt's rate limiter on.

    Nothing is sent to the exchange here.

    Raises:
        InvalidInputError: ``name`` is not a ccxt exchange id (the message lists close matches).
    """
    key = name.strip().lower()
    if key not in ccxt.exchanges:
        close = difflib.get_close_matches(key, ccxt.exchanges, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges for the list)"
        raise InvalidInputError(f"unknown exchange {name!r}{hint}")
    exchange: ccxt.Exchange = getattr(ccxt, key)({"enableRateLimit": True})
    return exchange


class Downloader:
    """Downloads bars and trades from one ccxt exchange, page by page.

    Args:
        exchange: a ccxt *sync* exchange instance; its rate limiter is switched on if it is off.
        max_attempts: tries per request before a network failure becomes :class:`TemporaryError`.
        backoff_s: wait before the first retry, seconds; doubles on each further retry.
        sleep: how to wait between retries (injected by tests).
        clock: current time, ns since the epoch (decides which bar is still forming).
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        if max_attempts < 1:
            raise InvalidInputError(f"max_attempts must be at least 1, got {max_attempts}")
        if not exchange.enableRateLimit:
            log.warning("%s: enableRateLimit was off; switching ccxt's rate limiter on", exchange.id)
            exchange.enableRateLimit = True
        self._ex = exchange
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._clock = clock

    def pages(self, req: DownloadRequest, resume_from_ns: int | None = None) -> Iterator[pa.Table]:
        """Normalized tables, one per exchange page, in time order, ``schema_for(req.kind, pp, sp)``.

        ``pp``/``sp`` are the market's price and size precisions (decimals) from ccxt's ``precision``
        after ``load_markets()``. Prices and sizes are exact decimals at those precisions.

        Args:
            req: what to download.
            resume_from_ns: ``ts_event`` of the last row already stored (ns); the download continues
                strictly after it without asking for earlier data again.

        Raises:
            InvalidInputError: the request does not fit this exchange (other exchange id, timeframe or
                data kind not offered, precision not stated in decimals or tick sizes).
            NotFoundError: the exchange has no such symbol (``ccxt.BadSymbol``).
            TemporaryError: network failures or rate limiting persisted over ``max_attempts`` tries.
            DownloadStalledError: a page did not move the download forward.
            DataValidationError: a value has more decimals than the market's precision.
        """
        ex = self._ex
        if req.exchange.strip().lower() != ex.id:
            raise InvalidInputError(f"request is for exchange {req.exchange!r}, this downloader talks to {ex.id!r}")
        method = "fetchOHLCV" if req.kind is Kind.BARS else "fetchTrades"
        if not ex.has.get(method):
            raise InvalidInputError(f"{ex.id} does not offer {req.kind} downloads ({method})")
        if req.timeframe is not None and ex.timeframes and str(req.timeframe) not in ex.timeframes:
            offered = ", ".join(ex.timeframes)
            raise InvalidInputError(f"{ex.id} has no {req.timeframe} bars; it offers {offered}")
        market = self._market(req.symbol)
        pp, sp = _precision(ex, market, "price"), _precision(ex, market, "amount")
        start_ns = req.since_ns
        if resume_from_ns is not None:
            step = req.timeframe.ns if req.timeframe is not None else 1
            start_ns = max(start_ns, resume_from_ns + step)
        log.info(
            "downloading %s %s %s from %s: %s .. %s, %d rows a page, price/size decimals %d/%d; "
            "rateLimit %s ms a request (throttled by ccxt)",
            req.symbol,
            req.kind,
            req.timeframe or "",
            ex.id,
            _iso(start_ns),
            _iso(req.until_ns) if req.until_ns is not None else "now",
            req.page_limit,
            pp,
            sp,
            ex.rateLimit,
        )
        if req.kind is Kind.BARS:
            yield from self._bar_pages(req, start_ns, pp, sp)
        else:
            yield from self._trade_pages(req, start_ns, pp, sp)

    # -- bars --------------------------------------------------------------------------------------

    def _bar_pages(self, req: DownloadRequest, start_ns: int, pp: int, sp: int) -> Iterator[pa.Table]:
        assert req.timeframe is not None
        tf, tf_ms = str(req.timeframe), req.timeframe.ns // NS_PER_MS
        cursor_ms, floor_ns = _ceil_ms(start_ns), start_ns
        while req.until_ns is None or cursor_ms * NS_PER_MS < req.until_ns:
            page = self._call(
                f"fetch_ohlcv {req.symbol}", self._ex.fetch_ohlcv, req.symbol, tf, cursor_ms, req.page_limit
            )
            if not page:
                return
            by_open = {int(r[0]): r for r in page}
            rows = [by_open[ts] for ts in sorted(by_open) if ts * NS_PER_MS >= floor_ns]
            if not rows:
                raise self._stalled(req, _iso_ms(cursor_ms), f"{len(page)} bars, none after {_iso(floor_ns - 1)}")
            now = self._clock()
            keep = [r for r in rows if (int(r[0]) + tf_ms) * NS_PER_MS <= now]
            if req.until_ns is not None:
                keep = [r for r in keep if int(r[0]) * NS_PER_MS < req.until_ns]
            if keep:
                yield _bars_table(keep, pp, sp, self._where(req, _iso_ms(cursor_ms)))
            if len(keep) < len(rows):  # reached until, or the bar still forming
                return
            next_ms = int(rows[-1][0]) + tf_ms
            if next_ms <= cursor_ms:
                raise self._stalled(req, _iso_ms(cursor_ms), "the next page would start at the same time")
            cursor_ms, floor_ns = next_ms, int(rows[-1][0]) * NS_PER_MS + 1

    # -- trades ------------------------------------------------------------------------------------

    def _trade_pages(self, req: DownloadRequest, start_ns: int, pp: int, sp: int) -> Iterator[pa.Table]:
        paging = _TRADES_PAGING.get(self._ex.id, _TradesPaging())
        cursor_ms, floor_ns = _ceil_ms(start_ns), start_ns
        from_id: int | None = None  # set once paging by trade id
        while True:
            if from_id is None:
                if req.until_ns is not None and cursor_ms * NS_PER_MS >= req.until_ns:
                    return
                page = self._call(
                    f"fetch_trades {req.symbol}", self._ex.fetch_trades, req.symbol, cursor_ms, req.page_limit
                )
            else:
                params = {paging.id_param: from_id}
                page = self._call(
                    f"fetch_trades {req.symbol}", self._ex.fetch_trades, req.symbol, None, req.page_limit, params
                )
            if not page:
                end_ms = (req.until_ns if req.until_ns is not None else self._clock()) // NS_PER_MS
                if from_id is None and paging.window_ms and cursor_ms + paging.window_ms <= end_ms:
                    cursor_ms += paging.window_ms  # an hour without trades, not the end
                    continue
                return
            at = _iso_ms(cursor_ms) if from_id is None else f"trade id {from_id}"
            rows = [t for t in sorted(page, key=_ts_ms) if _ts_ms(t) * NS_PER_MS >= floor_ns and _from(t, from_id)]
            if not rows:
                raise self._stalled(req, at, f"{len(page)} trades, none after {_iso(floor_ns - 1)}")
            keep = rows
            if req.until_ns is not None:
                keep = [t for t in rows if _ts_ms(t) * NS_PER_MS < req.until_ns]
            done = len(keep) < len(rows)
            held: list[Any] = []
            if len(page) >= req.page_limit and not done:
                last_ms = _ts_ms(keep[-1])
                held = [t for t in keep if _ts_ms(t) == last_ms]
                keep = keep[: len(keep) - len(held)]
                if not keep:
                    raise self._stalled(
                        req, at, f"a full page of {len(page)} trades whose new ones all share {_iso_ms(last_ms)}"
                    )
            if keep:
                yield _trades_table(keep, pp, sp, self._where(req, at))
            if done:
                return
            floor_ns = (_ts_ms(keep[-1]) + 1) * NS_PER_MS
            ids = [_trade_id(t) for t in (held or keep)]
            if paging.id_param is not None and all(i is not None for i in ids):
                next_id = min(i for i in ids if i is not None) if held else max(i for i in ids if i is not None) + 1
                if from_id is not None and next_id <= from_id:
                    raise self._stalled(req, at, f"trade ids do not advance past {from_id}")
                from_id = next_id
            else:
                next_ms = _ts_ms(held[0]) if held else _ts_ms(keep[-1]) + 1
                if next_ms <= cursor_ms:
                    raise self._stalled(req, at, "the next page would start at the same time")
                from_id, cursor_ms = None, next_ms

    # -- plumbing ----------------------------------------------------------------------------------

    def _market(self, symbol: str) -> dict[str, Any]:
        markets: dict[str, Any] = self._call("load_markets", self._ex.load_markets)
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise NotFoundError(f"{self._ex.id} has no market {symbol!r}{hint}")
        market: dict[str, Any] = markets[symbol]
        return market

    def _call(self, what: str, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)``, retried on network failures and rate limiting with exponential backoff."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                return fn(*args)
            except ccxt.BadSymbol as exc:
                raise NotFoundError(f"{self._ex.id} rejected the symbol ({what}): {exc}") from exc
            except ccxt.NetworkError as exc:  # includes RateLimitExceeded, DDoSProtection, RequestTimeout
                if attempt == self._max_attempts:
                    raise TemporaryError(
                        f"{self._ex.id} {what} failed {attempt} times, giving up for now: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "%s %s failed (%s: %s); retry %d of %d in %.1f s",
                    self._ex.id,
                    what,
                    type(exc).__name__,
                    exc,
                    attempt,
                    self._max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _where(self, req: DownloadRequest, at: str) -> str:
        return f"{self._ex.id} {req.symbol} {req.kind} page from {at}"

    def _stalled(self, req: DownloadRequest, at: str, detail: str) -> DownloadStalledError:
        return DownloadStalledError(
            f"{self._where(req, at)} does not move the download forward ({detail}); "
            f"stopping instead of asking again (try another page_limit, or report the exchange's paging)"
        )


def _precision(ex: ccxt.Exchange, market: dict[str, Any], which: str) -> int:
    """Decimals of the market's ``price`` or ``amount`` from ccxt's ``precision`` (tick size or decimals)."""
    value = (market.get("precision") or {}).get(which)
    if value is None:
        raise InvalidInputError(f"{ex.id} states no {which} precision for {market.get('symbol')}")
    if ex.precisionMode == TICK_SIZE:
        tick = Decimal(str(value))
        if tick <= 0:
            raise InvalidInputError(f"{ex.id} states a {which} tick size of {value} for {market.get('symbol')}")
        return decimals_of(tick)
    if ex.precisionMode == DECIMAL_PLACES:
        return int(value)
    raise InvalidInputError(f"{ex.id} states precision in significant digits, which cannot fix a decimal scale")


def _bars_table(rows: Sequence[Sequence[Any]], pp: int, sp: int, where: str) -> pa.Table:
    ts = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows)) * NS_PER_MS
    arrays: list[pa.Array] = [pa.array(ts, type=TS_TYPE)]
    for i, name in enumerate(("open", "high", "low", "close"), start=1):
        values = _floats(r[i] for r in rows)
        arrays.append(decimal_from_raw(raw_from_float(values, pp, file=where, column=name), pp))
    volume = _floats(r[5] if len(r) > 5 else None for r in rows)
    missing = np.isnan(volume)
    raw = raw_from_float(np.where(missing, 0.0, volume), sp, file=where, column="volume")
    arrays.append(decimal_from_raw(raw, sp, missing))
    return pa.Table.from_arrays(arrays, schema=schema_for(Kind.BARS, pp, sp))


def _trades_table(trades: Sequence[Any], pp: int, sp: int, where: str) -> pa.Table:
    ts = np.fromiter((_ts_ms(t) for t in trades), dtype=np.int64, count=len(trades)) * NS_PER_MS
    price = raw_from_float(_floats(t.get("price") for t in trades), pp, file=where, column="price")
    size = raw_from_float(_floats(t.get("amount") for t in trades), sp, file=where, column="size")
    sides = [t.get("side") if t.get("side") in ("buy", "sell") else None for t in trades]
    ids = [None if t.get("id") is None else str(t["id"]) for t in trades]
    arrays = [
        pa.array(ts, type=TS_TYPE),
        decimal_from_raw(price, pp),
        decimal_from_raw(size, sp),
        pa.array(sides, type=pa.string()),
        pa.array(ids, type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema_for(Kind.TRADES, pp, sp))


def _floats(values: Any) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _ts_ms(trade: Any) -> int:
    return int(trade["timestamp"])


def _trade_id(trade: Any) -> int | None:
    raw = trade.get("id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _from(trade: Any, from_id: int | None) -> bool:
    """Whether ``trade`` is at or after ``from_id`` (always, when not paging by id or it has no numeric id)."""
    tid = _trade_id(trade)
    return from_id is None or tid is None or tid >= from_id


def _ceil_ms(ts_ns: int) -> int:
    return -(-ts_ns // NS_PER_MS)


def _iso(ts_ns: int) -> str:
    return ns_to_datetime(ts_ns).isoformat().replace("+00:00", "Z")


def _iso_ms(ts_ms: int) -> str:
    return _iso(ts_ms * NS_PER_MS)
