"""Microstructure measures of an order book, one row per book event.

For each event :class:`~smart_trader.microstructure.builder.BookBuilder` applies (snapshot or update), with
best bid ``P^b``/size ``Q^b`` and best ask ``P^a``/size ``Q^a`` after the event:

- **spread** ``P^a − P^b`` and **mid** ``(P^b + P^a) / 2`` — exact decimals (mid has one more decimal
  than prices, so it is exact too).
- **microprice** ``(P^b·Q^a + P^a·Q^b) / (Q^b + Q^a)`` = ``I·P^a + (1 − I)·P^b`` with
  ``I = Q^b / (Q^b + Q^a)``: the size-weighted mid. Stoikov (2018, "The micro-price: a high-frequency
  estimator of future prices", Quantitative Finance 18(12)) starts from this "weighted mid-price"; his
  micro-price proper adjusts the mid by a function of ``I`` and the spread estimated from data, which is
  not done here. A ratio: float64, from the exact integers in one correctly rounded division.
- **imbalance_N** ``(ΣQ^b − ΣQ^a) / (ΣQ^b + ΣQ^a)`` over the best N levels of each side, in [−1, 1]
  (at N = 1 it is ``2I − 1``). float64, one correctly rounded division of exact sums.
- **ofi** — order-flow imbalance of the event, Cont, Kukanov & Stoikov (2014, "The Price Impact of Order
  Book Events", Journal of Financial Econometrics 12(1)), their ``e_n`` between the previous event
  (``n−1``) and this one::

      e_n = 1{P^b_n >= P^b_n−1}·Q^b_n − 1{P^b_n <= P^b_n−1}·Q^b_n−1
          − 1{P^a_n <= P^a_n−1}·Q^a_n + 1{P^a_n >= P^a_n−1}·Q^a_n−1

  in base units, exact; summing ``ofi`` over an interval gives their OFI. Null at the first event and
  after a gap (the two states are not consecutive).

A measure needing a side the book lacks is null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.schema import TS_TYPE, decimal_from_raw
from smart_trader.microstructure.book import ASK, BID
from smart_trader.microstructure.builder import BookBuilder, BookGap, GapPolicy

DEFAULT_LEVELS = 5


@dataclass(frozen=True)
class BookMeasures:
    """Outcome of :func:`book_measures`.

    Attributes:
        table: one row per applied event, columns ``ts_event``, ``ts_recv`` (ns UTC), ``best_bid``,
            ``best_bid_size``, ``best_ask``, ``best_ask_size``, ``spread`` (decimals at the book's
            price/size precisions), ``mid`` (one more decimal), ``microprice``, ``imbalance_<N>``
            (float64), ``ofi`` (decimal, base units), ``synced`` (False between a gap applied under
            :attr:`GapPolicy.CONTINUE` and the next snapshot).
        gaps: the sequence gaps met.
        events_applied, events_skipped: see :class:`BookBuilder`.
        levels: N of ``imbalance_<N>``.
    """

    table: pa.Table
    gaps: tuple[BookGap, ...]
    events_applied: int
    events_skipped: int
    levels: int


def book_measures(
    table: pa.Table, *, levels: int = DEFAULT_LEVELS, policy: GapPolicy = GapPolicy.RESYNC
) -> BookMeasures:
    """Rebuild the book of ``table`` (book schema, sorted as stored) and measure it after every event.

    Precisions are those of the table's ``price`` and ``size`` columns.

    Raises:
        InvalidInputError: ``levels`` below 1; a price or size beyond a 64-bit fixed-point integer.
        BookGapError: a sequence gap under :attr:`GapPolicy.RAISE`.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise InvalidInputError(f"levels must be a whole number >= 1, not {levels!r}")
    p, s = table.schema.field("price").type.scale, table.schema.field("size").type.scale
    builder = BookBuilder(p, s, policy)
    book = builder.book
    rows: list[tuple[int, int, int, int, int, int, int, int, bool]] = []
    micro: list[float] = []
    imbalance: list[float] = []
    previous: tuple[int, int, int, int] | None = None
    gaps_seen = 0
    for event in builder.feed(table):
        if len(builder.gaps) != gaps_seen:
            gaps_seen, previous = len(builder.gaps), None
        bid, ask = book.best(BID), book.best(ASK)
        bp, bs = bid if bid is not None else (0, 0)
        ap, az = ask if ask is not None else (0, 0)
        both = bid is not None and ask is not None
        current = (bp, bs, ap, az) if both else None
        ofi = _NO if current is None or previous is None else order_flow_imbalance(previous, current)
        previous = current
        db, da = book.depth(BID, levels), book.depth(ASK, levels)
        imbalance.append((db - da) / (db + da) if db + da else np.nan)
        micro.append((bp * az + ap * bs) / ((bs + az) * 10**p) if both else np.nan)
        recv = event.ts_recv if event.ts_recv is not None else _NO
        has_bid, has_ask = bid is not None, ask is not None
        rows.append((event.ts_event, recv, bp if has_bid else _NO, bs, ap if has_ask else _NO, az, ofi, int(both),
                     builder.synced))  # fmt: skip
    columns = np.array([r[:8] for r in rows], dtype=np.int64).reshape(len(rows), 8)
    synced = pa.array([r[8] for r in rows], type=pa.bool_())
    return BookMeasures(
        table=_table(columns, synced, micro, imbalance, p, s, levels),
        gaps=tuple(builder.gaps),
        events_applied=builder.events_applied,
        events_skipped=builder.events_skipped,
        levels=levels,
    )


