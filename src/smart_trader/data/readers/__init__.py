"""Market-data file readers: detect a file's format, read it exactly into the normalized schema, validate it.

>>> result = read_file(Path("GBPUSD_2012_1m_bid.fxcm.csv"))      # doctest: +SKIP
>>> result.kind, result.format, result.price_type, str(result.timeframe)  # doctest: +SKIP
(<Kind.BARS: 'bars'>, 'fxcm-csv', <PriceType.BID: 'bid'>, '1m')

Formats (:data:`FORMATS`; each module's docstring gives its layout, units and conventions):

========================  ======  =============================================================
name                      kind    layout
========================  ======  =============================================================
yahoo-csv                 bars    ``Date,Open,High,Low,Close,Adj Close,Volume`` (daily)
fxcm-csv                  bars    ``timestamp,open,high,low,close`` bid or ask (ISO 8601 + offset)
ccxt-ohlcv-feather        bars    ``date[ns, UTC],open,high,low,close,volume``
binance-trades-parquet    trades  ``timestamp[ms, UTC],trade_id,price,quantity,buyer_maker``
ccxt-trades-parquet       trades  ``timestamp`` (ms),``id,type,side,price,amount,cost``
kraken-trades-csv         trades  no header: ``unix_seconds,price,volume``
truefx-quotes-csv         quotes  ``timestamp,bid,ask``
binance-quotes-parquet    quotes  ``timestamp[ms, UTC],symbol,ask_size,ask,bid_size,bid``
========================  ======  =============================================================

Exactness: text numbers are parsed as decimals, never through binary floats; binary floats are
read as the decimals they stand for, or refused (see ``_numbers``). Timestamps become int64 ns
since the epoch, UTC, by integer arithmetic. Everything is vectorized (Arrow/NumPy): no per-row
Python.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers import binance, ccxt, fxcm, kraken, truefx, yahoo
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._files import probe
from smart_trader.data.schema import MAX_PRECISION, PriceType
from smart_trader.data.validation import validate

__all__ = ["FORMATS", "Format", "Probe", "ReadOptions", "ReadResult", "detect_format", "read_file"]

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        yahoo.FORMAT,
        fxcm.FORMAT,
        ccxt.OHLCV_FORMAT,
        binance.TRADES_FORMAT,
        ccxt.TRADES_FORMAT,
        kraken.FORMAT,
        truefx.FORMAT,
        binance.QUOTES_FORMAT,
    )
}
"""Registry of readers: format name → :class:`Format` (kind, description, detection, reader)."""

_DEPTH_COLUMNS = frozenset({"first_update_id", "last_update_id", "update_type"})


def _known() -> str:
    return "; ".join(f"{f.name} ({f.kind}: {f.description})" for f in FORMATS.values())


def detect_format(path: Path | str) -> str:
    """Name of the format of ``path`` in :data:`FORMATS`, from its suffix and its columns
    (CSV header line or Parquet/Feather schema; a CSV whose first line is numbers has no header).

    Only the first 64 KiB of a CSV and the schema of a binary file are read.

    Raises:
        NotFoundError: no such file.
        DataValidationError: the file is empty (``not-empty``), unreadable (``file-format``), or its
            header has most but not all columns of one format (``columns``).
        InvalidInputError: order-book depth files (not a supported import kind yet); no format or
            several formats match (the message lists the known formats).
    """
    p = probe(Path(path))
    if p.columns is not None and _DEPTH_COLUMNS & set(p.columns):
        raise InvalidInputError(
            f"{path}: order-book depth (snapshot/update levels) is not a supported import kind yet; "
            "supported kinds are bars, trades and quotes"
        )
    found = [f.name for f in FORMATS.values() if p.suffix in f.suffixes and f.matches(p)]
    if len(found) == 1:
        return found[0]
    columns = "no header" if p.columns is None else ",".join(p.columns)
    _raise_near_miss(p)
    if found:
        raise InvalidInputError(f"{path}: matches several formats ({', '.join(found)}); pass format=")
    raise InvalidInputError(
        f"{path}: unknown market-data format (suffix {p.suffix!r}, columns {columns}); known formats: {_known()}"
    )


def _raise_near_miss(p: Probe) -> None:
    """A header that has most of one format's columns: say which ones it lacks."""
    if p.columns is None:
        return
    best: tuple[int, Format] | None = None
    for f in FORMATS.values():
        if p.suffix not in f.suffixes or not f.columns:
            continue
        missing = len(set(f.columns) - set(p.columns))
        if missing > 0 and 2 * missing <= len(f.columns) and (best is None or missing < best[0]):
            best = (missing, f)
    if best is not None:
        f = best[1]
        lacking = ", ".join(c for c in f.columns if c not in p.columns)
        detail = (
            f"looks like {f.name} ({f.description}) but lacks column(s) {lacking}; the file has: {','.join(p.columns)}"
        )
        raise DataValidationError(str(p.path), "columns", detail)


def _check_precision(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRECISION:
        raise InvalidInputError(f"{name} must be an integer from 0 to {MAX_PRECISION}, not {value!r}")


def read_file(
    path: Path | str,
    format: str | None = None,
    *,
    price_precision: int | None = None,
    size_precision: int | None = None,
    price_type: PriceType | None = None,
) -> ReadResult:
    """Read a market-data file into the normalized schema of its kind, then :func:`validate` it.

    Args:
        path: the file.
        format: a name in :data:`FORMATS`; detected with :func:`detect_format` when ``None``.
        price_precision: decimals of prices (0..12); inferred as the fewest that write every price
            exactly when ``None``. A price with more decimals is an error, never rounded.
        size_precision: the same for sizes/volumes.
        price_type: bars only: overrides what the prices are (FXCM: bid/ask from the file name).

    Returns:
        A :class:`ReadResult` whose ``table`` is exactly ``schema_for(kind, price_precision,
        size_precision)``: ``ts_event`` ns since the epoch (UTC), prices in quote currency, sizes in
        base units, rows in file order.

    Raises:
        NotFoundError: no such file.
        InvalidInputError: unknown or undetectable format, bad option values.
        DataValidationError: the file breaks a rule (names file, 1-based data row, rule): missing
            columns, empty file, unparsable numbers or timestamps, too many decimals, unsorted or
            duplicate timestamps, inconsistent bars, non-positive prices, negative sizes, crossed
            quotes, duplicate trade ids.
    """
    _check_precision("price_precision", price_precision)
    _check_precision("size_precision", size_precision)
    if price_type is not None:
        try:
            price_type = PriceType(price_type)
        except ValueError:
            raise InvalidInputError(f"price_type must be one of {', '.join(PriceType)}, not {price_type!r}") from None
    name = detect_format(path) if format is None else format
    spec = FORMATS.get(name)
    if spec is None:
        raise InvalidInputError(f"unknown format {name!r}; known formats: {_known()}")
    options = ReadOptions(price_precision=price_precision, size_precision=size_precision, price_type=price_type)
    result = spec.read(Path(path), options)
    if result.source != str(path):
        result = dataclasses.replace(result, source=str(path))
    validate(result)
    return result
