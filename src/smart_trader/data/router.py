"""HTTP routes of market data: the instrument catalog, bars (stored and built live), the latest quote or trade."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from smart_trader.core.clock import MAX_TIMESTAMP_NS
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import instrument_id
from smart_trader.data.timeframes import Timeframe
from smart_trader.gateway.deps import CurrentUser, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.live.bar_history import market_bars

router = APIRouter(prefix="/api/v1", tags=["market data"])
MAX_BARS = 10_000


class InstrumentOut(BaseModel):
    """An instrument and its trading rules (tick and lot sizes, precisions, minimum notional, multiplier)."""

    id: str
    symbol: str
    venue: str
    asset_class: str
    base_currency: str
    quote_currency: str
    tick_size: Decimal
    lot_size: Decimal
    price_precision: int
    size_precision: int
    min_notional: Decimal
    multiplier: Decimal


class BarOut(BaseModel):
    """An OHLCV bar; ``ts_event`` is its open time (ns since the epoch, UTC); volume ``None`` when unknown."""

    ts_event: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None


class QuoteOut(BaseModel):
    """Latest top of book and trade (``*_ts`` ns UTC, ``None`` until seen); ``mark`` = last trade, else mid.

    ``quote_source``: ``feed`` (the venue's best bid and ask), ``derived_from_trades`` (a trades-only feed such as a
    replayed trades file: the ask is the price of the last buyer-initiated trade, the bid of the last
    seller-initiated one; estimates, sizes unknown, never used to fill orders), ``None`` before any quote."""

    instrument_id: str
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    quote_ts: int | None
    quote_source: Literal["feed", "derived_from_trades"] | None = None
    last_price: Decimal | None
    last_size: Decimal | None
    trade_ts: int | None
    mark: Decimal | None


@router.get("/instruments", response_model=list[InstrumentOut])
async def list_instruments(_user: CurrentUser, platform: PlatformDep) -> list[InstrumentOut]:
    """Every instrument in the catalog."""
    return [InstrumentOut(**i.to_dict(), id=i.id) for i in platform.market_data.catalog.list()]


@router.get("/market/bars", response_model=list[BarOut], responses={404: {"description": "unknown instrument"}})
async def bars(
    _user: CurrentUser,
    platform: PlatformDep,
    symbol: Annotated[str, Query(min_length=1, max_length=64)],
    venue: Annotated[str, Query(min_length=1, max_length=32)],
    timeframe: Annotated[str, Query(description="1s..1d, e.g. 1m, 5m, 1h, 1d")] = "1m",
    start: Annotated[
        int | None, Query(ge=0, le=MAX_TIMESTAMP_NS, description="ns since the epoch, UTC, inclusive")
    ] = None,
    end: Annotated[
        int | None, Query(ge=0, le=MAX_TIMESTAMP_NS, description="ns since the epoch, UTC, exclusive")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BARS)] = 1000,
) -> list[BarOut]:
    """Bars of ``timeframe`` in [start, end), the first ``limit`` of them: stored bars (built from finer bars,
    trades or quotes when needed), never later than the instrument's market clock, then the bars built live from
    the feed (a replay's own, time-shifted timeline once it loops; see ``live/bar_history.py``). 404 when the
    instrument or its data is unknown (the detail names no server path)."""
    try:
        tf = Timeframe.parse(timeframe)
    except InvalidInputError as exc:
        raise ProblemError(422, str(exc), "invalid-timeframe") from None
    if start is not None and end is not None and end <= start:
        raise ProblemError(422, f"end ({end}) must be after start ({start})", "invalid-range")
    # the store's own not-found messages name server paths (fine for the CLI): answer with our own
    iid = instrument_id(symbol, venue)
    try:
        platform.instrument(iid)
    except NotFoundError:
        raise ProblemError(404, f"unknown instrument {iid}: see GET /api/v1/instruments", "not-found") from None
    # the live bars first, then the clock: every bar of the copy closed at or before that clock
    live = None if platform.live_bars is None else platform.live_bars.snapshot(iid)
    clock = await platform.market_clock(iid)
    try:
        table: pa.Table = await platform.in_thread(
            lambda: market_bars(platform.market_data, symbol, venue, tf, start, end, clock_ns=clock, live=live)
        )
    except NotFoundError:
        raise ProblemError(404, f"no stored market data of {iid} makes {tf} bars", "not-found") from None
    table = table.slice(0, limit)
    ts = table.column("ts_event").cast(pa.int64()).to_pylist()
    cols: dict[str, list[Any]] = {c: table.column(c).to_pylist() for c in ("open", "high", "low", "close", "volume")}
    return [
        BarOut(
            ts_event=t,
            open=cols["open"][i],
            high=cols["high"][i],
            low=cols["low"][i],
            close=cols["close"][i],
            volume=cols["volume"][i],
        )
        for i, t in enumerate(ts)
    ]


@router.get(
    "/market/quote", response_model=QuoteOut, responses={404: {"description": "no such instrument or no quote yet"}}
)
async def quote(
    _user: CurrentUser,
    platform: PlatformDep,
    symbol: Annotated[str, Query(min_length=1, max_length=64)],
    venue: Annotated[str, Query(min_length=1, max_length=32)],
) -> QuoteOut:
    """The latest quote and trade of an instrument seen by the feed. 404 when nothing was seen yet."""
    iid = instrument_id(symbol, venue)
    last = await platform.last_prices(iid)
    if last is None:
        raise ProblemError(404, f"no quote or trade of {iid} seen yet (is the feed running for it?)", "not-found")
    return QuoteOut(**last)
