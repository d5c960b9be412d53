"""Bars built live from new market data (a live exchange feed), written to the market-data store so
``GET /api/v1/market/bars`` (and a chart's backfill) serves them after a restart too: :class:`LiveBarRecorder`.

Closed one-minute bars (``ts_event`` = open time, ns UTC; exact decimals at the instrument's precisions) are kept in
memory and written, one dataset per instrument (``bars-1m-last``), every ``flush_seconds`` and at shutdown, in a
worker thread. Longer timeframes are resampled from them by :meth:`MarketDataService.bars`. The store has one
writer per dataset: only the process running the trading runtime records. A replay is never recorded (its bars are
stored data again, or time-shifted copies of it): ``app/factory._run_feed`` records only feeds for which
:func:`~smart_trader.live.feeds.is_new_market_data` holds; bars of any feed are also kept in memory
(``bar_history.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import numpy as np
import pyarrow as pa
import structlog

from smart_trader.core.ids import InstrumentId
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.model import Bar
from smart_trader.data.schema import Kind, PriceType, bars_schema, decimal_from_raw
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe

log = structlog.get_logger("smart_trader.live.bars")
RECORDED_TIMEFRAME = Timeframe.parse("1m")


def bars_table(bars: list[Bar]) -> pa.Table:
    """The normalized bars table (``data.schema.bars_schema``) of ``bars`` of one instrument and precision.

    Raises:
        ValueError: no bars, or bars of several precisions.
    """
    if not bars or len({(b.price_precision, b.size_precision) for b in bars}) != 1:
        raise ValueError("bars_table needs bars of one price and size precision")
    pp, sp = bars[0].price_precision, bars[0].size_precision
    volume = np.array([b.volume_raw or 0 for b in bars], dtype=np.int64)
    missing = np.array([b.volume_raw is None for b in bars], dtype=np.bool_)
    columns = [
        pa.array([b.ts_event for b in bars], type=pa.timestamp("ns", tz="UTC")),
        *(
            decimal_from_raw(np.array([getattr(b, f"{name}_raw") for b in bars], dtype=np.int64), pp)
            for name in ("open", "high", "low", "close")
        ),
        decimal_from_raw(volume, sp, missing),
    ]
    schema = bars_schema(pp, sp)
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


class LiveBarRecorder:
    """Buffers closed 1-minute live bars and writes them to the store.

    Args:
        service: the market-data service whose store receives the bars.
        flush_seconds: how often :meth:`run` writes what is buffered.
    """

    def __init__(self, service: MarketDataService, flush_seconds: float = 5.0) -> None:
        self.service = service
        self.flush_seconds = flush_seconds
        self._pending: dict[InstrumentId, list[Bar]] = defaultdict(list)
        self.bars_written = 0

    def add(self, bar: Bar) -> None:
        """Buffer one closed bar of :data:`RECORDED_TIMEFRAME` (written at the next flush)."""
        self._pending[bar.instrument_id].append(bar)

    async def run(self) -> None:
        """Flush every ``flush_seconds`` until cancelled (then flush once more)."""
        try:
            while True:
                await asyncio.sleep(self.flush_seconds)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Write every buffered bar (a worker thread per instrument); a failed write is logged and its bars
        dropped (the ticks that made them were served live; the store is a convenience for charts)."""
        pending, self._pending = self._pending, defaultdict(list)
        for iid, bars in pending.items():
            try:
                await asyncio.to_thread(self._write, iid, bars)
                self.bars_written += len(bars)
            except Exception:
                log.exception("could not store live bars", instrument_id=iid, bars=len(bars))

    def _write(self, iid: InstrumentId, bars: list[Bar]) -> None:
        symbol, _, venue = iid.rpartition(".")
        key = DatasetKey(venue, symbol, Kind.BARS, RECORDED_TIMEFRAME, PriceType.LAST)
        self.service.store.write(
            key, bars_table(bars), price_precision=bars[0].price_precision, size_precision=bars[0].size_precision
        )
