"""Binance public market data (data.binance.vision): klines, trades and aggTrades CSV files, zipped or not.

Layouts (spot files have no header; USD-M/COIN-M futures files since 2022 have one with these names):

- **binance-klines-csv** — ``open_time,open,high,low,close,volume,close_time,quote_volume,count,
  taker_buy_volume,taker_buy_quote_volume,ignore``: ``open_time`` is the bar's open (ms since the epoch,
  UTC; µs in spot files from 2025-01-01, told apart by magnitude), ``volume`` in base units. The bar
  length is ``close_time - open_time`` + one time unit. Quote volume, trade count and taker volumes are
  not kept (the bars schema has base volume only).
- **binance-trades-csv** — ``id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]``: one row per
  trade; ``is_buyer_maker`` True means the resting order was the buyer, so the aggressor **sold**.
- **binance-aggtrades-csv** — ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
  is_buyer_maker[,is_best_match]``: trades at one price from one taker order, summed; the aggregate id
  is kept as ``trade_id``.

Source: the column lists of github.com/binance/binance-public-data (README, "Klines", "Trades",
"AggTrades"), and Binance's 2025-01-01 notice that spot data moved to microsecond timestamps.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import CSV_SUFFIXES
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers._time_formats import read_times
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind
from smart_trader.data.timeframes import Timeframe

KLINES = "binance-klines-csv"
TRADES = "binance-trades-csv"
AGG_TRADES = "binance-aggtrades-csv"

KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
TRADE_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")
AGG_COLUMNS = (
    "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker",
    "is_best_match",
)  # fmt: skip
_EPOCH = re.compile(r"^\d{12,17}$")
_INTEGER = re.compile(r"^\d+$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_FLAG = re.compile(r"^(true|false)$", re.IGNORECASE)


def _headerless(probe: Probe, width: int) -> bool:
    return probe.columns is None and probe.delimiter == "," and len(probe.first_row) == width


def _header(probe: Probe, columns: tuple[str, ...]) -> bool:
    return probe.columns is not None and probe.columns == columns[: len(probe.columns)] and len(probe.columns) >= 6


def _matches_klines(probe: Probe) -> bool:
    if _header(probe, KLINE_COLUMNS):
        return len(probe.columns or ()) >= 11
    if not _headerless(probe, 12):
        return False
    row = probe.first_row
    return bool(_EPOCH.match(row[0]) and _EPOCH.match(row[6]) and all(_NUMBER.match(v) for v in row[1:6]))


def _matches_trades(probe: Probe) -> bool:
    if _header(probe, TRADE_COLUMNS):
        return True
    if probe.columns is not None or probe.delimiter != "," or len(probe.first_row) not in (6, 7):
        return False
    row = probe.first_row
    return bool(_INTEGER.match(row[0]) and _EPOCH.match(row[4]) and _FLAG.match(row[5]))


def _matches_aggtrades(probe: Probe) -> bool:
    if _header(probe, AGG_COLUMNS):
        return True
    if probe.columns is not None or probe.delimiter != "," or len(probe.first_row) not in (7, 8):
        return False
    row = probe.first_row
    return bool(_INTEGER.match(row[0]) and _INTEGER.match(row[3]) and _EPOCH.match(row[5]) and _FLAG.match(row[6]))


def _names(probe: Probe, columns: tuple[str, ...]) -> tuple[list[str] | None, dict[str, str]]:
    """Names to give a file without a header, and the lower-case name → actual name map."""
    if probe.names is not None:
        return None, {n.lower(): n for n in probe.names}
    names = list(columns[: len(probe.first_row)])
    return names, {n: n for n in names}


def read_klines(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Binance klines CSV into bars (see the module docstring).

    Raises:
        DataValidationError: ragged rows, unparsable numbers or times, mixed time units (file and row named).
    """
    p = probe_file(path)
    file = str(path)
    names, actual = _names(p, KLINE_COLUMNS)
    wanted = ["open_time", "open", "high", "low", "close", "volume", "close_time"]
    table = load_table(p, [actual[c] for c in wanted], names=names)
    choice = ColumnChoice(Kind.BARS, {f: actual[c] for f, c in zip(("ts", *wanted[1:6]), wanted, strict=False)}, {})
    timeframe = _kline_timeframe(file, table, actual)
    note = "Binance klines: volume in base units; quote volume, trade count and taker volumes not kept"
    return convert(file, table, choice, options, KLINES, timeframe=timeframe, notes=(note,))


