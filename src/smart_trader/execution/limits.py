"""Pre-trade risk limits of an account's paper broker: how many orders it may have open, and how fast it may send
them. :class:`~smart_trader.execution.paper_broker.PaperBroker` checks them in ``submit`` and rejects an order that
would break one, saying which limit and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

from smart_trader.core.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """Limits on the orders one account may submit; ``None`` means no limit (the default: backtests are unlimited).

    Attributes:
        max_open_orders: most orders the account may have working at once (accepted or partially filled, every
            instrument together). A submission while that many are open is rejected.
        max_submissions_per_second: most order submissions in any one-second window (1,000,000,000 ns, on the
            broker's rate clock: the market time passed to ``submit`` by default). A submission after that many in
            the last second is rejected. Every submission these limits let through counts, whatever comes of it
            (accepted, rejected by the instrument and account rules, or malformed: ``submit`` raises); those
            rejected by these limits or because the account is halted do not, so a client that backs off for a
            second is let in again however hard it pushed. Repeats of a known client order id (answered with the
            original order, nothing created) do not count. Counting starts when a rate limit is set.

    A limit of 0 rejects every new order (halting the account, ``PaperBroker.halted``, says why).

    Raises:
        InvalidInputError: a limit that is not a whole number >= 0 (or ``None``).
    """

    max_open_orders: int | None = None
    max_submissions_per_second: int | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("max_open_orders", self.max_open_orders),
            ("max_submissions_per_second", self.max_submissions_per_second),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidInputError(f"{name} must be a whole number >= 0 or None, got {value!r}")

    @property
    def any_set(self) -> bool:
        """True when at least one limit is set."""
        return self.max_open_orders is not None or self.max_submissions_per_second is not None


NO_LIMITS = OrderLimits()
