"""Dataset identity in the market-data store: :class:`DatasetKey` (venue, symbol, kind, timeframe, price
type), its partition path, and how rows are split into partition files (:func:`partition_start_days`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import quote, unquote

import numpy as np
import numpy.typing as npt

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.core.errors import InvalidInputError
from smart_trader.data.schema import Kind, PriceType
from smart_trader.data.timeframes import Timeframe


@dataclass(frozen=True, slots=True)
class DatasetKey:
    """Identity of one dataset in the store.

    Attributes:
        venue: venue code (upper-cased), e.g. ``"BINANCE"``.
        symbol: venue symbol as written, e.g. ``"BTC/USDT"``.
        kind: bars, trades, quotes or book.
        timeframe: bar length; required for bars, ``None`` for the other kinds.
        price_type: what bars are built from (last/bid/ask/mid); always ``LAST`` for the other kinds.

    Raises:
        InvalidInputError: empty venue or symbol, bars without a timeframe, or a timeframe or
            non-``LAST`` price type on trades or quotes.
    """

    venue: str
    symbol: str
    kind: Kind
    timeframe: Timeframe | None = None
    price_type: PriceType = PriceType.LAST

    def __post_init__(self) -> None:
        if not self.venue.strip() or not self.symbol:
            raise InvalidInputError("a dataset key needs a venue and a symbol")
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
            object.__setattr__(self, "price_type", PriceType(self.price_type))
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        object.__setattr__(self, "venue", self.venue.strip().upper())
        if self.kind is Kind.BARS and self.timeframe is None:
            raise InvalidInputError(f"bars of {self.symbol}.{self.venue} need a timeframe")
        if self.kind is not Kind.BARS and (self.timeframe is not None or self.price_type is not PriceType.LAST):
            raise InvalidInputError(f"{self.kind} datasets have no timeframe or price type")

    @property
    def kind_dir(self) -> str:
        """Value of the ``kind=`` partition: ``trades``, ``quotes``, ``book`` or ``bars-<timeframe>-<price type>``."""
        if self.kind is Kind.BARS:
            return f"bars-{self.timeframe}-{self.price_type}"
        return str(self.kind)

    def to_partition(self) -> str:
        """Relative directory of the dataset, e.g. ``venue=BINANCE/symbol=BTC%2FUSDT/kind=bars-1m-last``."""
        return f"venue={quote(self.venue, safe='')}/symbol={quote(self.symbol, safe='')}/kind={self.kind_dir}"

    @classmethod
    def from_partition(cls, path: str | PurePath) -> DatasetKey:
        """Inverse of :meth:`to_partition`. Accepts any path containing the ``venue=``, ``symbol=`` and
        ``kind=`` components (a store root before them or ``date=.../data.parquet`` after them is ignored).

        Raises:
            InvalidInputError: a component is missing or the kind is not a known one.
        """
        parts: dict[str, str] = {}
        for part in PurePath(path).parts:
            name, sep, value = part.partition("=")
            if sep and name in ("venue", "symbol", "kind"):
                parts[name] = unquote(value)
        if len(parts) != 3:
            raise InvalidInputError(f"{str(path)!r} is not a dataset path like venue=V/symbol=S/kind=K")
        kind_text = parts["kind"]
        if kind_text in (Kind.TRADES, Kind.QUOTES, Kind.BOOK):
            return cls(parts["venue"], parts["symbol"], Kind(kind_text))
        prefix, _, rest = kind_text.partition("-")
        timeframe_text, _, price_type = rest.rpartition("-")
        if prefix != Kind.BARS or not timeframe_text:
            raise InvalidInputError(f"unknown dataset kind {kind_text!r} in {str(path)!r}")
        try:
            pt = PriceType(price_type)
        except ValueError:
            raise InvalidInputError(f"unknown bar price type {price_type!r} in {str(path)!r}") from None
        return cls(parts["venue"], parts["symbol"], Kind.BARS, Timeframe.parse(timeframe_text), pt)

    def __str__(self) -> str:
        return f"{self.symbol}.{self.venue} {self.kind_dir}"


def partition_start_days(key: DatasetKey, ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """First day (days since the epoch, UTC) of the partition each timestamp falls in.

    Trades, quotes, book depth and bars shorter than a minute are kept one file per UTC day; bars of 1m up to
    1d exclusive one file per month (a month of 1-minute bars is 44,640 rows: one file, not 31 of 1,440); daily
    bars one file per year — so a 20-year daily series is 20 files, not 5,000. The partition directory is named
    after its first day (``date=1995-01-01``). Stores written when 1m..1h bars were kept per day are folded into
    month files by the next write (:meth:`~smart_trader.data.store.MarketDataStore.write`).
    """
    days = np.asarray(ts_ns, dtype=np.int64) // NS_PER_DAY
    tf = key.timeframe
    if key.kind is not Kind.BARS or tf is None or tf.seconds < 60:
        return days
    unit = "Y" if tf.ns >= NS_PER_DAY else "M"
    if len(days) == 0:
        return days
    # calendar arithmetic once per run of equal days (rows come in time order: a few hundred runs, not millions)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    firsts = days[starts].astype("datetime64[D]").astype(f"datetime64[{unit}]").astype("datetime64[D]")
    return np.repeat(firsts.astype(np.int64), np.diff(np.r_[starts, len(days)]))
