"""Bars built live in this process, kept in memory, and what ``GET /api/v1/market/bars`` answers with them:
:class:`LiveBarHistory`, :func:`market_bars`.

Only new market data from a venue is written to the market-data store (``bar_recorder.py``, for live exchange
feeds). A replay — of a file or of the store, looping or not — writes nothing there: its bars are the stored data
again (first pass) or time-shifted copies of it (later passes, a restart shifted past the stored clock); stored, they
would look like imported data and clash with a later real import of the same times. The bars built live from any
feed are kept here instead, in memory: the last :data:`KEPT_BARS` closed bars per instrument, gone at shutdown.

What ``/market/bars`` serves for an instrument (times ns UTC; a bar's ``ts_event`` is its open time):

- fed in this process (:func:`market_bars` with a :class:`LiveBars` copy): the stored bars that end before the
  feed's own timeline begins (:attr:`LiveBars.stored_until_ns`: the open of the feed's first bar), then the closed
  bars built live, resampled to the requested timeframe (a longer bar still in progress holds the closed bars so
  far; its stored part before the feed's timeline is included). The stored data the replay is reading is never
  served ahead of the replay. A timeframe the live bars cannot make (shorter than theirs, or not a whole multiple)
  gets the stored bars only, those closed by the instrument's market clock.
- otherwise: the stored bars closed by the instrument's market clock when one is known (an API process reads the
  feed process's through Redis), every stored bar when none is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pyarrow as pa

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import InstrumentId
from smart_trader.data.aggregation import resample_bars
from smart_trader.data.model import Bar
from smart_trader.data.schema import bars_schema, between
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.bar_recorder import bars_table

BASE_TIMEFRAME = Timeframe.parse("1m")
KEPT_BARS = 10_080  # 7 days of one-minute bars per instrument


def history_timeframe(replayed: Timeframe | None) -> Timeframe:
    """The timeframe live bars are kept at: one minute, unless the feed replays bars (of ``replayed``, ``None`` for
    ticks) that cannot make one-minute bars (longer than a minute, or not dividing it): then the replayed one."""
    if replayed is None or BASE_TIMEFRAME.ns % replayed.ns == 0:
        return BASE_TIMEFRAME
    return replayed


@dataclass(frozen=True, slots=True)
class LiveBars:
    """A copy of one instrument's live bars, safe to read in a worker thread.

    Attributes:
        timeframe: the bars' length.
        stored_until_ns: stored bars are served before this time (ns UTC), the live bars from it.
        bars: the closed bars built live, oldest first (``ts_event`` = open time, ns UTC).
    """

    timeframe: Timeframe
    stored_until_ns: int
    bars: tuple[Bar, ...]


class LiveBarHistory:
    """Closed bars built live from this process's feed, per instrument, in memory: a bounded deque each (the last
    ``kept``; older ones are dropped). Bars are added on the event loop; readers take :meth:`snapshot` there too.

    Args:
        timeframe: the bars' length (see :func:`history_timeframe`).
        kept: bars kept per instrument.
        recorded: the same bars are written to the store (a live exchange feed): stored bars are then served up to
            the oldest bar kept here. Without it (a replay), only up to the start of the feed's own timeline.

    Raises:
        InvalidInputError: ``kept`` < 1.
    """

    def __init__(self, timeframe: Timeframe = BASE_TIMEFRAME, kept: int = KEPT_BARS, *, recorded: bool = False) -> None:
        if kept < 1:
            raise InvalidInputError(f"a live bar history keeps at least one bar, not {kept}")
        self.timeframe = timeframe
        self.kept = kept
        self.recorded = recorded
        self._start: dict[InstrumentId, int] = {}
        self._bars: dict[InstrumentId, deque[Bar]] = {}

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._start

    def begin(self, instrument_id: InstrumentId, ts_ns: int) -> None:
        """The feed's first event of ``instrument_id``, at ``ts_ns`` (ns UTC, as the runtime processed it: shifted by
        a restarted replay), starts the instrument's live timeline at the open of the bar holding it. Later calls
        change nothing."""
        if instrument_id not in self._start:
            self._start[instrument_id] = ts_ns - ts_ns % self.timeframe.ns
            self._bars[instrument_id] = deque(maxlen=self.kept)

    def add(self, bar: Bar) -> None:
        """Keep one closed bar of :attr:`timeframe` (its instrument's timeline begins at it when not begun yet)."""
        self.begin(bar.instrument_id, bar.ts_event)
        self._bars[bar.instrument_id].append(bar)

    def snapshot(self, instrument_id: InstrumentId) -> LiveBars | None:
        """A copy of ``instrument_id``'s live bars, ``None`` when the feed has not carried it. Take it on the event
        loop (the feed adds bars there), then use it anywhere."""
        start = self._start.get(instrument_id)
        if start is None:
            return None
        bars = tuple(self._bars[instrument_id])
        if self.recorded and bars:
            start = bars[0].ts_event
        return LiveBars(self.timeframe, start, bars)


def market_bars(
    service: MarketDataService,
    symbol: str,
    venue: str,
    timeframe: Timeframe,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    clock_ns: int | None = None,
    live: LiveBars | None = None,
) -> pa.Table:
    """Bars of ``timeframe`` with ``start_ns <= ts_event < end_ns`` (ns UTC, ``None`` = open end) as
    ``GET /market/bars`` serves them: stored bars up to the market clock ``clock_ns`` (ns UTC; ``None``: not known),
    then the bars built live ``live`` (``None``: the instrument is not fed in this process). See the module's
    docstring. No bar has a ``ts_event`` after ``clock_ns``.

    Raises:
        NotFoundError: unknown instrument, or no stored data makes these bars and the live bars cannot either.
        InvalidInputError: several bar price types stored (see :meth:`MarketDataService.bars`).
    """
    cap = end_ns
    if clock_ns is not None:  # whole stored bars, closed by the clock
        closed = clock_ns - clock_ns % timeframe.ns
        cap = closed if cap is None else min(cap, closed)
    if live is None or timeframe.ns % live.timeframe.ns:  # no live bars that make these: stored bars only
        return service.bars(symbol, venue, timeframe, start_ns=start_ns, end_ns=cap)
    until = live.stored_until_ns
    split = until - until % timeframe.ns  # stored bars of the timeframe end by here
    tables = [_stored(service, symbol, venue, timeframe, start_ns, split if cap is None else min(cap, split))]
    # the live part: the bar holding ``until`` starts with stored finer bars, then come the live bars
    lo = split if start_ns is None else max(split, start_ns - start_ns % timeframe.ns)
    pieces: list[pa.Table | None] = []
    if lo < until:
        pieces.append(
            _stored(service, symbol, venue, live.timeframe, lo, until if end_ns is None else min(until, end_ns))
        )
    bars = [b for b in live.bars if b.ts_event >= lo and (end_ns is None or b.ts_event < end_ns)]
    if bars:
        pieces.append(bars_table(bars))
    made = _concat(pieces)
    if made is not None:
        if timeframe != live.timeframe:
            made = resample_bars(made, timeframe, live.timeframe)
        tables.append(between(made, start_ns, None if clock_ns is None else clock_ns + 1))
    return _concat(tables) or _empty(service, symbol, venue)


def _stored(
    service: MarketDataService,
    symbol: str,
    venue: str,
    timeframe: Timeframe,
    start_ns: int | None,
    end_ns: int | None,
) -> pa.Table | None:
    """Stored bars in [start, end), ``None`` when nothing stored makes them or the range is empty."""
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        return None
    try:
        table = service.bars(symbol, venue, timeframe, start_ns=start_ns, end_ns=end_ns)
    except NotFoundError:
        return None
    return table if table.num_rows else None


def _concat(tables: list[pa.Table | None]) -> pa.Table | None:
    """The tables one after the other, in the first one's schema; ``None`` when there is none."""
    present = [t for t in tables if t is not None and t.num_rows]
    if not present:
        return None
    schema = present[0].schema
    return pa.concat_tables([t if t.schema == schema else t.cast(schema) for t in present])


def _empty(service: MarketDataService, symbol: str, venue: str) -> pa.Table:
    """No bars, in the instrument's bars schema.

    Raises:
        NotFoundError: unknown instrument.
    """
    inst = service.instrument(symbol, venue)
    return bars_schema(inst.price_precision, inst.size_precision).empty_table()
