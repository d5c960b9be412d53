"""The generic tabular reader: any table of bars, trades or quotes that no vendor format claims.

Containers: text tables (comma, tab, semicolon or pipe separated; header or none), JSON (list of lists as
ccxt and freqtrade write OHLCV, list of records, pandas ``split``, JSON lines), Parquet and Feather (Arrow
IPC), each optionally compressed (gzip, bzip2, zstd, xz, zip) — see :mod:`._files` and :mod:`._source`.
Columns are recognised by their common names (:mod:`._columns`), or mapped by the caller
(``ReadOptions.columns``); times are recognised as :mod:`._time_formats` describes; naive local times
need ``ReadOptions.tz``. The result's ``notes`` say which column became which field, in which unit.

A file holding several instruments (a ``symbol`` or ``ticker`` column with several values) is read for
``ReadOptions.symbol`` only; without it the error lists the symbols.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._columns import ColumnChoice, choose_columns, normalize, price_type_from_name
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers._files import read_arrow_table, read_json_table, read_text_table, sniff_delimiter
from smart_trader.data.readers._numbers import I64, NumericColumn, ShiftedColumn, numeric_column
from smart_trader.data.readers._sides import buyer_maker_side, side_column, trade_id_column
from smart_trader.data.readers._time_formats import Times, is_compact_date, read_times
from smart_trader.data.schema import Kind, PriceType, single_array
from smart_trader.data.timeframes import Timeframe

NAME = "generic"
_SCHEMA_NAME = {"bid": "bid_price", "ask": "ask_price"}
_NUMBER_FIELDS = {
    Kind.BARS: ("open", "high", "low", "close", "volume"),
    Kind.TRADES: ("price", "size"),
    Kind.QUOTES: ("bid", "ask", "bid_size", "ask_size"),
}
_SYMBOL_COLUMNS = ("symbol", "ticker", "instrument", "pair", "market")


def read_generic(path: Path, options: ReadOptions) -> ReadResult:
    """Read any supported table of bars, trades or quotes (see the module docstring).

    Raises:
        InvalidInputError: no set of columns makes bars, trades or quotes; naive local times and no ``tz``;
            a mapped column that does not exist; several symbols in the file and none (or an absent one) chosen.
        DataValidationError: unreadable file, unparsable numbers or times (file, row and rule named).
    """
    p = probe_file(path)
    assert p.source is not None
    file = str(path)
    if p.source.container == "dbn":
        raise InvalidInputError(f"{file} is a Databento DBN file: read it with --format databento-dbn")
    if p.source.container == "json" and p.names is None and not p.first_row:
        head = p.source.head[:120].decode("utf-8", errors="replace").strip()
        detail = f"the JSON holds no list of rows (lists or records); it starts: {head}"
        raise DataValidationError(file, "file-format", detail)
    names, width = _shape(p)
    choice = choose_columns(file, names, width, options.columns, p.first_row)
    names_given = None if p.names is not None else [str(i + 1) for i in range(width)]
    times = [choice.columns["ts"]] if "ts" in choice.columns and "ts" not in choice.formats else []
    table = load_table(p, list(dict.fromkeys(choice.columns.values())), names=names_given, integers=times)
    price_type = price_type_from_name(Path(p.name)) if choice.kind is Kind.BARS else None
    note = f"read as {choice.kind} by the generic reader" + (" (columns by position)" if choice.positional else "")
    if price_type is not None:
        note += f"; {price_type} prices, as the file name says (--price-type overrides)"
    return convert(file, table, choice, options, NAME, notes=(note,), price_type=price_type or PriceType.LAST)


def convert(
    file: str,
    table: pa.Table,
    choice: ColumnChoice,
    options: ReadOptions,
    fmt: str,
    *,
    tz: str | None = None,
    unit: str | None = None,
    price_type: PriceType = PriceType.LAST,
    timeframe: Timeframe | None = None,
    notes: tuple[str, ...] = (),
    source_rows: I64 | None = None,
    shift: Mapping[str, int] | None = None,
) -> ReadResult:
    """Turn the source ``table`` into a :class:`ReadResult` of ``choice.kind``: one instrument's rows (see the
    module docstring), times to ns UTC, numbers to exact decimals, sides and ids to text. A file written
    newest first (every time before the previous one) is read in time order, and the notes say so.

    Args:
        file: for error messages and the result's ``source``.
        table: the source columns (text, numbers, Arrow timestamps...).
        choice: which column is which field.
        options: the caller's options (``tz`` wins over the format's own ``tz``).
        fmt: the format's name.
        tz: the zone the format documents for its naive times (``None``: the file says, or ``--tz`` must).
        unit: the epoch unit the format documents (``None``: told by magnitude).
        price_type: bars: what the prices are.
        timeframe: bars: the length the source states (else inferred).
        notes: the format's own notes, before the column notes.
        source_rows: the 1-based file row of each table row, when the caller dropped rows (errors name file rows).
        shift: field → power of ten its values are multiplied by, exactly (a unit change: millions → units is 6).

    Raises:
        InvalidInputError: naive times without a zone; several instruments and none chosen.
        DataValidationError: unparsable numbers or times (file, row and rule named).
    """
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64) if source_rows is None else source_rows
    table, rows, symbol_note = _one_symbol(file, table, rows, options.symbol)
    all_notes = [*notes, *([symbol_note] if symbol_note else [])]
    with file_rows(rows):
        times, numbers, strings = _columns(file, table, choice, options.tz or tz, unit, shift or {})
        if len(times.ns) > 1 and bool(np.all(np.diff(times.ns) < 0)):  # newest first: read in time order
            table, rows = table.take(pa.array(np.arange(table.num_rows - 1, -1, -1))), rows[::-1]
            times, numbers, strings = _columns(file, table, choice, options.tz or tz, unit, shift or {})
            all_notes.append("rows are newest first in the file: read in time order")
    with file_rows(rows):
        all_notes.append(f"ts_event <- {_time_source(choice)} ({times.description})")
        all_notes += [
            f"{_SCHEMA_NAME.get(f, f)} <- {c!r}" for f, c in choice.columns.items() if f not in ("ts", "date", "time")
        ]
        result = build_result(
            kind=choice.kind,
            fmt=fmt,
            path=file,
            options=options,
            ts=times.ns,
            numbers=numbers,
            strings=strings,
            price_type=price_type,
            timeframe=timeframe,
            notes=tuple(all_notes),
        )
    identity = len(rows) == 0 or (rows[0] == 1 and rows[-1] == len(rows) and bool(np.all(np.diff(rows) == 1)))
    return result if identity else dataclasses.replace(result, source_rows=rows)


_PARALLEL_ROWS = 100_000
"""Tables from this many rows convert their columns on a thread each (NumPy and Arrow release the GIL)."""


def _columns(
    file: str, table: pa.Table, choice: ColumnChoice, tz: str | None, unit: str | None, shift: Mapping[str, int]
) -> tuple[Times, dict[str, NumericColumn | None], dict[str, pa.Array] | None]:
    """Times, numbers and (trades) sides and ids of ``table``, each column converted on its own thread for big
    tables; the first error in field order (time first) is the one raised, as if done one after the other."""
    jobs: dict[str, Callable[[], Any]] = {"ts": functools.partial(_times, file, table, choice, tz, unit)}
    for field in _NUMBER_FIELDS[choice.kind]:
        column = choice.columns.get(field)
        if column is not None:
            jobs[_SCHEMA_NAME.get(field, field)] = functools.partial(numeric_column, table.column(column), file, column)
    if choice.kind is Kind.TRADES:
        jobs["strings"] = functools.partial(_strings, file, table, choice)
    if table.num_rows < _PARALLEL_ROWS:
        done = {name: job() for name, job in jobs.items()}
    else:
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            done = {name: future.result() for name, future in futures.items()}
    numbers = {_SCHEMA_NAME.get(f, f): done.get(_SCHEMA_NAME.get(f, f)) for f in _NUMBER_FIELDS[choice.kind]}
    for field, power in shift.items():
        column = numbers.get(_SCHEMA_NAME.get(field, field))
        if column is not None:
            numbers[_SCHEMA_NAME.get(field, field)] = ShiftedColumn(column, power)
    return done["ts"], numbers, done.get("strings")


@contextlib.contextmanager
def file_rows(rows: I64) -> Iterator[None]:
    """Translate the row of a :class:`DataValidationError` raised inside from table rows to file rows."""
    try:
        yield
    except DataValidationError as exc:
        if exc.row is None or not 1 <= exc.row <= len(rows):
            raise
        raise DataValidationError(exc.file, exc.rule, exc.detail, int(rows[exc.row - 1])) from None


def _shape(p: Probe) -> tuple[list[str] | None, int]:
    """The file's column names as written (``None`` when it has none) and its number of columns."""
    if p.names is not None:
        return list(p.names), len(p.names)
    return None, len(p.first_row)


