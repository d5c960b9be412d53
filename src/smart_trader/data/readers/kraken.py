"""Kraken trades CSV export, no header: ``unix_seconds,price,volume``.

- ``unix_seconds`` is whole (``1672531436``) or fractional (``1672531436.1234``) seconds since the
  epoch, UTC; converted to ns from the text, exactly (a finer fraction than 1 ns is an error).
- ``price`` in quote currency, ``volume`` in base units. The export has no aggressor side and no
  trade id: both are null.
"""

from __future__ import annotations

import re
from pathlib import Path

from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import CSV_SUFFIXES, read_csv_columns
from smart_trader.data.readers._numbers import text_column
from smart_trader.data.readers._times import epoch_text_to_ns
from smart_trader.data.schema import Kind

NAME = "kraken-trades-csv"
_NAMES = ("timestamp", "price", "volume")
_EPOCH_SECONDS = re.compile(r"^\d{9,10}(\.\d*)?$")  # 1973-03-03 .. 2286-11-20


def _matches(probe: Probe) -> bool:
    return probe.columns is None and len(probe.first_row) == 3 and bool(_EPOCH_SECONDS.match(probe.first_row[0]))


def read_kraken_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Kraken trades CSV (no header) into trades.

    Raises:
        DataValidationError: rows without three fields, unparsable times or numbers, precision.
    """
    file = str(path)
    cols = read_csv_columns(path, _NAMES, names=_NAMES)
    return build_result(
        kind=Kind.TRADES,
        fmt=NAME,
        path=file,
        options=options,
        ts=epoch_text_to_ns(cols["timestamp"], file, "timestamp"),
        numbers={
            "price": text_column(cols["price"], file, "price"),
            "size": text_column(cols["volume"], file, "volume"),
        },
    )


FORMAT = Format(
    name=NAME,
    kind=Kind.TRADES,
    description="Kraken trades CSV without header: unix_seconds,price,volume",
    suffixes=CSV_SUFFIXES,
    columns=(),
    matches=_matches,
    read=read_kraken_csv,
)
