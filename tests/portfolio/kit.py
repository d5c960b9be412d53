"""Test kit of the accounting tests: instruments, fills and accounts built from plain str/int values.

Every amount is a :class:`~decimal.Decimal` built from a ``str`` or ``int`` (never a float).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from smart_trader.core.ids import AccountId, FillId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution.enums import LiquiditySide, OrderSide
from smart_trader.execution.events import Fill
from smart_trader.portfolio.account import Account, AccountType, MarkProvider

T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z, ns
SECOND = 10**9

BUY = OrderSide.BUY
SELL = OrderSide.SELL


def D(text: str | int) -> Decimal:  # noqa: N802 - reads like the Decimal it builds
    """A Decimal from text or an int (the only ways the accounting tests build amounts)."""
    assert not isinstance(text, float)
    return Decimal(text)


def make_instrument(
    symbol: str = "BTC/USD",
    venue: str = "COINBASE",
    *,
    asset_class: str = "crypto",
    base: str = "BTC",
    quote: str = "USD",
    tick: str = "0.01",
    lot: str = "0.00001",
    multiplier: str = "1",
) -> Instrument:
    """An instrument quoted in ``quote`` (USD unless told)."""
    return Instrument.create(
        symbol,
        venue,
        asset_class=asset_class,
        base_currency=base,
        quote_currency=quote,
        tick_size=tick,
        lot_size=lot,
        multiplier=multiplier,
    )


BTC = make_instrument()
ES = make_instrument("ESZ4", "CME", asset_class="future", base="ES", tick="0.25", lot="1", multiplier="50")
MBT = make_instrument("MBTZ4", "CME", asset_class="future", base="MBT", tick="5", lot="1", multiplier="0.1")


class FillMaker:
    """Builds fills with sequential ids (``F-1``, ``F-2``...) and, unless told, one second apart from T0."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def __call__(
        self,
        instrument: Instrument,
        side: OrderSide,
        quantity: str | Decimal,
        price: str | Decimal,
        commission: str | Decimal = "0",
        ts: int | None = None,
    ) -> Fill:
        n = next(self._n)
        return Fill(
            fill_id=FillId(f"F-{n}"),
            order_id=OrderId(f"O-{n}"),
            client_order_id=None,
            instrument_id=instrument.id,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
            commission=Decimal(commission),
            commission_currency=instrument.quote_currency,
            liquidity_side=LiquiditySide.TAKER,
            ts_event=T0 + n * SECOND if ts is None else ts,
        )


def make_account(
    deposit: str | None = None,
    *,
    account_type: AccountType = AccountType.MARGIN,
    mark_provider: MarkProvider | None = None,
) -> Account:
    """A USD account, funded with ``deposit`` at T0 when given."""
    account = Account(AccountId("ACC-1"), "USD", account_type, mark_provider)
    if deposit is not None:
        account.deposit(T0, Decimal(deposit))
    return account
