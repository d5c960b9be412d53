"""The instrument catalog: instrument definitions kept in one JSON file, and inference of a definition
from a symbol and the precisions seen in a data file.

File format (written atomically: temporary file, then :func:`os.replace`)::

    {"version": 1, "instruments": [{"symbol": "BTC/USDT", "venue": "BINANCE", ...}, ...]}

Each entry is :meth:`Instrument.to_dict`; entries are sorted by instrument id.
"""

from __future__ import annotations

import builtins
import json
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import InstrumentId, instrument_id
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.core.values import from_raw

FORMAT_VERSION = 1
INSTRUMENT_MAX_PRECISION = 18  # decimals an instrument may define (readers infer at most 12 from data)
QUOTE_SUFFIXES = ("USDT", "USDC", "BUSD", "BTC", "ETH", "EUR", "USD", "JPY", "GBP")
FIAT_CURRENCIES = frozenset(
    {"USD", "EUR", "JPY", "GBP", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "DKK", "HKD", "SGD", "CNH", "MXN", "ZAR"}
)


class InstrumentCatalog:
    """Instrument definitions stored as JSON at ``path`` (the file is created by the first :meth:`add`).

    Every call reads the file afresh, so several processes see each other's additions, and raises
    :class:`InvalidInputError` when the file is not a valid catalog (naming it).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def add(self, instrument: Instrument) -> bool:
        """Store ``instrument``. Idempotent: adding an identical definition again changes nothing.

        Returns:
            True when it was added, False when the same definition was already there.

        Raises:
            InvalidInputError: an instrument with the same id is stored with a different definition
                (the message names the fields that differ).
        """
        instruments = self._load()
        known = instruments.get(instrument.id)
        if known is not None:
            if known == instrument:
                return False
            old, new = known.to_dict(), instrument.to_dict()
            diff = ", ".join(f"{k}: {old[k]} -> {new[k]}" for k in old if _differs(old[k], new[k]))
            raise InvalidInputError(f"instrument {instrument.id} is already defined differently ({diff})")
        instruments[instrument.id] = instrument
        self._save(instruments)
        return True

    def get(self, symbol: str, venue: str) -> Instrument:
        """The instrument ``symbol`` on ``venue`` (venue case-insensitive).

        Raises:
            NotFoundError: not in the catalog; the message lists the instruments known on that venue.
        """
        instruments = self._load()
        found = instruments.get(instrument_id(symbol, venue))
        if found is not None:
            return found
        venue_code = venue.upper()
        same_venue = sorted(i.symbol for i in instruments.values() if i.venue == venue_code)
        known = ", ".join(same_venue) if same_venue else "none"
        raise NotFoundError(
            f"instrument {symbol}.{venue_code} is not in the catalog {self.path}; known on {venue_code}: {known}"
        )

    def list(self) -> builtins.list[Instrument]:
        """Every stored instrument, sorted by id."""
        instruments = self._load()
        return [instruments[k] for k in sorted(instruments)]

    def _load(self) -> dict[InstrumentId, Instrument]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(text)
            entries = doc["instruments"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"instrument catalog {self.path} is not valid: {exc}") from None
        instruments = (Instrument.from_dict(e) for e in entries)
        return {i.id: i for i in instruments}

    def _save(self, instruments: dict[InstrumentId, Instrument]) -> None:
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "instruments": [instruments[k].to_dict() for k in sorted(instruments)],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _differs(a: Any, b: Any) -> bool:
    """True when two to_dict values differ (decimal strings compared by value)."""
    if isinstance(a, str) and isinstance(b, str):
        try:
            return Decimal(a) != Decimal(b)
        except ArithmeticError:
            return a != b
    return bool(a != b)


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """``(base, quote)`` of a pair symbol, or ``None`` when it is not one.

    Understands ``BTC/USDT``, ``ETH-BTC``, ``ETH_BTC`` (the part after the separator must have at least
    3 letters, so ``BRK-B`` stays a share symbol), ``BTCUSDT`` (known quote suffixes
    :data:`QUOTE_SUFFIXES`, longest first) and ccxt's derivative symbols ``BTC/USDT:USDT`` (the settlement
    currency after ``:`` is not part of the pair).
    """
    text = symbol.strip().upper()
    if "/" in text and ":" in text:
        text = text.split(":", 1)[0]
    for sep in "/-_":
        base, found, quote = text.partition(sep)
        if found and base and len(quote) >= 3 and quote.isalnum() and base.isalnum():
            return base, quote
    for quote in QUOTE_SUFFIXES:
        if text.endswith(quote) and len(text) > len(quote) and text.isalnum():
            return text[: -len(quote)], quote
    return None


def infer_instrument(
    symbol: str,
    venue: str,
    price_precision: int,
    size_precision: int,
    asset_class_hint: AssetClass | str | None = None,
) -> Instrument:
    """A plausible instrument definition for data of ``symbol`` on ``venue`` written at the given precisions.

    - tick size = 10**-price_precision (quote currency), lot size = 10**-size_precision (base units;
      1 share for equities with whole-share volumes);
    - base/quote from :func:`split_symbol`; two fiat currencies make ``fx``, other pairs ``crypto``;
      a symbol that is not a pair is an ``equity`` quoted in USD with the symbol as its base unit.

    Args:
        asset_class_hint: forces the asset class (e.g. ``"equity"`` for a ticker that looks like a pair).

    Raises:
        InvalidInputError: a precision outside 0..18, an unknown asset class, or an fx/crypto
            instrument whose symbol is not a pair.
    """
    for name, value in (("price_precision", price_precision), ("size_precision", size_precision)):
        if not 0 <= value <= INSTRUMENT_MAX_PRECISION:
            raise InvalidInputError(f"{name} must be between 0 and {INSTRUMENT_MAX_PRECISION}, got {value}")
    try:
        hint = AssetClass(asset_class_hint) if asset_class_hint is not None else None
    except ValueError:
        raise InvalidInputError(f"unknown asset class {asset_class_hint!r}") from None
    pair = None if hint is AssetClass.EQUITY else split_symbol(symbol)
    asset_class: AssetClass
    if pair is None:
        if hint in (AssetClass.FX, AssetClass.CRYPTO):
            raise InvalidInputError(f"cannot tell the base and quote currency of {hint} symbol {symbol!r}")
        base, quote = symbol.strip().upper(), "USD"
        asset_class = hint or AssetClass.EQUITY
    else:
        base, quote = pair
        both_fiat = base in FIAT_CURRENCIES and quote in FIAT_CURRENCIES
        asset_class = hint or (AssetClass.FX if both_fiat else AssetClass.CRYPTO)
    return Instrument(
        symbol=symbol,
        venue=venue,
        asset_class=asset_class,
        base_currency=base,
        quote_currency=quote,
        tick_size=from_raw(1, price_precision),
        lot_size=from_raw(1, size_precision),
        price_precision=price_precision,
        size_precision=size_precision,
    )
