"""The Parquet market-data store: layout, idempotent writes, exact precision, ranges, all-or-nothing failures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smart_trader.config import home_dir, store_dir
from smart_trader.core.clock import NS_PER_DAY, NS_PER_SECOND, parse_utc
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.schema import (
    Kind,
    PriceType,
    bars_schema,
    decimal_from_raw,
    infer_precision,
    quotes_schema,
    raw_from_float,
    trades_schema,
    ts_ns,
)
from smart_trader.data.store import MarketDataStore
from smart_trader.data.timeframes import Timeframe

DAY1 = parse_utc("2021-01-08")
DAY2 = parse_utc("2021-01-09")
TRADES = DatasetKey("binance", "BTC/USDT", Kind.TRADES)
TradeRow = tuple[int, str, str, str | None, str | None]


def trades(rows: list[TradeRow], price_precision: int = 2, size_precision: int = 6) -> pa.Table:
    """Trades table from ``(ts_ns, price, size, aggressor_side, trade_id)`` rows (decimals as text)."""
    schema = trades_schema(price_precision, size_precision)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    ts, price, size, side, trade_id = columns
    return pa.Table.from_arrays(
        [
            pa.array(ts, pa.int64()).cast(schema.field("ts_event").type),
            pa.array([Decimal(v) for v in price], schema.field("price").type),
            pa.array([Decimal(v) for v in size], schema.field("size").type),
            pa.array(side, pa.string()),
            pa.array(trade_id, pa.string()),
        ],
        schema=schema,
    )


def sample() -> list[TradeRow]:
    """Five trades over two UTC days, out of order, two sharing a timestamp."""
    return [
        (DAY1 + 5 * NS_PER_SECOND, "39432.48", "0.000263", "sell", "1"),
        (DAY1 + 2 * NS_PER_SECOND, "39439.44", "0.004376", "buy", "2"),
        (DAY2 + 1 * NS_PER_SECOND, "39500.00", "1.000000", None, "3"),
        (DAY1 + 5 * NS_PER_SECOND, "39432.50", "0.1", "buy", "4"),
        (DAY1 + 9 * NS_PER_SECOND, "39431.01", "2", "sell", None),
    ]


def trade_ids(table: pa.Table) -> list[str | None]:
    return list(table.column("trade_id").to_pylist())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_returns_rows_sorted_by_time_with_equal_timestamps_in_written_order(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    table = trades(sample())

    report = store.write(TRADES, table)
    back = store.read(TRADES)

    expected = table.take([1, 0, 3, 4, 2])  # stable sort by ts_event
    assert back.equals(expected)
    assert back.schema == trades_schema(2, 6)
    assert (report.rows_in, report.rows_added, report.partitions_written) == (5, 5, 2)


def test_reimporting_the_same_rows_adds_nothing_and_leaves_files_untouched(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()))
    before = snapshot(tmp_path)

    report = store.write(TRADES, trades(sample()))
    shuffled = store.write(TRADES, trades(sample()[::-1]))

    assert (report.rows_added, report.partitions_written) == (0, 0)
    assert (shuffled.rows_added, shuffled.partitions_written) == (0, 0)
    assert snapshot(tmp_path) == before
    assert store.read(TRADES).num_rows == 5


def test_overlapping_import_adds_only_new_rows_and_keeps_time_order(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    rows = sample()
    store.write(TRADES, trades(rows[:4]))

    report = store.write(TRADES, trades([rows[3], rows[4], (DAY1 + 3 * NS_PER_SECOND, "1.00", "1", "buy", "9")]))

    assert report.rows_added == 2
    back = store.read(TRADES)
    assert back.column("trade_id").to_pylist() == ["2", "9", "1", "4", None, "3"]


def test_identical_trades_in_one_import_are_both_kept_and_not_doubled_on_reimport(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    twin = (DAY1 + NS_PER_SECOND, "100.00", "0.5", "buy", None)
    other = (DAY1 + NS_PER_SECOND, "100.00", "0.7", "buy", None)

    first = store.write(TRADES, trades([twin, twin]))
    again = store.write(TRADES, trades([other, twin, twin, twin]))

    assert first.rows_added == 2
    assert again.rows_added == 2  # `other`, and a third copy of twin (that import had three)
    sizes = store.read(TRADES).column("size").to_pylist()
    assert sizes == [Decimal("0.500000")] * 2 + [Decimal("0.700000"), Decimal("0.500000")]


def test_files_are_partitioned_by_venue_symbol_kind_and_utc_day(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()))

    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))

    base = "venue=BINANCE/symbol=BTC%2FUSDT/kind=trades"
    assert files == [f"{base}/date=2021-01-08/data.parquet", f"{base}/date=2021-01-09/data.parquet"]
    day1 = pq.read_table(tmp_path / files[0]).column("ts_event").cast(pa.int64()).to_pylist()
    assert all(DAY1 <= ts < DAY2 for ts in day1)
    assert len(day1) == 4
    assert not list(tmp_path.rglob("*.tmp"))


def test_bar_datasets_are_keyed_by_timeframe_and_price_type(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    bid = DatasetKey("FXCM", "GBP/USD", Kind.BARS, Timeframe.parse("1m"), PriceType.BID)
    bars = pa.Table.from_arrays(
        [
            pa.array([DAY1, DAY1 + 60 * NS_PER_SECOND], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            *[pa.array([Decimal("1.57123"), Decimal("1.57150")], pa.decimal128(38, 5))] * 4,
            pa.nulls(2, pa.decimal128(38, 0)),
        ],
        schema=bars_schema(5, 0),
    )

    store.write(bid, bars)

    # minute bars are kept one file per month (named after its first day)
    assert (tmp_path / "venue=FXCM/symbol=GBP%2FUSD/kind=bars-1m-bid/date=2021-01-01/data.parquet").is_file()
    assert store.read(bid).equals(bars)


def test_minute_bars_of_an_older_per_day_layout_are_read_and_folded_into_month_files(
    shared_data: Path, tmp_path: Path
) -> None:
    from smart_trader.data.readers import read_file

    bars = read_file(shared_data / "bars/GBPUSD_2012_1m_bid.fxcm.csv").table  # 2012-02-01 .. 2012-03-01
    key = DatasetKey("FXCM", "GBP/USD", Kind.BARS, Timeframe.parse("1m"), PriceType.BID)
    store = MarketDataStore(tmp_path)
    first, rest = bars.slice(0, 20_000), bars.slice(20_000)
    store.write(key, first)
    # rewrite it as an older store kept it: one file per UTC day
    month_files = sorted(store.dataset_dir(key).glob("date=*/data.parquet"))
    stored = pa.concat_tables([pq.read_table(f) for f in month_files])
    for f in month_files:
        f.unlink()
        f.parent.rmdir()
    ts = np.asarray(stored.column("ts_event").cast(pa.int64()))
    for day in np.unique(ts // NS_PER_DAY):
        folder = store.dataset_dir(key) / f"date={np.datetime64(int(day), 'D')}"
        folder.mkdir(parents=True)
        pq.write_table(stored.filter(pa.array(ts // NS_PER_DAY == day)), folder / "data.parquet")
    assert len(list(store.dataset_dir(key).glob("date=*"))) > 10
    assert store.read(key).equals(first)  # the older layout reads as it is, whole or in part
    lo = parse_utc("2012-02-09T17:00:00Z")
    hour = ts_ns(first)
    expected = first.filter(pa.array((hour >= lo) & (hour < lo + 3600 * NS_PER_SECOND)))
    assert expected.num_rows == 60
    assert store.read(key, lo, lo + 3600 * NS_PER_SECOND).equals(expected)

    report = store.write(key, bars)  # overlaps what is stored and adds the rest

    folders = sorted(p.name for p in store.dataset_dir(key).glob("date=*"))
    assert folders == ["date=2012-02-01", "date=2012-03-01"]
    assert report.rows_added == rest.num_rows
    assert store.read(key).equals(bars)


def test_read_range_is_half_open_on_ts_event_and_spans_days(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()))

    assert trade_ids(store.read(TRADES, DAY1 + 2 * NS_PER_SECOND, DAY1 + 5 * NS_PER_SECOND)) == ["2"]
    assert trade_ids(store.read(TRADES, DAY1 + 5 * NS_PER_SECOND, DAY1 + 9 * NS_PER_SECOND)) == ["1", "4"]
    assert trade_ids(store.read(TRADES, start_ns=DAY1 + 9 * NS_PER_SECOND)) == [None, "3"]
    assert trade_ids(store.read(TRADES, end_ns=DAY1 + 3 * NS_PER_SECOND)) == ["2"]
    assert trade_ids(store.read(TRADES, DAY2 + 2 * NS_PER_SECOND, DAY2 + 10 * NS_PER_SECOND)) == []
    assert store.read(TRADES, DAY2, DAY1).schema == trades_schema(2, 6)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda t: t.drop_columns(["trade_id"]), id="missing-column"),
        pytest.param(lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), id="extra-column"),
        pytest.param(lambda t: t.set_column(1, "price", t.column("price").cast(pa.float64())), id="float-price"),
        pytest.param(
            lambda t: t.set_column(1, "price", pa.array([None] * t.num_rows, pa.decimal128(38, 2))), id="null-price"
        ),
        pytest.param(lambda t: t.set_column(3, "aggressor_side", pa.array(["BUY"] * t.num_rows)), id="bad-side"),
        pytest.param(
            lambda t: t.set_column(0, "ts_event", t.column("ts_event").cast(pa.timestamp("ms", tz="UTC"))),
            id="ms-timestamps",
        ),
        pytest.param(
            lambda t: t.set_column(1, "price", pa.array([Decimal("39432.481")] * t.num_rows, pa.decimal128(38, 3))),
            id="too-many-decimals",
        ),
    ],
)
def test_a_rejected_write_leaves_every_existing_file_byte_identical(
    tmp_path: Path, bad: Callable[[pa.Table], pa.Table]
) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()[:2]))
    before = snapshot(tmp_path)

    with pytest.raises(InvalidInputError):
        store.write(TRADES, bad(trades(sample())))

    assert snapshot(tmp_path) == before


def test_a_failure_while_merging_one_day_changes_no_other_day(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()))
    day2 = next(tmp_path.rglob("date=2021-01-09/data.parquet"))
    day2.write_bytes(b"not parquet")  # a damaged file
    before = snapshot(tmp_path)

    with pytest.raises(pa.ArrowInvalid):
        store.write(
            TRADES,
            trades(
                [
                    (DAY1 + 7 * NS_PER_SECOND, "1.00", "1", "buy", "x"),
                    sample()[2],
                    (DAY2 + NS_PER_DAY, "1.00", "1", "buy", "y"),
                ]
            ),
        )

    assert snapshot(tmp_path) == before  # days 1 and 3 were prepared, then discarded; no temporary file left
    assert not list(tmp_path.rglob("date=2021-01-10"))


def test_tables_at_another_scale_are_rescaled_exactly_to_the_dataset_precision(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()[:1]))

    finer = trades([(DAY1 + NS_PER_SECOND, "39432.4000", "0.10000000", "buy", "a")], 4, 8)
    coarser = trades([(DAY1 + 3 * NS_PER_SECOND, "39432.5", "3", "buy", "b")], 1, 0)
    store.write(TRADES, finer)
    store.write(TRADES, coarser)

    back = store.read(TRADES)
    assert back.schema == trades_schema(2, 6)
    assert back.column("price").to_pylist() == [Decimal("39432.40"), Decimal("39432.50"), Decimal("39432.48")]
    assert store.precision(TRADES) == (2, 6)
    with pytest.raises(InvalidInputError, match="stored at price precision 2"):
        store.write(TRADES, coarser, price_precision=1)


def test_explicit_precision_sets_the_precision_of_a_new_dataset(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)

    store.write(TRADES, trades(sample()), price_precision=4, size_precision=8)

    assert store.read(TRADES).schema == trades_schema(4, 8)


def test_bars_that_do_not_open_on_the_timeframe_are_rejected(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    key = DatasetKey("BINANCE", "ETH/BTC", Kind.BARS, Timeframe.parse("5m"))
    one = [Decimal("0.05")]
    bars = pa.Table.from_arrays(
        [pa.array([DAY1 + 60 * NS_PER_SECOND]).cast(pa.timestamp("ns", tz="UTC")), *[pa.array(one)] * 4, pa.array(one)],
        schema=bars_schema(2, 2),
    )

    with pytest.raises(InvalidInputError, match="5m boundary"):
        store.write(key, bars)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_list_describes_each_dataset_and_delete_removes_it(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades(sample()))
    quotes_key = DatasetKey("BINANCE", "BTC/USDT", Kind.QUOTES)
    q = pa.Table.from_arrays(
        [
            pa.array([DAY1]).cast(pa.timestamp("ns", tz="UTC")),
            pa.array([Decimal("1.5")], pa.decimal128(38, 1)),
            pa.array([Decimal("1.6")], pa.decimal128(38, 1)),
            pa.nulls(1, pa.decimal128(38, 3)),
            pa.nulls(1, pa.decimal128(38, 3)),
        ],
        schema=quotes_schema(1, 3),
    )
    store.write(quotes_key, q)

    infos = {info.key: info for info in store.list()}

    assert set(infos) == {TRADES, quotes_key}
    info = infos[TRADES]
    assert (info.rows, info.partitions, info.price_precision, info.size_precision) == (5, 2, 2, 6)
    assert (info.first_ts_ns, info.last_ts_ns) == (DAY1 + 2 * NS_PER_SECOND, DAY2 + NS_PER_SECOND)
    assert (infos[quotes_key].price_precision, infos[quotes_key].size_precision) == (1, 3)

    store.delete(TRADES)
    assert [i.key for i in store.list()] == [quotes_key]
    with pytest.raises(NotFoundError, match="quotes"):
        store.read(TRADES)
    with pytest.raises(NotFoundError):
        store.delete(TRADES)


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        (TRADES, "venue=BINANCE/symbol=BTC%2FUSDT/kind=trades"),
        (DatasetKey("TRUEFX", "USD/JPY", Kind.QUOTES), "venue=TRUEFX/symbol=USD%2FJPY/kind=quotes"),
        (
            DatasetKey("FXCM", "GBP/USD", Kind.BARS, Timeframe.parse("1m"), PriceType.ASK),
            "venue=FXCM/symbol=GBP%2FUSD/kind=bars-1m-ask",
        ),
        (
            DatasetKey("NASDAQ", "ORCL", Kind.BARS, Timeframe.parse("90s"), PriceType.MID),
            "venue=NASDAQ/symbol=ORCL/kind=bars-90s-mid",
        ),
    ],
)
def test_dataset_key_round_trips_through_its_partition_path(key: DatasetKey, partition: str) -> None:
    assert key.to_partition() == partition
    assert DatasetKey.from_partition(partition) == key
    assert DatasetKey.from_partition(Path("/store") / partition / "date=2021-01-08" / "data.parquet") == key


def test_dataset_key_rejects_inconsistent_definitions() -> None:
    with pytest.raises(InvalidInputError):
        DatasetKey("BINANCE", "BTC/USDT", Kind.BARS)
    with pytest.raises(InvalidInputError):
        DatasetKey("BINANCE", "BTC/USDT", Kind.TRADES, Timeframe.parse("1m"))
    with pytest.raises(InvalidInputError):
        DatasetKey.from_partition("venue=BINANCE/symbol=X/kind=candles")


def test_store_dir_follows_smart_trader_home(home: Path) -> None:
    assert home_dir() == home
    assert store_dir() == home / "market-data"


def test_real_binance_trades_round_trip_exactly(tmp_path: Path, shared_data: Path) -> None:
    raw = pq.read_table(shared_data / "trades" / "BTCUSDT_2021-01-08.binance.trades.parquet")
    price = raw.column("price").to_numpy()
    p = infer_precision(price)
    # The file's quantities are floats a few ulp away from 6-decimal values (e.g. 0.00031099999999999997).
    scaled = raw.column("quantity").to_numpy() * 1e6
    assert np.all(np.abs(scaled - np.rint(scaled)) < 1e-6)
    table = pa.Table.from_arrays(
        [
            raw.column("timestamp").cast(pa.timestamp("ns", tz="UTC")),
            decimal_from_raw(raw_from_float(price, p, file="BTCUSDT", column="price"), p),
            decimal_from_raw(np.rint(scaled).astype(np.int64), 6),
            pa.array(["sell" if m == "True" else "buy" for m in raw.column("buyer_maker").to_pylist()]),
            raw.column("trade_id").cast(pa.string()),
        ],
        schema=trades_schema(p, 6),
    )
    store = MarketDataStore(tmp_path)

    first = store.write(TRADES, table)
    second = store.write(TRADES, table)

    assert (first.rows_added, second.rows_added) == (2001, 0)
    assert store.read(TRADES).equals(table)  # the file is already in time order


def test_a_stored_trade_id_with_other_values_is_a_conflict_and_changes_nothing(tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    store.write(TRADES, trades([(DAY1 + NS_PER_SECOND, "100.00", "0.5", "buy", "7")]))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    with pytest.raises(InvalidInputError, match="trade_id 7 is already stored"):
        store.write(TRADES, trades([(DAY1 + 2 * NS_PER_SECOND, "101.00", "0.5", "buy", "7")]))

    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
