"""ccxt layouts (as stored by freqtrade): OHLCV in JSON and Feather, trades in Parquet.

- **ccxt-ohlcv-json** — a JSON list of ``[timestamp_ms, open, high, low, close, volume]`` lists, what
  ``exchange.fetch_ohlcv()`` returns and freqtrade's ``json``/``jsongz`` data format writes
  (``BTC_USDT-5m.json``): times the bar's open in ms since the epoch, UTC; volume in base units; numbers are
  JSON numbers (binary floats, read as the decimals they stand for).
- **ccxt-ohlcv-feather** — Arrow IPC (Feather v2) ``date[ns, UTC],open,high,low,close,volume``:
  ``date`` is the bar's open time; volume in base units (ETH for ETH/BTC).
- **ccxt-trades-parquet** — ``timestamp`` (int64 ms since the epoch, UTC), ``id``, ``type``,
  ``side`` (the aggressor: buy/sell), ``price`` (quote currency), ``amount`` (base units),
  ``cost`` (quote currency, = price × amount, ignored: derived).

Prices and sizes are binary floats: read as the decimals they stand for (see ``_numbers``).
"""

from __future__ import annotations

import re
from pathlib import Path

from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import FEATHER_SUFFIXES, JSON_SUFFIXES, PARQUET_SUFFIXES, read_arrow_columns
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers._numbers import numeric_column
from smart_trader.data.readers._sides import side_column, trade_id_column
from smart_trader.data.readers._times import timestamp_column
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind, PriceType

OHLCV_JSON_NAME = "ccxt-ohlcv-json"
OHLCV_NAME = "ccxt-ohlcv-feather"
TRADES_NAME = "ccxt-trades-parquet"
_OHLCV = ("date", "open", "high", "low", "close", "volume")
_EPOCH_MS = re.compile(r"^\d{12,13}$")
_TRADES = ("timestamp", "id", "side", "price", "amount")


def read_ohlcv_feather(path: Path, options: ReadOptions) -> ReadResult:
    """Read a ccxt/freqtrade OHLCV Feather file into bars (price type ``last``).

    Raises:
        DataValidationError: missing columns, nulls, values that are not decimals at the precision.
    """
    file = str(path)
    cols = read_arrow_columns(path, _OHLCV, parquet=False)
    numbers = {name: numeric_column(cols[name], file, name) for name in _OHLCV[1:]}
    return build_result(
        kind=Kind.BARS,
        fmt=OHLCV_NAME,
        path=file,
        options=options,
        ts=timestamp_column(cols["date"], file, "date", int_unit="ms"),
        numbers=numbers,
        price_type=PriceType.LAST,
    )


def _matches_ohlcv_json(probe: Probe) -> bool:
    row = probe.first_row
    return probe.columns is None and len(row) == 6 and bool(_EPOCH_MS.match(row[0]))


def read_ohlcv_json(path: Path, options: ReadOptions) -> ReadResult:
    """Read ccxt/freqtrade OHLCV JSON (``[[ms, o, h, l, c, v], ...]``) into bars.

    Raises:
        DataValidationError: rows of another length, values that are not numbers or decimals (row named).
    """
    p = probe_file(path)
    table = load_table(p, [])
    fields = dict(zip(("ts", "open", "high", "low", "close", "volume"), table.column_names, strict=True))
    choice = ColumnChoice(Kind.BARS, fields, {})
    return convert(str(path), table, choice, options, OHLCV_JSON_NAME, unit="ms", notes=("ccxt OHLCV rows",))


def read_trades_parquet(path: Path, options: ReadOptions) -> ReadResult:
    """Read a ccxt trades Parquet file into trades (``amount`` → ``size``, ``side`` → ``aggressor_side``).

    Raises:
        DataValidationError: missing columns, nulls, unknown sides, values that are not decimals.
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
            "size": numeric_column(cols["amount"], file, "amount"),
        },
        strings={
            "aggressor_side": side_column(cols["side"], file, "side"),
            "trade_id": trade_id_column(cols["id"], file, "id"),
        },
    )


OHLCV_JSON_FORMAT = Format(
    name=OHLCV_JSON_NAME,
    kind=Kind.BARS,
    description="ccxt/freqtrade OHLCV JSON [[timestamp_ms, open, high, low, close, volume], ...]",
    suffixes=JSON_SUFFIXES,
    columns=(),
    matches=_matches_ohlcv_json,
    read=read_ohlcv_json,
)
OHLCV_FORMAT = Format(
    name=OHLCV_NAME,
    kind=Kind.BARS,
    description="ccxt/freqtrade OHLCV Feather date[ns, UTC],open,high,low,close,volume (e.g. Binance)",
    suffixes=FEATHER_SUFFIXES,
    columns=_OHLCV,
    matches=has_columns(_OHLCV),
    read=read_ohlcv_feather,
)
TRADES_FORMAT = Format(
    name=TRADES_NAME,
    kind=Kind.TRADES,
    description="ccxt trades Parquet timestamp (ms),id,type,side,price,amount,cost",
    suffixes=PARQUET_SUFFIXES,
    columns=_TRADES,
    matches=has_columns(_TRADES),
    read=read_trades_parquet,
)
