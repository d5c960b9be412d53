"""Pure price-matching rules of the paper broker, on fixed-point raw integers (exact, fast).

Each function answers one question about one order and one market event and returns the raw fill
(or trigger) price, or ``None`` when the order does not execute. Prices are ints at the
instrument's price precision (value × 10**precision).

Bars — the OHLC path convention (as NautilusTrader's and backtrader's bar execution):
a bar whose close >= open is walked **open → low → high → close**, a bar whose close < open
**open → high → low → close**; prices move continuously along each leg.
- market: fills at the bar's open (an order submitted on bar *i* fills at bar *i+1*'s open);
- limit buy at L: at the open if open <= L (gap through the limit: the better price), else at L if
  the low reaches L; sells mirror this with the high;
- stop buy at S: at the open if open >= S (gap), else at S when the high reaches S; sells mirror;
- stop-limit buy (S, L): triggers like a stop; at the trigger price t it fills at t if t <= L,
  otherwise it rests as a limit and fills at L if the rest of the path reaches L in the same bar.

Trades — fill at the trade price; a limit never fills through its price (a buy needs price <= L);
stops trigger when the trade price reaches the stop and fill at that trade's price.

Quotes — buys execute at the ask and sells at the bid; limits and stops compare the same side.
"""

from __future__ import annotations


def bar_path(o: int, h: int, low: int, c: int) -> tuple[int, int, int, int]:
    """The four points the bar's price is assumed to visit, in order."""
    return (o, low, h, c) if c >= o else (o, h, low, c)


def bar_path_offsets(timeframe_ns: int | None) -> tuple[int, int, int, int]:
    """When the four points of :func:`bar_path` are taken to happen, in ns after the bar's open: the open at 0, the two
    extremes at ⌊tf/3⌋ and ⌊2·tf/3⌋, the close at tf − 1 (all at 0 when the bar's length is unknown). One convention
    for every judge of a bar's path (challenge rules in backtests, on the platform and in ``challenge evaluate``), so
    they agree on the instant of a breach."""
    if not timeframe_ns:
        return (0, 0, 0, 0)
    return (0, timeframe_ns // 3, 2 * timeframe_ns // 3, timeframe_ns - 1)


def match_limit_bar(buy: bool, limit: int, path: tuple[int, int, int, int]) -> int | None:
    """Fill price of a limit order in a bar, or ``None``."""
    o = path[0]
    if buy:
        if o <= limit:
            return o
        return limit if min(path) <= limit else None
    if o >= limit:
        return o
    return limit if max(path) >= limit else None


def match_stop_bar(buy: bool, stop: int, path: tuple[int, int, int, int]) -> tuple[int, int] | None:
    """``(trigger price, index of the path point the trigger leg ends at)`` of a stop in a bar, or ``None``.

    The index lets a stop-limit continue along the rest of the path after triggering.
    """
    o = path[0]
    if buy:
        if o >= stop:
            return o, 0
        for k in range(1, 4):
            if path[k] >= stop:
                return stop, k
        return None
    if o <= stop:
        return o, 0
    for k in range(1, 4):
        if path[k] <= stop:
            return stop, k
    return None


def match_stop_limit_bar(
    buy: bool, stop: int, limit: int, path: tuple[int, int, int, int], triggered: bool
) -> tuple[bool, int | None]:
    """``(triggered, fill price or None)`` of a stop-limit order in a bar.

    An order triggered on an earlier event works as a plain limit.
    """
    if triggered:
        return True, match_limit_bar(buy, limit, path)
    hit = match_stop_bar(buy, stop, path)
    if hit is None:
        return False, None
    t, k = hit
    rest = path[k:] if k > 0 else path[1:]
    if buy:
        if t <= limit:
            return True, t
        return True, (limit if rest and min(rest) <= limit else None)
    if t >= limit:
        return True, t
    return True, (limit if rest and max(rest) >= limit else None)


def match_limit_price(buy: bool, limit: int, price: int) -> int | None:
    """Fill price of a limit order against one trade price (or the quote side a buy/sell takes)."""
    if (buy and price <= limit) or (not buy and price >= limit):
        return price
    return None


def stop_reached(buy: bool, stop: int, price: int) -> bool:
    """True when a price at or through the stop triggers it (buy: price >= stop; sell: price <= stop)."""
    return price >= stop if buy else price <= stop
