"""Which source column holds which field: common column names, positional layouts, and the kind they imply.

Pure functions over column names; nothing here reads a file. Names are compared *normalized*: lower case,
surrounding ``<>``/quotes removed, runs of spaces, dots, dashes and slashes turned into one ``_``
(``"Gmt time"`` → ``gmt_time``, ``"<TICKVOL>"`` → ``tickvol``).

=============  ==========================================================================================
field          names recognised (normalized)
=============  ==========================================================================================
ts             ts_event, timestamp, datetime, date_time, time, open_time, gmt_time, local_time, time_utc,
               event_time, trade_time, exchange_time,
               ts, t, unix, transact_time, timestamp_ms, date (when there is no separate time column)
date + time    a ``date`` column and a ``time`` column holding clock times are joined
open/high/     open, o, open_price, first / high, h, high_price, max / low, l, low_price, min /
low/close      close, c, close_price, last (bars only)
volume         volume, v, vol, base_volume, volume_base, volumefrom
price          price, p, px, trade_price, last_price, last
size           size, qty, quantity, amount, q, base_qty, sz, trade_size, volume (trades)
side           side, aggressor_side, taker_side, aggressor, direction (buy/sell, b/s)
buyer_maker    is_buyer_maker, buyer_maker, isbuyermaker, m (True = the aggressor sold)
id             id, trade_id, tradeid, tid, agg_trade_id
bid / ask      bid, bid_price, best_bid, bidprice, bid_px / ask, ask_price, best_ask, askprice, ask_px
bid_size /     bid_size, bid_qty, bid_amount, bid_volume, bidvolume, bidsize, bid_sz (ask likewise)
ask_size
=============  ==========================================================================================

The kind follows from the fields found: open, high, low and close make **bars**; bid and ask make
**quotes**; a price (with a size) makes **trades**. A file without names holding 5 or 6 values per row is
read as ``ts, open, high, low, close[, volume]`` (the ccxt/freqtrade order); anything else needs a mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.schema import Kind, PriceType

FIELDS = (
    "ts", "date", "time", "open", "high", "low", "close", "volume", "price", "size", "side", "buyer_maker", "id",
    "bid", "ask", "bid_size", "ask_size",
)  # fmt: skip
"""Fields a source column can be mapped to (``--columns FIELD=COLUMN``)."""

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "ts": (
        "ts_event", "timestamp", "datetime", "date_time", "time", "open_time", "gmt_time", "local_time",
        "time_utc", "ts", "t", "unix", "transact_time", "timestamp_ms", "opentime", "open_timestamp", "event_time",
        "trade_time", "exchange_time", "time_exchange", "timestamp_utc",
    ),
    "date": ("date", "day", "trade_date"),
    "time": ("time", "clock"),
    "open": ("open", "o", "open_price", "openprice", "first"),
    "high": ("high", "h", "high_price", "highprice", "max"),
    "low": ("low", "l", "low_price", "lowprice", "min"),
    "close": ("close", "c", "close_price", "closeprice", "last"),
    "volume": ("volume", "v", "vol", "base_volume", "volume_base", "volumefrom"),
    "price": ("price", "p", "px", "trade_price", "last_price", "last"),
    "size": ("size", "qty", "quantity", "amount", "q", "base_qty", "sz", "trade_size", "volume"),
    "side": ("side", "aggressor_side", "taker_side", "aggressor", "direction"),
    "buyer_maker": ("is_buyer_maker", "buyer_maker", "isbuyermaker", "m"),
    "id": ("id", "trade_id", "tradeid", "tid", "agg_trade_id"),
    "bid": ("bid", "bid_price", "best_bid", "bidprice", "bid_px", "bid_px_00"),
    "ask": ("ask", "ask_price", "best_ask", "askprice", "ask_px", "ask_px_00"),
    "bid_size": ("bid_size", "bid_qty", "bid_amount", "bid_volume", "bidvolume", "bidsize", "bid_sz", "bid_sz_00"),
    "ask_size": ("ask_size", "ask_qty", "ask_amount", "ask_volume", "askvolume", "asksize", "ask_sz", "ask_sz_00"),
}  # fmt: skip
_BAR_FIELDS = ("open", "high", "low", "close")
_POSITIONAL_BARS = ("ts", "open", "high", "low", "close", "volume")
_NORMALIZE = re.compile(r"[\s./\-]+")
_SIDE = re.compile(r"(?:^|[_.\-])(bid|ask)(?:[_.\-]|$)")
_CLOCK = re.compile(r"^\d\d?:\d\d(:\d\d(\.\d+)?)?$|^\d{6}$")


def price_type_from_name(path: Path) -> PriceType | None:
    """``bid`` or ``ask`` when the file name says so (``GBPUSD_2012_1m_bid.fxcm.csv``), else ``None``."""
    sides = {m.group(1) for m in _SIDE.finditer(path.name.lower())}
    return PriceType(sides.pop()) if len(sides) == 1 else None


def normalize(name: str) -> str:
    """A column name as compared here (see the module docstring)."""
    stripped = name.strip().strip("\"'").strip("<>").strip().lower()
    return _NORMALIZE.sub("_", stripped).strip("_")


@dataclass(frozen=True)
class ColumnChoice:
    """Source columns chosen for each field, the kind they make, and the strftime formats given for times.

    Attributes:
        kind: bars, trades or quotes.
        columns: field → the source column's actual name.
        formats: field → strftime format given by the user (``ts=Date:%d/%m/%Y``).
        positional: True when the columns were taken by position (a file without names).
    """

    kind: Kind
    columns: dict[str, str]
    formats: dict[str, str]
    positional: bool = False


def parse_mapping(text: str | None) -> dict[str, str]:
    """``--columns`` text (``ts=Date,close=Last``) as a dict field → column (a column may end in ``:FORMAT``).

    Raises:
        InvalidInputError: an entry without ``=``, an unknown field, or a field given twice.
    """
    if not text:
        return {}
    out: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        field, sep, column = entry.partition("=")
        field = field.strip().lower()
        if not sep or not column.strip():
            raise InvalidInputError(f"--columns: {entry.strip()!r} is not FIELD=COLUMN (e.g. ts=Date,close=Last)")
        if field not in FIELDS:
            raise InvalidInputError(f"--columns: unknown field {field!r}; fields are {', '.join(FIELDS)}")
        if field in out:
            raise InvalidInputError(f"--columns: {field} is given twice")
        out[field] = column.strip()
    return out


def _split_format(value: str) -> tuple[str, str | None]:
    column, sep, fmt = value.partition(":")
    if sep and "%" in fmt:
        return column.strip(), fmt
    return value.strip(), None


def choose_columns(
    file: str,
    names: Sequence[str] | None,
    width: int,
    given: Mapping[str, str],
    first_row: Sequence[str] = (),
) -> ColumnChoice:
    """Choose the source column of each field and infer the kind.

    Args:
        file: for error messages.
        names: the file's column names, or ``None`` when it has none (then columns are ``"1"``, ``"2"``...).
        width: number of columns.
        given: the user's mapping (field → column name or 1-based position, optionally ``:FORMAT``).
        first_row: the first data row as text (tells clock-only ``time`` columns).

    Raises:
        InvalidInputError: a mapped column that does not exist; no set of columns that makes bars, trades
            or quotes (the message lists the columns found and how to map them).
    """
    actual = list(names) if names is not None else [str(i + 1) for i in range(width)]
    by_norm: dict[str, str] = {}
    for a in actual:
        by_norm.setdefault(normalize(a), a)
    columns: dict[str, str] = {}
    formats: dict[str, str] = {}
    for field, value in given.items():
        column, fmt = _split_format(value)
        columns[field] = _resolve_given(file, column, actual, by_norm)
        if fmt is not None:
            formats[field] = fmt
    positional = False
    if names is None and not given:
        if width not in (5, 6):
            raise InvalidInputError(
                f"{file}: the file has no column names and {width} values per row; say which column is which with "
                "--columns (1-based positions), e.g. --columns ts=1,price=2,size=3"
            )
        columns = dict(zip(_POSITIONAL_BARS, actual, strict=False))
        positional = True
    elif names is not None:
        _by_names(columns, by_norm, first_row, actual)
    _refuse_twins(file, actual, columns)
    named_bars = [f for f in _BAR_FIELDS if f in columns or any(n in by_norm for n in _SYNONYMS[f][:3])]
    kind = _kind(file, columns, actual, named_bars)
    return ColumnChoice(kind, columns, formats, positional)


def _refuse_twins(file: str, actual: list[str], columns: dict[str, str]) -> None:
    """A chosen column whose name the file has twice (``close`` and ``Close``) is ambiguous: say so."""
    for field, column in columns.items():
        positions = [i + 1 for i, a in enumerate(actual) if normalize(a) == normalize(column)]
        if len(positions) > 1:
            raise InvalidInputError(
                f"{file}: {len(positions)} columns are named like {column!r} (positions "
                f"{', '.join(map(str, positions))}): which one is {field} is ambiguous; rename one of them"
            )


def _resolve_given(file: str, column: str, actual: list[str], by_norm: dict[str, str]) -> str:
    if column.isdigit():
        position = int(column)
        if not 1 <= position <= len(actual):
            raise InvalidInputError(f"{file}: --columns position {position} is outside 1..{len(actual)}")
        return actual[position - 1]
    found = by_norm.get(normalize(column))
    if found is None:
        raise InvalidInputError(
            f"{file}: --columns names {column!r}, which the file does not have ({', '.join(actual)})"
        )
    return found


def _by_names(columns: dict[str, str], by_norm: dict[str, str], first_row: Sequence[str], actual: list[str]) -> None:
    """Fill ``columns`` (fields not given by the user) from the synonyms of the names present."""
    taken = set(columns.values())
    user_given = set(columns)

    def pick(field: str) -> None:
        if field in columns:
            return
        for synonym in _SYNONYMS[field]:
            column = by_norm.get(synonym)
            if column is not None and column not in taken:
                columns[field] = column
                taken.add(column)
                return

    for field in _BAR_FIELDS:
        pick(field)
    if all(f in columns for f in _BAR_FIELDS):
        pick("volume")
    else:
        for field in _BAR_FIELDS:  # not bars: a "last" or "close" column is free to be the trade price
            if field in columns and field not in user_given:
                taken.discard(columns.pop(field))
        for field in ("price", "bid", "ask", "bid_size", "ask_size", "size", "side", "buyer_maker", "id"):
            pick(field)
    if "ts" not in columns and not ("date" in columns and "time" in columns):
        date, clock = by_norm.get("date"), by_norm.get("time")
        if date is not None and clock is not None and _is_clock(first_row, actual, clock):
            columns.setdefault("date", date)
            columns.setdefault("time", clock)
        else:
            pick("ts")
            if "ts" not in columns and date is not None and date not in columns.values():
                columns["ts"] = date


def _is_clock(first_row: Sequence[str], actual: list[str], column: str) -> bool:
    index = actual.index(column)
    return index < len(first_row) and bool(_CLOCK.match(first_row[index].strip()))


def _kind(file: str, columns: dict[str, str], actual: list[str], named_bars: list[str]) -> Kind:
    has_time = "ts" in columns or ("date" in columns and "time" in columns)
    if all(f in columns for f in _BAR_FIELDS):
        kind = Kind.BARS
    elif "bid" in columns and "ask" in columns:
        kind = Kind.QUOTES
    elif "price" in columns and "size" in columns:
        kind = Kind.TRADES
    else:
        partial = named_bars if len(named_bars) >= 2 else [f for f in ("bid", "ask") if f in columns]
        if partial:
            bars = partial[0] in _BAR_FIELDS
            lacking = [f for f in (_BAR_FIELDS if bars else ("bid", "ask")) if f not in partial]
            raise InvalidInputError(
                f"{file}: looks like {'bars' if bars else 'quotes'} but has no {' or '.join(lacking)} column "
                f"(columns: {', '.join(actual)}); map it with --columns {lacking[0]}=COLUMN"
            )
        raise InvalidInputError(
            f"{file}: cannot tell bars, trades or quotes from the columns {', '.join(actual)}: bars need "
            "open, high, low and close; trades a price and a size (qty, amount...); quotes a bid and an ask. "
            "Map them with --columns, e.g. --columns ts=Date,open=O,high=H,low=L,close=C"
        )
    if not has_time:
        raise InvalidInputError(
            f"{file}: no time column among {', '.join(actual)}; name it with --columns ts=COLUMN "
            "(or date=COLUMN,time=COLUMN)"
        )
    return kind
