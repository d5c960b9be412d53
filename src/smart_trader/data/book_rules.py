"""Rules of the normalized book schema (:func:`smart_trader.data.schema.book_schema`) beyond its types.

Shared by :func:`smart_trader.data.validation.validate` (file rows, :class:`DataValidationError`) and
the order-book builder (:mod:`smart_trader.microstructure`), which splits a table into events with
:func:`event_bounds`.

- ``book-side`` — ``side`` is ``"bid"`` or ``"ask"``.
- ``book-event`` — an event is a run of rows ending with ``last_in_event``; its rows share
  ``ts_event``, ``ts_recv``, ``is_snapshot``, ``first_update_id``, ``last_update_id`` and
  ``prev_update_id``, and the table's last row ends an event (a table never stops mid-event).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.data.schema import BOOK_SIDES, single_array, ts_ns

I64 = npt.NDArray[np.int64]
EVENT_KEYS = ("ts_event", "ts_recv", "is_snapshot", "first_update_id", "last_update_id", "prev_update_id")
"""Columns every row of one event shares."""
_NULL = np.iinfo(np.int64).min  # stands for null in key comparisons (no real id or timestamp takes it)


def int_column(table: pa.Table, name: str) -> I64:
    """An int64, timestamp or bool column of ``table`` as int64 values, null as ``-2**63``."""
    arr = single_array(table.column(name))
    if pa.types.is_timestamp(arr.type) or pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.int64())
    return np.asarray(pc.fill_null(arr, _NULL), dtype=np.int64)


def event_bounds(table: pa.Table) -> tuple[I64, I64]:
    """``(starts, ends)``: 0-based first row and one-past-last row of each event of a book table, in order.

    Events end at rows whose ``last_in_event`` is true; rows after the last such row (a table cut
    mid-event) form no event.
    """
    last = np.asarray(single_array(table.column("last_in_event")).to_numpy(zero_copy_only=False), dtype=bool)
    ends = np.flatnonzero(last) + 1
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    return starts, ends.astype(np.int64)


def check_book_rows(file: str, table: pa.Table) -> None:
    """Check the ``book-side`` and ``book-event`` rules (module docstring) on a normalized book table.

    Raises:
        DataValidationError: the first broken rule, naming ``file`` and the 1-based row.
    """
    sides = single_array(table.column("side"))
    bad = pc.invert(pc.fill_null(pc.is_in(sides, pa.array(BOOK_SIDES)), False))
    if pc.any(bad).as_py():
        row = int(np.argmax(np.asarray(bad, dtype=bool)))
        raise DataValidationError(file, "book-side", f"side={sides[row].as_py()!r} is not bid or ask", row + 1)
    n = table.num_rows
    if n == 0:
        return
    starts, ends = event_bounds(table)
    if len(ends) == 0 or ends[-1] != n:
        detail = "the last row does not end its event (last_in_event is false): the table stops mid-event"
        raise DataValidationError(file, "book-event", detail, n)
    first_of_row = np.repeat(starts, ends - starts)
    for name in EVENT_KEYS:
        values = ts_ns(table) if name == "ts_event" else int_column(table, name)
        differs = values != values[first_of_row]
        if differs.any():
            row = int(np.argmax(differs))
            start = int(first_of_row[row])
            detail = f"{name} differs from the first row of its event (row {start + 1}): one event, one {name}"
            raise DataValidationError(file, "book-event", detail, row + 1)
