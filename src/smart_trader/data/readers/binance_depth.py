"""Binance order-book depth CSV (USD-M futures diff-depth layout): snapshot and incremental update rows.

- **binance-depth-csv** — ``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu``,
  one row per price level: ``timestamp`` in ms since the epoch (UTC; the venue's event time);
  ``side`` ``b`` (bid) or ``a`` (ask); ``update_type`` ``snap`` (a row of a depth snapshot, whose
  ``last_update_id`` is the snapshot's ``lastUpdateId``) or ``set`` (a diff-depth update: ``qty`` is the
  level's new absolute size, 0 removes it); ``first_update_id``/``last_update_id`` are the event's ``U``/``u``
  and ``pu`` the previous event's ``u`` as Binance states it (``-1`` on snapshot rows: no previous event).
  ``price`` in quote currency, ``qty`` in base units (BTC for BTCUSDT).

An event is a run of rows sharing ``timestamp``, the update ids and the update type (one websocket
message, or one snapshot). The sequence rule (first update straddles the snapshot's id, then
``pu`` = previous ``u``) is checked when the book is built (:mod:`smart_trader.microstructure`), not
here: a file with a gap is still a valid recording. The file must hold one symbol.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from smart_trader.data.readers._base import Format, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._book import (
    as_int64,
    book_side_column,
    event_ends,
    flag_column,
    id_column,
    single_symbol,
)
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import CSV_SUFFIXES, read_csv_columns
from smart_trader.data.readers._numbers import text_column
from smart_trader.data.readers._times import epoch_text_to_ns
from smart_trader.data.schema import TS_TYPE, Kind

NAME = "binance-depth-csv"
_COLUMNS = ("timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty")


def read_binance_depth_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Binance depth CSV (snapshot rows, update rows or both) into the book schema.

    Raises:
        DataValidationError: missing columns, several symbols (``single-symbol``), a side other than
            b/a (``book-side``), an update type other than snap/set (``update-type``), unparsable
            numbers, timestamps or update ids, precision.
    """
    file = str(path)
    cols = read_csv_columns(path, _COLUMNS, optional=("symbol", "pu"))
    single_symbol(cols.get("symbol"), file)
    ts = epoch_text_to_ns(cols["timestamp"], file, "timestamp", unit="ms")
    side = book_side_column(cols["side"], file, "side")
    snapshot = flag_column(cols["update_type"], file, "update_type", ("snap",), ("set",), "update-type")
    first = id_column(cols["first_update_id"], file, "first_update_id")
    last = id_column(cols["last_update_id"], file, "last_update_id")
    n = len(ts)
    pu = cols.get("pu")
    prev = id_column(pu, file, "pu", negative_is_null=True) if pu is not None else pa.nulls(n, pa.int64())
    ends = event_ends([ts, as_int64(first), as_int64(last), as_int64(prev), as_int64(snapshot)])
    return build_result(
        kind=Kind.BOOK,
        fmt=NAME,
        path=file,
        options=options,
        ts=ts,
        numbers={
            "price": text_column(cols["price"], file, "price"),
            "size": text_column(cols["qty"], file, "qty"),
        },
        strings={
            "ts_recv": pa.nulls(n, TS_TYPE),
            "side": side,
            "is_snapshot": snapshot,
            "last_in_event": ends,
            "first_update_id": first,
            "last_update_id": last,
            "prev_update_id": prev,
        },
        notes=(
            "ts_event <- 'timestamp' (epoch milliseconds, UTC)",
            "side <- 'side' (b = bid, a = ask)",
            "is_snapshot <- 'update_type' (snap = snapshot, set = update)",
            "size <- 'qty' (absolute level size; 0 removes the level)",
            "first/last/prev_update_id <- 'first_update_id'/'last_update_id'/'pu' (-1 = none)",
        ),
    )


FORMAT = Format(
    name=NAME,
    kind=Kind.BOOK,
    description="Binance depth CSV symbol,timestamp(ms),first_update_id,last_update_id,side(b/a),"
    "update_type(snap/set),price,qty,pu",
    suffixes=CSV_SUFFIXES,
    columns=_COLUMNS,
    matches=has_columns(_COLUMNS),
    read=read_binance_depth_csv,
)
