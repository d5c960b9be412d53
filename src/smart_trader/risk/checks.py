"""Pre-trade checks of an account's pipeline (:class:`~smart_trader.trading.session.PreTradeCheck`): each looks at one
order request before it reaches the paper broker and returns the reason to deny it — a sentence naming the value, the
limit and the limit's name, e.g. "order quantity 12 exceeds the limit 10 (risk limit max_order_quantity)" — or
``None``. They do no I/O; what they read of the account (position, working orders, last price, instrument) comes from
the session. The limits of one account are one frozen :class:`AccountRiskLimits`; :func:`checks_for` turns it into
checks, in the order they must run.

Units: quantities in the instrument's base units (contracts for futures), prices and notionals in its quote currency
(the platform values positions in the quote currency as the account currency: no FX conversion), times in ns UTC.

Reference price of an order (notional, price collar): its limit price, else its stop price, else the session's last
price of the instrument (``session.broker.last_price``). A check that needs a price none of these gives passes the
order (a market order on an instrument no trade or quote has been seen for yet): the paper broker cannot fill it
before a price exists, and its buying-power check makes the same choice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.orders import OrderRequest

if TYPE_CHECKING:  # the session is the checks' caller: a type, not a dependency
    from smart_trader.trading.session import AccountSession, PreTradeCheck

BPS: Final = Decimal(10_000)
"""Basis points in one (1 bp = 0.01 %)."""


def _fmt(value: Decimal) -> str:
    """A decimal for a sentence: no exponent, no trailing zeros (``1200.0000`` → ``1200``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _positive(name: str, value: Decimal | None) -> None:
    if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
        raise InvalidInputError(f"{name} must be a positive decimal or None, got {value!r}")


def _whole(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidInputError(f"{name} must be a whole number >= 0 or None, got {value!r}")


def reference_price(request: OrderRequest, session: AccountSession) -> Decimal | None:
    """The price an order is valued at before it fills (quote currency): its limit price, else its stop price, else
    the session's last price of the instrument; ``None`` when none is known."""
    if request.limit_price is not None:
        return request.limit_price
    if request.stop_price is not None:
        return request.stop_price
    return session.broker.last_price(request.instrument_id)


def _multiplier(session: AccountSession, instrument_id: InstrumentId) -> Decimal:
    """The instrument's contract multiplier (1 for an instrument the broker does not know: it rejects the order)."""
    instrument = session.broker.instruments.get(instrument_id)
    return Decimal(1) if instrument is None else instrument.multiplier


# -- size and value ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MaxOrderQuantity:
    """Deny an order of more than ``limit`` base units (every instrument). A notional order (quote currency, market
    only) has no quantity before it fills: :class:`MaxOrderNotional` bounds it, this check passes it.

    Raises:
        InvalidInputError: ``limit`` is not a positive decimal.
    """

    limit: Decimal

    def __post_init__(self) -> None:
        _positive("max_order_quantity", self.limit)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        qty = request.quantity
        if qty is None or qty <= self.limit:
            return None
        return f"order quantity {_fmt(qty)} exceeds the limit {_fmt(self.limit)} (risk limit max_order_quantity)"


@dataclass(frozen=True, slots=True)
class MaxOrderNotional:
    """Deny an order worth more than ``limit`` (quote currency): quantity × reference price × multiplier (see the
    module docstring for the reference price; none known ⇒ pass); a notional order's own notional.

    Raises:
        InvalidInputError: ``limit`` is not a positive decimal.
    """

    limit: Decimal

    def __post_init__(self) -> None:
        _positive("max_order_notional", self.limit)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        if request.notional is not None:
            value = request.notional
            what = f"order notional {_fmt(value)}"
        else:
            price = reference_price(request, session)
            if price is None or request.quantity is None:
                return None
            multiplier = _multiplier(session, request.instrument_id)
            value = request.quantity * price * multiplier
            times = "" if multiplier == 1 else f" × multiplier {_fmt(multiplier)}"
            what = f"order notional {_fmt(value)} ({_fmt(request.quantity)} × {_fmt(price)}{times})"
        if value <= self.limit:
            return None
        return f"{what} exceeds the limit {_fmt(self.limit)} (risk limit max_order_notional)"


@dataclass(frozen=True, slots=True)
class MaxPosition:
    """Deny an order that could take the absolute position of its instrument beyond the limit (base units).

    The position counted is the worst case on the order's side: the position held, plus every working order of the
    same side on that instrument (their quantity left), plus this order, all filled. Counting the working orders is a
    choice (NautilusTrader's ``RiskEngine`` counts only the order): without it, ten resting buys each within the limit
    could fill into ten times the limit. An order that brings the position closer to flat is never denied, even when
    the position is beyond a limit lowered since. Notional orders are converted to a quantity at the last price (none
    known ⇒ the order passes; a working notional order counts the same way).

    Args:
        limit: the limit of every instrument (``None``: only ``per_instrument``).
        per_instrument: limits of some instruments, overriding ``limit``.

    Raises:
        InvalidInputError: a limit that is not a positive decimal.
    """

    limit: Decimal | None = None
    per_instrument: Mapping[InstrumentId, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive("max_position", self.limit)
        for iid, value in self.per_instrument.items():
            _positive(f"max_position of {iid}", value)
        object.__setattr__(self, "per_instrument", MappingProxyType(dict(self.per_instrument)))

    def limit_of(self, instrument_id: InstrumentId) -> Decimal | None:
        """The limit of an instrument (base units), or ``None``."""
        return self.per_instrument.get(instrument_id, self.limit)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        iid = request.instrument_id
        cap = self.limit_of(iid)
        if cap is None:
            return None
        last = session.broker.last_price(iid)
        multiplier = _multiplier(session, iid)
        qty = _quantity(request.quantity, request.notional, last, multiplier)
        if qty is None:
            return None
        held = session.account.quantity(iid)
        sign = 1 if request.side is OrderSide.BUY else -1
        working = Decimal(0)
        for order in session.broker.open_orders(iid):
            if order.side is request.side:
                leaves = _quantity(order.leaves_qty, order.request.notional, last, multiplier)
                working += leaves or 0
        after = held + sign * (working + qty)
        if abs(after) <= cap or abs(after) <= abs(held):
            return None
        pending = f" and {_fmt(working)} in working {request.side.value} orders" if working else ""
        return (
            f"position in {iid} would reach {_fmt(after)} ({_fmt(held)} held{pending}, this order "
            f"{request.side.value} {_fmt(qty)}), beyond the limit {_fmt(cap)} (risk limit max_position)"
        )


def _quantity(
    quantity: Decimal | None, notional: Decimal | None, price: Decimal | None, multiplier: Decimal
) -> Decimal | None:
    """An order's quantity (base units): its own, else its notional at ``price`` (``None`` without one)."""
    if quantity is not None:
        return quantity
    if notional is None or price is None or price <= 0:
        return None
    return notional / (price * multiplier)


# -- prices and instruments --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriceCollar:
    """Deny a limit or stop price further than ``bps`` basis points from the instrument's last price (a fat finger:
    "buy at 3000" meant 30.00). With no last price known the order passes (nothing to measure against). Market and
    notional orders have no price of their own and pass.

    The test is exact: ``|price − last| × 10,000 > bps × last``.

    Raises:
        InvalidInputError: ``bps`` is not a positive decimal.
    """

    bps: Decimal

    def __post_init__(self) -> None:
        _positive("price_collar_bps", self.bps)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        if request.limit_price is None and request.stop_price is None:
            return None
        last = session.broker.last_price(request.instrument_id)
        if last is None or last <= 0:
            return None
        for name, price in (("limit price", request.limit_price), ("stop price", request.stop_price)):
            if price is not None and abs(price - last) * BPS > self.bps * last:
                away = (abs(price - last) * BPS / last).quantize(Decimal("0.1"))
                return (
                    f"{name} {_fmt(price)} is {_fmt(away)} bps from the last price {_fmt(last)}, beyond the collar "
                    f"of {_fmt(self.bps)} bps (risk limit price_collar_bps)"
                )
        return None


@dataclass(frozen=True, slots=True)
class InstrumentHalted:
    """Deny every new order on a halted instrument (cancels are not orders: they still work). ``halted`` is the live
    set the check reads on every order: add or discard ids to halt or resume an instrument; one set may be shared by
    every account's check (a platform-wide halt)."""

    halted: set[InstrumentId] = field(default_factory=set)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        if request.instrument_id in self.halted:
            return f"instrument {request.instrument_id} is halted (risk limit halted_instruments)"
        return None


# -- the order flow (issue 5's limits, formerly the paper broker's) ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenOrdersLimit:
    """Deny a new order while ``limit`` orders are working (accepted or partially filled, every instrument together).
    A limit of 0 denies every order. Same message and meaning as the paper broker's
    :class:`~smart_trader.execution.limits.OrderLimits` ``max_open_orders``.

    Raises:
        InvalidInputError: ``limit`` is not a whole number >= 0.
    """

    limit: int

    def __post_init__(self) -> None:
        _whole("max_open_orders", self.limit)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        n_open = session.broker.open_order_count()  # a count per instrument: this runs before every order
        if n_open >= self.limit:
            return f"too many open orders: {n_open} open, the limit is {self.limit} (risk limit max_open_orders)"
        return None


class OrderRateLimit:
    """Deny a submission after ``limit`` others in the last second (1,000,000,000 ns, window ``(now − 1 s, now]``) on
    ``clock`` (a callable returning ns: a monotonic wall clock live); ``None``: the order's ``ts``, market time in
    backtests. Same message and meaning as the paper broker's ``max_submissions_per_second``.

    What counts: every submission this check lets through, whatever comes of it later (accepted, rejected by the
    instrument and account rules, malformed: the broker raises). Submissions denied earlier in the pipeline — halted or
    reducing account, an earlier check — never reach it, and its own denials do not count, so a client that backs off
    for a second is let in again however hard it pushed. It must therefore run LAST among the checks
    (:func:`checks_for` puts it there): a check after it would deny submissions already counted. Counting starts when
    the check is made. A repeat of a known client order id must be answered before the checks (the paper broker
    returns the original order and counts nothing); this check cannot tell a repeat from a new order.

    Raises:
        InvalidInputError: ``limit`` is not a whole number >= 0.
    """

    __slots__ = ("_recent", "clock", "limit")

    def __init__(self, limit: int, clock: Callable[[], int] | None = None) -> None:
        _whole("max_orders_per_second", limit)
        self.limit = limit
        self.clock = clock
        self._recent: deque[int] = deque()  # clock times of the submissions counted in the last second

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`; a submission let through is counted."""
        now = ts if self.clock is None else self.clock()
        recent = self._recent
        since = now - NS_PER_SECOND
        while recent and recent[0] <= since:
            recent.popleft()
        if len(recent) >= self.limit:
            return (
                f"too many orders: {len(recent)} submitted in the last second, the limit is {self.limit} per second "
                "(risk limit max_submissions_per_second)"
            )
        recent.append(now)
        return None


# -- one account's limits ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccountRiskLimits:
    """The pre-trade limits of one account; every one optional (``None`` or empty: not checked).

    Attributes:
        max_order_quantity: most base units in one order (:class:`MaxOrderQuantity`).
        max_order_notional: most quote currency one order may be worth (:class:`MaxOrderNotional`).
        max_position: largest absolute position of any instrument, working orders of the side included, base units
            (:class:`MaxPosition`).
        max_position_by_instrument: the same per instrument, overriding ``max_position``.
        price_collar_bps: farthest a limit or stop price may be from the last price, basis points
            (:class:`PriceCollar`).
        halted_instruments: instruments this account may not trade (:class:`InstrumentHalted`).
        max_open_orders: most working orders at once (:class:`OpenOrdersLimit`).
        max_orders_per_second: most submissions in any one second (:class:`OrderRateLimit`).

    Raises:
        InvalidInputError: a limit of the wrong kind or sign (quantities, notionals, bps: positive decimals; counts:
            whole numbers >= 0).
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_position_by_instrument: Mapping[InstrumentId, Decimal] = field(default_factory=dict)
    price_collar_bps: Decimal | None = None
    halted_instruments: frozenset[InstrumentId] = frozenset()
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_quantity", "max_order_notional", "max_position", "price_collar_bps"):
            _positive(name, getattr(self, name))
        for iid, value in self.max_position_by_instrument.items():
            _positive(f"max_position of {iid}", value)
        _whole("max_open_orders", self.max_open_orders)
        _whole("max_orders_per_second", self.max_orders_per_second)
        object.__setattr__(self, "max_position_by_instrument", MappingProxyType(dict(self.max_position_by_instrument)))
        object.__setattr__(self, "halted_instruments", frozenset(self.halted_instruments))


def checks_for(
    limits: AccountRiskLimits,
    halted: set[InstrumentId] | None = None,
    rate_clock: Callable[[], int] | None = None,
) -> tuple[PreTradeCheck, ...]:
    """The checks of ``limits``, in the order they run: instrument halts, order size and value, position, price
    collar, open orders, and the submission rate last (it counts what the others let through).

    Args:
        limits: the account's limits.
        halted: a live set of halted instruments shared with other accounts (a platform-wide halt), checked besides
            the account's own ``halted_instruments``.
        rate_clock: the clock of :class:`OrderRateLimit` (ns); ``None``: the orders' ``ts``.
    """
    checks: list[PreTradeCheck] = []
    if halted is not None:
        checks.append(InstrumentHalted(halted))
    if limits.halted_instruments:
        checks.append(InstrumentHalted(set(limits.halted_instruments)))
    if limits.max_order_quantity is not None:
        checks.append(MaxOrderQuantity(limits.max_order_quantity))
    if limits.max_order_notional is not None:
        checks.append(MaxOrderNotional(limits.max_order_notional))
    if limits.max_position is not None or limits.max_position_by_instrument:
        checks.append(MaxPosition(limits.max_position, limits.max_position_by_instrument))
    if limits.price_collar_bps is not None:
        checks.append(PriceCollar(limits.price_collar_bps))
    if limits.max_open_orders is not None:
        checks.append(OpenOrdersLimit(limits.max_open_orders))
    if limits.max_orders_per_second is not None:
        checks.append(OrderRateLimit(limits.max_orders_per_second, rate_clock))
    return tuple(checks)


class RiskChecks:
    """An account's risk limits as ONE pre-trade check of its session, whose limits can be swapped while it trades:
    the live runtime gives every session one and, when a risk manager changes the account's limits, assigns
    :attr:`limits` before the account's next order — the session, its other checks (a challenge's) and its monitors
    stay as they are. It runs the checks of :func:`checks_for` in their order (the first denial wins).

    The submission counter survives a change of limits: the submissions of the last second made under the old rate
    limit count toward the new one (a raised limit does not reset the window, a lowered one applies at once). It
    starts when a rate limit is first set.

    Args:
        limits: the account's limits (default: none).
        halted: a live set of halted instruments shared by every account's checks (a platform-wide halt; see
            :func:`checks_for`), ``None`` for none.
        rate_clock: the clock of the rate limit (ns, a monotonic wall clock live); ``None``: the orders' ``ts``.
    """

    __slots__ = ("_checks", "_limits", "halted", "rate_clock")

    def __init__(
        self,
        limits: AccountRiskLimits | None = None,
        halted: set[InstrumentId] | None = None,
        rate_clock: Callable[[], int] | None = None,
    ) -> None:
        self.halted = halted
        self.rate_clock = rate_clock
        self._checks: tuple[PreTradeCheck, ...] = ()
        self._limits = AccountRiskLimits()
        self.limits = limits or AccountRiskLimits()

    @property
    def limits(self) -> AccountRiskLimits:
        """The limits in force; assign new ones to rebuild the checks (they apply to the next order)."""
        return self._limits

    @limits.setter
    def limits(self, value: AccountRiskLimits) -> None:
        old = self.rate_limit
        checks = checks_for(value, self.halted, self.rate_clock)
        new = next((c for c in checks if isinstance(c, OrderRateLimit)), None)
        if old is not None and new is not None:
            new._recent = old._recent  # the last second's submissions still count
        self._limits = value
        self._checks = checks

    @property
    def checks(self) -> tuple[PreTradeCheck, ...]:
        """The checks run, in order."""
        return self._checks

    @property
    def rate_limit(self) -> OrderRateLimit | None:
        """The submission-rate check, when a rate limit is set."""
        return next((c for c in self._checks if isinstance(c, OrderRateLimit)), None)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`: the first denial of the checks, or ``None``."""
        for check in self._checks:
            reason = check.check(request, session, ts)
            if reason is not None:
                return reason
        return None
