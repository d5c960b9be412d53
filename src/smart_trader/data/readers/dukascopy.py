"""Dukascopy historical data exports (JForex / dukascopy.com "Historical Data Feed" CSV).

- **dukascopy-bars-csv** — ``Gmt time,Open,High,Low,Close,Volume`` (or ``Local time`` with a
  ``GMT+hhmm`` suffix on each value), times ``DD.MM.YYYY HH:MM:SS.fff``, the bar's open.
- **dukascopy-ticks-csv** — ``Gmt time,Ask,Bid,AskVolume,BidVolume``.

``Gmt time`` is UTC; ``Local time`` values carry their offset. Dukascopy writes volumes in **millions** of
units of the base currency (``45.72`` = 45,720,000 EUR for EUR/USD): they are stored in base units, × 10^6
exactly, as the schema wants (the import's notes say so).

Source: Dukascopy Bank, "Historical Data Feed" export page and JForex "Historical data export" help.
"""

from __future__ import annotations

from pathlib import Path

from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import CSV_SUFFIXES
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind

BARS = "dukascopy-bars-csv"
TICKS = "dukascopy-ticks-csv"
_TIME_COLUMNS = ("gmt time", "local time")
_BARS = ("open", "high", "low", "close", "volume")
_TICKS = ("ask", "bid", "askvolume", "bidvolume")
_VOLUME_NOTE = "Dukascopy volumes are in millions: stored × 1,000,000 in base units"
_MILLIONS = 6


def _time_column(probe: Probe) -> str | None:
    columns = probe.columns or ()
    return next((c for c in columns if c in _TIME_COLUMNS), None)


def _matches_bars(probe: Probe) -> bool:
    return _time_column(probe) is not None and set(_BARS) <= set(probe.columns or ())


def _matches_ticks(probe: Probe) -> bool:
    return _time_column(probe) is not None and set(_TICKS) <= set(probe.columns or ())


def _actual(probe: Probe) -> dict[str, str]:
    assert probe.names is not None
    return {n.lower(): n for n in probe.names}


def read_bars(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Dukascopy bar export (``Gmt time`` is UTC).

    Raises:
        DataValidationError: unparsable times or numbers (file and row named).
    """
    p = probe_file(path)
    actual = _actual(p)
    time = _time_column(p)
    assert time is not None
    fields = {"ts": actual[time], **{f: actual[f] for f in _BARS}}
    table = load_table(p, list(fields.values()))
    zone = "UTC" if time == "gmt time" else None  # local times carry their GMT offset
    choice = ColumnChoice(Kind.BARS, fields, {})
    shift = {"volume": _MILLIONS}
    return convert(str(path), table, choice, options, BARS, tz=zone, notes=(_VOLUME_NOTE,), shift=shift)


def read_ticks(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Dukascopy tick export into quotes (ask/bid with their volumes; ``Gmt time`` is UTC).

    Raises:
        DataValidationError: unparsable times or numbers, crossed quotes (file and row named).
    """
    p = probe_file(path)
    actual = _actual(p)
    time = _time_column(p)
    assert time is not None
    fields = {
        "ts": actual[time], "ask": actual["ask"], "bid": actual["bid"], "ask_size": actual["askvolume"],
        "bid_size": actual["bidvolume"],
    }  # fmt: skip
    table = load_table(p, list(fields.values()))
    zone = "UTC" if time == "gmt time" else None
    choice = ColumnChoice(Kind.QUOTES, fields, {})
    shift = {"bid_size": _MILLIONS, "ask_size": _MILLIONS}
    return convert(str(path), table, choice, options, TICKS, tz=zone, notes=(_VOLUME_NOTE,), shift=shift)


BARS_FORMAT = Format(
    name=BARS,
    kind=Kind.BARS,
    description="Dukascopy export Gmt time,Open,High,Low,Close,Volume (DD.MM.YYYY HH:MM:SS.fff UTC)",
    suffixes=CSV_SUFFIXES,
    columns=("gmt time", *_BARS),
    matches=_matches_bars,
    read=read_bars,
)
TICKS_FORMAT = Format(
    name=TICKS,
    kind=Kind.QUOTES,
    description="Dukascopy tick export Gmt time,Ask,Bid,AskVolume,BidVolume (UTC)",
    suffixes=CSV_SUFFIXES,
    columns=("gmt time", *_TICKS),
    matches=_matches_ticks,
    read=read_ticks,
)
