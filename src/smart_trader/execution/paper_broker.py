"""The paper broker: accepts orders, matches them against market data, and posts fills to an account.

Deterministic: the same orders and the same market events produce the same fills, ids and
timestamps (ids are numbered ``O-1``, ``F-1``, ``E-1``... in the order things happen).

Lifecycle of a request (:meth:`PaperBroker.submit`):
1. malformed requests raise :class:`~smart_trader.core.errors.InvalidInputError` (nothing is created);
2. a repeated ``client_order_id`` returns the original order and creates nothing;
3. rule violations (tick size, lot size, minimum notional, buying power, short selling on a cash
   account, unknown instrument) create an order that is **rejected** with the reason; so do the account's
   pre-trade limits (:class:`~smart_trader.execution.limits.OrderLimits`: open orders, submissions per second)
   and a halt (:attr:`PaperBroker.halted`), whose reasons take precedence;
4. otherwise the order is accepted and works until it fills, is canceled or expires.

Matching rules are in :mod:`smart_trader.execution.matching`. Market data arrives as fixed-point
raw integers at the instrument's precisions; fills are exact Decimals.

Volume participation: with ``FillConfig.participation`` = f, one market event fills at most
f × its volume (bar volume, trade size, or the quote size on the side taken), shared by all
orders in submission order; the rest stays working (a partial fill). Events without volume
(FX bars) do not cap.

Indexes (:mod:`smart_trader.execution.resting`): a working order that has met an event is kept by the price that
can next touch it (limit, or stop until it triggers) and, for a day order, by its expiry day, so a market event visits
only the orders its prices reach, those due to expire, and those that see every event (market orders, orders not
met by an event yet) — the same events, in the same order, as visiting every order (``index_resting=False``).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from smart_trader.core.clock import NS_PER_DAY, NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.core.ids import FillId, IdGenerator, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import floor_to_step, from_raw, to_raw
from smart_trader.execution import matching
from smart_trader.execution.costs import CommissionModel, NoCommission, NoSlippage, SlippageModel
from smart_trader.execution.enums import LiquiditySide, OrderSide, OrderStatus, OrderType, TimeInForce
from smart_trader.execution.events import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)
from smart_trader.execution.limits import NO_LIMITS, OrderLimits
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.resting import IndexedOrders
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.portfolio.exact import EXACT

EventListener = Callable[[Order, OrderEvent], None]

# where a working order is matched from (WorkingOrder.where)
ACTIVE: Final = 0  # the instrument's active list: visited on every event
LIMITS: Final = 1  # its resting limits (limits, triggered stop-limits): visited when a price crosses the limit
STOPS: Final = 2  # its parked stops (stops, stop-limits not triggered): visited when a price reaches the stop


def _value(quantity: Decimal, price: Decimal, multiplier: Decimal) -> Decimal:
    """quantity × price × multiplier, exactly (quote currency)."""
    return EXACT.multiply(EXACT.multiply(quantity, price), multiplier)


def _arrival(w: WorkingOrder) -> int:
    return w.seq


def _numbered_ids(prefix: str) -> Callable[[], str]:
    return IdGenerator(prefix).next


@dataclass(frozen=True, slots=True)
class FillConfig:
    """How the paper broker fills: commission, slippage and an optional volume-participation cap (0 < f <= 1).

    Raises:
        InvalidInputError: participation outside (0, 1].
    """

    commission: CommissionModel = field(default_factory=NoCommission)
    slippage: SlippageModel = field(default_factory=NoSlippage)
    participation: Decimal | None = None

    def __post_init__(self) -> None:
        if self.participation is not None and not 0 < self.participation <= 1:
            raise InvalidInputError(f"participation must be in (0, 1], got {self.participation}")


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """An open order with its prices as raw ints and its type and time in force at hand, ready for matching."""

    order: Order
    instrument: Instrument
    buy: bool
    limit: int
    stop: int
    day: int | None  # UTC day (days since the epoch) of the first event the order could match
    type: OrderType
    tif: TimeInForce
    tries: int = 0
    ref: Decimal | None = None  # a working buy's fixed valuation price (limit, else stop), for committed cash
    seq: int = 0  # arrival number in its broker: matching goes in this order
    where: int = ACTIVE  # ACTIVE, LIMITS or STOPS (see execution/resting.py); an indexed day order is also dated


class PaperBroker:
    """Simulated venue for one account.

    Args:
        account: receives every fill (cash ledger and positions).
        instruments: the instruments it can trade, by id.
        config: commission, slippage, participation.
        last_price: returns the latest known price of an instrument (quote currency) for
            buying-power checks, or ``None``.
        ids: makes the id source for a prefix (``"O"`` orders, ``"F"`` fills, ``"E"`` events): a function
            returning the next id on each call. Default: :class:`IdGenerator` (``O-1``, ``O-2``... per run);
            the live platform passes durable unique ids.
        index_resting: keep the good-till-canceled and day limits, stops and stop-limits that met an event in
            price order (:mod:`smart_trader.execution.resting`), and day orders by their expiry day, so a market
            event visits only those its prices reach or its day expires; ``False`` visits every working order on
            every event — the same events and fills, the reference the tests compare it with.
        bar_scan_max: with at most this many orders working on an instrument, a bar visits them all (cheaper
            than the index queries for a backtest's few orders; the same fills either way); above it, bars use
            the indexes too. Trades and quotes always use them.
        limits: pre-trade limits (open orders, submissions per second); default none. Replaceable at run time
            (:attr:`limits`).
        rate_clock: the clock submissions per second are measured on, returning ns (a monotonic wall clock,
            live); ``None``: the ``ts`` passed to :meth:`submit` (market time, backtests).

    A halted account (:attr:`halted`) rejects every new order; cancels still work.
    """

    def __init__(
        self,
        account: Account,
        instruments: Mapping[InstrumentId, Instrument],
        config: FillConfig | None = None,
        last_price: Callable[[InstrumentId], Decimal | None] | None = None,
        ids: Callable[[str], Callable[[], str]] | None = None,
        index_resting: bool = True,
        bar_scan_max: int = 8,
        limits: OrderLimits | None = None,
        rate_clock: Callable[[], int] | None = None,
    ) -> None:
        self.account = account
        self.instruments = dict(instruments)
        self.config = config or FillConfig()
        self.last_price = last_price or (lambda _iid: None)
        self.orders: dict[OrderId, Order] = {}
        self.fills: list[Fill] = []
        self.listeners: list[EventListener] = []
        self._open: dict[InstrumentId, list[WorkingOrder]] = {}
        # the same working orders split for matching: those indexed by price (and day), and the rest (visited on
        # every event), both per instrument
        self._indexed: dict[InstrumentId, IndexedOrders] = {}
        self._active: dict[InstrumentId, list[WorkingOrder]] = {}
        self._seq = 0
        self._index_resting = index_resting
        self._bar_scan_max = bar_scan_max if index_resting else sys.maxsize
        self._rate_clock = rate_clock
        self._recent: deque[int] = deque()  # rate-clock times of the submissions counted, while a rate is set
        self._halted: str | None = None
        self._limits = NO_LIMITS
        self._guarded = False  # halted or limited: submit checks them (one test on the hot path otherwise)
        self.limits = limits or NO_LIMITS
        self._by_client_id: dict[str, Order] = {}
        # cash committed to working buys: Σ leaves × ref × multiplier of those with a limit or stop price, kept
        # exactly as they are accepted, fill and close; buys valued at the last price (market, notional) apart
        self._committed = Decimal(0)
        self._floating: list[WorkingOrder] = []
        make_ids = ids or _numbered_ids
        self._next_order_id = make_ids("O")
        self._next_fill_id = make_ids("F")
        self._next_event_id = make_ids("E")

    @property
    def limits(self) -> OrderLimits:
        """The pre-trade limits :meth:`submit` checks; assign an :class:`OrderLimits` to change them (takes effect
        at the next submission; the submission rate counts submissions made while a rate limit is set)."""
        return self._limits

    @limits.setter
    def limits(self, value: OrderLimits) -> None:
        self._limits = value
        self._guarded = value.any_set or self._halted is not None
        if value.max_submissions_per_second is None:
            self._recent.clear()

    @property
    def halted(self) -> str | None:
        """Why the account is halted, or ``None`` (trading). While set, :meth:`submit` rejects every new order
        with "account halted: <reason>"; cancels, fills and expiries go on. Set it to halt, ``None`` to resume."""
        return self._halted

    @halted.setter
    def halted(self, reason: str | None) -> None:
        self._halted = reason
        self._guarded = reason is not None or self._limits.any_set

    # -- orders ---------------------------------------------------------------------------
    def has_open_orders(self, instrument_id: InstrumentId) -> bool:
        """True when orders are working on ``instrument_id``."""
        return bool(self._open.get(instrument_id))

    def expire_day_orders(self, ts: int) -> int:
        """Expire, at ``ts`` (ns UTC), every working day order dated before ``ts``'s UTC day (a clock alert at
        midnight: the orders expire on time with no market event; the matching expires them at the next event
        otherwise). An order that met no event yet is not dated: it lives through the day of the first one it meets.
        Returns how many expired."""
        today = ts // NS_PER_DAY
        due = [
            w
            for working in self._open.values()
            for w in working
            if w.tif is TimeInForce.DAY and w.day is not None and w.day < today
        ]
        for w in due:
            self._close(w.order, OrderExpired(self._next_event_id(), w.order.order_id, ts, ts))
        return len(due)

    def has_day_orders(self) -> bool:
        """Whether a day order is working."""
        return any(w.tif is TimeInForce.DAY for working in self._open.values() for w in working)

    def open_order_count(self) -> int:
        """How many orders are working, every instrument together (one length per instrument, not a list of them)."""
        return sum([len(working) for working in self._open.values()])

    def working_instruments(self) -> list[InstrumentId]:
        """The instruments with orders working on them."""
        return [iid for iid, working in self._open.items() if working]

    def working_list(self, instrument_id: InstrumentId) -> list[WorkingOrder]:
        """The live list of working orders of an instrument (mutated in place; empty when none). An event
        loop may keep it and test its truth on every event, the cheapest "anything to match?" check."""
        return self._open.setdefault(instrument_id, [])

    def open_orders(self, instrument_id: InstrumentId | None = None) -> list[Order]:
        """Working orders (of one instrument, or all), in submission order."""
        lists = [self._open.get(instrument_id, [])] if instrument_id else list(self._open.values())
        return [w.order for lst in lists for w in lst]

    def submit(self, request: OrderRequest, ts: int, order_id: OrderId | None = None) -> Order:
        """Submit an order at ``ts`` (ns UTC). Returns the order, accepted or rejected.

        ``order_id`` is the id the order was given when it was received (the platform persists an order
        before the broker sees it); by default the broker numbers it.

        A halted account (:attr:`halted`) or a broken :attr:`limits` rejects the order with that reason, before
        any instrument or account rule (a malformed request still raises).

        Raises:
            InvalidInputError: the request is malformed (see :meth:`OrderRequest.validate`).
        """
        if request.client_order_id is not None and request.client_order_id in self._by_client_id:
            return self._by_client_id[request.client_order_id]
        if self._guarded:
            refused = self._refuse(request, ts, order_id)
            if refused is not None:
                return refused
        instrument = self.instruments.get(request.instrument_id)
        reason = None
        if instrument is None:
            reason = f"unknown instrument {request.instrument_id}"
        else:
            try:
                request.validate(instrument)
                if request.quantity is not None and request.type is OrderType.MARKET and instrument.min_notional:
                    last = self.last_price(instrument.id)  # a market order's value is known only at the last price
                    if last is not None:
                        instrument.check_notional(last, request.quantity)
                self.account.check_instrument(instrument)
                self._check_buying_power(request, instrument)
            except RejectedByRulesError as exc:
                reason = str(exc)
        order = Order(order_id or OrderId(self._next_order_id()), request, ts_init=ts)
        self.orders[order.order_id] = order
        if request.client_order_id is not None:
            self._by_client_id[request.client_order_id] = order
        if reason is not None:
            self._emit(order, OrderRejected(self._next_event_id(), order.order_id, ts, ts, reason))
            return order
        assert instrument is not None
        self._emit(order, OrderAccepted(self._next_event_id(), order.order_id, ts, ts))
        self._work(order, instrument, 0)
        return order

    def _refuse(self, request: OrderRequest, ts: int, order_id: OrderId | None) -> Order | None:
        """The order ``request`` makes, rejected, when the halt or the limits refuse it at ``ts`` (ns UTC); else
        ``None`` (the submission is counted toward the rate, when one is set).

        Raises:
            InvalidInputError: the request is malformed (checked even when refused).
        """
        now = ts if self._rate_clock is None else self._rate_clock()
        reason = self._refusal(now)
        if reason is None:
            if self._limits.max_submissions_per_second is not None:
                self._recent.append(now)
            return None
        return self.reject(request, ts, reason, order_id)

    def reject(self, request: OrderRequest, ts: int, reason: str, order_id: OrderId | None = None) -> Order:
        """Record ``request`` as an order rejected at ``ts`` (ns UTC) for ``reason`` without working it: a pre-trade
        check's denial (:mod:`smart_trader.trading.session`) goes through the order's state machine and the
        listeners like any venue rejection (an ``OrderRejected`` whose reason the trader reads). A client order id
        already known returns that order unchanged.

        Raises:
            InvalidInputError: the request is malformed (checked even when rejected).
        """
        if request.client_order_id is not None and request.client_order_id in self._by_client_id:
            return self._by_client_id[request.client_order_id]
        instrument = self.instruments.get(request.instrument_id)
        if instrument is not None:
            with suppress(RejectedByRulesError):  # refused anyway: the reason given is the one that counts
                request.validate(instrument)
        order = Order(order_id or OrderId(self._next_order_id()), request, ts_init=ts)
        self.orders[order.order_id] = order
        if request.client_order_id is not None:
            self._by_client_id[request.client_order_id] = order
        self._emit(order, OrderRejected(self._next_event_id(), order.order_id, ts, ts, reason))
        return order

    def _refusal(self, now: int) -> str | None:
        """Why a new order is refused by the halt or the limits at rate-clock time ``now`` (ns), or ``None``."""
        if self._halted is not None:
            return f"account halted: {self._halted}"
        limits = self._limits
        cap = limits.max_open_orders
        if cap is not None:
            n_open = self.open_order_count()
            if n_open >= cap:
                return f"too many open orders: {n_open} open, the limit is {cap} (risk limit max_open_orders)"
        rate = limits.max_submissions_per_second
        if rate is not None:
            recent = self._recent
            since = now - NS_PER_SECOND
            while recent and recent[0] <= since:
                recent.popleft()
            if len(recent) >= rate:
                return (
                    f"too many orders: {len(recent)} submitted in the last second, the limit is {rate} per second "
                    "(risk limit max_submissions_per_second)"
                )
        return None

    def restore(self, order: Order) -> None:
        """Take back an open order rebuilt from storage (after a restart): it works again as it was, with its
        fills so far, trigger state and client id. No event is emitted.

        Raises:
            InvalidInputError: the order is not open, its id is already known, or its instrument is unknown.
        """
        instrument = self.instruments.get(order.instrument_id)
        if not order.is_open or order.order_id in self.orders or instrument is None:
            raise InvalidInputError(
                f"order {order.order_id} cannot be restored (status {order.status}, "
                f"known: {order.order_id in self.orders}, instrument known: {instrument is not None})"
            )
        request = order.request
        self.orders[order.order_id] = order
        if request.client_order_id is not None:
            self._by_client_id[request.client_order_id] = order
        self._work(order, instrument, 1 if order.filled_qty else 0)

    def _work(self, order: Order, instrument: Instrument, tries: int) -> None:
        """Put an accepted order on its instrument's working list."""
        request = order.request
        pp = instrument.price_precision
        working = WorkingOrder(
            order,
            instrument,
            request.side is OrderSide.BUY,
            to_raw(request.limit_price, pp) if request.limit_price is not None else 0,
            to_raw(request.stop_price, pp) if request.stop_price is not None else 0,
            None,
            request.type,
            request.time_in_force,
            tries,
            seq=self._seq,
        )
        self._seq += 1
        if working.buy:
            ref = request.limit_price or request.stop_price
            leaves = order.leaves_qty
            if ref is not None and leaves is not None:
                working.ref = ref
                self._committed = EXACT.add(self._committed, _value(leaves, ref, instrument.multiplier))
            else:
                self._floating.append(working)
        self._open.setdefault(instrument.id, []).append(working)
        self._active.setdefault(instrument.id, []).append(working)

    def forget(self, order_id: OrderId) -> None:
        """Drop a closed order (filled, canceled, rejected, expired) from memory, and its client order id with it;
        a long-running platform keeps it in its database instead. Unknown ids are ignored.

        Raises:
            InvalidInputError: the order is still open.
        """
        order = self.orders.get(order_id)
        if order is None:
            return
        if order.is_open:
            raise InvalidInputError(f"order {order_id} is {order.status}: only closed orders can be forgotten")
        del self.orders[order_id]
        coid = order.request.client_order_id
        if coid is not None and self._by_client_id.get(coid) is order:
            del self._by_client_id[coid]

    def cancel(self, order_id: OrderId, ts: int) -> Order:
        """Cancel a working order at ``ts`` (ns UTC).

        Raises:
            NotFoundError: no such order.
            RejectedByRulesError: the order is no longer open (filled, canceled, rejected, expired).
        """
        order = self.orders.get(order_id)
        if order is None:
            raise NotFoundError(f"no order {order_id}")
        if not order.is_open:
            raise RejectedByRulesError(f"order {order_id} is {order.status}; only open orders can be canceled")
        self._close(order, OrderCanceled(self._next_event_id(), order_id, ts, ts, "user"))
        return order

    def _check_buying_power(self, request: OrderRequest, instrument: Instrument) -> None:
        """Cash accounts: sells only of what is held and not already offered; buys only with cash not
        already committed to working buys (valued at their limit/stop price, or the last price)."""
        if self.account.account_type is not AccountType.CASH:
            return
        working = self._open.get(instrument.id, [])
        if request.side is OrderSide.SELL:
            held = self.account.quantity(instrument.id)
            # a working notional sell may sell everything held, so it reserves all of it
            pending = sum(
                (w.order.leaves_qty if w.order.leaves_qty is not None else held for w in working if not w.buy),
                Decimal(0),
            )
            free = held - pending
            wanted = request.quantity if request.quantity is not None else instrument.lot_size
            if wanted > free:
                raise RejectedByRulesError(
                    f"sell of {request.quantity or f'{request.notional} notional'} exceeds the {max(free, Decimal(0))} "
                    "held and not already offered: short selling is not allowed on a cash account"
                )
            return
        committed = self._committed
        for w in self._floating:
            committed += self._reserved(w.order, w.instrument)
        cash = self.account.cash - committed
        if request.notional is not None:
            if request.notional > cash:
                raise RejectedByRulesError(f"notional {request.notional} exceeds the uncommitted cash {cash}")
            return
        ref = request.limit_price or request.stop_price or self.last_price(instrument.id)
        if ref is not None and request.quantity is not None:
            cost = request.quantity * ref * instrument.multiplier
            if cost > cash:
                raise RejectedByRulesError(
                    f"order cost {cost} {instrument.quote_currency} exceeds the uncommitted cash {cash}"
                )

    def _reserved(self, order: Order, instrument: Instrument) -> Decimal:
        """Cash a working buy may still spend (quote currency)."""
        leaves = order.leaves_qty
        if leaves is None:
            return order.request.notional or Decimal(0)
        ref = order.request.limit_price or order.request.stop_price or self.last_price(instrument.id) or Decimal(0)
        return leaves * ref * instrument.multiplier

    # -- market events --------------------------------------------------------------------
    def on_bar(
        self, instrument_id: InstrumentId, ts: int, o: int, h: int, low: int, c: int, volume: int | None
    ) -> None:
        """Match working orders against a bar opening at ``ts`` (ns UTC); prices raw at the instrument's
        price precision, volume raw at its size precision (or ``None``).

        The bar reaches buy limits at or above its low, sell limits at or below its high, buy stops at or below
        its high and sell stops at or above its low (see :mod:`~smart_trader.execution.matching` for the prices)."""
        working = self._open.get(instrument_id)
        if not working:
            return
        path = matching.bar_path(o, h, low, c)
        avail = None if self.config.participation is None else self._available(working[0].instrument, volume)
        indexed = len(working) > self._bar_scan_max
        if indexed:
            bottom, top = min(path), max(path)
            todo = self._reached(instrument_id, top, bottom, bottom, top, ts // NS_PER_DAY)
        else:
            todo = list(working)
        for w in todo:
            order = w.order
            if order.ts_init > ts:  # submitted after this bar opened (another stream's event): next bar
                continue
            if w.tif is TimeInForce.DAY and self._expire_day(w, ts):
                continue
            t = w.type
            slip = taker = True
            if t is OrderType.MARKET:
                px: int | None = o
            elif t is OrderType.LIMIT:
                px = matching.match_limit_bar(w.buy, w.limit, path)
                taker = px == o and w.tries == 0
                slip = False  # a limit never fills worse than its price
            elif t is OrderType.STOP:
                hit = matching.match_stop_bar(w.buy, w.stop, path)
                px = hit[0] if hit else None
            else:
                was = order.triggered
                triggered, px = matching.match_stop_limit_bar(w.buy, w.stop, w.limit, path, was)
                if triggered and not was:
                    self._trigger(w, ts)
                slip = False
                taker = not was
            avail = self._execute(w, px, ts, avail, slip, taker)
        if indexed:
            self._rest(instrument_id)

    def on_trade(self, instrument_id: InstrumentId, ts: int, price: int, size: int | None) -> None:
        """Match working orders against one trade at ``ts`` (ns UTC); raw price and size."""
        working = self._open.get(instrument_id)
        if not working:
            return
        avail = self._available(working[0].instrument, size)
        for w in self._reached(instrument_id, price, price, price, price, ts // NS_PER_DAY):
            if self._expire_day(w, ts):
                continue
            px = self._match_price(w, price, ts)
            slip = w.type is OrderType.MARKET or w.type is OrderType.STOP
            avail = self._execute(w, px, ts, avail, slip, slip or w.tries == 0)
        self._rest(instrument_id)

    def on_quote(
        self, instrument_id: InstrumentId, ts: int, bid: int, ask: int, bid_size: int | None, ask_size: int | None
    ) -> None:
        """Match working orders against a top-of-book quote at ``ts`` (ns UTC): buys at the ask, sells at the bid."""
        working = self._open.get(instrument_id)
        if not working:
            return
        inst = working[0].instrument
        avail_buy = self._available(inst, ask_size)
        avail_sell = self._available(inst, bid_size)
        for w in self._reached(instrument_id, bid, ask, bid, ask, ts // NS_PER_DAY):
            if self._expire_day(w, ts):
                continue
            px = self._match_price(w, ask if w.buy else bid, ts)
            slip = w.type is OrderType.MARKET or w.type is OrderType.STOP
            if w.buy:
                avail_buy = self._execute(w, px, ts, avail_buy, slip, slip or w.tries == 0)
            else:
                avail_sell = self._execute(w, px, ts, avail_sell, slip, slip or w.tries == 0)
        self._rest(instrument_id)

    def _reached(
        self, instrument_id: InstrumentId, bid: int, ask: int, low: int, high: int, today: int
    ) -> list[WorkingOrder]:
        """The working orders an event may touch, in arrival order: every active order (not indexed), the indexed
        limits the event crosses (buys limited at or above ``ask``, sells at or below ``bid``), the stops it
        triggers (buys stopped at or below ``high``, sells at or above ``low``) and the day orders an event on UTC
        day ``today`` expires. A trade passes its price as all four prices, a quote its bid and ask as
        ``bid``/``low`` and ``ask``/``high``, a bar its high as ``bid``/``high`` and its low as ``ask``/``low``.
        An indexed order the event does not reach would only have been visited to find that out: skipping it
        changes nothing."""
        active = self._active.get(instrument_id)
        index = self._indexed.get(instrument_id)
        if index is None:
            return list(active) if active else []
        found = index.limits.crossing(bid, ask)
        stops = index.stops.triggered(low, high)
        if stops:
            found = found + stops if found else stops
        due = index.days.due(today)
        if due:
            if found:
                seen = {w.seq for w in found}
                found.extend(w for w in due if w.seq not in seen)
            else:
                found = due
        if not found:
            return list(active) if active else []
        if active:
            found.extend(active)
        elif not stops and not due:
            return found  # one source, already in arrival order
        found.sort(key=_arrival)
        return found

    def _rest(self, instrument_id: InstrumentId) -> None:
        """Index the active orders that have now met an event and can only be touched by a price or their day:
        good-till-canceled and day (once dated) limits, stops and stop-limits."""
        active = self._active.get(instrument_id)
        if not active or not self._index_resting:
            return
        keep: list[WorkingOrder] = []
        index = None
        for w in active:
            tif = w.tif
            if (
                w.tries
                and w.type is not OrderType.MARKET
                and (tif is TimeInForce.GTC or (tif is TimeInForce.DAY and w.day is not None))
            ):
                if index is None:
                    index = self._indexed.get(instrument_id)
                    if index is None:
                        index = self._indexed[instrument_id] = IndexedOrders()
                if w.type is OrderType.LIMIT or (w.type is OrderType.STOP_LIMIT and w.order.triggered):
                    index.limits.add(w.seq, w.buy, w.limit, w)
                    w.where = LIMITS
                else:
                    index.stops.add(w.seq, w.buy, w.stop, w)
                    w.where = STOPS
                if w.day is not None:
                    index.days.add(w.seq, w.day, w)
            else:
                keep.append(w)
        if len(keep) != len(active):
            active[:] = keep

    def _trigger(self, w: WorkingOrder, ts: int) -> None:
        """A stop-limit's stop is reached at ``ts``: it works as a limit from now on (moved from the parked stops
        to the resting limits when indexed), and says so (:class:`OrderTriggered`)."""
        if w.where == STOPS:
            index = self._indexed[w.order.instrument_id]
            index.stops.remove(w.seq, w.buy, w.stop)
            index.limits.add(w.seq, w.buy, w.limit, w)
            w.where = LIMITS
        order = w.order
        self._emit(order, OrderTriggered(self._next_event_id(), order.order_id, ts, ts))

    def _match_price(self, w: WorkingOrder, price: int, ts: int) -> int | None:
        order = w.order
        t = order.type
        if t is OrderType.MARKET:
            return price
        if t is OrderType.LIMIT:
            return matching.match_limit_price(w.buy, w.limit, price)
        if t is OrderType.STOP:
            return price if matching.stop_reached(w.buy, w.stop, price) else None
        if not order.triggered:
            if not matching.stop_reached(w.buy, w.stop, price):
                return None
            self._trigger(w, ts)
        return matching.match_limit_price(w.buy, w.limit, price)

    # -- fills ----------------------------------------------------------------------------
    def _available(self, instrument: Instrument, volume: int | None) -> Decimal | None:
        cap = self.config.participation
        if cap is None or volume is None:
            return None
        return floor_to_step(from_raw(volume, instrument.size_precision) * cap, instrument.lot_size)

    def _expire_day(self, w: WorkingOrder, ts: int) -> bool:
        if w.tif is not TimeInForce.DAY:
            return False
        if w.day is None:  # a day order lives through the UTC day of the first event it meets
            w.day = ts // NS_PER_DAY
        if ts // NS_PER_DAY > w.day:
            self._close(w.order, OrderExpired(self._next_event_id(), w.order.order_id, ts, ts))
            return True
        return False

    def _execute(
        self, w: WorkingOrder, px: int | None, ts: int, avail: Decimal | None, slip: bool, taker: bool
    ) -> Decimal | None:
        """Fill ``w`` at raw price ``px`` as far as ``avail`` allows; returns what is left of ``avail``."""
        order = w.order
        tif = w.tif
        w.tries += 1
        if px is None:
            if tif is TimeInForce.IOC or tif is TimeInForce.FOK:
                self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, tif.value))
            return avail
        inst = w.instrument
        price = from_raw(px, inst.price_precision)
        if slip:
            price = self.config.slippage.adjust(price, w.buy, inst)
        commission_model = self.config.commission
        if order.quantity is None:  # notional order: the quantity is fixed at the first fill price
            assert order.request.notional is not None
            budget = order.request.notional
            if w.buy and self.account.account_type is AccountType.CASH:
                budget = min(budget, self.account.cash)
            qty = commission_model.max_quantity(budget, price, inst)
            if not w.buy and self.account.account_type is AccountType.CASH:
                qty = min(qty, max(self.account.quantity(inst.id), Decimal(0)))
            if qty < inst.lot_size:
                reason = f"notional {order.request.notional} buys less than one lot ({inst.lot_size}) at {price}"
                self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, reason))
                return avail
            order.fix_quantity(qty)
        leaves = order.leaves_qty
        assert leaves is not None
        qty = leaves if avail is None else min(leaves, avail)
        if not w.buy and self.account.account_type is AccountType.CASH:
            held = max(self.account.quantity(inst.id), Decimal(0))
            if qty > held:  # never short on a cash account, whatever was accepted earlier
                reason = f"sell of {qty} exceeds the {held} held at fill: no short selling on a cash account"
                self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, reason))
                return avail
        if tif is TimeInForce.FOK and qty < leaves:
            self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, "fok"))
            return avail
        if qty <= 0:
            if tif is TimeInForce.IOC:
                self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, "ioc"))
            return avail
        commission = commission_model.commission(qty, price, inst)
        if w.buy and self.account.account_type is AccountType.CASH:
            cost = qty * price * inst.multiplier + commission
            if cost > self.account.cash:
                reason = f"insufficient cash at fill: cost {cost} > cash {self.account.cash}"
                self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, reason))
                return avail
        fill = Fill(
            FillId(self._next_fill_id()),
            order.order_id,
            order.client_order_id,
            inst.id,
            order.side,
            qty,
            price,
            commission,
            inst.quote_currency,
            LiquiditySide.TAKER if taker else LiquiditySide.MAKER,
            ts,
        )
        self.fills.append(fill)
        self.account.apply_fill(fill, inst)
        self._emit(order, OrderFilled(self._next_event_id(), order.order_id, ts, ts, fill))
        if w.ref is not None:
            self._committed = EXACT.subtract(self._committed, _value(qty, w.ref, inst.multiplier))
        if order.status is OrderStatus.FILLED:
            self._remove(order)
        elif tif is TimeInForce.IOC:
            self._close(order, OrderCanceled(self._next_event_id(), order.order_id, ts, ts, "ioc"))
        return None if avail is None else avail - qty

    def _close(self, order: Order, event: OrderEvent) -> None:
        self._emit(order, event)
        self._remove(order)

    def _remove(self, order: Order) -> None:
        lst = self._open.get(order.instrument_id)
        if lst:
            for i, w in enumerate(lst):
                if w.order is order:
                    del lst[i]  # in place: the engine holds this list
                    where = w.where
                    if where == ACTIVE:
                        self._active[order.instrument_id].remove(w)
                    else:
                        index = self._indexed[order.instrument_id]
                        if where == LIMITS:
                            index.limits.remove(w.seq, w.buy, w.limit)
                        else:
                            index.stops.remove(w.seq, w.buy, w.stop)
                        if w.day is not None:
                            index.days.remove(w.seq, w.day)
                    if w.ref is not None:
                        leaves = order.leaves_qty or Decimal(0)
                        self._committed = EXACT.subtract(
                            self._committed, _value(leaves, w.ref, w.instrument.multiplier)
                        )
                    elif w.buy:
                        self._floating.remove(w)
                    break

    def _emit(self, order: Order, event: OrderEvent) -> None:
        order.apply(event)
        for listener in self.listeners:
            listener(order, event)
