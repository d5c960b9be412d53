"""Bars from trades, quotes or shorter bars — exact decimals, vectorized over int64 fixed-point values.

Every function returns a table in :func:`~smart_trader.data.schema.bars_schema`: ``ts_event`` is the
bar's open time, ``floor(ts / timeframe) * timeframe`` in ns since the epoch (UTC), so bars align
to the epoch (daily bars open at 00:00 UTC). Within a bar, rows are taken in ``ts_event`` order and,
for equal timestamps, in table order: open = first, high = max, low = min, close = last. An interval
with no input rows produces no bar: gaps stay gaps.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.values import from_raw
from smart_trader.data.schema import (
    TS_TYPE,
    PriceType,
    bars_schema,
    decimal_from_raw,
    decimal_type,
    raw_array,
    raw_from_decimal,
    ts_ns,
)
from smart_trader.data.timeframes import Timeframe

Int64Array = npt.NDArray[np.int64]
_INT64_LIMIT = 2**63


def trades_to_bars(trades: pa.Table, timeframe: Timeframe) -> pa.Table:
    """OHLCV bars of ``timeframe`` from trades (price type ``last``).

    Args:
        trades: normalized trades (``ts_event``, ``price``, ``size``, ...), in any order.
        timeframe: bar length.

    Returns:
        Bars at the trades' price and size precision, one row per interval holding at least one
        trade, sorted by ``ts_event``; ``volume`` = sum of ``size`` (base units).

    Raises:
        InvalidInputError: a column is missing or of the wrong type, or a value does not fit a 64-bit
            fixed-point integer.
    """
    ts = _ts_ns(trades)
    price, p = _raw(trades, "price")
    size, s = _raw(trades, "size", wide=True)
    order = _stable_order(ts)
    if order is not None:
        ts, price, size = ts[order], price[order], size[order]
    starts, bar_open_ns = _buckets(ts, timeframe.ns)
    volume = _sum_exact(size, np.zeros(len(size), dtype=bool), starts, s)
    return _bars(bar_open_ns, price, price, price, price, starts, p, volume)


def resample_bars(bars: pa.Table, timeframe: Timeframe, source: Timeframe) -> pa.Table:
    """Bars of ``timeframe`` from bars of the shorter ``source`` timeframe.

    Open = first bar's open, high = max of highs, low = min of lows, close = last bar's close,
    volume = sum of volumes; the volume is null when any source bar in the interval has a null
    volume (the total is unknown), e.g. always for FX bars without volume.

    Raises:
        InvalidInputError: ``timeframe`` is shorter than ``source`` or not a whole multiple of it; a bar
            does not open on a ``source`` boundary; a column is missing or of the wrong type.
    """
    if timeframe.seconds < source.seconds:
        raise InvalidInputError(f"cannot build {timeframe} bars from {source} bars: {timeframe} is shorter")
    if timeframe.seconds % source.seconds:
        raise InvalidInputError(f"cannot build {timeframe} bars from {source} bars: not a whole multiple")
    ts = _ts_ns(bars)
    if len(ts) and np.any(ts % source.ns):
        row = int(np.argmax(ts % source.ns != 0))
        raise InvalidInputError(f"bar at row {row + 1} does not open on a {source} boundary")
    o, p = _raw(bars, "open")
    h, _ = _raw(bars, "high", scale=p)
    low, _ = _raw(bars, "low", scale=p)
    c, _ = _raw(bars, "close", scale=p)
    v, s = _raw(bars, "volume", wide=True)
    v_null = np.asarray(bars.column("volume").is_null(), dtype=bool)
    order = _stable_order(ts)
    if order is not None:
        ts, o, h, low, c, v, v_null = ts[order], o[order], h[order], low[order], c[order], v[order], v_null[order]
    starts, bar_open_ns = _buckets(ts, timeframe.ns)
    return _bars(bar_open_ns, o, h, low, c, starts, p, _sum_exact(v, v_null, starts, s))


def quotes_to_bars(quotes: pa.Table, timeframe: Timeframe, price_type: PriceType = PriceType.MID) -> pa.Table:
    """Bars of ``timeframe`` from top-of-book quotes: OHLC of the bid, the ask or the mid price.

    The mid is ``(bid + ask) / 2`` exactly: at the quotes' price precision when every mid fits it,
    otherwise at one more decimal. ``volume`` is null (quote sizes are resting liquidity, not traded
    volume) and typed at the quotes' size precision.

    Raises:
        InvalidInputError: ``price_type`` is ``last`` (use :func:`trades_to_bars`), a column is missing or
            of the wrong type, or a value does not fit a 64-bit fixed-point integer.
    """
    if price_type is PriceType.LAST:
        raise InvalidInputError("quotes give bid, ask or mid bars; build last-price bars from trades")
    ts = _ts_ns(quotes)
    bid, p = _raw(quotes, "bid_price")
    ask, _ = _raw(quotes, "ask_price", scale=p)
    s = _scale(quotes, "bid_size")
    if price_type is PriceType.BID:
        price = bid
    elif price_type is PriceType.ASK:
        price = ask
    else:
        price, p = _mid(bid, ask, p)
    order = _stable_order(ts)
    if order is not None:
        ts, price = ts[order], price[order]
    starts, bar_open_ns = _buckets(ts, timeframe.ns)
    volume = pa.nulls(len(starts), decimal_type(s))
    return _bars(bar_open_ns, price, price, price, price, starts, p, volume)


def _ts_ns(table: pa.Table) -> Int64Array:
    if "ts_event" not in table.column_names:
        raise InvalidInputError(f"table has no ts_event column (columns: {table.column_names})")
    column = table.column("ts_event")
    if column.type != TS_TYPE:
        raise InvalidInputError(f"ts_event must be {TS_TYPE}, got {column.type}")
    if column.null_count:
        raise InvalidInputError("ts_event has nulls")
    return ts_ns(table)


def _scale(table: pa.Table, name: str) -> int:
    if name not in table.column_names:
        raise InvalidInputError(f"table has no {name} column (columns: {table.column_names})")
    typ = table.schema.field(name).type
    if not pa.types.is_decimal128(typ):
        raise InvalidInputError(f"column {name} must be decimal128, got {typ}")
    return int(typ.scale)


def _raw(table: pa.Table, name: str, scale: int | None = None, *, wide: bool = False) -> tuple[Int64Array, int]:
    """int64 fixed-point values of a decimal column and their scale (must equal ``scale`` when given).

    ``wide``: sizes and volumes, which may exceed int64: then an object array of Python ints (exact; the
    sums below handle both)."""
    own = _scale(table, name)
    if scale is not None and own != scale:
        raise InvalidInputError(f"column {name} has {own} decimals, expected {scale} like the other prices")
    if wide:
        return raw_array(table.column(name)), own  # type: ignore[return-value]
    try:
        return raw_from_decimal(table.column(name)), own
    except OverflowError:
        raise InvalidInputError(f"column {name} has a value too large for a 64-bit fixed-point integer") from None


def _stable_order(ts: Int64Array) -> Int64Array | None:
    """Stable sort order of ``ts``, or ``None`` when it is already non-decreasing."""
    if len(ts) < 2 or not np.any(ts[1:] < ts[:-1]):
        return None
    return np.argsort(ts, kind="stable").astype(np.int64)


def _buckets(ts: Int64Array, step_ns: int) -> tuple[Int64Array, Int64Array]:
    """Start index of each run of rows in one interval, and the interval's open time (ns)."""
    bar_open_ns = ts // step_ns * step_ns  # floor division: correct before 1970 too
    if len(bar_open_ns) == 0:
        return np.empty(0, dtype=np.int64), bar_open_ns
    starts = np.flatnonzero(np.concatenate(([True], bar_open_ns[1:] != bar_open_ns[:-1])))
    return starts.astype(np.int64), bar_open_ns[starts]


