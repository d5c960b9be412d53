"""Test kit: small instruments and bar tables built from plain decimals."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pyarrow as pa

from smart_trader.core.instruments import Instrument
from smart_trader.core.values import to_raw
from smart_trader.data.schema import bars_schema, decimal_from_raw, quotes_schema, trades_schema

MINUTE_NS = 60_000_000_000
T0 = 1_600_000_000 * 1_000_000_000  # 2020-09-13T12:26:40Z, a whole minute


def equity_instrument(symbol: str = "ACME", tick: str = "0.01", lot: str = "1") -> Instrument:
    """A US equity quoted in USD."""
    return Instrument.create(
        symbol, "TEST", asset_class="equity", base_currency=symbol, quote_currency="USD", tick_size=tick, lot_size=lot
    )


def _dec(values: Sequence[str | int | None], scale: int) -> pa.Array:
    raw = np.array([0 if v is None else to_raw(Decimal(v), scale) for v in values], dtype=np.int64)
    mask = np.array([v is None for v in values])
    return decimal_from_raw(raw, scale, mask)


def bars_table(
    ohlcv: Sequence[tuple[str, str, str, str, str | None]],
    *,
    pp: int = 2,
    sp: int = 0,
    start: int = T0,
    step: int = MINUTE_NS,
) -> pa.Table:
    """Bars from (open, high, low, close, volume) strings, one ``step`` apart from ``start`` (ns UTC)."""
    ts = pa.array([start + i * step for i in range(len(ohlcv))], pa.timestamp("ns", tz="UTC"))
    cols = list(zip(*ohlcv, strict=True)) if ohlcv else [[], [], [], [], []]
    return pa.Table.from_arrays(
        [ts, _dec(cols[0], pp), _dec(cols[1], pp), _dec(cols[2], pp), _dec(cols[3], pp), _dec(cols[4], sp)],
        schema=bars_schema(pp, sp),
    )


def closes_table(closes: Sequence[str], **kw: int) -> pa.Table:
    """Flat bars (open = high = low = close) from closes."""
    return bars_table([(c, c, c, c, "1000") for c in closes], **kw)


def trades_table(rows: Sequence[tuple[int, str, str]], *, pp: int = 2, sp: int = 0) -> pa.Table:
    """Trades from (ts ns, price, size)."""
    ts = pa.array([r[0] for r in rows], pa.timestamp("ns", tz="UTC"))
    return pa.Table.from_arrays(
        [ts, _dec([r[1] for r in rows], pp), _dec([r[2] for r in rows], sp), pa.nulls(len(rows), pa.string()),
         pa.array([str(i) for i in range(len(rows))], pa.string())],
        schema=trades_schema(pp, sp),
    )  # fmt: skip


def quotes_table(rows: Sequence[tuple[int, str, str]], *, pp: int = 2, sp: int = 0) -> pa.Table:
    """Quotes from (ts ns, bid, ask) without sizes."""
    ts = pa.array([r[0] for r in rows], pa.timestamp("ns", tz="UTC"))
    return pa.Table.from_arrays(
        [ts, _dec([r[1] for r in rows], pp), _dec([r[2] for r in rows], pp), _dec([None] * len(rows), sp),
         _dec([None] * len(rows), sp)],
        schema=quotes_schema(pp, sp),
    )  # fmt: skip
