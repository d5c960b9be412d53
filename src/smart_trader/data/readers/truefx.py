"""TrueFX quotes CSV: ``timestamp,bid,ask``.

``timestamp`` is ISO 8601 (with a UTC offset, converted to UTC; without one, taken as UTC) at up to
ns resolution; ``bid``/``ask`` in quote currency (JPY for USD/JPY). TrueFX publishes no sizes:
``bid_size``/``ask_size`` are null.
"""

from __future__ import annotations

from pathlib import Path

from smart_trader.data.readers._base import Format, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import CSV_SUFFIXES, read_csv_columns
from smart_trader.data.readers._numbers import text_column
from smart_trader.data.readers._times import iso_to_ns
from smart_trader.data.schema import Kind

NAME = "truefx-quotes-csv"
_COLUMNS = ("timestamp", "bid", "ask")


def read_truefx_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a TrueFX ``timestamp,bid,ask`` CSV into quotes.

    Raises:
        DataValidationError: missing columns, unparsable timestamps or numbers, precision.
    """
    file = str(path)
    cols = read_csv_columns(path, _COLUMNS)
    return build_result(
        kind=Kind.QUOTES,
        fmt=NAME,
        path=file,
        options=options,
        ts=iso_to_ns(cols["timestamp"], file, "timestamp"),
        numbers={
            "bid_price": text_column(cols["bid"], file, "bid"),
            "ask_price": text_column(cols["ask"], file, "ask"),
        },
    )


FORMAT = Format(
    name=NAME,
    kind=Kind.QUOTES,
    description="TrueFX quotes CSV timestamp,bid,ask (no sizes)",
    suffixes=CSV_SUFFIXES,
    columns=_COLUMNS,
    matches=has_columns(_COLUMNS),
    read=read_truefx_csv,
)
