"""Exposure and leverage (``risk/exposure.py``) of netting positions, long, short and with a contract multiplier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide
from smart_trader.portfolio.position import Position
from smart_trader.risk.exposure import exposures, leverage, summarize
from tests.execution.builders import ORCL
from tests.risk.kit import ES

D = Decimal


def positions() -> list[Position]:
    """Long 100 ORCL at 40, short 2 ES at 4000 (multiplier 50), and a closed position."""
    orcl = Position(ORCL.id)
    orcl.apply_fill(OrderSide.BUY, D(100), D(40), D(0), 1)
    es = Position(ES.id, D(50))
    es.apply_fill(OrderSide.SELL, D(2), D(4000), D(0), 1)
    flat = Position(InstrumentId("MSFT.NASDAQ"))
    flat.apply_fill(OrderSide.BUY, D(1), D(300), D(0), 1)
    flat.apply_fill(OrderSide.SELL, D(1), D(310), D(0), 2)
    return [orcl, es, flat]


MARKS = {ORCL.id: D("45.50"), ES.id: D("4010.25")}


def test_exposure_is_quantity_times_mark_times_multiplier_signed_and_gross() -> None:
    each = exposures(positions(), MARKS.get)

    assert [(e.instrument_id, e.net, e.gross) for e in each] == [
        (ES.id, D("-401025.0000"), D("401025.0000")),  # −2 × 4010.25 × 50
        (ORCL.id, D("4550.00"), D("4550.00")),  # 100 × 45.50
    ]


def test_totals_and_leverage_against_equity() -> None:
    summary = summarize(positions(), MARKS.get, D(100_000))

    assert summary.gross == D("405575") and summary.net == D("-396475")
    assert summary.leverage == D("4.05575")


def test_leverage_is_none_without_positive_equity_and_zero_without_exposure() -> None:
    assert leverage(D(10), D(0)) is None
    assert leverage(D(10), D(-5)) is None
    assert leverage(D(0), D(100)) == 0
    assert leverage(D(1), D(3)) == D("0.333333333333")


def test_an_open_position_without_a_mark_is_an_error() -> None:
    with pytest.raises(NotFoundError, match=str(ES.id)):
        exposures(positions(), {ORCL.id: D(1)}.get)
