"""Tardis.dev CSV datasets (``datasets.tardis.dev``, one file per exchange, data type, day and symbol or
grouped symbols): trades and quotes. Order-book datasets are read by :mod:`.tardis_book`.

- **tardis-trades-csv** — ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``: ``side`` is the
  aggressor (``buy``, ``sell`` or ``unknown``), ``amount`` in base units (contracts for some derivatives).
- **tardis-quotes-csv** — ``exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,
  bid_amount``: top of book; a row with an empty side (an empty book side) is skipped, and the note says how
  many.

``timestamp`` is the exchange's time in **µs** since the epoch, UTC (Tardis falls back to its receive
time when the exchange gives none); ``local_timestamp`` (receive time) is not kept. A grouped file holding
several symbols is read for ``--symbol`` only.

Source: Tardis.dev documentation, "Downloadable CSV files" (data types trades and quotes, column lists).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.data.readers._base import Format, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import CSV_SUFFIXES
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind

TRADES = "tardis-trades-csv"
QUOTES = "tardis-quotes-csv"
_TRADES = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
_QUOTES = ("exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount")


def read_trades(path: Path, options: ReadOptions) -> ReadResult:
    """Read Tardis trades (µs exchange times; ``side`` the aggressor).

    Raises:
        InvalidInputError: several symbols and none chosen.
        DataValidationError: unparsable values, unknown sides (file and row named).
    """
    p = probe_file(path)
    fields = {"ts": "timestamp", "id": "id", "side": "side", "price": "price", "size": "amount"}
    table = load_table(p, list(fields.values()))
    note = "Tardis trades: timestamp is the exchange time in µs; local_timestamp not kept"
    return convert(str(path), table, ColumnChoice(Kind.TRADES, fields, {}), options, TRADES, unit="us", notes=(note,))


def read_quotes(path: Path, options: ReadOptions) -> ReadResult:
    """Read Tardis quotes (top of book; rows with an empty side skipped).

    Raises:
        InvalidInputError: several symbols and none chosen.
        DataValidationError: unparsable values, crossed quotes (file and row named).
    """
    p = probe_file(path)
    fields = {"ts": "timestamp", "bid": "bid_price", "ask": "ask_price", "bid_size": "bid_amount",
              "ask_size": "ask_amount"}  # fmt: skip
    table = load_table(p, list(fields.values()))
    both = np.asarray(pc.and_(pc.is_valid(table.column("bid_price")), pc.is_valid(table.column("ask_price"))))
    kept = table.filter(pa.array(both))
    notes = ["Tardis quotes: timestamp is the exchange time in µs; local_timestamp not kept"]
    if kept.num_rows < table.num_rows:
        notes.append(f"{table.num_rows - kept.num_rows:,} row(s) with an empty book side skipped")
    rows = np.flatnonzero(both).astype(np.int64) + 1
    choice = ColumnChoice(Kind.QUOTES, fields, {})
    return convert(str(path), kept, choice, options, QUOTES, unit="us", notes=tuple(notes), source_rows=rows)


TRADES_FORMAT = Format(
    name=TRADES,
    kind=Kind.TRADES,
    description="Tardis.dev trades CSV exchange,symbol,timestamp,local_timestamp,id,side,price,amount (µs)",
    suffixes=CSV_SUFFIXES,
    columns=_TRADES,
    matches=has_columns(_TRADES),
    read=read_trades,
)
QUOTES_FORMAT = Format(
    name=QUOTES,
    kind=Kind.QUOTES,
    description="Tardis.dev quotes CSV exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,"
    "bid_amount (µs)",
    suffixes=CSV_SUFFIXES,
    columns=_QUOTES,
    matches=has_columns(_QUOTES),
    read=read_quotes,
)
