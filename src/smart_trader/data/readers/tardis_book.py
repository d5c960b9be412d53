"""Tardis.dev order-book CSV datasets (docs.tardis.dev, "Downloadable CSV files"): incremental L2 and top-N snapshots.

Both carry ``exchange,symbol`` and two timestamps in **microseconds** since the epoch, UTC:
``timestamp`` (the exchange's, ``local_timestamp`` when it gives none) → ``ts_event``, and
``local_timestamp`` (arrival at Tardis) → ``ts_recv``. Prices in quote currency, ``amount`` in the
venue's size unit (base units for linear contracts, contracts for inverse ones such as BitMEX XBTUSD).
A file must hold one symbol.

- **tardis-book-l2-csv** (``incremental_book_L2``) —
  ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``: one row per level
  change, ``amount`` the new absolute size (0 removes the level), ``side`` ``bid``/``ask``,
  ``is_snapshot`` ``true``/``false``. Rows of one exchange message share their timestamps (Tardis:
  "grouping rows by local_timestamp"): one event. A run of snapshot rows is one snapshot that replaces
  the book (Tardis: "if last update was not a snapshot and current one is, existing order book state
  must be discarded"); a run whose rows carry different timestamps is refused (``book-event``) rather
  than split. Rows before the first snapshot are kept; the book builder skips them, as Tardis advises.
  No update ids: gaps cannot be seen in the data (Tardis restarts the connection, and so sends a new
  snapshot, when it detects one at recording time).
- **tardis-book-snapshot-csv** (``book_snapshot_N``, e.g. 5 or 25) —
  ``exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,...``
  up to ``N - 1``: the top N levels each time they change. Each row becomes one snapshot event of up
  to 2N book rows (bids then asks, best first; empty cells, a side with fewer than N levels, give no row),
  so the book table has more rows than the file: errors name the **file's** row (and column). A row
  with no level at all gives no event.

Exchange timestamps must not go back in time (``timestamps-sorted``): the store orders book rows by
``ts_event``, and reordering a venue's messages would corrupt the book.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._book import as_int64, book_side_column, event_ends, flag_column, single_symbol
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import CSV_SUFFIXES, probe, read_csv_columns
from smart_trader.data.readers._numbers import I64, NumericColumn, text_column
from smart_trader.data.readers._times import epoch_text_to_ns
from smart_trader.data.schema import Kind

L2_NAME = "tardis-book-l2-csv"
SNAPSHOT_NAME = "tardis-book-snapshot-csv"
_L2 = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
_SNAPSHOT = ("exchange", "symbol", "timestamp", "local_timestamp", "asks[0].price", "asks[0].amount")
_LEVEL = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")


def _times(cols: dict[str, pa.Array], file: str) -> tuple[I64, I64]:
    ts = epoch_text_to_ns(cols["timestamp"], file, "timestamp", unit="us")
    recv = epoch_text_to_ns(cols["local_timestamp"], file, "local_timestamp", unit="us")
    return ts, recv


def _ts_array(values: I64) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC"))


def read_tardis_l2_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Tardis ``incremental_book_L2`` CSV into the book schema.

    Raises:
        DataValidationError: missing columns, several symbols (``single-symbol``), a side other than
            bid/ask (``book-side``), ``is_snapshot`` other than true/false (``is-snapshot``), a snapshot
            spread over several timestamps (``book-event``), unparsable numbers or timestamps, precision.
    """
    file = str(path)
    cols = read_csv_columns(path, _L2[2:], optional=_L2[:2])
    single_symbol(cols.get("symbol"), file)
    ts, recv = _times(cols, file)
    snapshot = flag_column(cols["is_snapshot"], file, "is_snapshot", ("true",), ("false",), "is-snapshot")
    flags = as_int64(snapshot)
    ends = np.asarray(event_ends([ts, recv, flags]), dtype=bool)
    snap = flags == 1
    run_end = np.zeros(len(ts), dtype=bool)
    run_end[-1:] = True
    run_end[:-1] = snap[:-1] & ~snap[1:]
    split = snap & ends & ~run_end  # an event ends inside a run of snapshot rows
    if split.any():
        row = int(np.argmax(split)) + 1
        detail = "snapshot rows with different timestamps follow each other: one snapshot, one timestamp"
        raise DataValidationError(file, "book-event", detail, row + 1)
    return build_result(
        kind=Kind.BOOK,
        fmt=L2_NAME,
        path=file,
        options=options,
        ts=ts,
        numbers={
            "price": text_column(cols["price"], file, "price"),
            "size": text_column(cols["amount"], file, "amount"),
        },
        strings={
            "ts_recv": _ts_array(recv),
            "side": book_side_column(cols["side"], file, "side"),
            "is_snapshot": snapshot,
            "last_in_event": pa.array(ends, type=pa.bool_()),
        },
        notes=(
            "ts_event <- 'timestamp' (epoch microseconds, UTC)",
            "ts_recv <- 'local_timestamp' (epoch microseconds, UTC)",
            "size <- 'amount' (absolute level size; 0 removes the level)",
            "events: rows sharing timestamp, local_timestamp and is_snapshot",
        ),
    )


def _level_columns(p: Probe, file: str) -> list[str]:
    """``bids[0].price, bids[0].amount, ..., asks[N-1].amount``: bids then asks, best first.

    Raises:
        DataValidationError: ``columns`` when a level lacks its price or amount column, or a side its level.
    """
    assert p.columns is not None
    found = {(m[1], int(m[2]), m[3]) for m in (_LEVEL.match(c) for c in p.columns) if m}
    depth = 1 + max(i for _, i, _ in found)
    wanted = [f"{side}[{i}].{what}" for side in ("bids", "asks") for i in range(depth) for what in ("price", "amount")]
    missing = [w for w in wanted if w not in p.columns]
    if missing:
        detail = f"a book_snapshot_{depth} file needs every level column; missing {', '.join(missing)}"
        raise DataValidationError(file, "columns", detail)
    return wanted


