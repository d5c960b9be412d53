"""Binance public-data layouts in Parquet: trades and book-ticker quotes.

- **binance-trades-parquet** — ``timestamp[ms, UTC],trade_id,price,quantity,buyer_maker``:
  ``buyer_maker`` (bool or the strings ``"True"``/``"False"``) is True when the buyer was the
  resting order, i.e. the aggressor **sold**; ``quantity`` in base units.
- **binance-quotes-parquet** — ``timestamp[ms, UTC],symbol,ask_size,ask,bid_size,bid``: best bid
  and ask (quote currency) with their sizes (base units). The normalized quotes carry no symbol, so
  a file must hold one symbol only.

Prices and sizes are binary floats: read as the decimals they stand for (see ``_numbers``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers._base import Format, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import PARQUET_SUFFIXES, read_arrow_columns
from smart_trader.data.readers._numbers import numeric_column
from smart_trader.data.readers._sides import buyer_maker_side, trade_id_column
from smart_trader.data.readers._times import timestamp_column
from smart_trader.data.schema import Kind

TRADES_NAME = "binance-trades-parquet"
QUOTES_NAME = "binance-quotes-parquet"
_TRADES = ("timestamp", "trade_id", "price", "quantity", "buyer_maker")
_QUOTES = ("timestamp", "ask_size", "ask", "bid_size", "bid")


def read_trades_parquet(path: Path, options: ReadOptions) -> ReadResult:
    """Read Binance trades (``quantity`` → ``size``; ``buyer_maker`` → ``aggressor_side``).

    Raises:
        DataValidationError: missing columns, nulls, buyer_maker not True/False, values that are not decimals.
    """
    file = str(path)
    cols = read_arrow_columns(path, _TRADES, parquet=True)
    return build_result(
        kind=Kind.TRADES,
        fmt=TRADES_NAME,
        path=file,
        options=options,
        ts=timestamp_column(cols["timestamp"], file, "timestamp", int_unit="ms"),
        numbers={
            "price": numeric_column(cols["price"], file, "price"),
            "size": numeric_column(cols["quantity"], file, "quantity"),
        },
        strings={
            "aggressor_side": buyer_maker_side(cols["buyer_maker"], file, "buyer_maker"),
            "trade_id": trade_id_column(cols["trade_id"], file, "trade_id"),
        },
    )


def read_quotes_parquet(path: Path, options: ReadOptions) -> ReadResult:
    """Read Binance book-ticker quotes.

    Raises:
        DataValidationError: ``single-symbol`` when the file mixes symbols; missing columns, nulls,
            values that are not decimals.
    """
    file = str(path)
    cols = read_arrow_columns(path, _QUOTES, optional=("symbol",), parquet=True)
    symbol = cols.get("symbol")
    if symbol is not None and pc.count_distinct(symbol, mode="all").as_py() > 1:
        first = symbol[0]
        row = int(pc.index(pc.not_equal(symbol, first), True).as_py())
        detail = (
            f"symbol {symbol[row].as_py()!r} differs from the first row's {first.as_py()!r}; split the file per symbol"
        )
        raise DataValidationError(file, "single-symbol", detail, row + 1)
    return build_result(
        kind=Kind.QUOTES,
        fmt=QUOTES_NAME,
        path=file,
        options=options,
        ts=timestamp_column(cols["timestamp"], file, "timestamp", int_unit="ms"),
        numbers={
            "bid_price": numeric_column(cols["bid"], file, "bid"),
            "ask_price": numeric_column(cols["ask"], file, "ask"),
            "bid_size": numeric_column(cols["bid_size"], file, "bid_size"),
            "ask_size": numeric_column(cols["ask_size"], file, "ask_size"),
        },
    )


TRADES_FORMAT = Format(
    name=TRADES_NAME,
    kind=Kind.TRADES,
    description="Binance trades Parquet timestamp[ms],trade_id,price,quantity,buyer_maker (True = aggressor sold)",
    suffixes=PARQUET_SUFFIXES,
    columns=_TRADES,
    matches=has_columns(_TRADES),
    read=read_trades_parquet,
)
QUOTES_FORMAT = Format(
    name=QUOTES_NAME,
    kind=Kind.QUOTES,
    description="Binance book-ticker Parquet timestamp[ms],symbol,ask_size,ask,bid_size,bid",
    suffixes=PARQUET_SUFFIXES,
    columns=_QUOTES,
    matches=has_columns(_QUOTES),
    read=read_quotes_parquet,
)
