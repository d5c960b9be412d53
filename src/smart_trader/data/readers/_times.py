"""Exact conversion of source timestamps to int64 nanoseconds since the epoch, UTC."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.clock import NS_PER_DAY, NS_PER_MS, NS_PER_SECOND
from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers._numbers import I64, first_failing_row, text_column
from smart_trader.data.schema import TS_TYPE, single_array

NS_PER_UNIT = {"s": NS_PER_SECOND, "ms": NS_PER_MS, "us": 1_000, "ns": 1}
_INT64_MAX = np.iinfo(np.int64).max


def check_no_nulls(arr: pa.Array, file: str, name: str) -> None:
    """Raise ``missing-value`` naming the first null of a time column."""
    if arr.null_count:
        row = int(np.argmax(np.asarray(arr.is_null(), dtype=bool)))
        raise DataValidationError(file, "missing-value", f"{name} is empty", row + 1)


def scale_to_ns(values: I64, factor: int, file: str, name: str) -> I64:
    """``values × factor`` (to ns), refusing what leaves the int64 nanosecond range (``range``, naming the row)."""
    if factor == 1:
        return values
    too_big = np.abs(values) > _INT64_MAX // factor
    if too_big.any():
        row = int(np.argmax(too_big))
        detail = f"{name}={int(values[row])} is out of the nanosecond timestamp range (years 1677..2262)"
        raise DataValidationError(file, "range", detail, row + 1)
    return values * factor


def timestamp_column(column: pa.ChunkedArray | pa.Array, file: str, name: str, *, int_unit: str | None = None) -> I64:
    """int64 ns since the epoch (UTC) of a source time column, converted exactly.

    Accepts Arrow timestamps of any unit (naive ones are taken as UTC), dates (midnight UTC),
    integers since the epoch in ``int_unit`` (``"s"``, ``"ms"``, ``"us"``, ``"ns"``), and ISO 8601
    text (with a UTC offset, converted to UTC; without one, taken as UTC).

    Raises:
        DataValidationError: ``missing-value`` (a null), ``timestamp-format`` (unparsable text or a
            type that holds no times), ``range`` (outside the int64 nanosecond range).
    """
    arr = single_array(column)
    check_no_nulls(arr, file, name)
    t = arr.type
    if pa.types.is_timestamp(t):
        assert isinstance(t, pa.TimestampType)
        values = np.asarray(arr.cast(pa.int64()), dtype=np.int64)
        return scale_to_ns(values, NS_PER_UNIT[t.unit], file, name)
    if pa.types.is_date32(t):
        return scale_to_ns(np.asarray(arr.cast(pa.int32()), dtype=np.int64), NS_PER_DAY, file, name)
    if pa.types.is_date64(t):
        return scale_to_ns(np.asarray(arr.cast(pa.int64()), dtype=np.int64), 10**6, file, name)
    if pa.types.is_integer(t) and int_unit is not None:
        if pa.types.is_uint64(t) and len(arr) and (pc.max(arr).as_py() or 0) > _INT64_MAX:
            raise DataValidationError(file, "range", f"{name} does not fit a 64-bit integer")
        return scale_to_ns(np.asarray(arr.cast(pa.int64()), dtype=np.int64), NS_PER_UNIT[int_unit], file, name)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return iso_to_ns(arr, file, name)
    raise DataValidationError(file, "timestamp-format", f"column {name} holds {t}, not timestamps")


def iso_to_ns(column: pa.ChunkedArray | pa.Array, file: str, name: str) -> I64:
    """int64 ns (UTC) of ISO 8601 text (``2012-02-01 00:00:00+00:00``, ``2013-01-01T22:00:00.295Z``,
    ``1999-01-22``), fractional seconds up to nanoseconds, parsed exactly.

    The first row decides the style for the column: with a UTC offset (every row converted to UTC)
    or without one (every row taken as UTC).

    Raises:
        DataValidationError: ``missing-value`` or ``timestamp-format`` naming the first bad row.
    """
    s = pc.utf8_trim_whitespace(single_array(column))
    empty = pc.equal(s, "")
    if pc.any(empty).as_py():
        s = pc.if_else(empty, pa.scalar(None, pa.string()), s)
    check_no_nulls(s, file, name)
    if len(s) == 0:
        return np.empty(0, dtype=np.int64)
    try:
        pc.cast(s.slice(0, 1), TS_TYPE)
        target: pa.DataType = TS_TYPE
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        target = pa.timestamp("ns")

    def convert(a: pa.Array) -> pa.Array:
        return pc.cast(a, target)

    try:
        ts = convert(s)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        row = first_failing_row(s, convert)
        like = "" if row == 0 else " like the first row"
        style = f"with a UTC offset{like}" if target == TS_TYPE else like.strip() or "in one consistent style"
        detail = f"{name}={s[row].as_py()!r} is not an ISO 8601 timestamp {style}"
        raise DataValidationError(file, "timestamp-format", detail, row + 1) from None
    return np.asarray(ts.cast(pa.int64()), dtype=np.int64)


def epoch_text_to_ns(column: pa.ChunkedArray | pa.Array, file: str, name: str, unit: str = "s") -> I64:
    """int64 ns (UTC) of epoch times written as decimal text in ``unit`` (``"1672531436"`` or
    ``"1672531436.123456"``), converted without binary floats.

    Raises:
        DataValidationError: ``missing-value``, ``timestamp-format`` (unparsable, or finer than 1 ns),
            ``range``.
    """
    digits = {"s": 9, "ms": 6, "us": 3, "ns": 0}[unit]
    try:
        parsed = text_column(column, file, name, scale=digits)
    except DataValidationError as e:
        rule = "timestamp-format" if e.rule == "number-format" else e.rule
        detail = (
            f"{e.detail} ({unit} since the epoch, read to the nanosecond)" if e.rule == "number-format" else e.detail
        )
        raise DataValidationError(file, rule, detail, e.row) from None
    null_row = parsed.first_null_row()
    if null_row is not None:
        raise DataValidationError(file, "missing-value", f"{name} is empty", null_row)
    try:
        return parsed.raw_at(digits)
    except DataValidationError as e:
        detail = f"{name} is out of the nanosecond timestamp range (years 1677..2262)"
        raise DataValidationError(file, "range", detail, e.row) from None