def _check_sign(
    column: NumericColumn, refused: Callable[[pa.Array, pa.Scalar], pa.Array], rule: str, what: str
) -> None:
    """Raise ``rule`` at the first value for which ``refused(value, 0)`` holds (row = position in ``column``)."""
    dec = column.to_decimal(column.needed_precision())
    bad = np.asarray(pc.fill_null(refused(dec, pa.scalar(0, dec.type)), False), dtype=bool)
    if bad.any():
        k = int(np.argmax(bad))
        raise DataValidationError(column.file, rule, f"{column.name}={dec[k].as_py()} {what}", k + 1)


def read_tardis_snapshot_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Tardis ``book_snapshot_N`` CSV: each row becomes one snapshot event (see the module docstring).

    Raises:
        DataValidationError: missing columns, several symbols, a level with a price but no amount (or
            the reverse, ``missing-value``), a price <= 0 (``price-positive``), an amount < 0
            (``size-non-negative``), timestamps going back (``timestamps-sorted``), unparsable numbers
            or timestamps, precision; every one naming the file's row.
    """
    file = str(path)
    levels = _level_columns(probe(path), file)
    cols = read_csv_columns(path, ("timestamp", "local_timestamp", *levels), optional=("exchange", "symbol"))
    single_symbol(cols.get("symbol"), file)
    ts_rows, recv_rows = _times(cols, file)
    back = np.flatnonzero(np.diff(ts_rows) < 0)
    if len(back):
        row = int(back[0]) + 2
        raise DataValidationError(file, "timestamps-sorted", "timestamp is before the previous row's", row)
    n, width = len(ts_rows), len(levels) // 2
    prices = [cols[c] for c in levels[0::2]]
    amounts = [cols[c] for c in levels[1::2]]
    order = (np.arange(width)[None, :] * n + np.arange(n)[:, None]).ravel()  # row-major: row r, level j
    price_text = pa.concat_arrays([a.cast(pa.string()) for a in prices]).take(pa.array(order))
    amount_text = pa.concat_arrays([a.cast(pa.string()) for a in amounts]).take(pa.array(order))
    has_price = np.asarray(pc.is_valid(price_text), dtype=bool)
    has_amount = np.asarray(pc.is_valid(amount_text), dtype=bool)
    half = has_price != has_amount
    if half.any():
        k = int(np.argmax(half))
        column = levels[2 * (k % width) + (0 if not has_price[k] else 1)]
        raise DataValidationError(file, "missing-value", f"{column} is empty but its level is not", k // width + 1)
    keep = np.flatnonzero(has_price)
    if len(keep) == 0:
        raise DataValidationError(file, "not-empty", "no row holds a book level")
    source_row = keep // width

    def where(e: DataValidationError) -> DataValidationError:
        """The same error at the file's row and column (``e.row`` counts kept levels)."""
        if e.row is None:
            return e
        k = int(keep[e.row - 1])
        column = levels[2 * (k % width)].rsplit(".", 1)[0]
        return DataValidationError(file, e.rule, f"{column}: {e.detail}", k // width + 1)

    try:
        price = text_column(price_text.take(pa.array(keep)), file, "price")
        size = text_column(amount_text.take(pa.array(keep)), file, "amount")
        _check_sign(price, pc.less_equal, "price-positive", "must be > 0")
        _check_sign(size, pc.less, "size-non-negative", "must be >= 0")
        sides = np.where((keep % width) < width // 2, "bid", "ask")
        ends = np.ones(len(keep), dtype=bool)
        ends[:-1] = source_row[1:] != source_row[:-1]
        return build_result(
            kind=Kind.BOOK,
            fmt=SNAPSHOT_NAME,
            path=file,
            options=options,
            ts=ts_rows[source_row],
            numbers={"price": price, "size": size},
            strings={
                "ts_recv": _ts_array(recv_rows[source_row]),
                "side": pa.array(sides, type=pa.string()),
                "is_snapshot": pa.array(np.ones(len(keep), dtype=bool), type=pa.bool_()),
                "last_in_event": pa.array(ends, type=pa.bool_()),
            },
            notes=(
                "ts_event <- 'timestamp', ts_recv <- 'local_timestamp' (epoch microseconds, UTC)",
                f"each row -> one snapshot event of up to {width} levels (bids[i], asks[i] for i < {width // 2})",
            ),
        )
    except DataValidationError as e:
        raise where(e) from None


L2_FORMAT = Format(
    name=L2_NAME,
    kind=Kind.BOOK,
    description="Tardis incremental_book_L2 CSV exchange,symbol,timestamp(us),local_timestamp(us),"
    "is_snapshot,side,price,amount",
    suffixes=CSV_SUFFIXES,
    columns=_L2,
    matches=has_columns(_L2),
    read=read_tardis_l2_csv,
)
SNAPSHOT_FORMAT = Format(
    name=SNAPSHOT_NAME,
    kind=Kind.BOOK,
    description="Tardis book_snapshot_N CSV exchange,symbol,timestamp(us),local_timestamp(us),"
    "asks[i].price,asks[i].amount,bids[i].price,bids[i].amount",
    suffixes=CSV_SUFFIXES,
    columns=_SNAPSHOT,
    matches=has_columns(_SNAPSHOT),
    read=read_tardis_snapshot_csv,
)
