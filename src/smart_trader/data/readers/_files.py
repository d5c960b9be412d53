"""Opening market-data files of any container: probing their columns and loading the ones a reader needs.

Text tables (CSV, TSV, semicolon- or pipe-separated; header or none) are read by Arrow with every cell as
text, so numbers are converted exactly later. JSON holds a list of lists (ccxt/freqtrade OHLCV), a list
of records, pandas' ``split`` layout, an object with one list inside, or JSON lines. Parquet and Feather
are read by Arrow. Compressed files of every kind are opened through :mod:`._source`.

Every failure of the underlying library becomes a :class:`DataValidationError` naming the file (and
the row when there is one), never a raw Arrow traceback.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers._base import Probe
from smart_trader.data.readers._source import Source, open_source
from smart_trader.data.schema import single_array

CSV_SUFFIXES = (".csv",)
"""Text tables of every extension (.csv, .txt, .tsv, .dat...): detection is by content, see :mod:`._source`."""
PARQUET_SUFFIXES = (".parquet",)
FEATHER_SUFFIXES = (".feather",)
JSON_SUFFIXES = (".json",)
NULL_TEXT = ["", "null", "NULL", "NaN", "nan", "N/A", "None"]
"""Cells read as missing values."""

DELIMITERS = (",", "\t", ";", "|")
"""Field separators recognised in text tables."""

_DATA_START = re.compile(r"^\s*[+-]?\.?\d")


def _lines(source: Source, count: int = 50) -> list[str]:
    text = source.head.decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(source.head) >= 64 * 1024 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut head may be partial
    if not lines:
        raise DataValidationError(str(source.path), "not-empty", "the file holds only blank lines")
    return lines[:count]


def sniff_delimiter(source: Source) -> str:
    """The field separator of a text table: the one of :data:`DELIMITERS` that splits the first lines into
    the same number (> 1) of fields, the most fields winning; ``,`` when none does (one column)."""
    lines = _lines(source)
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1:
            fields = counts.pop()
            if fields > best_fields:
                best, best_fields = delimiter, fields
    return best


def _fields(line: str, delimiter: str) -> tuple[str, ...]:
    return tuple(field.strip() for field in next(csv.reader([line], delimiter=delimiter)))


def is_header(fields: Sequence[str]) -> bool:
    """True when a first line names columns: none of its fields starts like a number or a date."""
    return not any(_DATA_START.match(f) for f in fields)


def probe(path: Path) -> Probe:
    """Container, suffix, column names and first row of ``path``, for format detection.

    Raises:
        NotFoundError: no such file.
        DataValidationError: empty file (``not-empty``) or unreadable file (``file-format``).
    """
    source = open_source(path)
    if source.container in ("parquet", "feather"):
        names = tuple(arrow_schema(source).names)
        return Probe(path, source.suffix, _lower(names), source=source, names=names)
    if source.container == "dbn":
        return Probe(path, source.suffix, None, source=source)
    if source.container == "json":
        keys, first = json_probe(source)
        return Probe(path, source.suffix, _lower(keys), first, source=source, names=keys)
    delimiter = sniff_delimiter(source)
    first = _fields(_lines(source, 1)[0], delimiter)
    if not is_header(first):
        return Probe(path, source.suffix, None, first, source, delimiter)
    rest = _lines(source, 2)
    second = _fields(rest[1], delimiter) if len(rest) > 1 else ()
    return Probe(path, source.suffix, _lower(first), second, source, delimiter, names=first)


def _lower(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(n.lower() for n in names)


def arrow_schema(source: Source | Path, parquet: bool | None = None) -> pa.Schema:
    """Schema of a Parquet or Feather file, read without loading the data (compressed files are
    decompressed first).

    Raises:
        DataValidationError: ``file-format`` when the file is not readable as such.
    """
    if isinstance(source, Path):
        source = open_source(source)
    if parquet is None:
        parquet = source.container == "parquet"
    try:
        if parquet:
            return pq.read_schema(_arrow_input(source))
        return _read_feather(source).schema
    except (pa.ArrowException, OSError) as e:
        detail = f"not a readable {_container(parquet)} file: {e}"
        raise DataValidationError(str(source.path), "file-format", detail) from None


def _container(parquet: bool) -> str:
    return "Parquet" if parquet else "Feather (Arrow IPC)"


def _arrow_input(source: Source) -> str | pa.BufferReader:
    return str(source.path) if source.compression is None else pa.BufferReader(source.buffer())


def _read_feather(source: Source, columns: Sequence[str] | None = None) -> pa.Table:
    buffer = source.buffer()
    try:
        return feather.read_table(pa.BufferReader(buffer), columns=list(columns) if columns else None)
    except pa.ArrowInvalid:
        table = pa.ipc.open_stream(buffer).read_all()  # an Arrow IPC stream rather than a file
        return table.select(list(columns)) if columns else table


def _resolve(file: str, available: Sequence[str], wanted: Sequence[str], optional: Sequence[str]) -> dict[str, str]:
    """Map wanted lower-case names to the file's actual names (case-insensitive)."""
    actual: dict[str, str] = {}
    for name in available:
        actual.setdefault(name.strip().lower(), name)
    missing = [w for w in wanted if w not in actual]
    if missing:
        raise DataValidationError(
            file, "columns", f"missing column(s) {', '.join(missing)}; the file has: {', '.join(available)}"
        )
    return {w: actual[w] for w in (*wanted, *optional) if w in actual}


