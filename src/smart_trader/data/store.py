"""The local market-data store: normalized bars, trades, quotes and book depth kept as Parquet files.

On-disk layout under ``root`` (one file per dataset and UTC day of ``ts_event``; a month for bars of
1m to 1d exclusive, a year for daily bars — see :func:`smart_trader.data.datasets.partition_start_days`)::

    venue=BINANCE/symbol=BTC%2FUSDT/kind=trades/date=2021-01-08/data.parquet
    venue=BINANCE/symbol=BTC%2FUSDT/kind=quotes/date=2021-01-08/data.parquet
    venue=FXCM/symbol=GBP%2FUSD/kind=bars-1m-bid/date=2012-02-01/data.parquet
    venue=BINANCE/symbol=BTCUSDT/kind=book/date=2022-11-01/data.parquet

Symbols are percent-escaped (``urllib.parse.quote(symbol, safe="")``). Bar datasets are keyed by
timeframe and price type (``bars-<timeframe>-<price type>``). Every file of a dataset holds the
dataset's schema (:mod:`smart_trader.data.schema`) at one price and size precision, rows sorted by
``ts_event`` (equal timestamps keep the order they were written in).

Writes are idempotent and all-or-nothing per call: the new rows are validated before any file is
touched, each partition file is written to a temporary file and all of them are then moved into place
with :func:`os.replace`. One writer per dataset at a time; readers never see a half-written file.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.data.book_rules import check_book_rows
from smart_trader.data.datasets import DatasetKey, partition_start_days
from smart_trader.data.schema import PRICE_COLUMNS, SIZE_COLUMNS, TS_TYPE, Kind, schema_for, ts_ns

DATA_FILE = "data.parquet"
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
_OCC = "__occurrence"
_SIDES = frozenset({"buy", "sell"})


@dataclass(frozen=True, slots=True)
class WriteReport:
    """Outcome of :meth:`MarketDataStore.write`.

    Attributes:
        rows_in: rows in the table given.
        rows_added: rows that were not in the store yet (0 when the same data is imported again).
        partitions_written: partition files (a day, month or year each) created or rewritten (files that would
            not change are left alone).
    """

    rows_in: int
    rows_added: int
    partitions_written: int


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Summary of one stored dataset.

    Attributes:
        key: the dataset.
        rows: number of rows.
        first_ts_ns, last_ts_ns: first and last ``ts_event``, ns since the epoch (UTC).
        price_precision, size_precision: decimals of prices and sizes in every file.
        partitions: number of partition files.
    """

    key: DatasetKey
    rows: int
    first_ts_ns: int
    last_ts_ns: int
    price_precision: int
    size_precision: int
    partitions: int


