"""The normalized market-data schemas every reader produces and the store keeps.

All three kinds share ``ts_event``: Arrow ``timestamp[ns, tz=UTC]``.

- **bars** — ``ts_event`` is the bar's *open* time (start of its interval); ``open``, ``high``,
  ``low``, ``close`` in quote currency; ``volume`` in base units (shares, coins), null when the
  source has none (FX).
- **trades** — ``price`` (quote currency), ``size`` (base units), ``aggressor_side``
  (``"buy"``/``"sell"``: the side that took liquidity; null when unknown), ``trade_id`` (string, nullable).
- **quotes** — top of book: ``bid_price``, ``ask_price`` (quote currency), ``bid_size``,
  ``ask_size`` (base units, nullable).
- **book** — order-book depth (L2, market by price), one row per price-level change; see
  :func:`book_schema`.

Prices and sizes are Arrow ``decimal128(38, scale)`` with ``scale`` = the instrument's price or
size precision: exact, never binary floats. The engine works on the same values as fixed-point
int64 "raw" integers (value × 10**scale); :func:`raw_from_decimal` and :func:`decimal_from_raw`
convert without leaving exact arithmetic.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from smart_trader.core.errors import DataValidationError

TS_TYPE = pa.timestamp("ns", tz="UTC")
MAX_PRECISION = 12


class Kind(StrEnum):
    """Kind of market data."""

    BARS = "bars"
    TRADES = "trades"
    QUOTES = "quotes"
    BOOK = "book"


class PriceType(StrEnum):
    """Which price a bar is built from: trades (``last``), bid, ask or mid quotes."""

    LAST = "last"
    BID = "bid"
    ASK = "ask"
    MID = "mid"


def decimal_type(scale: int) -> pa.Decimal128Type:
    """Arrow decimal type with ``scale`` decimals."""
    return pa.decimal128(38, scale)


def bars_schema(price_precision: int, size_precision: int) -> pa.Schema:
    """Schema of normalized bars."""
    p, s = decimal_type(price_precision), decimal_type(size_precision)
    return pa.schema(
        [
            pa.field("ts_event", TS_TYPE, nullable=False),
            pa.field("open", p, nullable=False),
            pa.field("high", p, nullable=False),
            pa.field("low", p, nullable=False),
            pa.field("close", p, nullable=False),
            pa.field("volume", s),
        ]
    )


def trades_schema(price_precision: int, size_precision: int) -> pa.Schema:
    """Schema of normalized trades."""
    return pa.schema(
        [
            pa.field("ts_event", TS_TYPE, nullable=False),
            pa.field("price", decimal_type(price_precision), nullable=False),
            pa.field("size", decimal_type(size_precision), nullable=False),
            pa.field("aggressor_side", pa.string()),
            pa.field("trade_id", pa.string()),
        ]
    )


def quotes_schema(price_precision: int, size_precision: int) -> pa.Schema:
    """Schema of normalized quotes (top of book)."""
    p, s = decimal_type(price_precision), decimal_type(size_precision)
    return pa.schema(
        [
            pa.field("ts_event", TS_TYPE, nullable=False),
            pa.field("bid_price", p, nullable=False),
            pa.field("ask_price", p, nullable=False),
            pa.field("bid_size", s),
            pa.field("ask_size", s),
        ]
    )


BOOK_SIDES = ("bid", "ask")
"""Values of the book schema's ``side`` column."""


