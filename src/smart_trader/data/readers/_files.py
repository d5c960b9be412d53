"""Opening CSV, Parquet and Feather files: probing their columns and reading the ones a format needs.

Every failure of the underlying library becomes a :class:`DataValidationError` naming the file (and
the row when there is one), never a raw Arrow traceback.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from smart_trader.core.errors import DataValidationError, InvalidInputError, NotFoundError
from smart_trader.data.readers._base import Probe
from smart_trader.data.schema import single_array

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
FEATHER_SUFFIXES = (".feather", ".arrow", ".ipc")
NULL_TEXT = ["", "null", "NULL", "NaN", "nan", "N/A"]
"""CSV cells read as missing values."""

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_SNIFF_BYTES = 64 * 1024


def _check_file(path: Path) -> None:
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise InvalidInputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataValidationError(str(path), "not-empty", "the file is empty")


def _first_line(path: Path) -> tuple[str, ...]:
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    for line in head.splitlines():
        if line.strip():
            return tuple(field.strip() for field in next(csv.reader([line])))
    raise DataValidationError(str(path), "not-empty", "the file holds only blank lines")


def arrow_schema(path: Path, parquet: bool | None = None) -> pa.Schema:
    """Schema of a Parquet (``parquet=True``) or Feather file, read without loading the data;
    ``parquet=None`` decides by the suffix.

    Raises:
        DataValidationError: ``file-format`` when the file is not readable as such.
    """
    if parquet is None:
        parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        if parquet:
            return pq.read_schema(path)
        try:
            with pa.memory_map(str(path)) as source:
                return pa.ipc.open_file(source).schema
        except pa.ArrowInvalid:
            return feather.read_table(str(path)).schema  # Feather v1
    except (pa.ArrowException, OSError) as e:
        container = "Parquet" if parquet else "Feather (Arrow IPC)"
        raise DataValidationError(str(path), "file-format", f"not a readable {container} file: {e}") from None


def probe(path: Path) -> Probe:
    """Suffix, column names and first line of ``path``, for format detection.

    Raises:
        NotFoundError: no such file.
        DataValidationError: empty file (``not-empty``) or unreadable binary file (``file-format``).
    """
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES or suffix in FEATHER_SUFFIXES:
        return Probe(path, suffix, tuple(n.lower() for n in arrow_schema(path).names))
    first = _first_line(path)
    header = None if all(_NUMBER.match(f) for f in first) else tuple(f.lower() for f in first)
    return Probe(path, suffix, header, first)


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


def read_csv_columns(
    path: Path, wanted: Sequence[str], optional: Sequence[str] = (), *, names: Sequence[str] | None = None
) -> dict[str, pa.Array]:
    """Read the ``wanted`` (and present ``optional``) columns of a CSV as text, keyed by lower-case name.

    Every cell stays a string (numbers are converted exactly later); cells in :data:`NULL_TEXT`
    become nulls. ``names`` gives the column names of a CSV without a header line.

    Raises:
        NotFoundError: no such file.
        DataValidationError: ``not-empty`` (no data rows), ``columns`` (a missing column, or a row
            with the wrong number of fields — naming that row), ``file-format`` (anything else).
    """
    _check_file(path)
    file = str(path)
    if names is None:
        header = _first_line(path)
        mapping = _resolve(file, header, wanted, optional)
        read_options = pacsv.ReadOptions()
    else:
        mapping = _resolve(file, names, wanted, optional)
        read_options = pacsv.ReadOptions(column_names=list(names))
    convert = pacsv.ConvertOptions(
        include_columns=list(mapping.values()),
        column_types={a: pa.string() for a in mapping.values()},
        null_values=NULL_TEXT,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, read_options=read_options, convert_options=convert)
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            raise DataValidationError(file, "not-empty", "the file is empty") from None
        _raise_bad_row(path, read_options, convert, has_header=names is None)
        raise DataValidationError(file, "file-format", f"not a readable CSV file: {e}") from None
    if table.num_rows == 0:
        raise DataValidationError(file, "not-empty", "the file has no data rows")
    return {w: single_array(table.column(a)) for w, a in mapping.items()}


def _raise_bad_row(
    path: Path, read_options: pacsv.ReadOptions, convert: pacsv.ConvertOptions, has_header: bool
) -> None:
    """Re-read single-threaded (where Arrow knows line numbers) and raise for the first ragged row."""
    bad: list[pacsv.InvalidRow] = []

    def handler(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    single = pacsv.ReadOptions(
        use_threads=False, column_names=read_options.column_names or None, block_size=read_options.block_size
    )
    with contextlib.suppress(pa.ArrowInvalid):
        pacsv.read_csv(
            path,
            read_options=single,
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
            convert_options=convert,
        )
    if bad:
        r = bad[0]
        row = None if r.number is None else r.number - (1 if has_header else 0)
        detail = f"expected {r.expected_columns} fields, got {r.actual_columns}: {r.text!r}"
        raise DataValidationError(str(path), "columns", detail, row)


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
    _check_file(path)
    file = str(path)
    mapping = _resolve(file, arrow_schema(path, parquet).names, wanted, optional)
    columns = list(mapping.values())
    try:
        if parquet:
            table = pq.read_table(path, columns=columns)
        else:
            table = feather.read_table(str(path), columns=columns, memory_map=True)
    except (pa.ArrowException, OSError) as e:
        container = "Parquet" if parquet else "Feather (Arrow IPC)"
        raise DataValidationError(file, "file-format", f"not a readable {container} file: {e}") from None
    if table.num_rows == 0:
        raise DataValidationError(file, "not-empty", "the file has no rows")
    return {w: single_array(table.column(a)) for w, a in mapping.items()}