def load_table(
    p: Probe, columns: list[str], *, names: list[str] | None = None, integers: Sequence[str] = ()
) -> pa.Table:
    """The source table of a probed file: for text, only ``columns`` (plus a symbol column when there is
    one), every cell as text — but ``integers`` columns (epoch times) as int64 when the first row's cell is one
    and every cell parses — the file's own header or ``names`` for a file without one; JSON, Parquet and Feather
    whole, with their own types.

    Raises:
        DataValidationError: unreadable file, ragged rows, no data rows.
    """
    source = p.source
    assert source is not None
    if source.container == "text":
        header = list(p.names or names or ())
        symbol = _symbol_column(header)
        include = columns + ([symbol] if symbol and symbol not in columns else [])
        return read_text_table(
            source,
            delimiter=p.delimiter or sniff_delimiter(source),
            names=names,
            include=include,
            integers=[c for c in integers if c in header and _is_integer(p.first_row, header.index(c))],
        )
    if source.container == "json":
        return read_json_table(source)
    return read_arrow_table(source, None, parquet=source.container == "parquet")


def _is_integer(row: Sequence[str], index: int) -> bool:
    """An epoch time as digits (``1651708800000``), not a date written as digits (``20240102``)."""
    return index < len(row) and row[index].isdigit() and not is_compact_date(row[index])