def book_schema(price_precision: int, size_precision: int) -> pa.Schema:
    """Schema of normalized order-book depth (L2, market by price): one row per price-level change.

    - ``ts_event`` — when the venue applied the change (Binance ``T``/``E``, Tardis ``timestamp``).
    - ``ts_recv`` — when it was received (Tardis ``local_timestamp``); null when the source has none.
    - ``side`` — ``"bid"`` or ``"ask"``.
    - ``price`` (quote currency) and ``size`` (base units): the level's new *absolute* size;
      ``size`` 0 removes the level (removing a level the book does not hold is allowed).
    - ``is_snapshot`` — the row belongs to a snapshot: a snapshot event replaces the whole book.
    - ``last_in_event`` — the row is the last of its event (one venue message, or one snapshot); a
      book is consistent only after an event's last row.
    - ``first_update_id``, ``last_update_id`` — the venue's update ids the event covers (Binance
      ``U``/``u``; a snapshot's ``lastUpdateId`` in both); null for sources without sequence numbers.
    - ``prev_update_id`` — the previous event's ``last_update_id`` as the venue states it (Binance
      USD-M futures ``pu``); null when the source has none (spot, Tardis, snapshots).

    Rows are in the order the venue sent them; every row of an event shares ``ts_event``,
    ``ts_recv``, ``is_snapshot`` and the update ids.

    Followed: NautilusTrader's ``OrderBookDelta`` (one change per record, size 0 deletes, the
    ``F_SNAPSHOT``/``F_LAST`` flags become ``is_snapshot``/``last_in_event``, ``ts_event``/``ts_init``
    become ``ts_event``/``ts_recv``), Tardis ``incremental_book_L2`` (absolute sizes, ``is_snapshot``,
    exchange and local timestamps) and Databento MBP (``ts_event``/``ts_recv``, venue sequence
    numbers). Unlike Databento MBP-10 the rows carry no top-N book copy: that is derived
    (:mod:`smart_trader.microstructure`), not stored.
    """
    return pa.schema(
        [
            pa.field("ts_event", TS_TYPE, nullable=False),
            pa.field("ts_recv", TS_TYPE),
            pa.field("side", pa.string(), nullable=False),
            pa.field("price", decimal_type(price_precision), nullable=False),
            pa.field("size", decimal_type(size_precision), nullable=False),
            pa.field("is_snapshot", pa.bool_(), nullable=False),
            pa.field("last_in_event", pa.bool_(), nullable=False),
            pa.field("first_update_id", pa.int64()),
            pa.field("last_update_id", pa.int64()),
            pa.field("prev_update_id", pa.int64()),
        ]
    )


SCHEMAS = {Kind.BARS: bars_schema, Kind.TRADES: trades_schema, Kind.QUOTES: quotes_schema, Kind.BOOK: book_schema}
PRICE_COLUMNS = {
    Kind.BARS: ("open", "high", "low", "close"),
    Kind.TRADES: ("price",),
    Kind.QUOTES: ("bid_price", "ask_price"),
    Kind.BOOK: ("price",),
}
SIZE_COLUMNS = {
    Kind.BARS: ("volume",),
    Kind.TRADES: ("size",),
    Kind.QUOTES: ("bid_size", "ask_size"),
    Kind.BOOK: ("size",),
}


