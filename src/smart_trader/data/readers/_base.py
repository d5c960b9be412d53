"""Types shared by the readers: the result of a read, the caller's options and a format's entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from smart_trader.data.schema import Kind, PriceType
from smart_trader.data.timeframes import Timeframe

if TYPE_CHECKING:
    from smart_trader.data.readers._source import Source


@dataclass(frozen=True)
class ReadResult:
    """A market-data file read into the normalized schema of its kind.

    Attributes:
        kind: bars, trades or quotes.
        table: exactly ``schema_for(kind, price_precision, size_precision)``, one row per data row of
            the file and in the file's order (row ``i`` of the table is data row ``i + 1``, header
            excluded). ``ts_event`` is Arrow ``timestamp[ns, UTC]`` (ns since the epoch); prices are
            decimals in the quote currency, sizes and volumes decimals in base units (shares, coins).
        price_precision: decimals of every price column (inferred, or the caller's).
        size_precision: decimals of every size/volume column (0 when the source has none).
        format: name of the reader in :data:`smart_trader.data.readers.FORMATS`, e.g. ``"yahoo-csv"``.
        timeframe: bars only — the most common positive step between consecutive ``ts_event``
            values; ``None`` for trades and quotes, for a single bar, or when that step is not a
            whole number of seconds between 1s and 1d.
        price_type: bars: what the prices are (``last`` for trade prices, ``bid``/``ask`` for FX
            quote bars); ``last`` for trades and quotes.
        source: the path as the caller gave it.
        notes: how the file was read, for the user: which column became which field, in which unit and
            time zone (``("ts_event <- 'timestamp' (epoch milliseconds, UTC)", "open <- 'o'", ...)``).
        source_rows: the 1-based file row of each table row when they differ from ``i + 1`` (rows of other
            instruments or incomplete rows skipped, a newest-first file reversed); ``None`` otherwise.
    """

    kind: Kind
    table: pa.Table
    price_precision: int
    size_precision: int
    format: str
    timeframe: Timeframe | None
    price_type: PriceType
    source: str
    notes: tuple[str, ...] = ()
    source_rows: npt.NDArray[np.int64] | None = None


@dataclass(frozen=True)
class ReadOptions:
    """What the caller imposes on a read; ``None`` means infer from the file.

    Attributes:
        price_precision, size_precision: decimals of prices and sizes.
        price_type: bars: what the prices are.
        tz: IANA time zone of naive local timestamps (``"America/New_York"``); formats whose vendor
            documents the zone use it, and a file with naive times and no documented zone needs it.
        columns: field → source column (name, or 1-based position for files without names), overriding
            the names the generic reader recognises (``{"ts": "Date", "close": "Last"}``). A value may end in
            ``:FORMAT`` (strftime) for a time column (``"ts": "Date:%d/%m/%Y"``).
        symbol: for files holding several instruments (Tardis, Databento): the one to read.
    """

    price_precision: int | None = None
    size_precision: int | None = None
    price_type: PriceType | None = None
    tz: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    symbol: str | None = None


@dataclass(frozen=True)
class Probe:
    """What format detection looks at: the file's suffix and its column names.

    Attributes:
        path: the file.
        suffix: lower-case last suffix (``".csv"``, ``".parquet"``, ``".feather"``...).
        columns: lower-case column names from the CSV header or the Arrow schema; ``None`` for a CSV
            whose first line is data (no header).
        first_row: the first data row's fields as text (CSV or JSON); empty for binary files.
        source: the opened file (container, compression, name inside an archive).
        delimiter: field separator of a text table, ``None`` for other containers.
        names: the column names as the file writes them (``columns`` lower-cases them); ``None`` likewise.
    """

    path: Path
    suffix: str
    columns: tuple[str, ...] | None
    first_row: tuple[str, ...] = ()
    source: Source | None = None
    delimiter: str | None = None
    names: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """The data file's own name (inside an archive, without compression suffixes), lower case."""
        return (self.source.name if self.source is not None else self.path.name).lower()


@dataclass(frozen=True)
class Format:
    """One entry of the reader registry.

    Attributes:
        name: registry name, e.g. ``"binance-trades-parquet"``.
        kind: the kind of data the format holds.
        description: one line for humans (layout, units, conventions).
        suffixes: file suffixes the format is detected on.
        columns: lower-case columns the format requires (empty for a CSV without header); used to
            say which columns a near-miss file lacks.
        matches: True when a probed file has this format's columns.
        read: reads a file of this format (validation is :func:`read_file`'s job).
    """

    name: str
    kind: Kind
    description: str
    suffixes: tuple[str, ...]
    columns: tuple[str, ...]
    matches: Callable[[Probe], bool]
    read: Callable[[Path, ReadOptions], ReadResult]


def has_columns(columns: tuple[str, ...]) -> Callable[[Probe], bool]:
    """A format test: the file has a header or schema containing all of ``columns`` (lower case)."""

    def matches(probe: Probe) -> bool:
        return probe.columns is not None and set(columns) <= set(probe.columns)

    return matches
