"""Test kit for order books: the real Binance depth files of ../shared/data/orderbook, the same rows written in
Tardis layouts, and small toy book tables for sequence-rule tests (plain numbers, not market data)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from smart_trader.data.readers import read_file
from smart_trader.data.schema import book_schema, decimal_type

SNAPSHOT = "orderbook/BTCUSDT.binance.depth-snapshot.csv"
UPDATES = "orderbook/BTCUSDT.binance.depth-updates.csv"


def real_book(shared_data: Path) -> pa.Table:
    """The real snapshot (100 bid rows) followed by the real update (100 rows, one event), as read."""
    return pa.concat_tables([read_file(shared_data / SNAPSHOT).table, read_file(shared_data / UPDATES).table])


def binance_rows(shared_data: Path) -> list[dict[str, str]]:
    """The rows of both real files, snapshot first, as text."""
    rows: list[dict[str, str]] = []
    for name in (SNAPSHOT, UPDATES):
        with (shared_data / name).open(newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def write_as_tardis_l2(shared_data: Path, path: Path) -> Path:
    """The real Binance rows rewritten in Tardis ``incremental_book_L2`` layout (same values; ms → µs,
    b/a → bid/ask, snap/set → true/false; Tardis has no update ids, so they are left out)."""
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"])
        for r in binance_rows(shared_data):
            us = int(r["timestamp"]) * 1000
            side = {"b": "bid", "a": "ask"}[r["side"]]
            snap = "true" if r["update_type"] == "snap" else "false"
            out.writerow(["binance-futures", r["symbol"], us, us, snap, side, r["price"], r["qty"]])
    return path


def write_as_tardis_snapshot(path: Path, rows: list[tuple[int, list[tuple[str, str]], list[tuple[str, str]]]]) -> Path:
    """A Tardis ``book_snapshot_5`` file: one row per ``(timestamp µs, bids, asks)``, levels as
    ``(price, amount)`` text best first (fewer than 5 leave the cells empty)."""
    header = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(5):
        header += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for us, bids, asks in rows:
            cells: list[object] = ["binance-futures", "BTCUSDT", us, us]
            for i in range(5):
                ask = asks[i] if i < len(asks) else ("", "")
                bid = bids[i] if i < len(bids) else ("", "")
                cells += [*ask, *bid]
            out.writerow(cells)
    return path


@dataclass
class ToyEvent:
    """One event of a toy book: integer prices and sizes (precision 0), optional update ids."""

    ts: int
    levels: list[tuple[str, int, int]]
    snapshot: bool = False
    first: int | None = None
    last: int | None = None
    prev: int | None = None


def toy_book(events: list[ToyEvent]) -> pa.Table:
    """A book-schema table (price and size precision 0) of ``events``, in order."""
    cols: dict[str, list[object]] = {n: [] for n in book_schema(0, 0).names}
    for e in events:
        for i, (side, price, size) in enumerate(e.levels):
            cols["ts_event"].append(e.ts)
            cols["ts_recv"].append(None)
            cols["side"].append(side)
            cols["price"].append(price)
            cols["size"].append(size)
            cols["is_snapshot"].append(e.snapshot)
            cols["last_in_event"].append(i == len(e.levels) - 1)
            cols["first_update_id"].append(e.first)
            cols["last_update_id"].append(e.last)
            cols["prev_update_id"].append(e.prev)
    schema = book_schema(0, 0)
    arrays = []
    for f in schema:
        values = cols[f.name]
        if f.name in ("ts_event", "ts_recv"):
            arrays.append(pa.array(values, type=pa.int64()).cast(f.type))
        elif f.name in ("price", "size"):
            arrays.append(pa.array(values, type=pa.int64()).cast(decimal_type(0)))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
