"""HistData.com free FX data, "Generic ASCII" (and the identical NinjaTrader ``DAT_NT_`` bar layout).

- **histdata-ascii-bars** — no header, semicolon-separated ``YYYYMMDD HHMMSS;open;high;low;close;volume``
  (1-minute bars, the bar's open time).
- **histdata-ascii-ticks** — no header, comma-separated ``YYYYMMDD HHMMSSfff,bid,ask,volume``.

Times are **Eastern Standard Time without daylight saving**, UTC−5 all year (HistData's FAQ: "all data
is in EST (Eastern Standard Time) without Day Light Savings adjustments"): read in the IANA zone
``Etc/GMT+5`` (``--tz`` overrides). Volume is always 0 for FX: not kept (null).

Source: histdata.com, "Data Formats Explained" and FAQ (Generic ASCII M1 and Tick layouts).
"""

from __future__ import annotations

import re
from pathlib import Path

from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import CSV_SUFFIXES
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind

BARS = "histdata-ascii-bars"
TICKS = "histdata-ascii-ticks"
ZONE = "Etc/GMT+5"
"""EST without daylight saving (IANA ``Etc/GMT+5`` is UTC−5: the sign is POSIX's)."""
_BAR_TIME = re.compile(r"^\d{8} \d{6}$")
_TICK_TIME = re.compile(r"^\d{8} \d{9}$")
_NOTE = "HistData times are EST without daylight saving (UTC-5 all year); FX volume (always 0) not kept"


def _matches_bars(probe: Probe) -> bool:
    row = probe.first_row
    return probe.columns is None and probe.delimiter == ";" and len(row) == 6 and bool(_BAR_TIME.match(row[0]))


def _matches_ticks(probe: Probe) -> bool:
    row = probe.first_row
    return probe.columns is None and len(row) == 4 and bool(_TICK_TIME.match(row[0]))


def read_bars(path: Path, options: ReadOptions) -> ReadResult:
    """Read HistData ASCII 1-minute bars (EST without daylight saving).

    Raises:
        DataValidationError: ragged rows, unparsable times or numbers (file and row named).
    """
    p = probe_file(path)
    names = ["ts", "open", "high", "low", "close", "volume"]
    table = load_table(p, names[:5], names=names)
    choice = ColumnChoice(Kind.BARS, {n: n for n in names[:5]}, {})
    return convert(str(path), table, choice, options, BARS, tz=ZONE, notes=(_NOTE,))


def read_ticks(path: Path, options: ReadOptions) -> ReadResult:
    """Read HistData ASCII ticks into quotes (bid and ask, no sizes; EST without daylight saving).

    Raises:
        DataValidationError: ragged rows, unparsable times or numbers, crossed quotes (file and row named).
    """
    p = probe_file(path)
    names = ["ts", "bid", "ask", "volume"]
    table = load_table(p, names[:3], names=names)
    choice = ColumnChoice(Kind.QUOTES, {n: n for n in names[:3]}, {})
    return convert(str(path), table, choice, options, TICKS, tz=ZONE, notes=(_NOTE,))


BARS_FORMAT = Format(
    name=BARS,
    kind=Kind.BARS,
    description="HistData.com ASCII 1-minute bars YYYYMMDD HHMMSS;open;high;low;close;volume (EST, no DST)",
    suffixes=CSV_SUFFIXES,
    columns=(),
    matches=_matches_bars,
    read=read_bars,
)
TICKS_FORMAT = Format(
    name=TICKS,
    kind=Kind.QUOTES,
    description="HistData.com ASCII ticks YYYYMMDD HHMMSSfff,bid,ask,volume (EST, no DST)",
    suffixes=CSV_SUFFIXES,
    columns=(),
    matches=_matches_ticks,
    read=read_ticks,
)