def schema_for(kind: Kind, price_precision: int, size_precision: int) -> pa.Schema:
    """Schema of ``kind`` at the given precisions."""
    return SCHEMAS[kind](price_precision, size_precision)


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous Arrow array of a column (chunks combined only when there are several)."""
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def ts_ns(table: pa.Table) -> npt.NDArray[np.int64]:
    """``ts_event`` of a normalized table as int64 ns since the epoch (UTC)."""
    return np.asarray(table.column("ts_event").cast(pa.int64()).to_numpy(), dtype=np.int64)


def between(table: pa.Table, start_ns: int | None, end_ns: int | None) -> pa.Table:
    """Rows of a table sorted by ``ts_event`` with ``start_ns <= ts_event < end_ns`` (``None`` = open end)."""
    if (start_ns is None and end_ns is None) or table.num_rows == 0:
        return table
    ts = ts_ns(table)
    lo = 0 if start_ns is None else int(np.searchsorted(ts, start_ns))
    hi = len(ts) if end_ns is None else int(np.searchsorted(ts, end_ns))
    return table.slice(lo, max(hi - lo, 0))


def decimal_from_raw(raw: npt.NDArray[np.int64], scale: int, mask: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    """Arrow decimal128 array whose values are ``raw × 10**-scale`` (exact; built from the int64 words).

    ``mask`` marks nulls (True = null).
    """
    raw = np.ascontiguousarray(raw, dtype=np.int64)
    words = np.empty(2 * len(raw), dtype=np.int64)
    words[0::2] = raw
    words[1::2] = raw >> 63  # sign extension into the high 64 bits (two's complement int128)
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        null_count = int(mask.sum())
    return pa.Array.from_buffers(decimal_type(scale), len(raw), [validity, pa.py_buffer(words)], null_count=null_count)


class Int64OverflowError(OverflowError):
    """A decimal does not fit a 64-bit fixed-point integer; ``row`` is the first such row (0-based)."""

    def __init__(self, row: int) -> None:
        self.row = row
        super().__init__(f"decimal value at row {row + 1} does not fit in a 64-bit fixed-point integer")


def raw_from_decimal(arr: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """int64 fixed-point integers of a decimal128 array at its own scale (nulls become 0).

    Raises:
        Int64OverflowError: a value does not fit in int64 at that scale (names the first row).
    """
    arr = single_array(arr)
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    buf = arr.buffers()[1]
    assert buf is not None
    words = np.frombuffer(buf, dtype=np.int64, count=2 * (arr.offset + len(arr)))[2 * arr.offset :]
    lo, hi = words[0::2], words[1::2]
    valid = np.ones(len(arr), dtype=bool) if arr.null_count == 0 else ~np.asarray(arr.is_null())
    overflow = (hi != (lo >> 63)) & valid
    if overflow.any():
        raise Int64OverflowError(int(np.argmax(overflow)))
    out = lo.copy()
    if arr.null_count:
        out[~valid] = 0
    return out


def raw_ints(arr: pa.Array | pa.ChunkedArray) -> list[int | None]:
    """Fixed-point Python integers of a decimal128 column at its own scale, ``None`` where null; exact for
    values of any magnitude (sizes and volumes may exceed int64: those rows go through ``Decimal``).
    """
    arr = single_array(arr)
    try:
        values: list[int | None] = raw_from_decimal(arr).tolist()
    except Int64OverflowError:
        scale = int(arr.type.scale)
        return [None if d is None else int(d.scaleb(scale)) for d in arr.to_pylist()]
    if arr.null_count:
        for i in np.flatnonzero(np.asarray(arr.is_null(), dtype=bool)).tolist():
            values[i] = None
    return values


def raw_array(arr: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64] | npt.NDArray[np.object_]:
    """:func:`raw_from_decimal` (nulls as 0), or an object array of Python ints when a value exceeds int64."""
    try:
        return raw_from_decimal(arr)
    except Int64OverflowError:
        return np.array([0 if v is None else v for v in raw_ints(arr)], dtype=object)


def infer_precision(values: npt.NDArray[np.float64]) -> int:
    """Smallest number of decimals ``p`` (0..12) at which every float in ``values`` is the nearest
    double to a decimal with ``p`` decimals, i.e. the precision the source wrote the numbers with.

    NaNs are ignored. Returns :data:`MAX_PRECISION` when no smaller precision fits.
    """
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return 0
    for p in range(MAX_PRECISION + 1):
        scale = 10.0**p
        if np.array_equal(np.rint(v * scale) / scale, v):
            return p
    return MAX_PRECISION


def raw_from_float(values: npt.NDArray[np.float64], precision: int, *, file: str, column: str) -> npt.NDArray[np.int64]:
    """Fixed-point integers of float values written by the source at ``precision`` decimals.

    A float is accepted only when it is the nearest double to a decimal with ``precision``
    decimals, so the decimal is recovered exactly (e.g. ``0.1`` → 1 at precision 1).

    Raises:
        DataValidationError: a value has more decimals than ``precision`` (names the first row),
            or is NaN/infinite.
    """
    scale = 10.0**precision
    scaled = np.rint(values * scale)
    bad = ~np.isfinite(values) | (scaled / scale != values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataValidationError(
            file,
            "precision",
            f"{column}={float(values[row])!r} is not a number with at most {precision} decimals",
            row=row + 1,
        )
    if np.any(np.abs(scaled) >= 2.0**63):
        raise DataValidationError(file, "range", f"{column} does not fit a 64-bit fixed-point integer")
    return scaled.astype(np.int64)
