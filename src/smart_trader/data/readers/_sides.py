"""Aggressor side and trade id columns, normalized to the trades schema's strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError

_NULL_STRING = pa.scalar(None, pa.string())


def _first_true(mask: pa.Array) -> int:
    return int(np.argmax(np.asarray(pc.fill_null(mask, False), dtype=bool)))


def side_column(column: pa.Array, file: str, name: str) -> pa.Array:
    """``"buy"``/``"sell"`` (the aggressor) from a side column; case-insensitive, ``b``/``s`` accepted,
    ``None``/empty/``unknown`` = unknown (null).

    Raises:
        DataValidationError: ``aggressor-side`` naming the first row with another value.
    """
    if not pa.types.is_dictionary(column.type):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise DataValidationError(file, "aggressor-side", f"column {name} holds {column.type}, not buy/sell")
        column = pc.dictionary_encode(column.cast(pa.string()))  # a handful of distinct values, millions of rows
    words = column.dictionary.cast(pa.string())
    side = pc.utf8_lower(pc.utf8_trim_whitespace(words))
    unknown = pc.is_in(side, pa.array(["", "none", "null", "unknown"]))
    side = pc.if_else(unknown, _NULL_STRING, side)
    side = pc.if_else(pc.equal(side, "b"), "buy", pc.if_else(pc.equal(side, "s"), "sell", side))
    bad = pc.and_(pc.invert(pc.is_in(side, pa.array(["buy", "sell"]), skip_nulls=True)), pc.is_valid(side))
    if pc.any(bad).as_py():
        wrong = pa.array(np.flatnonzero(np.asarray(pc.fill_null(bad, False), dtype=bool)), pa.int32())
        row = _first_true(pc.is_in(column.indices, wrong))
        detail = f"{name}={words[column.indices[row].as_py()].as_py()!r} is not buy or sell"
        raise DataValidationError(file, "aggressor-side", detail, row + 1)
    return side.take(column.indices)


def buyer_maker_side(column: pa.Array, file: str, name: str) -> pa.Array:
    """Aggressor side from Binance's ``is buyer maker`` flag (bool, or the strings ``"True"``/``"False"``):
    the buyer was the resting order, so the aggressor **sold** → ``"sell"``; otherwise ``"buy"``.

    Raises:
        DataValidationError: ``aggressor-side`` naming the first row that is neither true nor false.
    """
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_boolean(column.type):
        flag = column
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        is_true, is_false = pc.equal(column, "True"), pc.equal(column, "False")  # Binance writes exactly these
        if (pc.sum(is_true).as_py() or 0) + (pc.sum(is_false).as_py() or 0) != len(column):
            text = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
            is_true, is_false = pc.equal(text, "true"), pc.equal(text, "false")
        bad = pc.invert(pc.or_(is_true, is_false))
        if pc.any(bad).as_py():
            row = _first_true(bad)
            raise DataValidationError(
                file, "aggressor-side", f"{name}={column[row].as_py()!r} is not True or False", row + 1
            )
        flag = is_true
    else:
        raise DataValidationError(file, "aggressor-side", f"column {name} holds {column.type}, not True/False")
    return pc.if_else(flag, "sell", "buy")


def trade_id_column(column: pa.Array, file: str, name: str) -> pa.Array:
    """Trade ids as strings (integers written in decimal); nulls stay null.

    Raises:
        DataValidationError: ``columns`` when the column holds neither integers nor text.
    """
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return column.cast(pa.string())
    raise DataValidationError(file, "columns", f"column {name} holds {t}, not trade ids")