_NO = np.iinfo(np.int64).min  # no value (becomes null)


def order_flow_imbalance(before: tuple[int, int, int, int], after: tuple[int, int, int, int]) -> int:
    """Cont, Kukanov & Stoikov's (2014) ``e_n`` between two top-of-book states ``(P^b, Q^b, P^a, Q^a)``
    (raw integers; the result is raw at the size precision): the size added at the best bid or removed
    from the best ask counts positive (module docstring)."""
    pb0, qb0, pa0, qa0 = before
    pb1, qb1, pa1, qa1 = after
    bid_flow = (qb1 if pb1 >= pb0 else 0) - (qb0 if pb1 <= pb0 else 0)
    ask_flow = (qa1 if pa1 <= pa0 else 0) - (qa0 if pa1 >= pa0 else 0)
    return bid_flow - ask_flow


def _table(
    c: np.ndarray, synced: pa.Array, micro: list[float], imbalance: list[float], p: int, s: int, levels: int
) -> pa.Table:
    ts, recv, bp, bs, ap, az, ofi, both = (c[:, i] for i in range(8))
    no_bid, no_ask, no_both = bp == _NO, ap == _NO, both == 0
    bp, bs, ap, az = (np.where(m, 0, v) for m, v in ((no_bid, bp), (no_bid, bs), (no_ask, ap), (no_ask, az)))

    def dec(raw: np.ndarray, scale: int, mask: np.ndarray) -> pa.Array:
        return decimal_from_raw(np.where(mask, 0, raw), scale, mask)

    recv_mask = recv == _NO
    ts_recv = pa.array(np.where(recv_mask, 0, recv), type=pa.int64(), mask=recv_mask).cast(TS_TYPE)
    micro_arr, imb_arr = np.array(micro, dtype=np.float64), np.array(imbalance, dtype=np.float64)
    return pa.table(
        {
            "ts_event": pa.array(ts, type=pa.int64()).cast(TS_TYPE),
            "ts_recv": ts_recv,
            "best_bid": dec(bp, p, no_bid),
            "best_bid_size": dec(bs, s, no_bid),
            "best_ask": dec(ap, p, no_ask),
            "best_ask_size": dec(az, s, no_ask),
            "spread": dec(ap - bp, p, no_both),
            "mid": dec((ap + bp) * 5, p + 1, no_both),
            "microprice": pa.array(micro_arr, mask=np.isnan(micro_arr)),
            f"imbalance_{levels}": pa.array(imb_arr, mask=np.isnan(imb_arr)),
            "ofi": dec(ofi, s, ofi == _NO),
            "synced": synced,
        }
    )
