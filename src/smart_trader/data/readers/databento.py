"""Databento DBN files (``.dbn``, ``.dbn.zst``), decoded by the official ``databento`` package.

Schemas read:

==================  =======  ==========================================================================
schema              kind     fields
==================  =======  ==========================================================================
ohlcv-1s/1m/1h/1d   bars     ``open/high/low/close`` (fixed-point, 1 unit = 1e-9), ``volume``; the bar's
                             open time is ``ts_event``; the timeframe is the schema's
trades              trades   ``price``, ``size``; ``side`` is the aggressor: ``B`` buy, ``A`` sell, ``N``
                             none (null); DBN trades carry no trade id (null)
mbp-1               quotes   the top level after each event: ``bid_px_00``/``ask_px_00`` and their
                             sizes; records with an empty side are skipped (the note says how many)
==================  =======  ==========================================================================

``ts_event`` is the venue's time in ns since the epoch, UTC. Prices are fixed-point int64 at 1e-9 (exact:
the decimals the venue sent); ``UNDEF_PRICE`` (int64 max) marks an absent price. A file holding several
instruments is read for ``--symbol`` (the raw symbol of the file's symbology mappings, e.g. ``ESM4``).

Source: Databento documentation, "Schemas and data formats" (OHLCV, Trades, MBP-1 field lists; prices are
"fixed-precision, 1 unit = 0.000000001"; side "A" ask / "B" bid / "N" none) and the ``databento`` package's
``DBNStore``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._numbers import NumericColumn, ScaledColumn
from smart_trader.data.readers.generic import file_rows
from smart_trader.data.schema import Kind
from smart_trader.data.timeframes import Timeframe

NAME = "databento-dbn"
UNDEF_PRICE = np.iinfo(np.int64).max
PRICE_SCALE = 9
_BAR_SECONDS = {"ohlcv-1s": 1, "ohlcv-1m": 60, "ohlcv-1h": 3600, "ohlcv-1d": 86_400}
_SIDES = {b"B": "buy", b"A": "sell"}


def _matches(probe: Probe) -> bool:
    return probe.source is not None and probe.source.container == "dbn"


def _store(path: Path) -> Any:
    try:
        import databento
    except ImportError:
        raise InvalidInputError(
            f"{path} is a Databento DBN file: reading it needs the databento package "
            "(pip install 'smart-trader[databento]')"
        ) from None
    try:
        return databento.DBNStore.from_file(path)
    except Exception as exc:  # the decoder's own error types vary by version
        raise DataValidationError(str(path), "file-format", f"not a readable DBN file: {exc}") from None


def read_dbn(path: Path, options: ReadOptions) -> ReadResult:
    """Read a DBN file of a schema in the module docstring.

    Raises:
        InvalidInputError: another schema; the ``databento`` package is missing; several instruments and none
            (or an absent one) chosen.
        DataValidationError: unreadable file, no records (file named).
    """
    file = str(path)
    store = _store(path)
    schema = str(store.schema)
    if schema not in (*_BAR_SECONDS, "trades", "mbp-1"):
        raise InvalidInputError(
            f"{file} holds Databento {schema} records; readable schemas: {', '.join(_BAR_SECONDS)}, trades, mbp-1"
        )
    records = store.to_ndarray()
    if len(records) == 0:
        raise DataValidationError(file, "not-empty", f"the file holds no {schema} records")
    rows = np.arange(1, len(records) + 1, dtype=np.int64)
    records, rows, symbol_note = _one_instrument(file, store, records, rows, options.symbol)
    notes = [f"Databento {store.dataset} {schema}: prices fixed-point at 1e-9, ts_event ns UTC"]
    notes += [symbol_note] if symbol_note else []
    if schema == "mbp-1":
        both = (records["bid_px_00"] != UNDEF_PRICE) & (records["ask_px_00"] != UNDEF_PRICE)
        if not both.all():
            notes.append(f"{int((~both).sum()):,} record(s) with an empty book side skipped")
            records, rows = records[both], rows[both]
    event = records["ts_event"].astype(np.int64)
    if len(event) > 1 and bool(np.any(event[1:] < event[:-1])):  # DBN is in ts_recv order; the store wants ts_event
        order = np.argsort(event, kind="stable")
        records, rows = records[order], rows[order]
        notes.append("records put in ts_event order (the file is in the order they were received, ts_recv)")
    with file_rows(rows):
        result = build_result(
            kind=Kind.BARS if schema in _BAR_SECONDS else Kind.TRADES if schema == "trades" else Kind.QUOTES,
            fmt=NAME,
            path=file,
            options=options,
            ts=records["ts_event"].astype(np.int64),
            numbers=_numbers(file, schema, records),
            strings=_sides(records) if schema == "trades" else None,
            timeframe=Timeframe(_BAR_SECONDS[schema]) if schema in _BAR_SECONDS else None,
            notes=tuple(notes),
        )
    identity = bool(np.array_equal(rows, np.arange(1, len(rows) + 1)))
    return result if identity else dataclasses.replace(result, source_rows=rows)


def _numbers(file: str, schema: str, records: np.ndarray) -> dict[str, NumericColumn | None]:
    """Prices and sizes of the records, named as in the normalized schema of their kind."""
    if schema in _BAR_SECONDS:
        numbers: dict[str, NumericColumn | None] = {
            name: _price(file, name, records[name]) for name in ("open", "high", "low", "close")
        }
        numbers["volume"] = _size(file, "volume", records["volume"])
        return numbers
    if schema == "trades":
        return {"price": _price(file, "price", records["price"]), "size": _size(file, "size", records["size"])}
    return {
        "bid_price": _price(file, "bid_px_00", records["bid_px_00"]),
        "ask_price": _price(file, "ask_px_00", records["ask_px_00"]),
        "bid_size": _size(file, "bid_sz_00", records["bid_sz_00"]),
        "ask_size": _size(file, "ask_sz_00", records["ask_sz_00"]),
    }


def _sides(records: np.ndarray) -> dict[str, pa.Array]:
    """The aggressor side of trades: ``B`` buy, ``A`` sell, ``N`` unknown (null)."""
    return {"aggressor_side": pa.array([_SIDES.get(bytes(s)) for s in records["side"]], pa.string())}


def _size(file: str, name: str, raw: np.ndarray) -> ScaledColumn:
    if raw.dtype == np.uint64 and len(raw) and int(raw.max()) > np.iinfo(np.int64).max:
        raise DataValidationError(file, "range", f"{name} does not fit a 64-bit integer")
    return ScaledColumn(file, name, raw.astype(np.int64), 0)


def _price(file: str, name: str, raw: np.ndarray) -> ScaledColumn:
    values = raw.astype(np.int64)
    undefined = values == UNDEF_PRICE
    if undefined.any():
        row = int(np.argmax(undefined))
        raise DataValidationError(file, "missing-value", f"{name} is undefined (UNDEF_PRICE)", row + 1)
    return ScaledColumn(file, name, values, PRICE_SCALE)


def _one_instrument(
    file: str, store: Any, records: np.ndarray, rows: np.ndarray, symbol: str | None
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The records of one instrument, their 1-based positions in the file, and a note when others were left."""
    ids = records["instrument_id"]
    distinct = np.unique(ids)
    if len(distinct) == 1:
        return records, rows, None
    names = _raw_symbols(store)
    if symbol is not None:
        wanted = [i for i in distinct.tolist() if _squash(names.get(int(i), str(i))) == _squash(symbol)]
        if len(wanted) == 1:
            mask = ids == wanted[0]
            note = f"{int(mask.sum()):,} of {len(records):,} records: those of {names.get(wanted[0], wanted[0])}"
            return records[mask], rows[mask], note
    shown = ", ".join(names.get(int(i), str(i)) for i in distinct[:10])
    raise InvalidInputError(
        f"{file} holds {len(distinct)} instruments ({shown}); import one at a time with --symbol naming one of them"
    )


def _raw_symbols(store: Any) -> dict[int, str]:
    """instrument_id → raw symbol, from the file's symbology mappings."""
    out: dict[int, str] = {}
    for raw_symbol, intervals in (store.mappings or {}).items():
        for interval in intervals:
            text = str(interval.get("symbol", ""))
            if text.isdigit():
                out[int(text)] = raw_symbol
    return out


def _squash(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


FORMAT = Format(
    name=NAME,
    kind=Kind.TRADES,
    description="Databento DBN (.dbn, .dbn.zst): ohlcv-1s/1m/1h/1d, trades, mbp-1 (needs the databento package)",
    suffixes=(".dbn",),
    columns=(),
    matches=_matches,
    read=read_dbn,
)