def _kline_timeframe(file: str, table: pa.Table, actual: dict[str, str]) -> Timeframe | None:
    """The bar length the file states: close_time - open_time + 1 unit (ms or µs)."""
    opened = read_times(table.column(actual["open_time"]), file, actual["open_time"]).ns
    closed = read_times(table.column(actual["close_time"]), file, actual["close_time"]).ns
    seconds = np.unique(-((opened - closed) // NS_PER_SECOND))  # 59.999 s (ms) or 59.999999 s (µs) → 60 s
    if len(seconds) != 1 or not 1 <= seconds[0] <= 86_400:
        return None  # the last bar of a live download may still be open: inferred from the open times
    return Timeframe(int(seconds[0]))


def read_trades(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Binance trades CSV (``is_buyer_maker`` True = the aggressor sold).

    Raises:
        DataValidationError: ragged rows, unparsable values, a flag that is not True/False (file and row named).
    """
    p = probe_file(path)
    names, actual = _names(p, TRADE_COLUMNS)
    fields = {"id": "id", "price": "price", "size": "qty", "ts": "time", "buyer_maker": "is_buyer_maker"}
    table = load_table(p, [actual[c] for c in fields.values()], names=names)
    choice = ColumnChoice(Kind.TRADES, {f: actual[c] for f, c in fields.items()}, {})
    return convert(str(path), table, choice, options, TRADES, notes=("Binance trades: quote_qty not kept",))


def read_aggtrades(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Binance aggTrades CSV (the aggregate id becomes ``trade_id``; True buyer-maker = the aggressor sold).

    Raises:
        DataValidationError: ragged rows, unparsable values, a flag that is not True/False (file and row named).
    """
    p = probe_file(path)
    names, actual = _names(p, AGG_COLUMNS)
    fields = {
        "id": "agg_trade_id", "price": "price", "size": "quantity", "ts": "transact_time",
        "buyer_maker": "is_buyer_maker",
    }  # fmt: skip
    table = load_table(p, [actual[c] for c in fields.values()], names=names)
    choice = ColumnChoice(Kind.TRADES, {f: actual[c] for f, c in fields.items()}, {})
    note = "Binance aggregate trades: one row per taker order and price; first/last trade ids not kept"
    return convert(str(path), table, choice, options, AGG_TRADES, notes=(note,))


KLINES_FORMAT = Format(
    name=KLINES,
    kind=Kind.BARS,
    description="Binance public-data klines CSV open_time,open,high,low,close,volume,close_time,... (ms or µs)",
    suffixes=CSV_SUFFIXES,
    columns=KLINE_COLUMNS,
    matches=_matches_klines,
    read=read_klines,
)
TRADES_FORMAT = Format(
    name=TRADES,
    kind=Kind.TRADES,
    description="Binance public-data trades CSV id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]",
    suffixes=CSV_SUFFIXES,
    columns=TRADE_COLUMNS,
    matches=_matches_trades,
    read=read_trades,
)
AGG_TRADES_FORMAT = Format(
    name=AGG_TRADES,
    kind=Kind.TRADES,
    description="Binance public-data aggTrades CSV agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
    "transact_time,is_buyer_maker[,is_best_match]",
    suffixes=CSV_SUFFIXES,
    columns=AGG_COLUMNS,
    matches=_matches_aggtrades,
    read=read_aggtrades,
)