def _mid(bid: Int64Array, ask: Int64Array, p: int) -> tuple[Int64Array, int]:
    if len(bid) and max(int(np.max(np.abs(bid))), int(np.max(np.abs(ask)))) >= _INT64_LIMIT // 2:
        raise InvalidInputError("bid + ask overflows a 64-bit fixed-point integer")
    total = bid + ask
    if not np.any(total & 1):
        return total // 2, p
    if np.any(np.abs(total) >= _INT64_LIMIT // 5):
        raise InvalidInputError("the mid at one more decimal overflows a 64-bit fixed-point integer")
    return total * 5, p + 1


def _sum_exact(values: Int64Array, null: npt.NDArray[np.bool_], starts: Int64Array, scale: int) -> pa.Array:
    """Per-group sums of fixed-point ``values`` as decimal128 at ``scale``; null where any member is null."""
    if len(starts) == 0:
        return pa.array([], decimal_type(scale))
    group_null = np.add.reduceat(null.astype(np.int64), starts) > 0 if null.any() else None
    values = np.where(null, 0, values)
    longest = int(np.max(np.diff(np.append(starts, len(values)))))
    if int(np.max(np.abs(values))) * longest < _INT64_LIMIT:
        return decimal_from_raw(np.add.reduceat(values, starts), scale, group_null)
    # Rare: a sum may not fit in int64 — add Python ints, still exact, into decimal128.
    bounds = np.append(starts, len(values))
    sums = [sum(int(x) for x in values[a:b]) for a, b in itertools.pairwise(bounds)]
    decimals = [
        None if group_null is not None and group_null[i] else from_raw(total, scale) for i, total in enumerate(sums)
    ]
    return pa.array(decimals, decimal_type(scale))


def _bars(
    opens_ns: Int64Array,
    o: Int64Array,
    h: Int64Array,
    low: Int64Array,
    c: Int64Array,
    starts: Int64Array,
    p: int,
    volume: pa.Array,
) -> pa.Table:
    schema = bars_schema(p, volume.type.scale)
    if len(starts) == 0:
        return schema.empty_table()
    ends = np.append(starts[1:], len(c)) - 1
    columns = [
        pa.array(opens_ns, pa.int64()).cast(TS_TYPE),
        decimal_from_raw(o[starts], p),
        decimal_from_raw(np.maximum.reduceat(h, starts), p),
        decimal_from_raw(np.minimum.reduceat(low, starts), p),
        decimal_from_raw(c[ends], p),
        volume,
    ]
    return pa.Table.from_arrays(columns, schema=schema)
