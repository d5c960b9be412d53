"""The strategy API. Write a strategy once; the backtest engine and (later) the live platform run it
through the same :class:`TradingContext`.

Lifecycle: ``on_start`` → for every market event in timestamp order ``on_bar`` / ``on_trade`` /
``on_quote`` (fills of earlier orders arrive first, through ``on_fill``) → ``on_stop``.

Parameters: a subclass declares ``defaults`` (name → default value); ``Strategy(**params)`` checks
names and converts strings (from the CLI's ``--param k=v``) to the default's type.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import ClientOrderId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import DecimalLike, to_decimal
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.execution.enums import OrderSide, OrderType, TimeInForce
from smart_trader.execution.events import Fill, OrderEvent
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.portfolio.account import Account
from smart_trader.portfolio.position import Position
from smart_trader.strategy.indicators import FloatArray, Indicator


class IndicatorSeries:
    """An indicator's values up to the current event: ``series.value`` is the latest, ``series[-2]`` the one
    before, ``series.history`` all values so far (a read-only view; never values from the future)."""

    __slots__ = ("_cursor", "_list", "_values", "indicator")

    def __init__(self, indicator: Indicator, values: FloatArray, cursor: Cursor) -> None:
        self.indicator = indicator
        self._values = values
        self._list: list[float] = values.tolist()  # scalar reads from a list are ~5x faster than from numpy
        self._cursor = cursor

    @property
    def value(self) -> float:
        """Latest value (NaN during warm-up or before the first event)."""
        i = self._cursor.i
        return self._list[i] if i >= 0 else math.nan

    def __getitem__(self, k: int) -> float:
        """``series[-1]`` is the latest value, ``series[-2]`` the previous, ...; NaN before the start.

        Raises:
            IndexError: ``k`` is not negative (only the past is readable).
        """
        if k >= 0:
            raise IndexError("indicator history is indexed from the end: series[-1] is the latest value")
        j = self._cursor.i + 1 + k
        return self._list[j] if j >= 0 else math.nan

    @property
    def cursor(self) -> Cursor:
        """The stream position this series is revealed up to."""
        return self._cursor

    @property
    def values(self) -> FloatArray:
        """For engines only: the whole precomputed series, future included (strategies read ``value``,
        ``[-k]`` or ``history``)."""
        return self._values

    @property
    def history(self) -> FloatArray:
        """Values from the first event to the current one."""
        view = self._values[: self._cursor.i + 1]
        view.flags.writeable = False
        return view


class Cursor:
    """Index of the current event in one instrument's stream (-1 before the first)."""

    __slots__ = ("i",)

    def __init__(self) -> None:
        self.i = -1


class TradingContext(Protocol):
    """What a running strategy can do and see; implemented by the backtest engine and the live platform."""

    def submit(self, request: OrderRequest) -> Order:
        """Submit an order now."""
        ...

    def cancel(self, order_id: OrderId) -> Order:
        """Cancel a working order."""
        ...

    def open_orders(self, instrument_id: InstrumentId | None) -> list[Order]:
        """Working orders."""
        ...

    @property
    def account(self) -> Account:
        """The strategy's account."""
        ...

    @property
    def now_ns(self) -> int:
        """Current time, ns since the epoch, UTC."""
        ...

    def instrument(self, instrument_id: InstrumentId | None) -> Instrument:
        """An instrument (the primary one when ``None``)."""
        ...

    def register_indicator(
        self, indicator: Indicator, instrument_id: InstrumentId | None, source: str
    ) -> IndicatorSeries:
        """Attach an indicator to an instrument's price series."""
        ...


