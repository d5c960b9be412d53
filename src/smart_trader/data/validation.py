"""Rules every normalized market-data table must satisfy before it is stored.

:func:`validate` checks, vectorized, in this order, and raises
:class:`~smart_trader.core.errors.DataValidationError` for the first broken rule, naming the file,
the 1-based data row (header excluded; the readers keep the file's row order) and the rule:

==========================  ===============================================================
rule                        meaning
==========================  ===============================================================
``schema``                  the table is exactly ``schema_for(kind, price_precision, size_precision)``
``not-empty``               at least one row
``missing-value``           no nulls in ``ts_event`` and prices
``range``                   every price fits a 64-bit fixed-point integer at its scale (sizes and
                            volumes may be of any magnitude ``decimal128`` holds)
``timestamps-sorted``       ``ts_event`` never goes back in time
``timestamps-unique``       bars: no two bars share a ``ts_event`` (bars are strictly increasing;
                            trades and quotes may share a timestamp: many trades share a ms)
``price-positive``          every price > 0
``size-non-negative``       every size / volume >= 0 (nulls allowed where the schema allows)
``high-bounds``             bars: ``high >= max(open, close)``
``low-bounds``              bars: ``low <= min(open, close)`` (with the above, ``low <= high``)
``quotes-not-crossed``      quotes: ``bid_price <= ask_price``. A *locked* quote (bid = ask) is
                            allowed: the real TrueFX USD/JPY recording has one (row 942),
                            and venues do publish them; a crossed one (bid > ask) is refused.
``aggressor-side``          trades: ``aggressor_side`` is ``"buy"``, ``"sell"`` or null
``trade-id-unique``         trades: no trade id appears twice (nulls ignored)
``book-side``               book: ``side`` is ``"bid"`` or ``"ask"``
``book-event``              book: the rows of one event share ``ts_event``, ``ts_recv``, ``is_snapshot``
                            and the update ids, and the last row ends an event
                            (:mod:`smart_trader.data.book_rules`)
==========================  ===============================================================
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.core.values import from_raw
from smart_trader.data.book_rules import check_book_rows
from smart_trader.data.schema import (
    PRICE_COLUMNS,
    SIZE_COLUMNS,
    Int64OverflowError,
    Kind,
    decimal_type,
    raw_from_decimal,
    schema_for,
    single_array,
    ts_ns,
)

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


class Validatable(Protocol):
    """What :func:`validate` reads from a :class:`~smart_trader.data.readers.ReadResult`."""

    @property
    def kind(self) -> Kind: ...
    @property
    def table(self) -> pa.Table: ...
    @property
    def price_precision(self) -> int: ...
    @property
    def size_precision(self) -> int: ...
    @property
    def source(self) -> str: ...


def validate(result: Validatable) -> None:
    """Check a read result against the rules in this module's docstring.

    Args:
        result: a :class:`~smart_trader.data.readers.ReadResult` (anything with ``kind``, ``table``,
            ``price_precision``, ``size_precision`` and ``source``).

    Raises:
        DataValidationError: the first broken rule, with ``file`` = ``result.source``, ``row`` the
            1-based data row (``None`` for whole-table rules) and ``rule`` its name.
    """
    file, table, kind = result.source, result.table, result.kind
    expected = schema_for(kind, result.price_precision, result.size_precision)
    if not table.schema.equals(expected):
        precisions = f"{result.price_precision}/{result.size_precision}"
        detail = f"the table is not the normalized {kind} schema at precisions {precisions}"
        raise DataValidationError(file, "schema", f"{detail}: {table.schema}")
    if table.num_rows == 0:
        raise DataValidationError(file, "not-empty", "no rows")
    for field in expected:
        if not field.nullable:
            _no_nulls(file, table.column(field.name), field.name)
    ts = ts_ns(table)
    _check_time_order(file, ts, strict=kind is Kind.BARS)
    p, s = result.price_precision, result.size_precision
    prices = {name: _raw(file, table, name) for name in PRICE_COLUMNS[kind]}
    _first_violation(file, "price-positive", {n: r <= 0 for n, r in prices.items()}, prices, p, "must be > 0")
    _check_sizes(file, table, SIZE_COLUMNS[kind], s)
    if kind is Kind.BARS:
        o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
        bad_high = h < np.maximum(o, c)
        _first_violation(
            file, "high-bounds", {"high": bad_high}, prices, p, "is below open or close", context=("open", "close")
        )
        bad_low = lo > np.minimum(o, c)
        _first_violation(
            file, "low-bounds", {"low": bad_low}, prices, p, "is above open or close", context=("open", "close")
        )
    elif kind is Kind.QUOTES:
        crossed = prices["bid_price"] > prices["ask_price"]
        _first_violation(
            file, "quotes-not-crossed", {"bid_price": crossed}, prices, p, "is above ask_price", context=("ask_price",)
        )
    elif kind is Kind.TRADES:
        _check_sides(file, single_array(table.column("aggressor_side")))
        _check_trade_ids(file, single_array(table.column("trade_id")))
    else:
        check_book_rows(file, table)


def _check_sizes(file: str, table: pa.Table, names: tuple[str, ...], scale: int) -> None:
    """Every size / volume >= 0, compared as decimals (they may exceed int64)."""
    zero = pa.scalar(0, decimal_type(scale))
    first: tuple[int, str] | None = None
    for name in names:
        column = single_array(table.column(name))
        negative = np.asarray(pc.fill_null(pc.less(column, zero), False), dtype=bool)
        if negative.any():
            row = _first_true(negative)
            if first is None or row < first[0]:
                first = (row, name)
    if first is not None:
        row, name = first
        value = single_array(table.column(name))[row].as_py()
        raise DataValidationError(file, "size-non-negative", f"{name}={value} must be >= 0", row + 1)


def _first_true(mask: Mask) -> int:
    """0-based index of the first True in ``mask``."""
    return int(np.argmax(mask))


def _no_nulls(file: str, column: pa.ChunkedArray, name: str) -> None:
    if column.null_count:
        row = _first_true(np.asarray(single_array(column).is_null(), dtype=bool))
        raise DataValidationError(file, "missing-value", f"{name} is null", row + 1)


def _raw(file: str, table: pa.Table, name: str) -> I64:
    arr = single_array(table.column(name))
    try:
        return raw_from_decimal(arr)
    except Int64OverflowError as exc:
        row = exc.row
        raise DataValidationError(
            file, "range", f"{name}={arr[row].as_py()} does not fit a 64-bit fixed-point integer", row + 1
        ) from None


def _ts_text(ns: int) -> str:
    return f"{np.datetime64(ns, 'ns')}Z"


def _check_time_order(file: str, ts: I64, *, strict: bool) -> None:
    steps = np.diff(ts)
    bad = steps <= 0 if strict else steps < 0
    if not bad.any():
        return
    i = _first_true(bad)
    prev, cur = int(ts[i]), int(ts[i + 1])
    if cur == prev:
        detail = f"ts_event {_ts_text(cur)} repeats row {i + 1}'s: bars need one row per timestamp"
        raise DataValidationError(file, "timestamps-unique", detail, i + 2)
    detail = f"ts_event {_ts_text(cur)} is before row {i + 1}'s {_ts_text(prev)}: rows must be in time order"
    raise DataValidationError(file, "timestamps-sorted", detail, i + 2)


def _first_violation(
    file: str,
    rule: str,
    bad: dict[str, Mask],
    values: dict[str, I64],
    scale: int,
    what: str,
    context: tuple[str, ...] = (),
) -> None:
    """Raise ``rule`` at the earliest row where any mask in ``bad`` is true, naming the column and values."""
    first: tuple[int, str] | None = None
    for name, mask in bad.items():
        if mask.any():
            row = _first_true(mask)
            if first is None or row < first[0]:
                first = (row, name)
    if first is None:
        return
    row, name = first
    shown = ", ".join(f"{c}={from_raw(int(values[c][row]), scale)}" for c in context)
    detail = f"{name}={from_raw(int(values[name][row]), scale)} {what}" + (f" ({shown})" if shown else "")
    raise DataValidationError(file, rule, detail, row + 1)


def _check_sides(file: str, sides: pa.Array) -> None:
    if sides.null_count == len(sides):
        return
    known = (pc.sum(pc.equal(sides, "buy")).as_py() or 0) + (pc.sum(pc.equal(sides, "sell")).as_py() or 0)
    if known + sides.null_count == len(sides):
        return
    bad = pc.and_(pc.invert(pc.is_in(sides, pa.array(["buy", "sell"]))), pc.is_valid(sides))
    if pc.any(bad).as_py():
        row = _first_true(np.asarray(bad, dtype=bool))
        raise DataValidationError(
            file, "aggressor-side", f"aggressor_side={sides[row].as_py()!r} is not buy or sell", row + 1
        )


def _check_trade_ids(file: str, ids: pa.Array) -> None:
    """Duplicate trade ids, in one cheap pass when ids increase (shorter first, then text order —
    numeric order for decimal ids), else with a hash pass."""
    n = len(ids)
    if n < 2 or ids.null_count == n:
        return
    if ids.null_count == 0:
        a, b = ids.slice(0, n - 1), ids.slice(1)
        la, lb = pc.binary_length(a), pc.binary_length(b)
        increasing = pc.or_(pc.less(la, lb), pc.and_(pc.equal(la, lb), pc.less(a, b)))
        if pc.all(increasing).as_py():
            return
    series = pl.Series("trade_id", ids)
    repeated = (~series.is_first_distinct() & series.is_not_null()).to_numpy()
    if repeated.any():
        row = _first_true(repeated)
        value = ids[row].as_py()
        first = int(pc.index(ids, value).as_py())
        detail = f"trade_id {value!r} already appears at row {first + 1}"
        raise DataValidationError(file, "trade-id-unique", detail, row + 1)