def _symbol_column(names: list[str]) -> str | None:
    return next((n for n in names if normalize(n) in _SYMBOL_COLUMNS), None)


def _one_symbol(file: str, table: pa.Table, rows: I64, symbol: str | None) -> tuple[pa.Table, I64, str | None]:
    """The rows (and their file rows) of one instrument when the table holds several (see the module docstring)."""
    column = _symbol_column(table.column_names)
    if column is None:
        return table, rows, None
    values = single_array(table.column(column)).cast(pa.string())
    distinct = [v for v in pc.unique(values).to_pylist() if v is not None]
    if len(distinct) <= 1:
        return table, rows, None
    if symbol is not None:
        wanted = [v for v in distinct if _same_symbol(v, symbol)]
        if len(wanted) == 1:
            mask = pc.fill_null(pc.equal(values, wanted[0]), False)
            kept = table.filter(mask)
            note = f"{kept.num_rows:,} of {table.num_rows:,} rows: those of {column} = {wanted[0]!r}"
            return kept, rows[np.asarray(mask, dtype=bool)], note
    shown = ", ".join(repr(v) for v in distinct[:10]) + (" ..." if len(distinct) > 10 else "")
    raise InvalidInputError(
        f"{file} holds {len(distinct)} instruments in its {column!r} column ({shown}); import one at a time with "
        "--symbol naming one of them"
    )


def _same_symbol(value: str, symbol: str) -> bool:
    def squash(text: str) -> str:
        return "".join(ch for ch in text.upper() if ch.isalnum())

    return squash(value) == squash(symbol)


def _times(file: str, table: pa.Table, choice: ColumnChoice, tz: str | None, unit: str | None) -> Times:
    if "ts" in choice.columns:
        column = choice.columns["ts"]
        return read_times(table.column(column), file, column, tz=tz, fmt=choice.formats.get("ts"), unit=unit)
    date, clock = choice.columns["date"], choice.columns["time"]
    joined = pc.binary_join_element_wise(
        _as_text(table.column(date)), _as_text(table.column(clock)), " ", null_handling="emit_null"
    )
    fmt = None
    if "date" in choice.formats or "time" in choice.formats:
        fmt = f"{choice.formats.get('date', '%Y-%m-%d')} {choice.formats.get('time', '%H:%M:%S')}"
    return read_times(joined, file, f"{date} {clock}", tz=tz, fmt=fmt)


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    arr = single_array(column)
    return arr if pa.types.is_string(arr.type) else arr.cast(pa.string())


def _time_source(choice: ColumnChoice) -> str:
    if "ts" in choice.columns:
        return repr(choice.columns["ts"])
    return f"{choice.columns['date']!r} + {choice.columns['time']!r}"


def _strings(file: str, table: pa.Table, choice: ColumnChoice) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    if "side" in choice.columns:
        column = choice.columns["side"]
        out["aggressor_side"] = side_column(single_array(table.column(column)), file, column)
    elif "buyer_maker" in choice.columns:
        column = choice.columns["buyer_maker"]
        out["aggressor_side"] = buyer_maker_side(single_array(table.column(column)), file, column)
    if "id" in choice.columns:
        column = choice.columns["id"]
        out["trade_id"] = trade_id_column(single_array(table.column(column)), file, column)
    return out


def _never(_: Probe) -> bool:
    return False  # the fallback: chosen when no vendor format matches, never by detection


FORMAT = Format(
    name=NAME,
    kind=Kind.BARS,
    description="any table of bars, trades or quotes (CSV/TSV/JSON/Parquet/Feather, compressed or not), "
    "columns recognised by name",
    suffixes=(".csv", ".json", ".parquet", ".feather"),
    columns=(),
    matches=_never,
    read=read_generic,
)