def read_text_table(
    source: Source,
    *,
    delimiter: str | None = None,
    names: Sequence[str] | None = None,
    include: Sequence[str] | None = None,
    integers: Sequence[str] = (),
) -> pa.Table:
    """A text table with every cell as text (cells in :data:`NULL_TEXT` are nulls), except the ``integers``
    columns, parsed as int64 by the (multi-threaded) reader when every cell is an integer, else as text too.

    Args:
        source: the opened file.
        delimiter: field separator; sniffed when ``None``.
        names: column names of a file without a header line (``None``: the first line is the header).
        include: only these columns (actual names), in this order.

    Raises:
        DataValidationError: ``not-empty`` (no data rows), ``columns`` (a row with the wrong number of
            fields, naming that row), ``file-format`` (anything else).
    """
    file = str(source.path)
    delimiter = delimiter or sniff_delimiter(source)
    read_options = pacsv.ReadOptions(column_names=list(names)) if names is not None else pacsv.ReadOptions()
    parse = pacsv.ParseOptions(delimiter=delimiter)
    columns = list(include) if include is not None else None
    convert = pacsv.ConvertOptions(
        include_columns=columns,
        column_types={a: pa.int64() if a in integers else pa.string() for a in columns}
        if columns is not None
        else None,
        null_values=NULL_TEXT,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        auto_dict_encode=False,
    )
    if columns is None:  # every column as text: types are given once the names are known
        names_now = list(names) if names is not None else list(_fields(_lines(source, 1)[0], delimiter))
        convert.column_types = {n: pa.string() for n in names_now}
    data = source.buffer()
    if integers and columns is not None:
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data), read_options=read_options, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid:  # not all integers (or a ragged row): text, and the errors named below
            convert.column_types = {a: pa.string() for a in columns}
        else:
            if table.num_rows == 0:
                raise DataValidationError(file, "not-empty", "the file has no data rows")
            return table
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data), read_options=read_options, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            raise DataValidationError(file, "not-empty", "the file is empty") from None
        _raise_bad_row(file, data, read_options, parse, convert, has_header=names is None)
        raise DataValidationError(file, "file-format", f"not a readable text table: {e}") from None
    if table.num_rows == 0:
        raise DataValidationError(file, "not-empty", "the file has no data rows")
    return table


def read_csv_columns(
    path: Path, wanted: Sequence[str], optional: Sequence[str] = (), *, names: Sequence[str] | None = None
) -> dict[str, pa.Array]:
    """Read the ``wanted`` (and present ``optional``) columns of a text table as text, keyed by lower-case
    name. The separator is sniffed; compressed files are decompressed. ``names`` gives the column names of
    a file without a header line.

    Raises:
        NotFoundError: no such file.
        DataValidationError: ``not-empty`` (no data rows), ``columns`` (a missing column, or a row
            with the wrong number of fields — naming that row), ``file-format`` (anything else).
    """
    source = open_source(path)
    delimiter = sniff_delimiter(source)
    header = names if names is not None else _fields(_lines(source, 1)[0], delimiter)
    mapping = _resolve(str(path), header, wanted, optional)
    table = read_text_table(source, delimiter=delimiter, names=names, include=list(mapping.values()))
    return {w: single_array(table.column(a)) for w, a in mapping.items()}


def _raise_bad_row(
    file: str,
    data: pa.Buffer,
    read_options: pacsv.ReadOptions,
    parse: pacsv.ParseOptions,
    convert: pacsv.ConvertOptions,
    has_header: bool,
) -> None:
    """Re-read single-threaded (where Arrow knows line numbers) and raise for the first ragged row."""
    bad: list[pacsv.InvalidRow] = []

    def handler(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    single = pacsv.ReadOptions(use_threads=False, column_names=read_options.column_names or None)
    with contextlib.suppress(pa.ArrowInvalid):
        pacsv.read_csv(
            pa.BufferReader(data),
            read_options=single,
            parse_options=pacsv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=handler),
            convert_options=convert,
        )
    if bad:
        r = bad[0]
        row = None if r.number is None else r.number - (1 if has_header else 0)
        detail = f"expected {r.expected_columns} fields, got {r.actual_columns}: {r.text!r}"
        raise DataValidationError(file, "columns", detail, row)


