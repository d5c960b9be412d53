"""Assembling a :class:`ReadResult`: one precision per column group, decimals, the exact schema."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from smart_trader.core.clock import NS_PER_DAY, NS_PER_SECOND
from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers._base import ReadOptions, ReadResult
from smart_trader.data.readers._numbers import I64, NumericColumn
from smart_trader.data.schema import PRICE_COLUMNS, SIZE_COLUMNS, TS_TYPE, Kind, PriceType, decimal_from_raw, schema_for
from smart_trader.data.timeframes import Timeframe


def _group_precision(columns: Mapping[str, NumericColumn | None], given: int | None) -> int:
    if given is not None:
        return given
    needed = [c.needed_precision() for c in columns.values() if c is not None and not c.all_null()]
    return max(needed, default=0)


def infer_timeframe(ts: I64) -> Timeframe | None:
    """Most common positive step between consecutive timestamps (ties: the shorter step).

    Returns ``None`` for fewer than two timestamps, or when that step is not a whole number of
    seconds between 1s and 1d.
    """
    steps = np.diff(ts)
    if len(steps) and steps[0] > 0 and bool(np.all(steps == steps[0])):  # the usual case: no gap at all
        step = int(steps[0])
        return Timeframe(step // NS_PER_SECOND) if not step % NS_PER_SECOND and step <= NS_PER_DAY else None
    steps = np.sort(steps[steps > 0])
    if len(steps) == 0:
        return None
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    counts = np.diff(np.r_[starts, len(steps)])
    step = int(steps[starts[int(np.argmax(counts))]])
    if step % NS_PER_SECOND or not NS_PER_SECOND <= step <= NS_PER_DAY:
        return None
    return Timeframe(step // NS_PER_SECOND)


def build_result(
    *,
    kind: Kind,
    fmt: str,
    path: str,
    options: ReadOptions,
    ts: I64,
    numbers: Mapping[str, NumericColumn | None],
    strings: Mapping[str, pa.Array] | None = None,
    price_type: PriceType = PriceType.LAST,
    notes: tuple[str, ...] = (),
    timeframe: Timeframe | None = None,
) -> ReadResult:
    """A :class:`ReadResult` of ``kind`` from converted columns named as in the normalized schema.

    ``numbers`` holds every price and size column of the kind (``None`` for a size column the
    source lacks: all nulls); ``strings`` the text columns (missing ones are all nulls). Prices must fit
    int64 fixed-point integers at their precision (the engine's prices); sizes may be of any magnitude
    (``decimal128``). ``notes`` say how the file was read; the columns' own notes (float noise) are added.
    ``timeframe`` is the bar length when the source states it (else inferred from the timestamps).

    Raises:
        DataValidationError: ``not-empty``, ``missing-value`` (a null price), ``precision``, ``range``.
    """
    n = len(ts)
    if n == 0:
        raise DataValidationError(path, "not-empty", "the file has no data rows")
    if kind is not Kind.BARS and options.price_type not in (None, PriceType.LAST):
        raise InvalidInputError(f"{path}: price_type applies to bars only, not to {kind}")
    prices = {name: numbers[name] for name in PRICE_COLUMNS[kind]}
    sizes = {name: numbers.get(name) for name in SIZE_COLUMNS[kind]}
    for name, column in prices.items():
        assert column is not None, name
        row = column.first_null_row()
        if row is not None:
            raise DataValidationError(path, "missing-value", f"{name} is empty", row)
    p = _group_precision(prices, options.price_precision)
    s = _group_precision(sizes, options.size_precision)
    schema = schema_for(kind, p, s)
    arrays: list[pa.Array] = []
    for field in schema:
        name = field.name
        if name == "ts_event":
            arrays.append(pa.Array.from_buffers(TS_TYPE, n, [None, pa.py_buffer(np.ascontiguousarray(ts))]))
        elif name in prices or name in sizes:
            column = prices[name] if name in prices else sizes[name]
            scale = p if name in prices else s
            if column is None:
                arrays.append(pa.nulls(n, field.type))
            elif name in prices:
                arrays.append(decimal_from_raw(column.raw_at(scale), scale, column.mask))
            else:
                arrays.append(column.to_decimal(scale))
        else:
            value = (strings or {}).get(name)
            arrays.append(pa.nulls(n, field.type) if value is None else value)
    return ReadResult(
        kind=kind,
        table=pa.Table.from_arrays(arrays, schema=schema),
        price_precision=p,
        size_precision=s,
        format=fmt,
        timeframe=(timeframe or infer_timeframe(ts)) if kind is Kind.BARS else None,
        price_type=(options.price_type or price_type) if kind is Kind.BARS else PriceType.LAST,
        source=path,
        notes=(*notes, *(note for c in numbers.values() if c is not None for note in c.notes)),
    )
