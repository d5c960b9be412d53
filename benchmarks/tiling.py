"""Benchmark volumes made from the real recordings in ``../shared/data`` by tiling (see its README):
repeat the series, shift each copy forward in time so it starts one step after the previous copy ends,
and rescale its prices so the series stays continuous.

Rescaling: copy ``k`` (0-based) has every price multiplied by ``r**k``, ``r = last price / first price``
of the recording, then rounded to the recording's own decimals (so prices stay on its tick grid and the
readers infer the same precision). The first price of copy ``k + 1`` is then the last price of copy ``k``
to within one tick. Bar consistency (``low <= open, close <= high``) survives, since rounding is monotonic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from smart_trader.data.schema import bars_schema, decimal_from_raw, raw_from_decimal

I64 = npt.NDArray[np.int64]
PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Tiling:
    """How a series was tiled: copies made, the time shift per copy, the price factor per copy."""

    rows: int
    source_rows: int
    copies: int
    shift_ns: int
    factor: float

    def describe(self, unit: str) -> str:
        """One line for the report."""
        last = self.factor ** (self.copies - 1)
        return (
            f"{self.rows:,} {unit} = {self.copies} copies of {self.source_rows:,}, each shifted "
            f"{self.shift_ns / 1e9:,.0f} s later and its prices × {self.factor:.6f}^k (last copy × {last:.4f})"
        )


def tile_bars(table: pa.Table, rows: int, step_ns: int, *, rescale: bool = True) -> tuple[pa.Table, Tiling]:
    """``rows`` normalized bars tiled from ``table`` (bars ``step_ns`` apart); see the module docstring.

    ``rescale=False`` repeats the prices unchanged (for many copies of a short series, where ``r**k`` would run
    out of range; the series then jumps at each copy's start, which an import does not care about)."""
    n = table.num_rows
    copies = -(-rows // n)
    ts = np.asarray(table.column("ts_event").cast(pa.int64()).to_numpy(), dtype=np.int64)
    shift = int(ts[-1] - ts[0]) + step_ns
    raw = {c: raw_from_decimal(table.column(c)) for c in PRICES}
    factor = float(raw["close"][-1]) / float(raw["open"][0]) if rescale else 1.0
    scales = np.repeat(factor ** np.arange(copies), n)[:rows]
    out_ts = (np.tile(ts, copies) + np.repeat(np.arange(copies, dtype=np.int64) * shift, n))[:rows]
    price_type = table.schema.field("open").type
    size_type = table.schema.field("volume").type
    columns: list[pa.Array] = [pa.array(out_ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))]
    for c in PRICES:
        tiled = np.rint(np.tile(raw[c], copies)[:rows] * scales).astype(np.int64)
        columns.append(decimal_from_raw(tiled, price_type.scale))
    volume = table.column("volume")
    null = np.tile(np.asarray(volume.is_null()), copies)[:rows]
    columns.append(decimal_from_raw(np.tile(raw_from_decimal(volume), copies)[:rows], size_type.scale, null))
    schema = bars_schema(price_type.scale, size_type.scale)
    return pa.Table.from_arrays(columns, schema=schema), Tiling(rows, n, copies, shift, factor)


def tile_binance_trades(frame: pl.DataFrame, rows: int, price_decimals: int) -> tuple[pl.DataFrame, Tiling]:
    """``rows`` trades in the Binance layout (``timestamp[ms, UTC],trade_id,price,quantity,buyer_maker``)
    tiled from ``frame``; trade ids continue from copy to copy so they stay unique."""
    n = frame.height
    copies = -(-rows // n)
    ts = frame["timestamp"].dt.epoch("ms").to_numpy()
    shift_ms = int(ts[-1] - ts[0]) + 1
    ids = frame["trade_id"].to_numpy()
    price = frame["price"].to_numpy()
    factor = float(price[-1] / price[0])
    k = np.repeat(np.arange(copies, dtype=np.int64), n)[:rows]
    tiled = pl.DataFrame(
        {
            "timestamp": np.tile(ts, copies)[:rows] + k * shift_ms,
            "trade_id": np.tile(ids, copies)[:rows] + k * int(ids.max() - ids.min() + 1),
            "price": np.round(np.tile(price, copies)[:rows] * factor ** k.astype(np.float64), price_decimals),
            "quantity": np.tile(frame["quantity"].to_numpy(), copies)[:rows],
            "buyer_maker": np.tile(frame["buyer_maker"].to_numpy(), copies)[:rows],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    return tiled, Tiling(rows, n, copies, shift_ms * 1_000_000, factor)
