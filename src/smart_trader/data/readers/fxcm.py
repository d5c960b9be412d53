"""FXCM bid or ask bars CSV: ``timestamp,open,high,low,close`` (optional ``volume``).

- ``timestamp`` is ISO 8601 with a UTC offset (``2012-02-01 00:00:00+00:00``), the bar's open time;
  converted to UTC exactly.
- One file holds one side of the book: the price type is ``bid`` or ``ask`` from the file name
  (``..._bid...`` / ``..._ask...``), or the caller's ``price_type``.
- FX has no traded volume: ``volume`` is null unless the file has a ``volume`` column.
"""

from __future__ import annotations

import re
from pathlib import Path

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._columns import price_type_from_name
from smart_trader.data.readers._files import CSV_SUFFIXES, read_csv_columns
from smart_trader.data.readers._numbers import text_column
from smart_trader.data.readers._times import iso_to_ns
from smart_trader.data.schema import Kind

NAME = "fxcm-csv"
_COLUMNS = ("timestamp", "open", "high", "low", "close")
_ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)$")


def _matches(probe: Probe) -> bool:
    """FXCM's columns *and* a file name saying bid or ask: a plain OHLCV CSV is left to the generic reader."""
    columns = probe.columns
    return (
        columns is not None
        and columns[:5] == _COLUMNS
        and set(columns) <= {*_COLUMNS, "volume"}
        and bool(probe.first_row and _ISO_WITH_OFFSET.match(probe.first_row[0]))
        and price_type_from_name(Path(probe.name)) is not None
    )


def read_fxcm_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read an FXCM bid or ask bar CSV (see the module docstring).

    Raises:
        InvalidInputError: neither the file name nor ``options.price_type`` tells bid from ask.
        DataValidationError: missing columns, unparsable timestamps or numbers, precision (file and row named).
    """
    file = str(path)
    price_type = options.price_type or price_type_from_name(path)
    if price_type is None:
        raise InvalidInputError(f"{file}: the file name does not say _bid or _ask; pass price_type (bid or ask)")
    cols = read_csv_columns(path, _COLUMNS, optional=("volume",))
    numbers = {name: text_column(cols[name], file, name) for name in ("open", "high", "low", "close")}
    volume = cols.get("volume")
    return build_result(
        kind=Kind.BARS,
        fmt=NAME,
        path=file,
        options=options,
        ts=iso_to_ns(cols["timestamp"], file, "timestamp"),
        numbers={**numbers, "volume": None if volume is None else text_column(volume, file, "volume")},
        price_type=price_type,
    )


FORMAT = Format(
    name=NAME,
    kind=Kind.BARS,
    description="FXCM bid/ask bar CSV timestamp,open,high,low,close (ISO 8601 with offset; side from _bid/_ask)",
    suffixes=CSV_SUFFIXES,
    columns=_COLUMNS,
    matches=_matches,
    read=read_fxcm_csv,
)
