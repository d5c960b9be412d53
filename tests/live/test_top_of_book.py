"""A top of book derived from real trades' aggressor sides: bid below ask, each side a real traded price."""

from __future__ import annotations

from pathlib import Path

from smart_trader.core.ids import InstrumentId
from smart_trader.data.model import Trade
from smart_trader.data.service import MarketDataService
from smart_trader.live.replay import replay_file
from smart_trader.live.top_of_book import DerivedTopOfBook
from tests.live.conftest import drain

BTC = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
IID = InstrumentId("BTC/USDT.BINANCE")


def _trade(ts: int, price: int, side: str | None) -> Trade:
    return Trade(IID, ts, price, 1, side, None, 2, 5)


def test_a_buy_sets_the_ask_and_a_sell_the_bid_and_a_quote_comes_once_both_are_known() -> None:
    book = DerivedTopOfBook()
    assert book.update(_trade(1, 10_000, "buy")) is None  # no bid yet
    quote = book.update(_trade(2, 9_990, "sell"))
    assert quote is not None and (quote.bid_raw, quote.ask_raw, quote.ts_event) == (9_990, 10_000, 2)
    assert quote.bid_size_raw is None and quote.ask_size_raw is None  # sizes are unknown
    assert book.update(_trade(3, 9_990, "sell")) is None  # nothing changed: no new quote


def test_a_side_the_market_moved_through_is_dropped_until_a_trade_sets_it_again() -> None:
    book = DerivedTopOfBook()
    book.update(_trade(1, 10_000, "buy"))
    book.update(_trade(2, 9_990, "sell"))
    assert book.update(_trade(3, 10_005, "sell")) is None  # a sell above the ask: the ask estimate is stale
    quote = book.update(_trade(4, 10_010, "buy"))
    assert quote is not None and (quote.bid_raw, quote.ask_raw) == (10_005, 10_010)


def test_trades_without_an_aggressor_side_teach_nothing() -> None:
    book = DerivedTopOfBook()
    assert book.update(_trade(1, 10_000, None)) is None
    assert book.update(_trade(2, 9_000, None)) is None


def test_on_real_binance_trades_every_derived_quote_is_uncrossed_and_made_of_traded_prices(
    service: MarketDataService, shared_data: Path
) -> None:
    trades = [e for e in drain(replay_file(service, shared_data / BTC, "BTC/USDT", "BINANCE")) if type(e) is Trade]
    book = DerivedTopOfBook()
    quotes = [q for t in trades if (q := book.update(t)) is not None]
    buys = {t.price_raw for t in trades if t.aggressor_side == "buy"}
    sells = {t.price_raw for t in trades if t.aggressor_side == "sell"}
    assert len(quotes) > 50
    assert all(q.bid_raw < q.ask_raw for q in quotes)
    assert all(q.ask_raw in buys and q.bid_raw in sells for q in quotes)
