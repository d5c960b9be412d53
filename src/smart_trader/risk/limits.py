"""The limits an account trades under: what a risk manager set for it (``risk/store.py``), else the platform's
defaults (``MAX_OPEN_ORDERS``, ``MAX_ORDERS_PER_SECOND``), and whether it is halted."""

from __future__ import annotations

from dataclasses import dataclass

RISK_CONTROL_TOPIC = "_control.risk"
"""Hub topic telling the trading runtime that an account's limits or trading state changed (message: the account
id); through Redis when the API and the runtime are separate processes."""


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