def read_arrow_columns(
    path: Path, wanted: Sequence[str], optional: Sequence[str] = (), *, parquet: bool
) -> dict[str, pa.Array]:
    """Read the ``wanted`` (and present ``optional``) columns of a Parquet (``parquet=True``) or
    Feather file, keyed by lower-case name.

    Raises:
        NotFoundError: no such file.
        DataValidationError: ``columns`` (missing column), ``not-empty`` (no rows), ``file-format``
            (not readable).
    """
    source = open_source(path)
    file = str(path)
    mapping = _resolve(file, arrow_schema(source, parquet).names, wanted, optional)
    table = read_arrow_table(source, list(mapping.values()), parquet=parquet)
    return {w: single_array(table.column(a)) for w, a in mapping.items()}


def read_arrow_table(source: Source, columns: Sequence[str] | None = None, *, parquet: bool) -> pa.Table:
    """The (selected) columns of a Parquet or Feather file.

    Raises:
        DataValidationError: ``not-empty`` (no rows), ``file-format`` (not readable).
    """
    file = str(source.path)
    try:
        if parquet:
            table = pq.read_table(_arrow_input(source), columns=list(columns) if columns else None)
        else:
            table = _read_feather(source, columns)
    except (pa.ArrowException, OSError) as e:
        raise DataValidationError(file, "file-format", f"not a readable {_container(parquet)} file: {e}") from None
    if table.num_rows == 0:
        raise DataValidationError(file, "not-empty", "the file has no rows")
    return table


# --- JSON ------------------------------------------------------------------------------------------


def json_probe(source: Source) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Column names as written (``None`` for lists of values) and the first row's values as text, from the head."""
    text = source.head.decode("utf-8-sig", errors="replace").strip()
    first: Any = None
    try:
        first = _first_json_row(orjson.loads(text))
    except orjson.JSONDecodeError:
        # JSON lines, or a document longer than the head: its first line, or its first inner list or record
        line = text.splitlines()[0].strip() if text else ""
        match = _FIRST_ROW.search(text) if not _parses(line) else None
        with contextlib.suppress(orjson.JSONDecodeError):
            first = orjson.loads(match.group(1) if match else line)
    if isinstance(first, dict):
        return tuple(str(k) for k in first), tuple(_text(v) for v in first.values())
    if isinstance(first, list):
        return None, tuple(_text(v) for v in first)
    return None, ()


_FIRST_ROW = re.compile(r"^\s*\[\s*(\[[^\[\]]*\]|\{[^{}]*\})", re.DOTALL)


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()


def _rows_of(document: Any) -> Any:
    """The list of rows inside a JSON document (see the module docstring), else ``None``."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if isinstance(document.get("data"), list) and isinstance(document.get("columns"), list):
            return document  # pandas to_json(orient="split")
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return None


def _first_json_row(document: Any) -> Any:
    rows = _rows_of(document)
    if isinstance(rows, dict):
        return dict(zip(rows["columns"], rows["data"][0], strict=False)) if rows["data"] else None
    return rows[0] if rows else None


def read_json_table(source: Source) -> pa.Table:
    """A JSON file as a table: records keep their names, lists of values get columns ``"1"``, ``"2"``...
    Numbers keep their JSON type (integers or binary floats); strings stay text.

    Raises:
        DataValidationError: ``file-format`` (not JSON, or no list of rows inside), ``not-empty``,
            ``columns`` (rows of different lengths, naming the first).
    """
    file = str(source.path)
    raw = source.read_bytes()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = _json_lines(file, raw)
    rows = _rows_of(document)
    if isinstance(rows, dict):
        rows = [dict(zip(rows["columns"], r, strict=False)) for r in rows["data"]]
    if rows is None:
        raise DataValidationError(file, "file-format", "the JSON holds no list of rows (lists or records)")
    if not rows:
        raise DataValidationError(file, "not-empty", "the file has no data rows")
    if isinstance(rows[0], dict):
        try:
            return pa.Table.from_pylist(rows)
        except (pa.ArrowException, TypeError) as exc:
            raise DataValidationError(file, "file-format", f"records of mixed types: {exc}") from None
    if not isinstance(rows[0], list):
        raise DataValidationError(file, "file-format", f"rows must be lists or records, not {type(rows[0]).__name__}")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise DataValidationError(file, "columns", f"expected {width} values, got {got}", i + 1)
    columns = list(zip(*rows, strict=True))
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowException, TypeError):  # mixed numbers and text: all text
            arrays.append(pa.array([None if v is None else _text(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=[str(i + 1) for i in range(width)])


def _json_lines(file: str, raw: bytes) -> list[Any]:
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise DataValidationError(file, "file-format", f"not JSON or JSON lines: {exc}", number) from None
    return rows
