"""Replay stored market data as a live feed: :class:`ReplayFeed`, :func:`replay_file`, :func:`replay_store`.

Data is read from the Parquet store through :class:`~smart_trader.data.service.MarketDataService` one day
partition (trades, quotes) or one bar table at a time, and the records are built lazily, ``chunk_rows`` at a
time, while iterating: a multi-million-row dataset never becomes millions of Python objects at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa

from smart_trader.core.clock import NS_PER_DAY, NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError
from smart_trader.core.instruments import Instrument
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.readers import read_file
from smart_trader.data.schema import Kind, PriceType, raw_ints, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.feeds import MarketEvent

DEFAULT_CHUNK_ROWS = 4096
YIELD_EVERY = 256


class ReplayFeed:
    """Stored trades, quotes or bars of one instrument replayed as an async iterator of :data:`MarketEvent`.

    ``async for event in feed`` yields :class:`Trade`, :class:`Quote` or :class:`Bar` records (one type per
    feed) in ``ts_event`` order (ns UTC; a bar's open time), with the dataset's own price and size
    precisions.

    Args:
        service: the market-data service holding the data.
        instrument: the instrument replayed (its ``symbol``/``venue`` name the dataset, its ``id`` is the
            events' ``instrument_id``).
        kind: trades, quotes or bars.
        timeframe: bar length; required for bars (built from finer bars, trades or quotes when not stored,
            see :meth:`MarketDataService.bars`), must be ``None`` otherwise.
        start_ns, end_ns: replay ``start_ns <= ts_event < end_ns`` (ns UTC; ``None`` = open end).
        speed: ``None`` replays as fast as possible; ``N`` paces events at N × real time (wall time between
            two events = their ``ts_event`` difference / N; scheduled from the first event, so no drift).
        loop: start again after the last event, forever. Each pass shifts every ``ts_event`` forward by the
            data's span (last - first) plus one step (the timeframe for bars, the mean gap between events
            for trades and quotes), so time keeps increasing strictly from one pass to the next.
        price_type: bars only: which bars (see :meth:`MarketDataService.bars`).
        chunk_rows: rows turned into records at a time.

    Attributes:
        clock_ns: ``ts_event`` of the last event yielded, ``None`` before the first.
        events_emitted: events yielded so far (all passes).
        passes: passes started so far.

    Raises:
        InvalidInputError: on construction: inconsistent kind/timeframe, ``speed`` <= 0, ``chunk_rows`` < 1.
        NotFoundError: on construction: unknown instrument or no stored data of that kind.

    The event loop gets control at least every 256 events, also at full speed.
    """

    def __init__(
        self,
        service: MarketDataService,
        instrument: Instrument,
        kind: Kind,
        timeframe: Timeframe | None = None,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        speed: float | None = None,
        loop: bool = False,
        price_type: PriceType | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        kind = Kind(kind)
        if kind is Kind.BOOK:
            raise InvalidInputError("replaying order-book depth is not supported yet: replay trades, quotes or bars")
        if kind is Kind.BARS and timeframe is None:
            raise InvalidInputError("replaying bars needs a timeframe")
        if kind is not Kind.BARS and timeframe is not None:
            raise InvalidInputError(f"replaying {kind} takes no timeframe")
        if speed is not None and not speed > 0:
            raise InvalidInputError(f"speed must be positive (or None for full speed), got {speed}")
        if chunk_rows < 1:
            raise InvalidInputError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.service = service
        self.instrument = instrument
        self.kind = kind
        self.timeframe = timeframe
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.speed = speed
        self.loop = loop
        self.price_type = price_type
        self.chunk_rows = chunk_rows
        self.clock_ns: int | None = None
        self.events_emitted = 0
        self.passes = 0
        self._gen: AsyncIterator[MarketEvent] | None = None
        self._read_range(0, 0)  # fails now, not on the first event, when there is nothing to replay

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        """The events (one iteration per feed: iterating again continues where the last one stopped)."""
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    async def _run(self) -> AsyncIterator[MarketEvent]:
        loop = asyncio.get_running_loop()
        wall0 = data0 = 0.0
        shift = unyielded = 0
        speed = self.speed
        while True:
            self.passes += 1
            first = last = None
            count = 0
            for table in self._tables():
                for event in self._events(table, shift):
                    ts = event.ts_event
                    if first is None:
                        first = ts
                    last = ts
                    count += 1
                    delay = 0.0
                    if speed is not None:
                        if self.events_emitted == 0:
                            wall0, data0 = loop.time(), ts
                        delay = wall0 + (ts - data0) / NS_PER_SECOND / speed - loop.time()
                    unyielded += 1
                    if delay > 0 or unyielded >= YIELD_EVERY:
                        await asyncio.sleep(max(delay, 0.0))
                        unyielded = 0
                    self.clock_ns = ts
                    self.events_emitted += 1
                    yield event
            if not self.loop or first is None or last is None:
                return
            span = last - first
            if self.timeframe is not None:
                step = self.timeframe.ns
            else:
                step = max(1, span // (count - 1)) if count > 1 else NS_PER_SECOND
            shift += span + step

    def _tables(self) -> Iterator[pa.Table]:
        """The data of one pass: bars as one table, trades and quotes one stored day at a time."""
        if self.kind is Kind.BARS:
            yield self._read_range(self.start_ns, self.end_ns)
            return
        key = DatasetKey(self.instrument.venue, self.instrument.symbol, self.kind)
        days = sorted(
            int(np.datetime64(p.name.removeprefix("date="), "D").astype(np.int64)) * NS_PER_DAY
            for p in self.service.store.dataset_dir(key).glob("date=*")
        )
        for day in days:
            lo = day if self.start_ns is None else max(day, self.start_ns)
            hi = day + NS_PER_DAY if self.end_ns is None else min(day + NS_PER_DAY, self.end_ns)
            if lo < hi:
                yield self.service.store.read(key, lo, hi)

    def _read_range(self, start_ns: int | None, end_ns: int | None) -> pa.Table:
        symbol, venue = self.instrument.symbol, self.instrument.venue
        if self.kind is Kind.BARS:
            assert self.timeframe is not None
            return self.service.bars(
                symbol, venue, self.timeframe, start_ns=start_ns, end_ns=end_ns, price_type=self.price_type
            )
        return self.service.ticks(symbol, venue, self.kind, start_ns=start_ns, end_ns=end_ns)

    def _events(self, table: pa.Table, shift: int) -> Iterator[MarketEvent]:
        """Records of ``table``'s rows, ``chunk_rows`` at a time, ``ts_event`` moved forward by ``shift``."""
        iid = self.instrument.id
        for offset in range(0, table.num_rows, self.chunk_rows):
            chunk = table.slice(offset, self.chunk_rows)
            ts = (ts_ns(chunk) + shift).tolist()
            if self.kind is Kind.TRADES:
                price, pp = _raw(chunk, "price")
                size, sp = _raw(chunk, "size")
                sides = chunk.column("aggressor_side").to_pylist()
                ids = chunk.column("trade_id").to_pylist()
                for t, p, s, side, tid in zip(ts, price, size, sides, ids, strict=True):
                    yield Trade(iid, t, p, s, side, tid, pp, sp)
            elif self.kind is Kind.QUOTES:
                bid, pp = _raw(chunk, "bid_price")
                ask, _ = _raw(chunk, "ask_price")
                bid_size, sp = _raw_or_none(chunk, "bid_size")
                ask_size, _ = _raw_or_none(chunk, "ask_size")
                for t, b, a, bs, az in zip(ts, bid, ask, bid_size, ask_size, strict=True):
                    yield Quote(iid, t, b, a, bs, az, pp, sp)
            else:
                o, pp = _raw(chunk, "open")
                h, _ = _raw(chunk, "high")
                low, _ = _raw(chunk, "low")
                c, _ = _raw(chunk, "close")
                v, sp = _raw_or_none(chunk, "volume")
                for t, o1, h1, low1, c1, v1 in zip(ts, o, h, low, c, v, strict=True):
                    yield Bar(iid, t, o1, h1, low1, c1, v1, pp, sp)


def _raw(table: pa.Table, name: str) -> tuple[list[int], int]:
    """Raw ints of a required decimal column and its scale."""
    column = table.column(name)
    values = cast(list[int], raw_ints(column))  # required column: no None; sizes may exceed int64
    return values, int(column.type.scale)


def _raw_or_none(table: pa.Table, name: str) -> tuple[list[int | None], int]:
    """Raw ints of a nullable decimal column (``None`` where null; any magnitude) and its scale."""
    column = table.column(name)
    return raw_ints(column), int(column.type.scale)


def replay_store(
    service: MarketDataService,
    symbol: str,
    venue: str,
    kind: Kind,
    timeframe: Timeframe | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    price_type: PriceType | None = None,
    speed: float | None = None,
    loop: bool = False,
) -> ReplayFeed:
    """A :class:`ReplayFeed` over stored data of ``symbol`` on ``venue`` in [start_ns, end_ns) (ns UTC).

    Raises:
        NotFoundError: unknown instrument or nothing of that kind stored.
        InvalidInputError: see :class:`ReplayFeed`.
    """
    return ReplayFeed(
        service,
        service.instrument(symbol, venue),
        kind,
        timeframe,
        start_ns=start_ns,
        end_ns=end_ns,
        speed=speed,
        loop=loop,
        price_type=price_type,
    )


def replay_file(
    service: MarketDataService,
    path: Path | str,
    symbol: str,
    venue: str,
    fmt: str | None = None,
    kind: Kind | None = None,
    *,
    timeframe: Timeframe | None = None,
    price_type: PriceType | None = None,
    speed: float | None = None,
    loop: bool = False,
) -> ReplayFeed:
    """Import ``path`` into the store (:meth:`MarketDataService.import_file`; importing it again adds nothing)
    and return a :class:`ReplayFeed` of the kind it holds over its time range, first to last ``ts_event``.

    The replay reads from the store, so rows stored before in that range are replayed too. The file is read
    twice (import, then its time range).

    Args:
        fmt: reader format name (detected when ``None``).
        kind: the kind the file must hold (any when ``None``).
        timeframe: bars: the bar length when it cannot be inferred from the file.
        price_type: bars: what the prices are (e.g. FXCM bid/ask).

    Raises:
        NotFoundError: no such file.
        InvalidInputError: unknown format, another kind than ``kind``, a conflicting instrument.
        DataValidationError: the file breaks a rule (names file, row and rule).
    """
    path = Path(path)
    report = service.import_file(
        path, symbol=symbol, venue=venue, kind=kind, format=fmt, price_type=price_type, timeframe=timeframe
    )
    instrument = report.instrument
    table = read_file(
        path,
        report.format,
        price_precision=instrument.price_precision,
        size_precision=instrument.size_precision,
        price_type=price_type,
    ).table
    ts = ts_ns(table)
    start, end = (int(ts.min()), int(ts.max()) + 1) if len(ts) else (0, 0)
    key = report.key
    return ReplayFeed(
        service,
        instrument,
        key.kind,
        key.timeframe,
        start_ns=start,
        end_ns=end,
        speed=speed,
        loop=loop,
        price_type=key.price_type if key.kind is Kind.BARS else None,
    )
