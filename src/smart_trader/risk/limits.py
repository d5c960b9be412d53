"""The limits an account trades under: what a risk manager set for it (``risk/store.py``), else the platform's
defaults (``MAX_OPEN_ORDERS``, ``MAX_ORDERS_PER_SECOND``), and whether it is halted; :func:`risk_limits` turns them
into the :class:`~smart_trader.risk.checks.AccountRiskLimits` the account's pre-trade checks enforce."""

from __future__ import annotations

from dataclasses import dataclass

from smart_trader.risk.checks import AccountRiskLimits
from smart_trader.risk.store import HALTED, StoredLimits

RISK_CONTROL_TOPIC = "_control.risk"
"""Hub topic telling the trading runtime that an account's limits or trading state changed (message: the account
id); through Redis when the API and the runtime are separate processes."""

HALTED_WITHOUT_REASON = "halted by a risk manager"
"""The reason quoted for a halt stored without one."""


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """An account's limits in force: open orders at most, order submissions per second at most (wall clock), and
    the halt reason (``None``: trading)."""

    max_open_orders: int
    max_orders_per_second: int
    halted: str | None = None


def effective(
    max_open_orders: int | None,
    max_orders_per_second: int | None,
    halted_reason: str | None,
    default_open: int,
    default_rate: int,
) -> EffectiveLimits:
    """The stored per-account values where set, else the defaults."""
    return EffectiveLimits(
        default_open if max_open_orders is None else max_open_orders,
        default_rate if max_orders_per_second is None else max_orders_per_second,
        halted_reason,
    )


def risk_limits(stored: StoredLimits, default_open: int | None, default_rate: int | None) -> AccountRiskLimits:
    """The pre-trade limits of an account: what a risk manager stored, the open-orders and rate limits falling back
    to the platform's defaults (``None``: unlimited), the others unchecked when not stored."""
    return AccountRiskLimits(
        max_order_quantity=stored.max_order_quantity,
        max_order_notional=stored.max_order_notional,
        max_position=stored.max_position,
        price_collar_bps=stored.price_collar_bps,
        max_open_orders=default_open if stored.max_open_orders is None else stored.max_open_orders,
        max_orders_per_second=default_rate if stored.max_orders_per_second is None else stored.max_orders_per_second,
    )


def halt_reason(stored: StoredLimits) -> str | None:
    """Why the account is halted (its stored reason, or a generic one), or ``None`` while it may trade."""
    if stored.trading_state != HALTED:
        return None
    return stored.reason or HALTED_WITHOUT_REASON
