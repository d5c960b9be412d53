"""Bars from trades, quotes and shorter bars: epoch-aligned intervals, exact decimals, gaps stay gaps."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smart_trader.core.clock import NS_PER_SECOND, parse_utc
from smart_trader.core.errors import InvalidInputError
from smart_trader.data.aggregation import quotes_to_bars, resample_bars, trades_to_bars
from smart_trader.data.schema import (
    TS_TYPE,
    PriceType,
    bars_schema,
    decimal_from_raw,
    infer_precision,
    quotes_schema,
    raw_from_float,
    trades_schema,
)
from smart_trader.data.timeframes import Timeframe

T0 = parse_utc("2021-01-08")
S = NS_PER_SECOND
D = Decimal
Bar = tuple[int, str, str, str, str, str | None]


def tf(text: str) -> Timeframe:
    return Timeframe.parse(text)


def trades(rows: list[tuple[int, str, str]], p: int = 2, s: int = 3) -> pa.Table:
    """Trades from ``(ts_ns, price, size)`` rows."""
    schema = trades_schema(p, s)
    return pa.Table.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.int64()).cast(TS_TYPE),
            pa.array([D(r[1]) for r in rows], schema.field("price").type),
            pa.array([D(r[2]) for r in rows], schema.field("size").type),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
        ],
        schema=schema,
    )


def bars(rows: list[Bar], p: int = 2, s: int = 3) -> pa.Table:
    """Bars from ``(ts_ns, open, high, low, close, volume or None)`` rows."""
    schema = bars_schema(p, s)
    columns: list[pa.Array] = [pa.array([r[0] for r in rows], pa.int64()).cast(TS_TYPE)]
    for i, field in enumerate(schema, start=0):
        if i:
            columns.append(pa.array([None if r[i] is None else D(r[i]) for r in rows], field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def rows_of(table: pa.Table) -> list[tuple[object, ...]]:
    """Rows as tuples, ts_event as int ns and decimals normalized to strings."""
    ts = table.column("ts_event").cast(pa.int64()).to_pylist()
    rest = [table.column(n).to_pylist() for n in table.column_names[1:]]
    return [(t, *(None if v is None else str(v) for v in vals)) for t, *vals in zip(ts, *rest, strict=True)]


def test_one_second_bars_use_first_max_min_last_and_leave_gaps_empty() -> None:
    table = trades(
        [
            (T0 + 100_000_000, "10.00", "1"),
            (T0 + 500_000_000, "12.50", "0.5"),
            (T0 + 900_000_000, "9.75", "0.25"),
            (T0 + 999_999_999, "11.00", "2"),
            (T0 + 1 * S, "11.10", "1"),
            (T0 + 4 * S + 1, "11.20", "0.001"),
        ]
    )

    out = trades_to_bars(table, tf("1s"))

    assert out.schema == bars_schema(2, 3)
    assert rows_of(out) == [
        (T0, "10.00", "12.50", "9.75", "11.00", "3.750"),
        (T0 + 1 * S, "11.10", "11.10", "11.10", "11.10", "1.000"),
        (T0 + 4 * S, "11.20", "11.20", "11.20", "11.20", "0.001"),  # seconds 2 and 3 had no trade
    ]


def test_equal_timestamps_keep_table_order_for_open_and_close_even_when_input_is_unsorted() -> None:
    t = T0 + 30 * S
    table = trades(
        [
            (t + 5 * S, "3.00", "1"),  # later in time, first in the table
            (t, "1.00", "1"),  # first at t: the open
            (t, "2.00", "1"),
            (t + 5 * S, "4.00", "1"),  # last at t+5s in table order: the close
        ]
    )

    out = trades_to_bars(table, tf("1m"))

    assert rows_of(out) == [(T0, "1.00", "4.00", "1.00", "4.00", "4.000")]


@pytest.mark.parametrize(
    ("timeframe", "expected_open"),
    [
        ("1s", "2021-01-08T13:37:12Z"),
        ("10s", "2021-01-08T13:37:10Z"),
        ("5m", "2021-01-08T13:35:00Z"),
        ("1h", "2021-01-08T13:00:00Z"),
        ("4h", "2021-01-08T12:00:00Z"),
        ("1d", "2021-01-08T00:00:00Z"),
    ],
)
def test_bars_open_at_epoch_aligned_utc_boundaries(timeframe: str, expected_open: str) -> None:
    table = trades([(parse_utc("2021-01-08T13:37:12.345Z"), "5.00", "1")])

    out = trades_to_bars(table, tf(timeframe))

    assert out.column("ts_event").cast(pa.int64()).to_pylist() == [parse_utc(expected_open)]


def test_bars_before_1970_floor_towards_the_past() -> None:
    table = trades([(parse_utc("1969-12-31T23:59:59.5Z"), "5.00", "1")])

    out = trades_to_bars(table, tf("1m"))

    assert out.column("ts_event").cast(pa.int64()).to_pylist() == [parse_utc("1969-12-31T23:59:00Z")]


def test_volume_is_an_exact_decimal_sum_even_beyond_64_bits() -> None:
    exact = trades([(T0, "1.00", "0.1"), (T0 + 1, "1.00", "0.2")])
    huge = trades([(T0, "1", "9000000000000000000"), (T0 + 1, "1", "9000000000000000000")], 0, 0)

    assert trades_to_bars(exact, tf("1s")).column("volume").to_pylist() == [D("0.300")]
    assert trades_to_bars(huge, tf("1s")).column("volume").to_pylist() == [D("18000000000000000000")]


def test_no_trades_give_no_bars() -> None:
    out = trades_to_bars(trades([]), tf("1m"))

    assert out.num_rows == 0
    assert out.schema == bars_schema(2, 3)


def test_resample_one_minute_bars_to_five_minutes() -> None:
    m = 60 * S
    source = bars(
        [
            (T0 + 0 * m, "10.00", "11.00", "9.00", "10.50", "1"),
            (T0 + 1 * m, "10.50", "12.00", "10.00", "11.00", "2"),
            (T0 + 4 * m, "11.00", "11.50", "8.50", "9.00", "0.5"),
            (T0 + 10 * m, "9.00", "9.10", "8.90", "9.05", "4"),  # 5..9 empty: no bar
        ]
    )

    out = resample_bars(source, tf("5m"), tf("1m"))

    assert rows_of(out) == [
        (T0, "10.00", "12.00", "8.50", "9.00", "3.500"),
        (T0 + 10 * m, "9.00", "9.10", "8.90", "9.05", "4.000"),
    ]


def test_resampled_volume_is_null_when_any_source_volume_is_null() -> None:
    source = bars(
        [
            (T0, "1.00", "1.00", "1.00", "1.00", None),
            (T0 + 60 * S, "1.00", "1.00", "1.00", "1.00", None),
            (T0 + 3600 * S, "2.00", "2.00", "2.00", "2.00", "1"),
            (T0 + 3660 * S, "2.00", "2.00", "2.00", "2.00", None),
            (T0 + 7200 * S, "3.00", "3.00", "3.00", "3.00", "1"),
        ]
    )

    out = resample_bars(source, tf("1h"), tf("1m"))

    assert out.column("volume").to_pylist() == [None, None, D("1.000")]


@pytest.mark.parametrize(("target", "source"), [("90s", "1m"), ("7m", "2m")])
def test_resample_refuses_targets_that_are_not_whole_multiples(target: str, source: str) -> None:
    with pytest.raises(InvalidInputError, match="whole multiple"):
        resample_bars(bars([]), tf(target), tf(source))


def test_resample_refuses_shorter_targets_saying_so() -> None:
    with pytest.raises(InvalidInputError, match="1m is shorter"):
        resample_bars(bars([]), tf("1m"), tf("5m"))


def test_resample_refuses_bars_off_the_source_grid() -> None:
    with pytest.raises(InvalidInputError, match="1m boundary"):
        resample_bars(bars([(T0 + 30 * S, "1.00", "1.00", "1.00", "1.00", "1")]), tf("5m"), tf("1m"))


def test_quote_bars_for_bid_ask_and_exact_mid() -> None:
    schema = quotes_schema(2, 0)
    quotes = pa.Table.from_arrays(
        [
            pa.array([T0, T0 + 1, T0 + 2 * S], pa.int64()).cast(TS_TYPE),
            pa.array([D("1.00"), D("1.01"), D("1.02")], schema.field("bid_price").type),
            pa.array([D("1.02"), D("1.02"), D("1.04")], schema.field("ask_price").type),
            pa.nulls(3, schema.field("bid_size").type),
            pa.nulls(3, schema.field("ask_size").type),
        ],
        schema=schema,
    )

    bid = quotes_to_bars(quotes, tf("1s"), PriceType.BID)
    ask = quotes_to_bars(quotes, tf("1s"), PriceType.ASK)
    mid = quotes_to_bars(quotes, tf("1s"), PriceType.MID)
    even_mid = quotes_to_bars(quotes.slice(2), tf("1s"), PriceType.MID)

    assert rows_of(bid) == [
        (T0, "1.00", "1.01", "1.00", "1.01", None),
        (T0 + 2 * S, "1.02", "1.02", "1.02", "1.02", None),
    ]
    assert rows_of(ask)[0] == (T0, "1.02", "1.02", "1.02", "1.02", None)
    assert mid.schema == bars_schema(3, 0)  # (1.01 + 1.02) / 2 = 1.015 needs a third decimal
    assert rows_of(mid)[0] == (T0, "1.010", "1.015", "1.010", "1.015", None)
    assert rows_of(even_mid) == [(T0 + 2 * S, "1.03", "1.03", "1.03", "1.03", None)]
    with pytest.raises(InvalidInputError):
        quotes_to_bars(quotes, tf("1s"), PriceType.LAST)


def test_wrong_input_columns_are_reported() -> None:
    with pytest.raises(InvalidInputError, match="price"):
        trades_to_bars(trades([]).drop_columns(["price"]), tf("1m"))
    float_prices = trades([(T0, "1.00", "1")]).set_column(1, "price", pa.array([1.0]))
    with pytest.raises(InvalidInputError, match="decimal128"):
        trades_to_bars(float_prices, tf("1m"))


# --- real data: BTC/USDT trades, Binance, 2021-01-08 00:00:00..00:00:46 (2,001 trades) ---


@pytest.fixture(scope="module")
def btc_trades_raw(shared_data: Path) -> pa.Table:
    return pq.read_table(shared_data / "trades" / "BTCUSDT_2021-01-08.binance.trades.parquet")


@pytest.fixture(scope="module")
def btc_trades(btc_trades_raw: pa.Table) -> pa.Table:
    """The file in the normalized trades schema (price at 2 decimals, size at 6)."""
    price = btc_trades_raw.column("price").to_numpy()
    p = infer_precision(price)
    # Quantities are floats a few ulp away from 6-decimal values (0.000311 is stored as 0.00031099999999999997),
    # so infer_precision/raw_from_float cannot recover them; round at 6 decimals after checking the distance.
    scaled = btc_trades_raw.column("quantity").to_numpy() * 1e6
    assert np.all(np.abs(scaled - np.rint(scaled)) < 1e-6)
    sides = ["sell" if m == "True" else "buy" for m in btc_trades_raw.column("buyer_maker").to_pylist()]
    return pa.Table.from_arrays(
        [
            btc_trades_raw.column("timestamp").cast(TS_TYPE),
            decimal_from_raw(raw_from_float(price, p, file="BTCUSDT", column="price"), p),
            decimal_from_raw(np.rint(scaled).astype(np.int64), 6),
            pa.array(sides, pa.string()),
            btc_trades_raw.column("trade_id").cast(pa.string()),
        ],
        schema=trades_schema(p, 6),
    )


def test_ten_second_bars_of_real_btc_trades_match_the_hand_checked_values(btc_trades: pa.Table) -> None:
    out = trades_to_bars(btc_trades, tf("10s"))

    # Read off the file (first, max, min, last price and summed quantity of each 10 s window).
    assert rows_of(out)[:3] == [
        (T0, "39432.48", "39486.99", "39430.30", "39479.23", "16.081204"),
        (T0 + 10 * S, "39479.22", "39499.98", "39460.39", "39491.98", "19.694925"),
        (T0 + 20 * S, "39492.20", "39531.83", "39492.20", "39527.01", "14.574607"),
    ]
    assert out.num_rows == 5  # 00:00:00 .. 00:00:40


def test_real_btc_bars_match_a_plain_python_loop_over_the_file(btc_trades_raw: pa.Table) -> None:
    expected: dict[int, list[Decimal]] = {}
    for ts_ms, price, qty in zip(
        btc_trades_raw.column("timestamp").cast(pa.int64()).to_pylist(),
        btc_trades_raw.column("price").to_pylist(),
        btc_trades_raw.column("quantity").to_pylist(),
        strict=True,
    ):
        start = ts_ms // 10_000 * 10_000 * 1_000_000
        px, q = D(repr(price)).quantize(D("0.01")), D(repr(qty)).quantize(D("0.000001"))
        bar = expected.setdefault(start, [px, px, px, px, D(0)])
        bar[1], bar[2], bar[3], bar[4] = max(bar[1], px), min(bar[2], px), px, bar[4] + q
    table = btc_trades_raw  # normalized inline, like the fixture, but from Decimal text this time
    normalized = pa.Table.from_arrays(
        [
            table.column("timestamp").cast(TS_TYPE),
            pa.array([D(repr(v)).quantize(D("0.01")) for v in table.column("price").to_pylist()], pa.decimal128(38, 2)),
            pa.array(
                [D(repr(v)).quantize(D("0.000001")) for v in table.column("quantity").to_pylist()], pa.decimal128(38, 6)
            ),
            pa.nulls(table.num_rows, pa.string()),
            pa.nulls(table.num_rows, pa.string()),
        ],
        schema=trades_schema(2, 6),
    )

    out = trades_to_bars(normalized, tf("10s"))

    assert rows_of(out) == [(t, *(str(v) for v in vals)) for t, vals in sorted(expected.items())]


def test_resampling_real_one_second_bars_equals_building_longer_bars_directly(btc_trades: pa.Table) -> None:
    one_second = trades_to_bars(btc_trades, tf("1s"))

    for target in ("10s", "15s", "1m", "1h", "1d"):
        assert resample_bars(one_second, tf(target), tf("1s")).equals(trades_to_bars(btc_trades, tf(target)))
    whole = rows_of(trades_to_bars(btc_trades, tf("1d")))
    assert whole == [(T0, "39432.48", "39550.00", "39430.30", "39491.76", "87.071596")]
