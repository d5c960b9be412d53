"""The instrument catalog (JSON file) and instrument inference from a symbol and data precisions."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.data.catalog import InstrumentCatalog, infer_instrument, split_symbol


def btc_usdt(tick: str = "0.01") -> Instrument:
    return Instrument.create(
        "BTC/USDT",
        "binance",
        asset_class="crypto",
        base_currency="BTC",
        quote_currency="USDT",
        tick_size=tick,
        lot_size="0.000001",
    )


def test_added_instrument_is_found_again_by_a_new_catalog_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog" / "instruments.json"
    InstrumentCatalog(path).add(btc_usdt())

    found = InstrumentCatalog(path).get("BTC/USDT", "Binance")

    assert found == btc_usdt()
    assert found.tick_size == Decimal("0.01")
    assert json.loads(path.read_text())["instruments"][0]["symbol"] == "BTC/USDT"
    assert [p.name for p in path.parent.iterdir()] == ["instruments.json"]  # no temporary file left


def test_adding_the_same_definition_twice_is_a_no_op(tmp_path: Path) -> None:
    catalog = InstrumentCatalog(tmp_path / "instruments.json")

    assert catalog.add(btc_usdt()) is True
    before = (tmp_path / "instruments.json").read_bytes()
    assert catalog.add(btc_usdt("0.010")) is False  # same value written differently

    assert (tmp_path / "instruments.json").read_bytes() == before
    assert catalog.list() == [btc_usdt()]


def test_a_conflicting_redefinition_is_refused_and_names_the_field(tmp_path: Path) -> None:
    catalog = InstrumentCatalog(tmp_path / "instruments.json")
    catalog.add(btc_usdt())

    with pytest.raises(InvalidInputError, match=r"tick_size: 0\.01 -> 0\.1"):
        catalog.add(btc_usdt("0.1"))

    assert catalog.get("BTC/USDT", "BINANCE").tick_size == Decimal("0.01")


def test_unknown_instrument_message_lists_the_instruments_known_on_that_venue(tmp_path: Path) -> None:
    catalog = InstrumentCatalog(tmp_path / "instruments.json")
    catalog.add(btc_usdt())
    catalog.add(infer_instrument("ETH/BTC", "BINANCE", 6, 3))
    catalog.add(infer_instrument("GBP/USD", "FXCM", 5, 0))

    with pytest.raises(NotFoundError, match=r"XRP/ETH\.BINANCE.*known on BINANCE: BTC/USDT, ETH/BTC$"):
        catalog.get("XRP/ETH", "binance")
    with pytest.raises(NotFoundError, match="known on KRAKEN: none"):
        catalog.get("BCH/EUR", "KRAKEN")


def test_list_is_sorted_by_instrument_id(tmp_path: Path) -> None:
    catalog = InstrumentCatalog(tmp_path / "instruments.json")
    assert catalog.list() == []
    for symbol in ("ORCL", "NVDA"):
        catalog.add(infer_instrument(symbol, "NASDAQ", 2, 0))

    assert [i.id for i in catalog.list()] == ["NVDA.NASDAQ", "ORCL.NASDAQ"]


def test_a_damaged_catalog_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    path.write_text("{not json")

    with pytest.raises(InvalidInputError, match="not valid"):
        InstrumentCatalog(path).list()


@pytest.mark.parametrize(
    ("symbol", "venue", "precisions", "expected"),
    [
        ("BTC/USDT", "binance", (2, 6), (AssetClass.CRYPTO, "BTC", "USDT", "0.01", "0.000001")),
        ("ETH-BTC", "BINANCE", (6, 3), (AssetClass.CRYPTO, "ETH", "BTC", "0.000001", "0.001")),
        ("BTCUSDT", "BINANCE", (2, 6), (AssetClass.CRYPTO, "BTC", "USDT", "0.01", "0.000001")),
        ("ETHBUSD", "BINANCE", (2, 4), (AssetClass.CRYPTO, "ETH", "BUSD", "0.01", "0.0001")),
        ("BCHEUR", "KRAKEN", (2, 8), (AssetClass.CRYPTO, "BCH", "EUR", "0.01", "0.00000001")),
        ("GBP/USD", "FXCM", (5, 0), (AssetClass.FX, "GBP", "USD", "0.00001", "1")),
        ("USDJPY", "TRUEFX", (3, 0), (AssetClass.FX, "USD", "JPY", "0.001", "1")),
        ("ORCL", "NASDAQ", (2, 0), (AssetClass.EQUITY, "ORCL", "USD", "0.01", "1")),
        ("BRK-B", "NYSE", (2, 0), (AssetClass.EQUITY, "BRK-B", "USD", "0.01", "1")),
    ],
)
def test_infer_instrument_from_symbol_and_precisions(
    symbol: str, venue: str, precisions: tuple[int, int], expected: tuple[AssetClass, str, str, str, str]
) -> None:
    inst = infer_instrument(symbol, venue, *precisions)

    asset_class, base, quote, tick, lot = expected
    assert (inst.asset_class, inst.base_currency, inst.quote_currency) == (asset_class, base, quote)
    assert (inst.tick_size, inst.lot_size) == (Decimal(tick), Decimal(lot))
    assert (inst.price_precision, inst.size_precision) == precisions
    assert inst.symbol == symbol
    assert inst.venue == venue.upper()
    assert Instrument.from_dict(inst.to_dict()) == inst


def test_asset_class_hint_overrides_the_guess() -> None:
    assert infer_instrument("SETH", "NYSE", 2, 0, "equity").base_currency == "SETH"
    assert infer_instrument("SETH", "NYSE", 2, 0).asset_class is AssetClass.CRYPTO  # looks like S/ETH
    with pytest.raises(InvalidInputError, match="base and quote"):
        infer_instrument("ORCL", "NASDAQ", 2, 0, AssetClass.FX)
    with pytest.raises(InvalidInputError, match="unknown asset class"):
        infer_instrument("ORCL", "NASDAQ", 2, 0, "stock")
    with pytest.raises(InvalidInputError, match="price_precision"):
        infer_instrument("ORCL", "NASDAQ", 19, 0)


def test_split_symbol() -> None:
    assert split_symbol("xrp/eth") == ("XRP", "ETH")
    assert split_symbol("LTC-BTC") == ("LTC", "BTC")
    assert split_symbol("ORCL") is None
    assert split_symbol("USDT") is None
