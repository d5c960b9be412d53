"""The market-data service: import files into the store, and serve bars, trades and quotes from it.

This is the one place that combines readers, validation, the instrument catalog, the Parquet store
and aggregation; the CLI and (later) the HTTP API call it and nothing below it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from smart_trader.config import store_dir
from smart_trader.core.errors import DataValidationError, InvalidInputError, NotFoundError
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.core.values import to_raw
from smart_trader.data.aggregation import quotes_to_bars, resample_bars, trades_to_bars
from smart_trader.data.catalog import InstrumentCatalog, infer_instrument
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.readers import ReadResult, read_file
from smart_trader.data.schema import PRICE_COLUMNS, Kind, PriceType, between, raw_from_decimal, ts_ns
from smart_trader.data.store import DatasetInfo, MarketDataStore
from smart_trader.data.timeframes import Timeframe


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: rows read from the file, rows new to the store, files written, seconds taken."""

    key: DatasetKey
    instrument: Instrument
    format: str
    rows_read: int
    rows_added: int
    partitions_written: int
    seconds: float
    notes: tuple[str, ...] = ()
    """How the file was read (columns, units, time zone, float noise), from :attr:`ReadResult.notes`."""


class MarketDataService:
    """Market data under one home directory: ``<home>/market-data`` (Parquet store and ``instruments.json``)."""

    def __init__(self, home: Path) -> None:
        root = store_dir(home)
        self.store = MarketDataStore(root)
        self.catalog = InstrumentCatalog(root / "instruments.json")

    def import_file(
        self,
        path: Path,
        *,
        symbol: str,
        venue: str,
        kind: Kind | None = None,
        format: str | None = None,
        price_type: PriceType | None = None,
        timeframe: Timeframe | None = None,
        asset_class: AssetClass | None = None,
        tz: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> ImportReport:
        """Read, validate and store one file. Nothing is written unless the whole file is valid.

        A known instrument imposes its precisions and tick size on the file; an unknown one is defined
        from the file (see :func:`~smart_trader.data.catalog.infer_instrument`) and added to the catalog.
        ``tz`` (IANA zone of naive local times) and ``columns`` (field → column mapping) go to
        :func:`~smart_trader.data.readers.read_file`; a file holding several instruments is read for ``symbol``.

        Raises:
            NotFoundError: no such file.
            InvalidInputError: unknown format, the file holds another kind than ``kind``, bars whose
                timeframe cannot be inferred, a conflicting instrument definition.
            DataValidationError: the file breaks a rule (names file, row and rule), including prices
                off the instrument's tick size.
        """
        started = time.perf_counter()
        try:
            known: Instrument | None = self.catalog.get(symbol, venue)
        except NotFoundError:
            known = None
        result = read_file(
            path,
            format,
            price_precision=known.price_precision if known else None,
            size_precision=known.size_precision if known else None,
            price_type=price_type,
            tz=tz,
            columns=columns,
            symbol=symbol,
        )
        if kind is not None and kind is not result.kind:
            raise InvalidInputError(f"{path} holds {result.kind} ({result.format}), not {kind}")
        instrument = known or infer_instrument(
            symbol, venue, result.price_precision, result.size_precision, asset_class_hint=asset_class
        )
        _check_ticks(result.table, result.kind, instrument, str(path))
        if timeframe is not None and result.timeframe is not None and timeframe != result.timeframe:
            raise InvalidInputError(f"{path} holds {result.timeframe} bars, not {timeframe}")
        tf = timeframe or result.timeframe
        if result.kind is Kind.BARS and tf is None:
            raise InvalidInputError(f"cannot infer the bar timeframe of {path}; give --timeframe")
        if result.kind is Kind.BARS and tf is not None:
            _check_alignment(result, tf)
        key = DatasetKey(
            venue,
            symbol,
            result.kind,
            tf if result.kind is Kind.BARS else None,
            result.price_type if result.kind is Kind.BARS else PriceType.LAST,
        )
        report = self.store.write(
            key, result.table, price_precision=instrument.price_precision, size_precision=instrument.size_precision
        )
        self.catalog.add(instrument)  # only once the data is accepted: a refused file defines nothing
        return ImportReport(
            key,
            instrument,
            result.format,
            result.table.num_rows,
            report.rows_added,
            report.partitions_written,
            time.perf_counter() - started,
            result.notes,
        )

    def datasets(self, symbol: str | None = None, venue: str | None = None) -> list[DatasetInfo]:
        """Stored datasets, optionally of one symbol and/or venue."""
        out = self.store.list()
        if symbol is not None:
            out = [d for d in out if d.key.symbol == symbol]
        if venue is not None:
            out = [d for d in out if d.key.venue == venue.upper()]
        return out

    def instrument(self, symbol: str, venue: str) -> Instrument:
        """The instrument ``symbol`` on ``venue``.

        Raises:
            NotFoundError: unknown instrument (the message lists the known ones).
        """
        return self.catalog.get(symbol, venue)

    def bars(
        self,
        symbol: str,
        venue: str,
        timeframe: Timeframe,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        price_type: PriceType | None = None,
    ) -> pa.Table:
        """Bars of ``timeframe`` in [start, end) (ns UTC): stored bars of that timeframe, else built from
        the longest stored shorter timeframe that divides it, else from stored trades, else from quotes
        (bid bars unless ``price_type`` says ask or mid: bid and ask bars stay on the instrument's tick,
        mid bars need one more decimal).

        ``price_type`` ``None`` means trade (``last``) bars when stored; when only several quote-based
        types are stored the choice is the caller's.

        Bars are aligned to multiples of the timeframe since the epoch, so building from a finer series
        needs the range widened to whole buckets; this is done here.

        Raises:
            NotFoundError: unknown instrument, or no stored data that can make these bars.
            InvalidInputError: several bar price types stored and none chosen.
        """
        self.instrument(symbol, venue)
        datasets = self.datasets(symbol, venue)
        bar_sets = [d for d in datasets if d.key.kind is Kind.BARS]
        if price_type is None:
            kinds = sorted({d.key.price_type for d in bar_sets})
            if PriceType.LAST in kinds:
                bar_sets = [d for d in bar_sets if d.key.price_type is PriceType.LAST]
            elif len(kinds) > 1:
                raise InvalidInputError(
                    f"{symbol}.{venue.upper()} has {', '.join(kinds)} bars stored: choose one with --price-type"
                )
        else:
            bar_sets = [d for d in bar_sets if d.key.price_type is price_type]
        lo = None if start_ns is None else start_ns - start_ns % timeframe.ns
        for d in bar_sets:
            if d.key.timeframe == timeframe:
                return self.store.read(d.key, start_ns, end_ns)
        # built bars: whole buckets only, so the range is widened at the start and cut at the end
        hi = None if end_ns is None else end_ns - end_ns % timeframe.ns
        finer = [
            d
            for d in bar_sets
            if d.key.timeframe is not None
            and d.key.timeframe < timeframe
            and timeframe.seconds % d.key.timeframe.seconds == 0
        ]
        if finer:
            best = max(finer, key=lambda d: d.key.timeframe or timeframe)
            assert best.key.timeframe is not None
            return between(
                resample_bars(self.store.read(best.key, lo, hi), timeframe, best.key.timeframe), start_ns, None
            )
        if price_type in (None, PriceType.LAST):
            for d in datasets:
                if d.key.kind is Kind.TRADES:
                    return between(trades_to_bars(self.store.read(d.key, lo, hi), timeframe), start_ns, None)
        for d in datasets:
            if d.key.kind is Kind.QUOTES:
                pt = price_type if price_type not in (None, PriceType.LAST) else PriceType.BID
                assert pt is not None
                return between(quotes_to_bars(self.store.read(d.key, lo, hi), timeframe, pt), start_ns, None)
        have = ", ".join(d.key.kind_dir for d in datasets) or "nothing"
        raise NotFoundError(f"no stored data makes {timeframe} bars of {symbol}.{venue.upper()} (stored: {have})")

    def ticks(
        self, symbol: str, venue: str, kind: Kind, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> pa.Table:
        """Stored trades, quotes or book rows in [start, end) (ns UTC).

        Raises:
            NotFoundError: unknown instrument or no such stored dataset.
        """
        self.instrument(symbol, venue)
        key = DatasetKey(venue, symbol, kind)
        if not any(d.key == key for d in self.datasets(symbol, venue)):
            raise NotFoundError(f"no stored {kind} of {symbol}.{venue.upper()}")
        return self.store.read(key, start_ns, end_ns)


def _check_alignment(result: ReadResult, timeframe: Timeframe) -> None:
    """Every bar opens on a multiple of its timeframe since the epoch (how the store keys bars; a 1h bar opens on
    the hour UTC).

    Raises:
        DataValidationError: ``bar-alignment`` naming the file row of the first bar that does not (a broker's
            session-open bar at 22:05 among hourly bars, bars in a zone whose offset is not whole hours...).
    """
    ts = ts_ns(result.table)
    off = ts % timeframe.ns != 0
    if off.any():
        row = int(np.argmax(off))
        file_row = row + 1 if result.source_rows is None else int(result.source_rows[row])
        when = np.datetime64(int(ts[row]), "ns")
        detail = (
            f"the bar at {when}Z does not open on a {timeframe} boundary (UTC): bars of one timeframe are stored on "
            f"its grid; drop such bars (a session-open bar, say) or import the file as finer bars"
        )
        raise DataValidationError(result.source, "bar-alignment", detail, file_row)


def _check_ticks(table: pa.Table, kind: Kind, instrument: Instrument, file: str) -> None:
    """Every price must be a multiple of the instrument's tick size (names the first offending row)."""
    tick_raw = to_raw(instrument.tick_size, instrument.price_precision)
    if tick_raw == 1:
        return
    for column in PRICE_COLUMNS[kind]:
        raw = raw_from_decimal(table.column(column))
        off = raw % tick_raw != 0
        if off.any():
            row = int(np.argmax(off))
            raise DataValidationError(
                file,
                "tick-size",
                f"{column}={table.column(column)[row]} is off the tick size {instrument.tick_size}",
                row + 1,
            )
