"""Columns of order-book depth files, normalized to the book schema's sides, flags, update ids and events."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers._numbers import I64, Mask, first_failing_row
from smart_trader.data.schema import single_array

_SIDE_WORDS = {"b": "bid", "bid": "bid", "buy": "bid", "a": "ask", "ask": "ask", "sell": "ask"}


def _first_true(mask: pa.Array | Mask) -> int:
    return int(np.argmax(np.asarray(pc.fill_null(mask, True) if isinstance(mask, pa.Array) else mask, dtype=bool)))


def _text(column: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))


def book_side_column(column: pa.Array, file: str, name: str) -> pa.Array:
    """``"bid"``/``"ask"`` from a side column: ``b``/``bid``/``buy`` and ``a``/``ask``/``sell``, any case.

    Raises:
        DataValidationError: ``book-side`` naming the first row with another value or none.
    """
    text = _text(column)
    known = pa.array(list(_SIDE_WORDS))
    bad = pc.invert(pc.fill_null(pc.is_in(text, known), False))
    if pc.any(bad).as_py():
        row = _first_true(bad)
        detail = f"{name}={column[row].as_py()!r} is not a book side (b/bid or a/ask)"
        raise DataValidationError(file, "book-side", detail, row + 1)
    is_bid = pc.is_in(text, pa.array([k for k, v in _SIDE_WORDS.items() if v == "bid"]))
    return pc.if_else(is_bid, "bid", "ask")


def flag_column(
    column: pa.Array, file: str, name: str, true: Sequence[str], false: Sequence[str], rule: str
) -> pa.Array:
    """Booleans from a text column whose values (any case) are in ``true`` or ``false``.

    Raises:
        DataValidationError: ``rule`` naming the first row with another value or none.
    """
    text = _text(column)
    is_true = pc.fill_null(pc.is_in(text, pa.array(list(true))), False)
    is_false = pc.fill_null(pc.is_in(text, pa.array(list(false))), False)
    bad = pc.invert(pc.or_(is_true, is_false))
    if pc.any(bad).as_py():
        row = _first_true(bad)
        allowed = "/".join((*true, *false))
        raise DataValidationError(file, rule, f"{name}={column[row].as_py()!r} is not one of {allowed}", row + 1)
    return is_true


def id_column(column: pa.Array, file: str, name: str, *, negative_is_null: bool = False) -> pa.Array:
    """int64 update ids from integer text; empty cells (and negative ids when ``negative_is_null``,
    Binance's ``-1`` for "none") are nulls.

    Raises:
        DataValidationError: ``number-format`` naming the first row that is not a whole number, ``range``
            when a negative id is not allowed.
    """
    text = pc.utf8_trim_whitespace(single_array(column).cast(pa.string()))

    def convert(a: pa.Array) -> pa.Array:
        return pc.cast(a, pa.int64())

    try:
        ids = convert(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        row = first_failing_row(text, convert)
        detail = f"{name}={text[row].as_py()!r} is not a whole-number update id"
        raise DataValidationError(file, "number-format", detail, row + 1) from None
    negative = pc.fill_null(pc.less(ids, 0), False)
    if pc.any(negative).as_py():
        if not negative_is_null:
            row = _first_true(negative)
            raise DataValidationError(file, "range", f"{name}={ids[row].as_py()} is negative", row + 1)
        ids = pc.if_else(negative, pa.scalar(None, pa.int64()), ids)
    return ids


def single_symbol(symbol: pa.Array | None, file: str) -> None:
    """A book file must hold one instrument.

    Raises:
        DataValidationError: ``single-symbol`` naming the first row whose symbol differs from the first row's.
    """
    if symbol is None or len(symbol) == 0 or pc.count_distinct(symbol, mode="all").as_py() <= 1:
        return
    first = symbol[0]
    row = _first_true(pc.not_equal(symbol, first))
    detail = f"symbol {symbol[row].as_py()!r} differs from the first row's {first.as_py()!r}; split the file per symbol"
    raise DataValidationError(file, "single-symbol", detail, row + 1)


def event_ends(keys: Sequence[I64]) -> pa.Array:
    """``last_in_event`` of rows whose events are runs of equal ``keys`` (int64 arrays, null as any fixed
    value): a row ends its event when the next row's key differs, and the last row ends the last event."""
    n = len(keys[0])
    ends = np.zeros(n, dtype=bool)
    if n:
        ends[-1] = True
        for key in keys:
            ends[:-1] |= key[1:] != key[:-1]
    return pa.array(ends, type=pa.bool_())


def as_int64(values: pa.Array) -> I64:
    """An int64/bool array as int64 with nulls as ``-2**63`` (for :func:`event_ends`)."""
    return np.asarray(pc.fill_null(values.cast(pa.int64()), np.iinfo(np.int64).min), dtype=np.int64)
