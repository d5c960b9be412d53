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
from smart_trader.data.schema import Kind, raw_from_decimal, ts_ns
from smart_trader.strategy.api import Cursor

Int64Array = npt.NDArray[np.int64]


def _raw(table: pa.Table, column: str) -> Int64Array:
    return raw_from_decimal(table.column(column))


def _nullable_list(table: pa.Table, column: str) -> list[int | None]:
    col = table.column(column)
    raw = raw_from_decimal(col).tolist()
    if col.null_count:
        mask = np.asarray(col.is_null())
        for i in np.flatnonzero(mask).tolist():
            raw[i] = None
    return raw  # type: ignore[no-any-return]


@dataclass
class Stream:
    """One instrument's bars, trades or quotes, ready for the event loop.

    ``ts_order`` is when each event becomes known (ns UTC): a bar's close time (open + timeframe),
    a trade's or quote's own timestamp. ``columns`` hold raw ints per schema column.
    """

    kind: Kind
    instrument: Instrument
    ts_event: Int64Array
    ts_order: Int64Array
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
                bid = np.asarray(self.columns["bid_price"], dtype=np.float64)
                ask = np.asarray(self.columns["ask_price"], dtype=np.float64)
                self.prices[name] = (bid + ask) / (2 * scale)
            elif name in self.columns and name not in ("volume", "size", "bid_size", "ask_size"):
                self.prices[name] = np.asarray(self.columns[name], dtype=np.float64) / scale
            else:
                raise InvalidInputError(f"{self.kind} of {self.instrument.id} have no price series {name!r}")
        return self.prices[name]


def bars_stream(instrument: Instrument, table: pa.Table, timeframe_ns: int) -> Stream:
    """Stream of normalized bars (``ts_event`` = open time) closing ``timeframe_ns`` later."""
    ts = ts_ns(table)
    cols: dict[str, list[int | None]] = {c: _raw(table, c).tolist() for c in ("open", "high", "low", "close")}
    cols["volume"] = _nullable_list(table, "volume")
    return Stream(Kind.BARS, instrument, ts, ts + timeframe_ns, cols)


def trades_stream(instrument: Instrument, table: pa.Table) -> Stream:
    """Stream of normalized trades."""
    ts = ts_ns(table)
    cols: dict[str, list[int | None]] = {"price": _raw(table, "price").tolist(), "size": _raw(table, "size").tolist()}
    cols["aggressor_side"] = table.column("aggressor_side").to_pylist()
    cols["trade_id"] = table.column("trade_id").to_pylist()
    return Stream(Kind.TRADES, instrument, ts, ts, cols)


def quotes_stream(instrument: Instrument, table: pa.Table) -> Stream:
    """Stream of normalized quotes."""
    ts = ts_ns(table)
    cols: dict[str, list[int | None]] = {
        "bid_price": _raw(table, "bid_price").tolist(),
        "ask_price": _raw(table, "ask_price").tolist(),
        "bid_size": _nullable_list(table, "bid_size"),
        "ask_size": _nullable_list(table, "ask_size"),
    }
    return Stream(Kind.QUOTES, instrument, ts, ts, cols)