class Strategy:
    """Base class of strategies. Override the ``on_*`` hooks; call the actions and reads below."""

    name: ClassVar[str] = "strategy"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise InvalidInputError(
                f"unknown parameter(s) {', '.join(sorted(unknown))} for {self.name}; known: {known}"
            )
        self.params: dict[str, Any] = {k: _coerce(k, params.get(k, v), v) for k, v in self.defaults.items()}
        self._ctx: TradingContext | None = None
        self.wake_series: IndicatorSeries | None = None
        self.validate_params()

    def wake_on(self, series: IndicatorSeries) -> None:
        """Ask to have ``on_bar`` called only on bars where ``series`` is non-zero (call in ``on_start``).

        For a strategy that acts only on a signal (a crossover, a breakout flag), the engine then skips
        the bars in between instead of calling ``on_bar`` for nothing. Everything else is unchanged:
        working orders still match against every bar, fills still arrive through ``on_fill``, the equity
        curve still has every bar. Live, the indicator updates on every bar and ``on_bar`` runs when it
        is non-zero: the same decisions.
        """
        self.wake_series = series

    def validate_params(self) -> None:
        """Check parameter values; raise :class:`InvalidInputError` with a clear message when wrong."""

    # -- binding ------------------------------------------------------------------------
    def bind(self, ctx: TradingContext) -> None:
        """Attach the strategy to an engine or the live platform (done by them)."""
        self._ctx = ctx

    @property
    def ctx(self) -> TradingContext:
        """The bound context. Raises :class:`RuntimeError` before :meth:`bind`."""
        if self._ctx is None:
            raise RuntimeError("strategy is not running: bind it to an engine first")
        return self._ctx

    # -- hooks --------------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once before the first event: register indicators here."""

    def on_bar(self, bar: Bar) -> None:
        """Called when a bar closes."""

    def on_trade(self, trade: Trade) -> None:
        """Called for every trade."""

    def on_quote(self, quote: Quote) -> None:
        """Called for every quote."""

    def on_fill(self, fill: Fill) -> None:
        """Called for every fill of this strategy's orders (after the account is updated)."""

    def on_order_event(self, order: Order, event: OrderEvent) -> None:
        """Called for every order event (accepted, rejected, canceled, expired, filled, triggered)."""

    def on_stop(self) -> None:
        """Called once after the last event."""

    # -- reads --------------------------------------------------------------------------
    @property
    def account(self) -> Account:
        """The account (cash, equity, positions, ledger)."""
        return self.ctx.account

    @property
    def now_ns(self) -> int:
        """Current time, ns since the epoch, UTC."""
        return self.ctx.now_ns

    def instrument(self, instrument_id: InstrumentId | None = None) -> Instrument:
        """An instrument (the primary one by default)."""
        return self.ctx.instrument(instrument_id)

    def position(self, instrument_id: InstrumentId | None = None) -> Position | None:
        """Position in an instrument (primary by default); ``None`` if never traded."""
        return self.account.position(self.instrument(instrument_id).id)

    def indicator(
        self, indicator: Indicator, instrument_id: InstrumentId | None = None, source: str = "close"
    ) -> IndicatorSeries:
        """Register ``indicator`` on an instrument's ``source`` series (``close``, ``open``, ``high``, ``low``
        for bars; ``price`` for trades; ``mid`` for quotes) and return its history."""
        return self.ctx.register_indicator(indicator, instrument_id, source)

    # -- actions ------------------------------------------------------------------------
    def submit(
        self,
        side: OrderSide | str,
        quantity: DecimalLike | None = None,
        *,
        notional: DecimalLike | None = None,
        type: OrderType | str = OrderType.MARKET,
        limit_price: DecimalLike | None = None,
        stop_price: DecimalLike | None = None,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        instrument_id: InstrumentId | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Submit an order (quantity in base units, or notional in quote currency for market orders).

        Raises:
            InvalidInputError: malformed request. Rule violations return a rejected order instead.
        """
        req = OrderRequest(
            instrument_id=self.instrument(instrument_id).id,
            side=side if isinstance(side, OrderSide) else OrderSide(side),
            type=type if isinstance(type, OrderType) else OrderType(type),
            quantity=None if quantity is None else to_decimal(quantity, "quantity"),
            notional=None if notional is None else to_decimal(notional, "notional"),
            limit_price=None if limit_price is None else to_decimal(limit_price, "limit_price"),
            stop_price=None if stop_price is None else to_decimal(stop_price, "stop_price"),
            time_in_force=time_in_force if isinstance(time_in_force, TimeInForce) else TimeInForce(time_in_force),
            client_order_id=None if client_order_id is None else ClientOrderId(client_order_id),
        )
        return self.ctx.submit(req)

    def buy(self, quantity: DecimalLike | None = None, **kw: Any) -> Order:
        """Shortcut for ``submit("buy", ...)``."""
        return self.submit(OrderSide.BUY, quantity, **kw)

    def sell(self, quantity: DecimalLike | None = None, **kw: Any) -> Order:
        """Shortcut for ``submit("sell", ...)``."""
        return self.submit(OrderSide.SELL, quantity, **kw)

    def cancel(self, order: Order) -> Order:
        """Cancel a working order."""
        return self.ctx.cancel(order.order_id)

    def close_position(self, instrument_id: InstrumentId | None = None) -> Order | None:
        """Market order that flattens the position (``None`` when already flat)."""
        pos = self.position(instrument_id)
        if pos is None or pos.quantity == 0:
            return None
        side = OrderSide.SELL if pos.quantity > 0 else OrderSide.BUY
        return self.submit(side, abs(pos.quantity), instrument_id=instrument_id)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert a parameter given as text to the type of its default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Decimal):
            return to_decimal(value)
    except (ValueError, ArithmeticError):
        raise InvalidInputError(f"parameter {name}={value!r} is not a {type(default).__name__}") from None
    return value
