"""Yahoo Finance daily bars CSV: ``Date,Open,High,Low,Close,Adj Close,Volume``.

- ``ts_event`` is midnight UTC of ``Date``. ``Date`` is the exchange's *local* trading day (for a
  NASDAQ stock the session runs 09:30–16:00 America/New_York), so ``ts_event`` is a label for that
  day, not the instant the session opened.
- Prices are ``Open``/``High``/``Low``/``Close`` as traded (split-adjusted by Yahoo, but not
  dividend-adjusted). ``Adj Close`` is ignored: it is rescaled backwards at every dividend, so it
  does not match the other three columns and would break ``low <= close <= high``.
- ``Volume`` is in shares. Cells ``null`` (Yahoo's missing day) are missing values.
"""

from __future__ import annotations

from pathlib import Path

from smart_trader.data.readers._base import Format, ReadOptions, ReadResult, has_columns
from smart_trader.data.readers._build import build_result
from smart_trader.data.readers._files import CSV_SUFFIXES, read_csv_columns
from smart_trader.data.readers._numbers import text_column
from smart_trader.data.readers._times import iso_to_ns
from smart_trader.data.schema import Kind, PriceType

NAME = "yahoo-csv"
_COLUMNS = ("date", "open", "high", "low", "close", "volume")
_SIGNATURE = (*_COLUMNS, "adj close")


def read_yahoo_csv(path: Path, options: ReadOptions) -> ReadResult:
    """Read a Yahoo Finance daily CSV into bars (see the module docstring for the conventions).

    Raises:
        DataValidationError: missing columns, unparsable dates or numbers, precision (file and row named).
    """
    file = str(path)
    cols = read_csv_columns(path, _COLUMNS)
    numbers = {name: text_column(cols[name], file, name) for name in ("open", "high", "low", "close", "volume")}
    return build_result(
        kind=Kind.BARS,
        fmt=NAME,
        path=file,
        options=options,
        ts=iso_to_ns(cols["date"], file, "date"),
        numbers=numbers,
        price_type=PriceType.LAST,
    )


FORMAT = Format(
    name=NAME,
    kind=Kind.BARS,
    description="Yahoo Finance daily CSV Date,Open,High,Low,Close,Adj Close,Volume (Close used, Adj Close ignored)",
    suffixes=CSV_SUFFIXES,
    columns=_SIGNATURE,
    matches=has_columns(_SIGNATURE),
    read=read_yahoo_csv,
)
