"""Bar timeframes from one second to one day (``"1s"``, ``"5m"``, ``"1h"``, ``"1d"``...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_PATTERN = re.compile(r"^(\d+)([smhd])$")


@dataclass(frozen=True, slots=True, order=True)
class Timeframe:
    """A bar interval. ``seconds`` is its length; bars are aligned to multiples of it since the epoch (UTC)."""

    seconds: int

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Parse ``"<n><unit>"`` with unit s, m, h or d, between 1s and 1d inclusive.

        Raises:
            InvalidInputError: malformed text or a length outside 1s..1d.
        """
        m = _PATTERN.match(text.strip().lower())
        if not m:
            raise InvalidInputError(f"timeframe {text!r} is not like 1s, 5m, 1h or 1d")
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
        if not 1 <= seconds <= 86_400:
            raise InvalidInputError(f"timeframe {text!r} must be between 1s and 1d")
        return cls(seconds)

    @property
    def ns(self) -> int:
        """Length in nanoseconds."""
        return self.seconds * NS_PER_SECOND

    def __str__(self) -> str:
        for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"
