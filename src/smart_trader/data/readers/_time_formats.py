"""Recognising how a file writes its times, and turning local wall-clock times into UTC.

:func:`read_times` takes a source time column of any type and returns int64 ns since the epoch, UTC, with
a one-line description of what it recognised (for the import's report):

========================================  ==================================================================
written as                                read as
========================================  ==================================================================
Arrow timestamp with a zone               that instant
Arrow timestamp without a zone            wall-clock time in the zone given (``tz``), else an error
Arrow date / ``YYYY-MM-DD`` alone         a day label: midnight UTC of that date (daily bars)
integers, or digits in text               epoch time, unit told apart by magnitude (below 1e11 s, 1e14 ms,
                                          1e17 µs, else ns); every row must be of one unit
decimal fractions (``1672531436.123``)    epoch seconds with a fraction (exact from text)
ISO 8601 with ``Z`` or an offset          that instant
ISO 8601 without an offset                wall-clock time in ``tz``
``YYYYMMDD HHMMSS[fff]``, ``YYYYMMDD``    wall-clock time in ``tz`` (HistData's layout)
``YYYY.MM.DD HH:MM[:SS]``                 wall-clock time in ``tz`` (MetaTrader's layout)
``DD.MM.YYYY HH:MM:SS[.fff]`` [GMT±hhmm]  day first (Dukascopy's layout); the offset when written
``MM/DD/YYYY ...`` or ``DD/MM/YYYY ...``  the order the values prove (a field above 12), else an error
========================================  ==================================================================

Wall-clock times become UTC through the IANA zone (Polars' time-zone database): a time in a
daylight-saving gap is an error naming the row; a time in a fall-back hour is taken as the first
occurrence until the clock has gone back (a time earlier than one already seen), then as the second.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers._numbers import I64, FloatColumn
from smart_trader.data.readers._times import NS_PER_UNIT, check_no_nulls, epoch_text_to_ns, iso_to_ns, scale_to_ns
from smart_trader.data.schema import single_array

_UNITS = (
    ("s", 1e11, "seconds"),
    ("ms", 1e14, "milliseconds"),
    ("us", 1e17, "microseconds"),
    ("ns", np.inf, "nanoseconds"),
)
_LABELS = {u: label for u, _, label in _UNITS}
_EPOCH_TEXT = re.compile(r"^[+-]?\d+(\.\d+)?$")
_COMPACT_DATE = re.compile(r"^(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")


@dataclass(frozen=True)
class _Layout:
    pattern: re.Pattern[str]
    format: str
    label: str


# Text layouts other than ISO 8601 (which Arrow parses exactly), tried in order on the first value.
_LAYOUTS = (
    _Layout(re.compile(r"^\d{8} \d{9}$"), "%Y%m%d %H%M%S%3f", "YYYYMMDD HHMMSSfff"),
    _Layout(re.compile(r"^\d{8} \d{6}$"), "%Y%m%d %H%M%S", "YYYYMMDD HHMMSS"),
    _Layout(
        re.compile(r"^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d\.\d{3}$"), "%Y.%m.%d %H:%M:%S%.3f", "YYYY.MM.DD HH:MM:SS.fff"
    ),
    _Layout(re.compile(r"^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d$"), "%Y.%m.%d %H:%M:%S", "YYYY.MM.DD HH:MM:SS"),
    _Layout(re.compile(r"^\d{4}\.\d\d\.\d\d \d\d:\d\d$"), "%Y.%m.%d %H:%M", "YYYY.MM.DD HH:MM"),
    _Layout(re.compile(r"^\d{4}\.\d\d\.\d\d$"), "%Y.%m.%d", "YYYY.MM.DD"),
    _Layout(re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d$"), "%Y/%m/%d %H:%M:%S", "YYYY/MM/DD HH:MM:SS"),
    _Layout(re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d$"), "%Y/%m/%d %H:%M", "YYYY/MM/DD HH:MM"),
    _Layout(re.compile(r"^\d{4}/\d\d/\d\d$"), "%Y/%m/%d", "YYYY/MM/DD"),
    _Layout(
        re.compile(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d\.\d{3}$"), "%d.%m.%Y %H:%M:%S%.3f", "DD.MM.YYYY HH:MM:SS.fff"
    ),
    _Layout(re.compile(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d$"), "%d.%m.%Y %H:%M:%S", "DD.MM.YYYY HH:MM:SS"),
    _Layout(re.compile(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d$"), "%d.%m.%Y %H:%M", "DD.MM.YYYY HH:MM"),
    _Layout(re.compile(r"^\d\d\.\d\d\.\d{4}$"), "%d.%m.%Y", "DD.MM.YYYY"),
)
_SLASH_DATE = re.compile(r"^(\d\d?)/(\d\d?)/(\d{4})( \d\d?:\d\d(:\d\d(\.\d+)?)?)?$")
_GMT_SUFFIX = re.compile(r"^(.*\S)\s+(?:GMT|UTC)([+-]\d{2}):?(\d{2})$")


@dataclass(frozen=True)
class Times:
    """A time column converted: ``ns`` since the epoch (UTC), ``description`` of what was recognised."""

    ns: I64
    description: str


def check_zone(tz: str) -> str:
    """``tz`` when it is an IANA time zone name (``Europe/Berlin``, ``UTC``, ``Etc/GMT+5``).

    Raises:
        InvalidInputError: not a known IANA zone (fixed offsets like ``+02:00`` are not zones).
    """
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"--tz {tz!r} is not an IANA time zone; give a name like UTC, Europe/London or America/New_York"
        ) from None
    return tz


def read_times(
    column: pa.ChunkedArray | pa.Array,
    file: str,
    name: str,
    *,
    tz: str | None = None,
    fmt: str | None = None,
    unit: str | None = None,
) -> Times:
    """int64 ns since the epoch (UTC) of a time column, recognised as the module docstring says.

    Args:
        column: the source column (text, integers, floats, Arrow timestamps or dates).
        file, name: for error messages.
        tz: IANA zone of wall-clock times; required when the column holds naive date-times.
        fmt: a strftime format (Polars/chrono dialect, e.g. ``%d/%m/%Y %H:%M``) that the text follows.
        unit: epoch unit (``s``, ``ms``, ``us``, ``ns``) of numbers, instead of telling it by magnitude.

    Raises:
        DataValidationError: ``missing-value`` (an empty time), ``timestamp-format`` (unparsable or
            unrecognised text, mixed epoch units, a time that does not exist in ``tz``), ``range``.
        InvalidInputError: naive date-times and no ``tz`` (the message says to pass ``--tz``); a bad ``tz``.
    """
    if tz is not None:
        check_zone(tz)
    arr = single_array(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    check_no_nulls(arr, file, name)
    t = arr.type
    if pa.types.is_timestamp(t):
        assert isinstance(t, pa.TimestampType)
        values = scale_to_ns(np.asarray(arr.cast(pa.int64()), dtype=np.int64), NS_PER_UNIT[t.unit], file, name)
        if t.tz is not None:
            return Times(values, f"timestamps ({t.tz})")
        return _localized(values, file, name, tz, "timestamps without a zone")
    if pa.types.is_date(t):
        days = np.asarray(arr.cast(pa.date32()).cast(pa.int32()), dtype=np.int64)
        return Times(scale_to_ns(days, NS_PER_DAY, file, name), "dates (day labels, midnight UTC)")
    if pa.types.is_integer(t):
        values = np.asarray(arr.cast(pa.int64()), dtype=np.int64)
        return _epoch(values, file, name, unit)
    if pa.types.is_floating(t):
        return _float_epoch(arr, file, name, unit)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataValidationError(file, "timestamp-format", f"column {name} holds {t}, not times")
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    check_no_nulls(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), file, name)
    if fmt is not None:
        return _strptime(text, fmt, file, name, tz, f"'{fmt}'")
    first = text[0].as_py()
    if _COMPACT_DATE.match(first):
        return _strptime(text, "%Y%m%d", file, name, "UTC", "YYYYMMDD dates (day labels, midnight UTC)")
    if _EPOCH_TEXT.match(first):
        return _epoch_text(text, file, name, unit)
    gmt = _GMT_SUFFIX.match(first)
    if gmt:
        return _with_gmt_suffix(text, file, name)
    for layout in _LAYOUTS:
        if layout.pattern.match(first):
            if "%H" not in layout.format:
                return _strptime(text, layout.format, file, name, "UTC", f"{layout.label} (day labels, midnight UTC)")
            return _strptime(text, layout.format, file, name, tz, layout.label)
    if _SLASH_DATE.match(first):
        return _slash_dates(text, file, name, tz)
    return _iso(text, file, name, tz)


def _unit_of(magnitude: float) -> tuple[str, str]:
    return next((u, label) for u, limit, label in _UNITS if magnitude < limit)


def is_compact_date(text: str) -> bool:
    """``YYYYMMDD`` (years 1900..2099, a real month and day): a date written as digits, not an epoch time."""
    return bool(_COMPACT_DATE.match(text))


def _compact_dates(values: I64) -> bool:
    """Every integer reads as ``YYYYMMDD`` (years 1900..2099, months 1..12, days 1..31)."""
    if len(values) == 0 or int(values.min()) < 19000101 or int(values.max()) > 20991231:
        return False
    month, day = values // 100 % 100, values % 100
    return bool(np.all((month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)))


def _epoch(values: I64, file: str, name: str, unit: str | None) -> Times:
    if unit is None and _compact_dates(values):  # dates written as numbers (20240102), not epoch seconds of 1970
        text = pc.cast(pa.array(values, pa.int64()), pa.string())
        return _strptime(text, "%Y%m%d", file, name, "UTC", "YYYYMMDD dates (day labels, midnight UTC)")
    if unit is None:
        magnitudes = np.abs(values)
        unit, label = _unit_of(float(magnitudes.max()) if len(values) else 0.0)
        low, _ = _unit_of(float(magnitudes.min()) if len(values) else 0.0)
        if low != unit and float(magnitudes.min()) > 0:
            row = int(np.argmin(magnitudes))
            detail = (
                f"{name}={int(values[row])} is epoch {_LABELS[low]} while other rows "
                f"are epoch {label}: one unit per file"
            )
            raise DataValidationError(file, "timestamp-format", detail, row + 1)
    else:
        label = _LABELS[unit]
    return Times(scale_to_ns(values, NS_PER_UNIT[unit], file, name), f"epoch {label}, UTC")


def _epoch_text(text: pa.Array, file: str, name: str, unit: str | None) -> Times:
    try:
        whole = pc.cast(text, pa.int64())  # the common case: whole numbers, parsed in C++
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        whole = None
    if whole is not None:
        return _epoch(np.asarray(whole, dtype=np.int64), file, name, unit)
    unit = unit or "s"  # a fraction: seconds with decimals (Kraken, many exports), read exactly from the text
    return Times(epoch_text_to_ns(text, file, name, unit), f"epoch {_LABELS[unit]}, UTC")


def _float_epoch(arr: pa.Array, file: str, name: str, unit: str | None) -> Times:
    values = np.asarray(arr.cast(pa.float64()), dtype=np.float64)
    if np.all(values == np.rint(values)) and np.all(np.abs(values) < 2.0**63):
        return _epoch(values.astype(np.int64), file, name, unit)
    column = FloatColumn(file, name, values)
    decimals = min(column.needed_precision(), 9)
    raw = column.raw_at(decimals)  # the decimal the float stands for, exactly
    unit = unit or "s"
    per = NS_PER_UNIT[unit]
    if per % 10**decimals:
        raise DataValidationError(file, "timestamp-format", f"{name} has a fraction finer than 1 ns")
    label = _LABELS[unit]
    return Times(scale_to_ns(raw, per // 10**decimals, file, name), f"epoch {label} with a fraction, UTC")


def _iso(text: pa.Array, file: str, name: str, tz: str | None) -> Times:
    try:
        pc.cast(text.slice(0, 1), pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            pc.cast(text.slice(0, 1), pa.timestamp("ns"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            detail = (
                f"{name}={text[0].as_py()!r} is not a time layout Smart Trader recognises; "
                "give its format with --columns ts=COLUMN:FORMAT (e.g. ts=Date:%d/%m/%Y)"
            )
            raise DataValidationError(file, "timestamp-format", detail, 1) from None
        if len(text[0].as_py()) <= 10:  # YYYY-MM-DD: a day label
            return Times(iso_to_ns(text, file, name), "ISO 8601 dates (day labels, midnight UTC)")
        wall = iso_to_ns(text, file, name)  # without an offset, the wall clock read as if UTC
        return _localized(wall, file, name, tz, "ISO 8601 without an offset")
    return Times(iso_to_ns(text, file, name), "ISO 8601 with a UTC offset")


def _strptime(text: pa.Array, fmt: str, file: str, name: str, tz: str | None, label: str) -> Times:
    series = pl.Series(name, text)
    parsed = series.str.to_datetime(fmt, time_unit="ns", strict=False)
    bad = parsed.is_null() & series.is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        detail = f"{name}={series[row]!r} does not match the layout {label} of the first row"
        raise DataValidationError(file, "timestamp-format", detail, row + 1)
    if parsed.dtype == pl.Datetime("ns") or getattr(parsed.dtype, "time_zone", None) is None:
        return _localized(parsed.cast(pl.Int64).to_numpy(), file, name, tz, label)
    utc = parsed.dt.convert_time_zone("UTC").cast(pl.Int64).to_numpy()
    return Times(utc, f"{label} with offsets")


def _with_gmt_suffix(text: pa.Array, file: str, name: str) -> Times:
    """Dukascopy's local-time exports: ``01.01.2020 02:00:00.000 GMT+0200`` → ISO with an offset."""
    iso = pc.replace_substring_regex(
        text,
        r"^(\d\d)\.(\d\d)\.(\d{4}) (\d\d:\d\d:\d\d(?:\.\d+)?)\s+(?:GMT|UTC)([+-]\d\d):?(\d\d)$",
        r"\3-\2-\1T\4\5:\6",
    )
    times = iso_to_ns(iso, file, name)
    return Times(times, "DD.MM.YYYY HH:MM:SS.fff with a GMT offset")