class MarketDataStore:
    """Parquet market-data store rooted at ``root`` (created on first write); see the module docstring.

    Every method that looks at a dataset's files raises :class:`InvalidInputError` when it finds a folder
    that is not a ``date=YYYY-MM-DD`` partition (something put there by hand), naming it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dataset_dir(self, key: DatasetKey) -> Path:
        """Directory of ``key``'s day partitions (it may not exist)."""
        return self.root / key.to_partition()

    def precision(self, key: DatasetKey) -> tuple[int, int] | None:
        """``(price_precision, size_precision)`` of the stored dataset, or ``None`` when it holds no file."""
        files = self._day_files(key)
        if not files:
            return None
        return _precision_of(pq.read_schema(files[0][1]), key.kind)

    def write(
        self,
        key: DatasetKey,
        table: pa.Table,
        *,
        price_precision: int | None = None,
        size_precision: int | None = None,
    ) -> WriteReport:
        """Add ``table`` (rows of ``key.kind`` in the normalized schema) to the dataset ``key``.

        Rows are split by UTC day of ``ts_event`` and merged into each day's file: a row already
        stored is not added again (a row value that occurs k times in ``table`` and j times in the
        file ends up max(j, k) times, so genuine repeated trades survive and re-imports add nothing).
        Decimal columns are rescaled exactly to the dataset's precision (the stored one, else the
        one given, else the table's own).

        Raises:
            InvalidInputError: wrong columns or types, nulls in a required column, an unknown
                ``aggressor_side``, bars not aligned to the key's timeframe, a value that does not
                fit the dataset's precision, or a precision that contradicts the stored one.
                Nothing on disk has changed when it is raised.
            OSError, pyarrow.ArrowInvalid: a disk error or a damaged stored file; the temporary files
                are removed and the stored files are unchanged.
        """
        stored = self.precision(key)
        if stored is not None and price_precision is not None and price_precision != stored[0]:
            raise InvalidInputError(f"{key}: stored at price precision {stored[0]}, not {price_precision}")
        if stored is not None and size_precision is not None and size_precision != stored[1]:
            raise InvalidInputError(f"{key}: stored at size precision {stored[1]}, not {size_precision}")
        target = stored or (price_precision, size_precision)
        new, ts = _conform(key, table, target[0], target[1])
        if new.num_rows == 0:
            return WriteReport(0, 0, 0)
        days = partition_start_days(key, ts)
        cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(ts)]))
        jobs = [(int(days[s]), new.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)]

        directory = self.dataset_dir(key)
        legacy = self._legacy_files(key)
        by_day: dict[int, pa.Table | None] = dict.fromkeys(legacy)
        by_day.update(jobs)
        # Phase 1: every changed day goes to a temporary file; on any failure they are all removed.
        with ThreadPoolExecutor(max_workers=min(len(by_day), os.cpu_count() or 1)) as pool:
            unique = "ts_event" if key.kind is Kind.BARS else "trade_id" if key.kind is Kind.TRADES else None
            futures = [
                pool.submit(_prepare_day, directory, day, rows, unique, legacy.get(day, []))
                for day, rows in sorted(by_day.items())
            ]
        outcomes = [(f, f.exception()) for f in futures]
        errors = [exc for _, exc in outcomes if exc is not None]
        prepared = [f.result() for f, exc in outcomes if exc is None]
        pending = [(tmp, final) for tmp, final, _ in prepared if tmp is not None]
        if errors:
            for tmp, _ in pending:
                _discard(tmp)
            raise errors[0]
        # Phase 2: move them into place (renames only), then remove the older-layout files folded into them.
        for tmp, final in pending:
            os.replace(tmp, final)
        for parent in {final.parent for _, final in pending}:
            _fsync_dir(parent)
        _remove_folded(directory, [path for paths in legacy.values() for path in paths])
        return WriteReport(new.num_rows, sum(added for _, _, added in prepared), len(pending))

    def read(self, key: DatasetKey, start_ns: int | None = None, end_ns: int | None = None) -> pa.Table:
        """Rows of ``key`` with ``start_ns <= ts_event < end_ns`` (ns since the epoch, UTC; ``None`` = open
        end), sorted by ``ts_event``, in the dataset's schema at its stored precision.

        Only the partition files overlapping the range are opened; Polars filters rows inside them.

        Raises:
            NotFoundError: the store holds no data for ``key`` (the message lists what it holds for the symbol).
        """
        files = self._day_files(key)
        if not files:
            raise NotFoundError(self._not_found_message(key))
        p, s = _precision_of(pq.read_schema(files[0][1]), key.kind)
        schema = schema_for(key.kind, p, s)
        legacy = {path for paths in self._legacy_files(key).values() for path in paths}
        paths = [str(path) for day, path in files if _may_hold(key, day, path in legacy, start_ns, end_ns)]
        if not paths or (start_ns is not None and end_ns is not None and start_ns >= end_ns):
            return schema.empty_table()
        frame = pl.scan_parquet(paths, hive_partitioning=False)
        ts_col = pl.col("ts_event")
        if start_ns is not None:
            frame = frame.filter(ts_col >= pl.lit(start_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")))
        if end_ns is not None:
            frame = frame.filter(ts_col < pl.lit(end_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")))
        return frame.collect().to_arrow().cast(schema)

    def list(self) -> builtins.list[DatasetInfo]:
        """Every dataset in the store with its row count, time span and precisions, sorted by path."""
        infos: builtins.list[DatasetInfo] = []
        for directory in sorted(self.root.glob("venue=*/symbol=*/kind=*")):
            try:
                key = DatasetKey.from_partition(directory.relative_to(self.root))
            except InvalidInputError:
                continue  # not a dataset directory of ours
            files = self._day_files(key)
            if not files:
                continue
            metas = [pq.read_metadata(path) for _, path in files]
            p, s = _precision_of(metas[0].schema.to_arrow_schema(), key.kind)
            infos.append(
                DatasetInfo(
                    key=key,
                    rows=sum(m.num_rows for m in metas),
                    first_ts_ns=_ts_bound(files[0][1], metas[0], first=True),
                    last_ts_ns=_ts_bound(files[-1][1], metas[-1], first=False),
                    price_precision=p,
                    size_precision=s,
                    partitions=len(files),
                )
            )
        return infos

    def delete(self, key: DatasetKey) -> None:
        """Remove the dataset ``key`` and every file of it (empty symbol/venue directories too).

        Raises:
            NotFoundError: the store holds no such dataset.
        """
        directory = self.dataset_dir(key)
        if not directory.is_dir():
            raise NotFoundError(self._not_found_message(key))
        shutil.rmtree(directory)
        for parent in (directory.parent, directory.parent.parent):
            if parent != self.root and not any(parent.iterdir()):
                parent.rmdir()

    def _day_files(self, key: DatasetKey) -> builtins.list[tuple[int, Path]]:
        """``(day number since the epoch, path)`` of each partition file of ``key``, in date order."""
        directory = self.dataset_dir(key)
        if not directory.is_dir():
            return []
        files = []
        for entry in directory.glob(f"date=*/{DATA_FILE}"):
            try:
                day = np.datetime64(entry.parent.name.removeprefix("date="), "D").astype(np.int64)
            except ValueError:
                raise InvalidInputError(
                    f"{entry.parent} is not a date partition (date=YYYY-MM-DD): remove it from the store"
                ) from None
            files.append((int(day), entry))
        return sorted(files)

    def _legacy_files(self, key: DatasetKey) -> dict[int, builtins.list[Path]]:
        """Files of an older partition layout (a day file where the rule now keeps months), by the partition they
        belong to now: a write folds them in."""
        files = self._day_files(key)
        if not files:
            return {}
        days = np.array([day for day, _ in files], dtype=np.int64)
        starts = partition_start_days(key, days * NS_PER_DAY)
        out: dict[int, builtins.list[Path]] = {}
        for (day, path), start in zip(files, starts.tolist(), strict=True):
            if day != start:
                out.setdefault(int(start), []).append(path)
        return out

    def _not_found_message(self, key: DatasetKey) -> str:
        symbol_dir = self.dataset_dir(key).parent
        held = sorted(p.name.removeprefix("kind=") for p in symbol_dir.glob("kind=*")) if symbol_dir.is_dir() else []
        what = ", ".join(held) if held else "nothing"
        return f"no {key.kind_dir} data for {key.symbol}.{key.venue} in {self.root}; it holds {what} for that symbol"


def _may_hold(key: DatasetKey, day: int, one_day: bool, start_ns: int | None, end_ns: int | None) -> bool:
    """Whether the file of partition ``day`` (days since the epoch) may hold rows in [start_ns, end_ns): a partition
    file spans its partition; ``one_day`` (a day file of an older layout) spans that day alone."""
    if one_day:
        first = None if start_ns is None else start_ns // NS_PER_DAY
        last = None if end_ns is None else (end_ns - 1) // NS_PER_DAY
    else:
        first = None if start_ns is None else int(partition_start_days(key, np.array([start_ns]))[0])
        last = None if end_ns is None else int(partition_start_days(key, np.array([end_ns - 1]))[0])
    return (first is None or day >= first) and (last is None or day <= last)


def _precision_of(schema: pa.Schema, kind: Kind) -> tuple[int, int]:
    price = schema.field(PRICE_COLUMNS[kind][0]).type
    size = schema.field(SIZE_COLUMNS[kind][0]).type
    return int(price.scale), int(size.scale)


def _scale_of(table: pa.Table, columns: Iterable[str], key: DatasetKey) -> int:
    scales = set()
    for name in columns:
        typ = table.schema.field(name).type
        if not pa.types.is_decimal(typ):
            raise InvalidInputError(f"{key}: column {name!r} must be decimal128, got {typ}")
        scales.add(typ.scale)
    if len(scales) != 1:
        raise InvalidInputError(f"{key}: columns {builtins.list(columns)} must share one scale, got {sorted(scales)}")
    return int(scales.pop())


def _conform(
    key: DatasetKey, table: pa.Table, price_precision: int | None, size_precision: int | None
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """Validate ``table`` against ``key``'s schema, rescale it to the precisions (its own when ``None``)
    and sort it by ``ts_event`` (stable). Returns the table and its ``ts_event`` as int64 ns."""
    if not isinstance(table, pa.Table):
        raise InvalidInputError(f"{key}: expected a pyarrow Table, got {type(table).__name__}")
    names = schema_for(key.kind, 0, 0).names
    missing = [n for n in names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in names]
    if missing or extra:
        raise InvalidInputError(
            f"{key}: columns {table.column_names} do not match the {key.kind} schema {names} "
            f"(missing {missing}, unexpected {extra})"
        )
    p = _scale_of(table, PRICE_COLUMNS[key.kind], key) if price_precision is None else price_precision
    s = _scale_of(table, SIZE_COLUMNS[key.kind], key) if size_precision is None else size_precision
    schema = schema_for(key.kind, p, s)
    columns = []
    for field in schema:
        column = table.column(field.name)
        typ = column.type
        if field.name == "ts_event":
            if typ != TS_TYPE:
                raise InvalidInputError(f"{key}: ts_event must be {TS_TYPE}, got {typ}")
        elif pa.types.is_decimal(field.type):
            if not pa.types.is_decimal(typ):
                raise InvalidInputError(f"{key}: column {field.name!r} must be decimal128, got {typ}")
            if typ != field.type:
                try:
                    column = column.cast(field.type, safe=True)
                except pa.ArrowInvalid as exc:
                    raise InvalidInputError(
                        f"{key}: column {field.name!r} ({typ}) does not fit the dataset's {field.type.scale} "
                        f"decimals exactly: {exc}"
                    ) from None
        elif field.type != pa.string():  # book: ts_recv, flags and update ids
            if typ != field.type:
                raise InvalidInputError(f"{key}: column {field.name!r} must be {field.type}, got {typ}")
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
            column = column.cast(pa.string()) if typ != pa.string() else column
        else:
            raise InvalidInputError(f"{key}: column {field.name!r} must be a string, got {typ}")
        if not field.nullable and column.null_count:
            row = int(np.argmax(np.asarray(column.is_null())))
            raise InvalidInputError(f"{key}: column {field.name!r} is null at row {row + 1} (required)")
        columns.append(column)
    out = pa.Table.from_arrays(columns, schema=schema)
    if key.kind is Kind.TRADES:
        sides = {v for v in pc.unique(out.column("aggressor_side")).to_pylist() if v is not None}
        if not sides <= _SIDES:
            bad = sorted(sides - _SIDES)
            raise InvalidInputError(f"{key}: aggressor_side must be 'buy', 'sell' or null, got {bad}")
    if key.kind is Kind.BOOK:
        check_book_rows(str(key), out)  # sides, and whole events only
    ts = ts_ns(out)
    if key.timeframe is not None and len(ts) and np.any(ts % key.timeframe.ns):
        row = int(np.argmax(ts % key.timeframe.ns != 0))
        raise InvalidInputError(f"{key}: bar at row {row + 1} does not open on a {key.timeframe} boundary")
    if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
        order = np.argsort(ts, kind="stable")
        out, ts = out.take(order), ts[order]
    return out.combine_chunks(), ts


def _prepare_day(
    directory: Path, day: int, new: pa.Table | None, unique: str | None, folded: builtins.list[Path]
) -> tuple[Path | None, Path, int]:
    """Merge ``new`` (one partition's rows, sorted; ``None``: none) with the stored partition file, and the
    older-layout files ``folded`` into it, into a temporary file.

    ``unique`` names the column that identifies a row (``ts_event`` for bars, ``trade_id`` for trades):
    a new row with a stored identity but other values is a conflict, never a second copy.

    Returns ``(temporary path or None when nothing changes, final path, rows added)``.

    Raises:
        InvalidInputError: a conflict (names the identity and both rows).
    """
    final = directory / f"date={np.datetime64(day, 'D')}" / DATA_FILE
    stored = _stored(final, folded)
    if stored is None:
        assert new is not None
        merged, added = new, new.num_rows
    elif new is None:
        merged, added = stored, 0
    else:
        merged, added = _merge(stored, new)
        if added == 0 and not folded:
            return None, final, 0
    if unique is not None and (added or folded) and stored is not None:
        _check_unique(merged, unique, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{DATA_FILE}.{uuid.uuid4().hex}.tmp")
    try:
        _write_parquet(merged, tmp)
    except BaseException:
        _discard(tmp)
        raise
    return tmp, final, added


def _stored(final: Path, folded: builtins.list[Path]) -> pa.Table | None:
    """The partition's stored rows: its file, plus the older-layout files folded into it (sorted by time; a row
    the interrupted fold of an earlier write already copied is kept once)."""
    parts = ([pq.read_table(final)] if final.exists() else []) + [pq.read_table(p) for p in folded]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables([t.cast(parts[0].schema) for t in parts])
    frame = _to_polars(table).unique(maintain_order=True).sort("ts_event", maintain_order=True)
    return frame.to_arrow().cast(parts[0].schema)


def _remove_folded(directory: Path, paths: builtins.list[Path]) -> None:
    """Delete the older-layout files whose rows a write has just committed into their new partitions."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()
    if paths:
        _fsync_dir(directory)


def _discard(tmp: Path) -> None:
    """Remove a temporary file, and its day directory when that is left empty."""
    tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: the day already had a file
        tmp.parent.rmdir()


def _merge(stored: pa.Table, new: pa.Table) -> tuple[pa.Table, int]:
    """Multiset union of two sorted tables of one schema: each distinct row keeps max(count in stored,
    count in new) copies; stored rows come first among equal timestamps. Returns (table, rows added).

    Only the stored rows inside ``new``'s time span take part in the row-by-row merge.
    """
    schema = stored.schema
    new = new.cast(schema)
    stored_ts = ts_ns(stored)
    new_ts = ts_ns(new)
    lo = int(np.searchsorted(stored_ts, new_ts[0], side="left"))
    hi = int(np.searchsorted(stored_ts, new_ts[-1], side="right"))
    window = stored.slice(lo, hi - lo)
    if window.num_rows == new.num_rows and window.equals(new):
        return stored, 0  # the same rows again: the common re-import
    if window.num_rows == 0:
        merged = new
    else:
        names = schema.names
        row = pl.struct(names)
        occurrence = (row.rank("ordinal") - row.rank("min")).alias(_OCC)
        frames = [_to_polars(t).with_columns(occurrence) for t in (window, new)]
        frame = (
            pl.concat(frames)
            .unique(subset=[*names, _OCC], keep="first", maintain_order=True)
            .sort("ts_event", maintain_order=True)
            .drop(_OCC)
        )
        merged = frame.to_arrow().cast(schema)
    added = merged.num_rows - window.num_rows
    if added == 0:
        return stored, 0
    return pa.concat_tables([stored.slice(0, lo), merged, stored.slice(hi)]), added


def _check_unique(merged: pa.Table, column: str, path: Path) -> None:
    """Raise :class:`InvalidInputError` when two rows share ``column`` (nulls do not count)."""
    if column == "ts_event":
        values = ts_ns(merged)
        dup = np.flatnonzero(values[1:] == values[:-1])  # sorted by ts_event
        if not len(dup):
            return
        i = int(dup[0])
        rows = (i, i + 1)
    else:
        frame = pl.DataFrame({"v": pl.Series(merged.column(column).combine_chunks())}).with_row_index()
        frame = frame.filter(pl.col("v").is_not_null() & pl.col("v").is_duplicated())
        if frame.height == 0:
            return
        first = frame.row(0)
        rows = (int(first[0]), int(frame.filter(pl.col("v") == first[1]).row(1)[0]))
    old, new = (merged.slice(r, 1).to_pylist()[0] for r in rows)
    ident = old[column] if column != "ts_event" else old[column].isoformat()
    raise InvalidInputError(
        f"{column} {ident} is already stored in {path} with other values (stored {old}, new {new}); "
        "delete the dataset first to replace it"
    )


def _to_polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _write_parquet(table: pa.Table, path: Path) -> None:
    dictionary = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name != "trade_id"]
    pq.write_table(
        table,
        path,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=dictionary,
        write_statistics=["ts_event"],  # what reads filter on; min/max of every decimal column cost a pass each
    )
    _fsync(path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # platforms without directory handles
        _fsync(path)


def _fsync(path: Path) -> None:
    """Flush a file's (or directory's) data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ts_bound(path: Path, meta: pq.FileMetaData, *, first: bool) -> int:
    """First (min) or last (max) ``ts_event`` of a day file, from its statistics when present."""
    column = meta.schema.names.index("ts_event")
    bounds = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            ts = pq.read_table(path, columns=["ts_event"]).column("ts_event").cast(pa.int64())
            value = pc.min(ts) if first else pc.max(ts)
            return int(value.as_py())
        bounds.append(int(stats.min_raw if first else stats.max_raw))
    return min(bounds) if first else max(bounds)
