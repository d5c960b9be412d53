"""Market-data records as strategies see them: :class:`Bar`, :class:`Trade`, :class:`Quote`.

They are immutable tuples of fixed-point raw integers (exact, and cheap to create by the million);
the Decimal values are computed on access: ``bar.close`` → ``Decimal``. ``ts_event`` is ns since the
epoch, UTC (a bar's open time). Prices are in the instrument's quote currency, sizes in base units.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from smart_trader.core.ids import InstrumentId
from smart_trader.core.values import DecimalLike, from_raw, to_decimal, to_raw


class Bar(NamedTuple):
    """An OHLCV bar. Raw fields are value × 10**precision; ``volume_raw`` is ``None`` when unknown."""

    instrument_id: InstrumentId
    ts_event: int
    open_raw: int
    high_raw: int
    low_raw: int
    close_raw: int
    volume_raw: int | None
    price_precision: int
    size_precision: int

    @property
    def open(self) -> Decimal:
        """Open price."""
        return from_raw(self.open_raw, self.price_precision)

    @property
    def high(self) -> Decimal:
        """High price."""
        return from_raw(self.high_raw, self.price_precision)

    @property
    def low(self) -> Decimal:
        """Low price."""
        return from_raw(self.low_raw, self.price_precision)

    @property
    def close(self) -> Decimal:
        """Close price."""
        return from_raw(self.close_raw, self.price_precision)

    @property
    def volume(self) -> Decimal | None:
        """Volume in base units, or ``None``."""
        return None if self.volume_raw is None else from_raw(self.volume_raw, self.size_precision)

    @classmethod
    def of(
        cls,
        instrument_id: InstrumentId,
        ts_event: int,
        open: DecimalLike,
        high: DecimalLike,
        low: DecimalLike,
        close: DecimalLike,
        volume: DecimalLike | None,
        price_precision: int,
        size_precision: int = 0,
    ) -> Bar:
        """Build a bar from decimal values (str/int/Decimal).

        Raises:
            ValueError: a value has more decimals than its precision.
            TypeError: a float was given.
        """
        pp, sp = price_precision, size_precision
        return cls(
            instrument_id,
            ts_event,
            to_raw(to_decimal(open), pp),
            to_raw(to_decimal(high), pp),
            to_raw(to_decimal(low), pp),
            to_raw(to_decimal(close), pp),
            None if volume is None else to_raw(to_decimal(volume), sp),
            pp,
            sp,
        )


class Trade(NamedTuple):
    """One trade (time and sales): price, size, aggressor side (``"buy"``/``"sell"``/``None``)."""

    instrument_id: InstrumentId
    ts_event: int
    price_raw: int
    size_raw: int
    aggressor_side: str | None
    trade_id: str | None
    price_precision: int
    size_precision: int

    @property
    def price(self) -> Decimal:
        """Trade price."""
        return from_raw(self.price_raw, self.price_precision)

    @property
    def size(self) -> Decimal:
        """Trade size in base units."""
        return from_raw(self.size_raw, self.size_precision)


class Quote(NamedTuple):
    """Top of book: best bid and ask with their sizes (``None`` when the source has none)."""

    instrument_id: InstrumentId
    ts_event: int
    bid_raw: int
    ask_raw: int
    bid_size_raw: int | None
    ask_size_raw: int | None
    price_precision: int
    size_precision: int

    @property
    def bid(self) -> Decimal:
        """Best bid price."""
        return from_raw(self.bid_raw, self.price_precision)

    @property
    def ask(self) -> Decimal:
        """Best ask price."""
        return from_raw(self.ask_raw, self.price_precision)

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return from_raw(self.bid_raw + self.ask_raw, self.price_precision) / 2

    @property
    def bid_size(self) -> Decimal | None:
        """Size at the best bid in base units, or ``None`` when the source has none."""
        return None if self.bid_size_raw is None else from_raw(self.bid_size_raw, self.size_precision)

    @property
    def ask_size(self) -> Decimal | None:
        """Size at the best ask in base units, or ``None`` when the source has none."""
        return None if self.ask_size_raw is None else from_raw(self.ask_size_raw, self.size_precision)
