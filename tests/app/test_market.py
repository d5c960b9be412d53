"""Market data through the API: the instrument catalog, bars from the store (equal to the core's aggregation),
and the latest trade the feed saw."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa

from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from tests.app.conftest import Harness, assert_problem

BARS = "/api/v1/market/bars"
QUOTE = "/api/v1/market/quote"
BTC = {"symbol": "BTC/USDT", "venue": "BINANCE"}


def core_bars(h: Harness, timeframe: str, **kw: Any) -> list[dict[str, Any]]:
    """The bars the core's market-data service builds from the stored trades, as the API would show them."""
    table: pa.Table = MarketDataService(h.settings.home_dir).bars(
        "BTC/USDT", "BINANCE", Timeframe.parse(timeframe), **kw
    )
    ts = table.column("ts_event").cast(pa.int64()).to_pylist()
    cols = {c: table.column(c).to_pylist() for c in ("open", "high", "low", "close", "volume")}
    return [{"ts_event": t, **{c: cols[c][i] for c in cols}} for i, t in enumerate(ts)]


def api_bars(h: Harness, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = h.client.get(BARS, headers=headers, params={**BTC, **params})
    assert r.status_code == 200, r.text
    return [{k: (Decimal(v) if k != "ts_event" and v is not None else v) for k, v in b.items()} for b in r.json()]


def test_instruments_list_btc_usdt_with_its_rules(platform: Harness) -> None:
    h = platform.user()
    r = platform.client.get("/api/v1/instruments", headers=h)
    assert r.status_code == 200, r.text
    by_id = {i["id"]: i for i in r.json()}
    btc = by_id["BTC/USDT.BINANCE"]
    assert (btc["symbol"], btc["venue"], btc["base_currency"], btc["quote_currency"]) == (
        "BTC/USDT",
        "BINANCE",
        "BTC",
        "USDT",
    )
    inst = platform.instrument
    assert Decimal(btc["tick_size"]) == inst.tick_size == Decimal("0.01")
    assert Decimal(btc["lot_size"]) == inst.lot_size == Decimal("0.000001")
    assert (btc["price_precision"], btc["size_precision"]) == (2, 6)
    assert Decimal(btc["multiplier"]) == 1 and btc["asset_class"] == "crypto"


def test_bars_equal_the_cores_aggregation_of_the_stored_trades(platform: Harness) -> None:
    h = platform.user()
    one_minute = api_bars(platform, h, timeframe="1m")
    assert one_minute == core_bars(platform, "1m")
    assert len(one_minute) == 1  # the recording covers 46 s of one minute
    # and that minute is the recorded trades' OHLCV, computed here from the trades themselves
    prices = [t.price for t in platform.trades]
    [bar] = one_minute
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (prices[0], max(prices), min(prices), prices[-1])
    assert bar["volume"] == sum((t.size for t in platform.trades), Decimal(0))
    assert bar["ts_event"] == platform.trades[0].ts_event // 60_000_000_000 * 60_000_000_000

    seconds = api_bars(platform, h, timeframe="1s")
    assert seconds == core_bars(platform, "1s")
    assert len(seconds) > 40
    start, end = seconds[5]["ts_event"], seconds[15]["ts_event"]
    window = api_bars(platform, h, timeframe="1s", start=start, end=end)
    assert window == seconds[5:15]  # [start, end)
    assert api_bars(platform, h, timeframe="1s", limit=3) == seconds[:3]


def test_bad_bar_requests_are_422_and_unknown_instruments_404(platform: Harness) -> None:
    h = platform.user()
    c = platform.client
    assert_problem(c.get(BARS, headers=h, params={**BTC, "timeframe": "7x"}), 422, "7x")
    assert_problem(c.get(BARS, headers=h, params={**BTC, "timeframe": ""}), 422)
    assert_problem(c.get(BARS, headers=h, params={**BTC, "start": 10, "end": 10}), 422, "after start")
    assert_problem(c.get(BARS, headers=h, params={**BTC, "limit": 0}), 422, "limit")
    assert_problem(c.get(BARS, headers=h, params={**BTC, "end": 2**64}), 422, "end")  # past any int64 timestamp
    assert_problem(c.get(BARS, headers=h, params={"symbol": "BTC/USDT"}), 422, "venue")
    for unknown in ({"symbol": "DOGE/USDT", "venue": "BINANCE"}, {"symbol": "BTC/USDT", "venue": "KRAKEN"}):
        problem = assert_problem(c.get(BARS, headers=h, params=unknown), 404, "unknown instrument")
        assert str(platform.settings.home_dir) not in problem["detail"]  # no server paths in API errors


def test_quote_is_404_before_any_trade_then_the_last_pushed_trade(platform: Harness) -> None:
    h = platform.user()
    assert_problem(platform.client.get(QUOTE, headers=h, params=BTC), 404, "BTC/USDT.BINANCE")
    for n in (1, 7):
        last = platform.push_trades(n)[-1]
        platform.settle()
        r = platform.client.get(QUOTE, headers=h, params=BTC)
        assert r.status_code == 200, r.text
        q = r.json()
        assert q["instrument_id"] == "BTC/USDT.BINANCE"
        assert Decimal(q["last_price"]) == last.price == Decimal(q["mark"])
        assert Decimal(q["last_size"]) == last.size and q["trade_ts"] == last.ts_event
        assert q["bid"] is None and q["ask"] is None and q["quote_ts"] is None  # trades only, no book
    assert_problem(platform.client.get(QUOTE, headers=h, params={"symbol": "ETH/USDT", "venue": "BINANCE"}), 404)
    assert_problem(platform.client.get(QUOTE, headers=h, params={"symbol": "BTC/USDT"}), 422, "venue")