def _slash_dates(text: pa.Array, file: str, name: str, tz: str | None) -> Times:
    parts = pc.extract_regex(text, r"^(?P<a>\d\d?)/(?P<b>\d\d?)/")
    a = np.asarray(pc.cast(pc.struct_field(parts, "a"), pa.int64()), dtype=np.int64)
    b = np.asarray(pc.cast(pc.struct_field(parts, "b"), pa.int64()), dtype=np.int64)
    if (a > 12).any() and (b > 12).any():
        raise DataValidationError(file, "timestamp-format", f"{name} has day and month in both orders")
    if (a > 12).any():
        order = "%d/%m/%Y"
    elif (b > 12).any():
        order = "%m/%d/%Y"
    else:
        detail = (
            f"{name}={text[0].as_py()!r}: day and month cannot be told apart (no field above 12); give the order "
            "with --columns ts=COLUMN:%d/%m/%Y or ts=COLUMN:%m/%d/%Y"
        )
        raise DataValidationError(file, "timestamp-format", detail, 1)
    first = text[0].as_py()
    clock = first.split(" ", 1)[1] if " " in first else ""
    fmt = order + ("" if not clock else " %H:%M:%S" if clock.count(":") == 2 else " %H:%M")
    if "." in clock:
        fmt = order + " %H:%M:%S%.f"
    label = fmt.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY")
    if not clock:
        return _strptime(text, fmt, file, name, "UTC", f"{label} (day labels, midnight UTC)")
    return _strptime(text, fmt, file, name, tz, label)


