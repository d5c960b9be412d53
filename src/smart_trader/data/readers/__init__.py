"""Market-data file readers: detect a file's format, read it exactly into the normalized schema, validate it.

>>> result = read_file(Path("GBPUSD_2012_1m_bid.fxcm.csv"))      # doctest: +SKIP
>>> result.kind, result.format, result.price_type, str(result.timeframe)  # doctest: +SKIP
(<Kind.BARS: 'bars'>, 'fxcm-csv', <PriceType.BID: 'bid'>, '1m')

Formats: :data:`FORMATS` (each module's docstring gives its layout, units and conventions; the user's table is
``docs/data-formats.md``). Detection is by the file's bytes (:mod:`._source`) and each format's signature
(:attr:`Format.matches`); a file no vendor format claims goes to the generic reader (:mod:`.generic`).

Exactness: text numbers come out as the decimals written — through a binary float only where that provably
loses nothing (15 significant digits or fewer, or a float printout within 2 ulps of a shorter decimal), else
parsed as decimals; binary floats are read as the decimals they stand for, or refused (see ``_numbers``).
Timestamps become int64 ns since the epoch, UTC, by integer arithmetic. Everything is vectorized
(Arrow/NumPy): no per-row Python on the common paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.readers import (
    binance,
    binance_depth,
    binance_public,
    ccxt,
    databento,
    dukascopy,
    fxcm,
    generic,
    histdata,
    kraken,
    metatrader,
    tardis,
    tardis_book,
    truefx,
    yahoo,
)
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._files import probe
from smart_trader.data.readers._time_formats import check_zone
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
        binance_public.KLINES_FORMAT,
        binance_public.TRADES_FORMAT,
        binance_public.AGG_TRADES_FORMAT,
        ccxt.OHLCV_JSON_FORMAT,
        metatrader.MT4_FORMAT,
        metatrader.MT5_BARS_FORMAT,
        histdata.BARS_FORMAT,
        histdata.TICKS_FORMAT,
        dukascopy.BARS_FORMAT,
        dukascopy.TICKS_FORMAT,
        tardis.TRADES_FORMAT,
        tardis.QUOTES_FORMAT,
        databento.FORMAT,
        binance_depth.FORMAT,
        tardis_book.L2_FORMAT,
        tardis_book.SNAPSHOT_FORMAT,
        generic.FORMAT,
    )
}
"""Registry of readers: format name → :class:`Format` (kind, description, detection, reader)."""


def _known() -> str:
    return "; ".join(f"{f.name} ({f.kind}: {f.description})" for f in FORMATS.values())


def detect_format(path: Path | str) -> str:
    """Name of the format of ``path`` in :data:`FORMATS`: the one vendor format whose signature the file
    has (its container, found from its bytes, and its columns or first row), else ``generic``.

    Only the first 64 KiB of a text or JSON file (decompressed) and the schema of a binary file are read.

    Raises:
        NotFoundError: no such file.
        DataValidationError: the file is empty (``not-empty``) or unreadable (``file-format``).
        InvalidInputError: several vendor formats match (the message lists them and the ``--format`` to pass).
    """
    p = probe(Path(path))
    found = [f.name for f in FORMATS.values() if p.suffix in f.suffixes and f.matches(p)]
    if len(found) == 1:
        return found[0]
    if found:
        choices = " or ".join(f"--format {name}" for name in found)
        raise InvalidInputError(f"{path} could be any of {', '.join(found)}: say which with {choices}")
    return generic.NAME


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
    tz: str | None = None,
    columns: Mapping[str, str] | None = None,
    symbol: str | None = None,
) -> ReadResult:
    """Read a market-data file into the normalized schema of its kind, then :func:`validate` it.

    Args:
        path: the file.
        format: a name in :data:`FORMATS`; detected with :func:`detect_format` when ``None`` (the generic
            reader when ``columns`` is given).
        price_precision: decimals of prices (0..12); inferred as the fewest that write every price
            exactly when ``None``. A price with more decimals is an error, never rounded.
        size_precision: the same for sizes/volumes.
        price_type: bars only: overrides what the prices are (FXCM: bid/ask from the file name).
        tz: IANA zone of naive local times in the file (see :class:`ReadOptions`).
        columns: field → source column for the generic reader (see :class:`ReadOptions`).
        symbol: the instrument to read from a file holding several.

    Returns:
        A :class:`ReadResult` whose ``table`` is exactly ``schema_for(kind, price_precision,
        size_precision)``: ``ts_event`` ns since the epoch (UTC), prices in quote currency, sizes in
        base units, rows in file order; ``notes`` say how it was read.

    Raises:
        NotFoundError: no such file.
        InvalidInputError: unknown format, several candidate formats, bad option values, naive times
            without ``tz``, columns that make no kind.
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
    if tz is not None:
        check_zone(tz)
    if format is None:
        format = generic.NAME if columns else detect_format(path)
    spec = FORMATS.get(format)
    if spec is None:
        raise InvalidInputError(f"unknown format {format!r}; known formats: {_known()}")
    options = ReadOptions(
        price_precision=price_precision,
        size_precision=size_precision,
        price_type=price_type,
        tz=tz,
        columns=dict(columns or {}),
        symbol=symbol,
    )
    result = spec.read(Path(path), options)
    if result.source != str(path) or not result.notes:
        notes = result.notes or (f"read as {spec.name}: {spec.description}",)
        result = dataclasses.replace(result, source=str(path), notes=notes)
    if result.source_rows is None:
        validate(result)
    else:
        with generic.file_rows(result.source_rows):
            validate(result)
    return result
