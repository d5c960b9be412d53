"""Columnar market-data streams the engine iterates: normalized Arrow tables turned into Python lists of
fixed-point raw ints once, up front (the fastest form for a Python event loop), plus float64 views for
indicators and equity marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.instruments import Instrument
from smart_trader.data.schema import Kind, raw_from_decimal, raw_ints, ts_ns
from smart_trader.strategy.api import Cursor

Int64Array = npt.NDArray[np.int64]


def _nullable_list(table: pa.Table, column: str) -> list[int | None]:
    return raw_ints(table.column(column))  # sizes may exceed int64: Python ints, exact


@dataclass
class Stream:
    """One instrument's bars, trades or quotes, ready for the event loop.

    ``ts_order`` is when each event becomes known (ns UTC): a bar's close time (open + timeframe),
    a trade's or quote's own timestamp. ``columns`` hold raw ints per schema column as Python lists (for
    the loop); ``raw`` keeps the price columns as int64 arrays (for indicators and marks).
    """

    kind: Kind
    instrument: Instrument
    ts_event: Int64Array
    ts_order: Int64Array
    raw: dict[str, Int64Array]
    columns: dict[str, list[int | None]]
    prices: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    cursor: Cursor = field(default_factory=Cursor)

    def __len__(self) -> int:
        return len(self.ts_event)

    def mark_series(self) -> npt.NDArray[np.float64]:
        """float64 price used to mark positions after each event (bar close, trade price, quote mid)."""
        return self.source("close" if self.kind is Kind.BARS else "price" if self.kind is Kind.TRADES else "mid")

    def mark_raw(self, i: int) -> tuple[int, int]:
        """(raw, precision) of the mark price after event ``i`` (quote mid at one extra decimal)."""
        pp = self.instrument.price_precision
        if self.kind is Kind.BARS:
            return self.columns["close"][i], pp  # type: ignore[return-value]
        if self.kind is Kind.TRADES:
            return self.columns["price"][i], pp  # type: ignore[return-value]
        bid, ask = self.columns["bid_price"][i], self.columns["ask_price"][i]
        assert bid is not None and ask is not None
        return (bid + ask) * 5, pp + 1

    def source(self, name: str) -> npt.NDArray[np.float64]:
        """float64 series of a price column (``mid`` for quotes); cached.

        Raises:
            InvalidInputError: no such column for this kind of data.
        """
        if name not in self.prices:
            scale = 10.0**self.instrument.price_precision
            if name == "mid" and self.kind is Kind.QUOTES:
                self.prices[name] = (self.raw["bid_price"] + self.raw["ask_price"]) / (2 * scale)
            elif name in self.raw:
                self.prices[name] = self.raw[name] / scale
            else:
                raise InvalidInputError(f"{self.kind} of {self.instrument.id} have no price series {name!r}")
        return self.prices[name]


def _stream(kind: Kind, instrument: Instrument, table: pa.Table, prices: tuple[str, ...], lag_ns: int = 0) -> Stream:
    ts = ts_ns(table)
    raw = {c: raw_from_decimal(table.column(c)) for c in prices}
    columns: dict[str, list[int | None]] = {c: a.tolist() for c, a in raw.items()}
    return Stream(kind, instrument, ts, ts + lag_ns if lag_ns else ts, raw, columns)


def bars_stream(instrument: Instrument, table: pa.Table, timeframe_ns: int) -> Stream:
    """Stream of normalized bars (``ts_event`` = open time) closing ``timeframe_ns`` later."""
    stream = _stream(Kind.BARS, instrument, table, ("open", "high", "low", "close"), timeframe_ns)
    stream.columns["volume"] = _nullable_list(table, "volume")
    return stream


def trades_stream(instrument: Instrument, table: pa.Table) -> Stream:
    """Stream of normalized trades."""
    stream = _stream(Kind.TRADES, instrument, table, ("price",))
    stream.columns["size"] = raw_ints(table.column("size"))
    stream.columns["aggressor_side"] = table.column("aggressor_side").to_pylist()
    stream.columns["trade_id"] = table.column("trade_id").to_pylist()
    return stream


def quotes_stream(instrument: Instrument, table: pa.Table) -> Stream:
    """Stream of normalized quotes."""
    stream = _stream(Kind.QUOTES, instrument, table, ("bid_price", "ask_price"))
    stream.columns["bid_size"] = _nullable_list(table, "bid_size")
    stream.columns["ask_size"] = _nullable_list(table, "ask_size")
    return stream
