"""MetaTrader 4 and 5 history exports (the terminal's "Export" of bars).

- **mt4-csv** — no header, ``YYYY.MM.DD,HH:MM,open,high,low,close,volume`` (comma or semicolon).
- **mt5-bars-csv** — tab-separated with the header ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL>
  <VOL> <SPREAD>``, dates ``YYYY.MM.DD``, times ``HH:MM[:SS]``.

Times are the **broker's server time**, which the file does not record (commonly UTC+2, UTC+3 in
northern summer, e.g. ``Europe/Athens`` or ``Asia/Nicosia`` zones): the import needs ``--tz`` naming it.
A bar's time is its open. MT4's volume and MT5's ``<TICKVOL>`` count price changes, not units traded: they
are not kept (volume is null); MT5's ``<VOL>`` (real traded volume, set for exchange instruments) is kept
when any row has it. ``<SPREAD>`` (points) is not kept.

Source: MetaTrader 5 help, "Exporting Data" (History Center / Symbols window, Bars tab); MQL4 reference,
"History Center" export layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.compute as pc

from smart_trader.data.readers._base import Format, Probe, ReadOptions, ReadResult
from smart_trader.data.readers._columns import ColumnChoice
from smart_trader.data.readers._files import CSV_SUFFIXES
from smart_trader.data.readers._files import probe as probe_file
from smart_trader.data.readers.generic import convert, load_table
from smart_trader.data.schema import Kind

MT4 = "mt4-csv"
MT5_BARS = "mt5-bars-csv"
_MT4_NAMES = ("date", "time", "open", "high", "low", "close", "volume")
_MT5_COLUMNS = ("<date>", "<time>", "<open>", "<high>", "<low>", "<close>", "<tickvol>", "<vol>", "<spread>")
_DATE = re.compile(r"^\d{4}\.\d\d\.\d\d$")
_TIME = re.compile(r"^\d\d:\d\d(:\d\d)?$")
_ZONE_NOTE = "times are the broker's server time (the file does not say which zone: --tz names it)"


def _matches_mt4(probe: Probe) -> bool:
    row = probe.first_row
    return probe.columns is None and len(row) == 7 and bool(_DATE.match(row[0]) and _TIME.match(row[1]))


def _matches_mt5(probe: Probe) -> bool:
    return probe.columns is not None and probe.columns[:6] == _MT5_COLUMNS[:6]


def read_mt4(path: Path, options: ReadOptions) -> ReadResult:
    """Read a MetaTrader 4 bar export (see the module docstring); needs ``tz``.

    Raises:
        InvalidInputError: no ``tz``.
        DataValidationError: ragged rows, unparsable dates or numbers (file and row named).
    """
    p = probe_file(path)
    fields = {"date": "date", "time": "time", "open": "open", "high": "high", "low": "low", "close": "close"}
    table = load_table(p, list(fields.values()), names=list(_MT4_NAMES))
    notes = (_ZONE_NOTE, "tick volume (a count of price changes, not units traded) not kept: volume is null")
    return convert(str(path), table, ColumnChoice(Kind.BARS, fields, {}), options, MT4, notes=notes)


def read_mt5_bars(path: Path, options: ReadOptions) -> ReadResult:
    """Read a MetaTrader 5 bar export (see the module docstring); needs ``tz``.

    Raises:
        InvalidInputError: no ``tz``.
        DataValidationError: unparsable dates or numbers (file and row named).
    """
    p = probe_file(path)
    assert p.names is not None
    actual = {n.lower(): n for n in p.names}
    fields = {f: actual[f"<{f}>"] for f in ("date", "time", "open", "high", "low", "close")}
    real = actual.get("<vol>")
    table = load_table(p, [*fields.values(), *([real] if real else [])])
    notes = [_ZONE_NOTE]
    if real is not None and pc.max(pc.cast(pc.fill_null(table.column(real), "0"), "float64")).as_py():
        fields["volume"] = real
        notes.append("volume <- <VOL> (real traded volume); <TICKVOL> and <SPREAD> not kept")
    else:
        notes.append("no real volume (<VOL> is 0): volume is null; <TICKVOL> counts price changes and is not kept")
    return convert(str(path), table, ColumnChoice(Kind.BARS, fields, {}), options, MT5_BARS, notes=tuple(notes))


MT4_FORMAT = Format(
    name=MT4,
    kind=Kind.BARS,
    description="MetaTrader 4 history export, no header: YYYY.MM.DD,HH:MM,open,high,low,close,volume (needs --tz)",
    suffixes=CSV_SUFFIXES,
    columns=(),
    matches=_matches_mt4,
    read=read_mt4,
)
MT5_BARS_FORMAT = Format(
    name=MT5_BARS,
    kind=Kind.BARS,
    description="MetaTrader 5 bars export <DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD> "
    "(needs --tz)",
    suffixes=CSV_SUFFIXES,
    columns=_MT5_COLUMNS,
    matches=_matches_mt5,
    read=read_mt5_bars,
)
