"""Stub builders of the execution tests: instruments, accounts, brokers, order requests, order events
and a market-data feed that hands the broker raw fixed-point ints (raw = value × 10**precision).

Every value is written as a string and becomes an exact Decimal; no float ever reaches the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from smart_trader.core.clock import NS_PER_SECOND, parse_utc
from smart_trader.core.ids import AccountId, ClientOrderId, FillId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import to_raw
from smart_trader.execution.costs import CommissionModel, NoCommission, NoSlippage, SlippageModel
from smart_trader.execution.enums import LiquiditySide, OrderSide, OrderType, TimeInForce
from smart_trader.execution.events import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.paper_broker import FillConfig, PaperBroker
from smart_trader.portfolio.account import Account, AccountType

D = Decimal
BUY = OrderSide.BUY
SELL = OrderSide.SELL

# -- time: a Monday, the US cash open; bars one minute apart -------------------------------------------------
T0 = parse_utc("2024-03-04T14:30:00Z")
MINUTE = 60 * NS_PER_SECOND


def at(minutes: int) -> int:
    """ns UTC of ``minutes`` after :data:`T0`."""
    return T0 + minutes * MINUTE


# -- instruments ---------------------------------------------------------------------------------------------
def equity(symbol: str = "ORCL", *, min_notional: str = "0", quote: str = "USD") -> Instrument:
    """A US share: tick 0.01 USD, lot 1 share (price precision 2, size precision 0)."""
    return Instrument.create(
        symbol,
        "NASDAQ",
        asset_class="equity",
        base_currency=symbol,
        quote_currency=quote,
        tick_size="0.01",
        lot_size="1",
        min_notional=min_notional,
    )


def crypto(*, lot: str = "0.00001", min_notional: str = "10") -> Instrument:
    """BTC/USDT spot as on Binance: tick 0.01 USDT, lot 0.00001 BTC, minimum notional 10 USDT."""
    return Instrument.create(
        "BTC/USDT",
        "BINANCE",
        asset_class="crypto",
        base_currency="BTC",
        quote_currency="USDT",
        tick_size="0.01",
        lot_size=lot,
        min_notional=min_notional,
    )


def future() -> Instrument:
    """E-mini S&P 500: tick 0.25 USD, lot 1 contract, multiplier 50."""
    return Instrument.create(
        "ES",
        "CME",
        asset_class="future",
        base_currency="ES",
        quote_currency="USD",
        tick_size="0.25",
        lot_size="1",
        multiplier="50",
    )


ORCL = equity()
BTC = crypto()


# -- accounts and brokers ------------------------------------------------------------------------------------
def account(cash: str = "100000", *, currency: str = "USD", account_type: AccountType = AccountType.CASH) -> Account:
    """An account holding ``cash`` (deposited at ts 0)."""
    acct = Account(AccountId("ACC-1"), currency, account_type)
    acct.deposit(0, D(cash))
    return acct


def give_position(acct: Account, instrument: Instrument, quantity: str, price: str) -> None:
    """Seed a long position bought earlier (posts its cost to the ledger like a real fill)."""
    fill = Fill(
        FillId("SEED-1"),
        OrderId("SEED-1"),
        None,
        instrument.id,
        BUY,
        D(quantity),
        D(price),
        D(0),
        instrument.quote_currency,
        LiquiditySide.TAKER,
        0,
    )
    acct.apply_fill(fill, instrument)


def broker(
    *instruments: Instrument,
    cash: str = "100000",
    account_type: AccountType = AccountType.CASH,
    commission: CommissionModel | None = None,
    slippage: SlippageModel | None = None,
    participation: str | None = None,
    last_price: Callable[[InstrumentId], Decimal | None] | None = None,
) -> PaperBroker:
    """A paper broker trading ``instruments`` (ORCL when none) for a fresh account in their quote currency."""
    insts = instruments or (ORCL,)
    config = FillConfig(
        commission=commission or NoCommission(),
        slippage=slippage or NoSlippage(),
        participation=None if participation is None else D(participation),
    )
    acct = account(cash, currency=insts[0].quote_currency, account_type=account_type)
    return PaperBroker(acct, {i.id: i for i in insts}, config, last_price)


# -- order requests ------------------------------------------------------------------------------------------
def request(
    side: OrderSide,
    type_: OrderType,
    quantity: str | None,
    *,
    notional: str | None = None,
    limit_price: str | None = None,
    stop_price: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: Instrument = ORCL,
    client_order_id: str | None = None,
) -> OrderRequest:
    """Any order request, every number written as a string."""
    return OrderRequest(
        instrument_id=instrument.id,
        side=side,
        type=type_,
        quantity=None if quantity is None else D(quantity),
        notional=None if notional is None else D(notional),
        limit_price=None if limit_price is None else D(limit_price),
        stop_price=None if stop_price is None else D(stop_price),
        time_in_force=tif,
        client_order_id=None if client_order_id is None else ClientOrderId(client_order_id),
    )


def market(
    side: OrderSide,
    quantity: str | None = None,
    *,
    notional: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: Instrument = ORCL,
    client_order_id: str | None = None,
) -> OrderRequest:
    """A market order of ``quantity`` base units, or of ``notional`` quote currency."""
    return request(
        side,
        OrderType.MARKET,
        quantity,
        notional=notional,
        tif=tif,
        instrument=instrument,
        client_order_id=client_order_id,
    )


def limit(
    side: OrderSide,
    quantity: str,
    price: str,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: Instrument = ORCL,
    client_order_id: str | None = None,
) -> OrderRequest:
    """A limit order at ``price``."""
    return request(
        side,
        OrderType.LIMIT,
        quantity,
        limit_price=price,
        tif=tif,
        instrument=instrument,
        client_order_id=client_order_id,
    )


def stop(
    side: OrderSide,
    quantity: str,
    stop_price: str,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: Instrument = ORCL,
) -> OrderRequest:
    """A stop (market) order triggering at ``stop_price``."""
    return request(side, OrderType.STOP, quantity, stop_price=stop_price, tif=tif, instrument=instrument)


def stop_limit(
    side: OrderSide,
    quantity: str,
    stop_price: str,
    limit_price: str,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: Instrument = ORCL,
) -> OrderRequest:
    """A stop-limit order: triggers at ``stop_price``, then works as a limit at ``limit_price``."""
    return request(
        side,
        OrderType.STOP_LIMIT,
        quantity,
        stop_price=stop_price,
        limit_price=limit_price,
        tif=tif,
        instrument=instrument,
    )


# -- orders and their events (for the state machine, without a broker) ---------------------------------------
ORDER_ID = OrderId("O-1")
TS_EVENT = at(1)
TS_INIT = at(1) + 250_000  # we learn of it 0.25 ms after it happened


def new_order(quantity: str = "10", order_id: OrderId = ORDER_ID) -> Order:
    """A fresh (NEW) limit buy of ``quantity`` ORCL at 100.00."""
    return Order(order_id, limit(BUY, quantity, "100.00"), ts_init=at(0))


def accepted(order_id: OrderId = ORDER_ID, ts: int = TS_EVENT) -> OrderAccepted:
    return OrderAccepted("E-accepted", order_id, ts, ts + 250_000)


def rejected(order_id: OrderId = ORDER_ID, reason: str = "buying power", ts: int = TS_EVENT) -> OrderRejected:
    return OrderRejected("E-rejected", order_id, ts, ts + 250_000, reason)


def canceled(order_id: OrderId = ORDER_ID, ts: int = TS_EVENT) -> OrderCanceled:
    return OrderCanceled("E-canceled", order_id, ts, ts + 250_000)


def expired(order_id: OrderId = ORDER_ID, ts: int = TS_EVENT) -> OrderExpired:
    return OrderExpired("E-expired", order_id, ts, ts + 250_000)


def triggered(order_id: OrderId = ORDER_ID, ts: int = TS_EVENT) -> OrderTriggered:
    return OrderTriggered("E-triggered", order_id, ts, ts + 250_000)


def filled(quantity: str, price: str = "100.00", order_id: OrderId = ORDER_ID, ts: int = TS_EVENT) -> OrderFilled:
    """A fill of ``quantity`` ORCL at ``price`` for a buy order."""
    fill = Fill(
        FillId(f"F-{quantity}@{price}"),
        order_id,
        None,
        ORCL.id,
        BUY,
        D(quantity),
        D(price),
        D(0),
        "USD",
        LiquiditySide.MAKER,
        ts,
    )
    return OrderFilled("E-filled", order_id, ts, ts + 250_000, fill)


# -- market data, handed to the broker as raw ints -----------------------------------------------------------
class Feed:
    """Feeds one instrument's market data to a broker, converting decimal strings to raw ints."""

    def __init__(self, paper: PaperBroker, instrument: Instrument = ORCL) -> None:
        self.broker = paper
        self.instrument = instrument

    def px(self, value: str) -> int:
        """Raw price: value × 10**price_precision."""
        return to_raw(D(value), self.instrument.price_precision)

    def size(self, value: str | None) -> int | None:
        """Raw size: value × 10**size_precision (``None`` stays ``None``)."""
        return None if value is None else to_raw(D(value), self.instrument.size_precision)

    def bar(self, ts: int, o: str, h: str, low: str, c: str, volume: str | None = None) -> None:
        """A bar opening at ``ts``."""
        p = self.px
        self.broker.on_bar(self.instrument.id, ts, p(o), p(h), p(low), p(c), self.size(volume))

    def trade(self, ts: int, price: str, size: str | None = None) -> None:
        """One trade at ``ts``."""
        self.broker.on_trade(self.instrument.id, ts, self.px(price), self.size(size))

    def quote(self, ts: int, bid: str, ask: str, bid_size: str | None = None, ask_size: str | None = None) -> None:
        """A top-of-book quote at ``ts``."""
        self.broker.on_quote(
            self.instrument.id, ts, self.px(bid), self.px(ask), self.size(bid_size), self.size(ask_size)
        )