def _localized(wall: I64, file: str, name: str, tz: str | None, label: str) -> Times:
    """UTC ns of wall-clock times in ``tz`` (see the module docstring for gaps and repeated hours).

    Raises:
        InvalidInputError: ``tz`` is ``None``.
        DataValidationError: ``timestamp-format`` for a time in a daylight-saving gap.
    """
    if tz is None:
        raise InvalidInputError(
            f"{file}: {name} holds local times without a zone ({label}); pass --tz with the IANA zone they are in "
            "(e.g. --tz UTC, --tz Europe/London, --tz America/New_York)"
        )
    if tz == "UTC":
        return Times(wall, label if "UTC" in label else f"{label}, UTC")
    local = pl.Series(name, wall).cast(pl.Datetime("ns"))
    previous_max = pl.Series(np.maximum.accumulate(np.r_[np.iinfo(np.int64).min, wall[:-1]]))
    repeat = pl.Series(wall < previous_max.to_numpy())  # the clock went back: a fall-back hour's second pass
    ambiguous = pl.Series(np.where(repeat.to_numpy(), "latest", "earliest"))
    frame = pl.DataFrame({"t": local, "a": ambiguous})
    try:
        zoned = frame.select(
            pl.col("t").dt.replace_time_zone(tz, ambiguous=pl.col("a"), non_existent="null")
        ).to_series()
    except pl.exceptions.ComputeError as exc:  # pragma: no cover - Polars versions differ in what they raise
        raise DataValidationError(file, "timestamp-format", f"{name}: {exc}") from None
    gap = zoned.is_null()
    if gap.any():
        row = int(gap.arg_true()[0])
        when = np.datetime64(int(wall[row]), "ns")
        detail = f"{name}={when} does not exist in {tz} (the clocks skipped it for daylight saving)"
        raise DataValidationError(file, "timestamp-format", detail, row + 1)
    utc = zoned.dt.convert_time_zone("UTC").cast(pl.Int64).to_numpy()
    return Times(np.asarray(utc, dtype=np.int64), f"{label}, local time in {tz}")
