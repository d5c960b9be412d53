"""Exact conversion of source numbers to decimals: fixed-point int64 "raw" values (value × 10**precision)
where they fit, Arrow ``decimal128(38, precision)`` beyond (sizes and volumes of any magnitude).

Three routes, chosen by the source column's Arrow type:

- **text** (CSV): the fast route parses the text to binary floats and snaps them (the float route below),
  taken only where that provably loses nothing: every value has at most 15 significant digits (a double
  keeps 15), or is float noise. Otherwise Arrow's decimal parser reads the digits as an integer — no binary
  float involved — and names any bad row. The precision a column *needs* ignores trailing zeros
  (``"90.540000"`` needs 2 decimals). Text that is a binary float printed in full — 16 or more significant
  digits and exactly the shortest text of its double, like ``203889.11713750003`` written by ``repr`` of a
  float that stood for ``203889.1171375`` — is *float noise*: it is read as the shortest decimal within the
  noise allowance below (``203889.1171375``), so one noisy row never sets the precision of a whole column.
  Long text a float printer would not write (``98765432.12345601``) is real digits and kept.
- **integers / decimals**: taken as they are.
- **binary floats** (Parquet, Feather): a float is read as the decimal ``d`` with ``p`` decimals when
  it is the nearest double to ``d`` — the rule of :func:`smart_trader.data.schema.raw_from_float`,
  which recovers ``d`` exactly. Real exports also carry values one or two ulps away from ``d``,
  left by float arithmetic upstream (``0.014596000000000001`` for ``0.014596``); those are read as
  ``d`` too, but only while ``|d × 10**p| < 2**42``, i.e. while the value keeps at least ten spare
  bits beyond its decimals so that ``d`` is unambiguous. Anything further off is a
  :class:`DataValidationError` (rule ``precision``), never a silent rounding. An integral float beyond
  2**53 (a huge volume) is the integer it holds.

Values whose raw integer does not fit int64 (``1e15`` at 8 decimals) stay ``decimal128``
(:meth:`NumericColumn.to_decimal`); only prices must fit int64 (the engine's fixed-point prices), and
:meth:`NumericColumn.raw_at` says so.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.errors import DataValidationError
from smart_trader.core.values import from_raw
from smart_trader.data.schema import (
    MAX_PRECISION,
    Int64OverflowError,
    decimal_from_raw,
    decimal_type,
    raw_from_decimal,
    single_array,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

NOISE_ULPS = 2
"""Largest distance, in units in the last place, at which a float still reads as a nearby decimal."""
_EXACT_LIMIT = 2.0**53
_TEXT_MAX_SCALE = 18
_NOISE_DIGITS = 16
"""Significant digits from which a plain decimal text is taken for a printed binary float."""
_NOISE_TEXT_LIMIT = 2.0**47
"""Largest ``|d × 10**p|`` at which printed float noise is read as ``d``: decimals stay at least 64 ulps
apart, so a value within :data:`NOISE_ULPS` of one of them names it without doubt. (Text of 16+ digits is
known to be a printed float; binary float columns keep the stricter ten spare bits, since there every
value, clean or not, must be judged.)"""
_DECIMAL_DIGITS = 38
_SAMPLE = 65_536
_INT64_MAX = np.iinfo(np.int64).max
_PLAIN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


class NumericColumn(ABC):
    """One numeric source column on its way to ``decimal128``; null slots hold raw 0."""

    def __init__(self, file: str, name: str, mask: Mask | None) -> None:
        self.file = file
        self.name = name
        self.mask = mask if mask is not None and mask.any() else None
        self.notes: list[str] = []
        """What the conversion decided that the user should know (float noise read as decimals)."""

    @abstractmethod
    def needed_precision(self) -> int:
        """Smallest number of decimals that writes every value of the column exactly."""

    @abstractmethod
    def raw_at(self, precision: int) -> I64:
        """int64 values × 10**precision, exact.

        Raises:
            DataValidationError: a value needs more decimals (``precision``) or does not fit (``range``).
        """

    def to_decimal(self, precision: int) -> pa.Array:
        """``decimal128(38, precision)`` values, exact, nulls kept; for values of any magnitude.

        Raises:
            DataValidationError: a value needs more decimals (``precision``) or more than 38 digits (``range``).
        """
        try:
            raw = self.raw_at(precision)
        except DataValidationError as exc:
            if exc.rule != "range":
                raise
            return self._wide_decimal(precision)
        return decimal_from_raw(raw, precision, self.mask)

    def _wide_decimal(self, precision: int) -> pa.Array:
        """:meth:`to_decimal` for values beyond int64 (rare: called only when :meth:`raw_at` overflows)."""
        raise DataValidationError(
            self.file, "range", f"{self.name} does not fit a 64-bit integer at {precision} decimals"
        )

    def first_null_row(self) -> int | None:
        """1-based row of the first null value, ``None`` when there is none."""
        return None if self.mask is None else int(np.argmax(self.mask)) + 1

    def all_null(self) -> bool:
        """True when the column holds no value at all."""
        return self.mask is not None and bool(self.mask.all())


class ScaledColumn(NumericColumn):
    """Values already exact as int64 at ``scale`` decimals (parsed text, integers, decimals)."""

    def __init__(self, file: str, name: str, raw: I64, scale: int, mask: Mask | None = None) -> None:
        super().__init__(file, name, mask)
        self.raw = raw
        self.scale = scale

    def needed_precision(self) -> int:
        if self.scale == 0 or len(self.raw) == 0:
            return 0
        g = int(np.gcd.reduce(self.raw))  # nulls hold 0, which divides nothing away
        if g == 0:
            return 0
        trailing = 0
        while trailing < self.scale and g % 10 ** (trailing + 1) == 0:
            trailing += 1
        return self.scale - trailing

    def raw_at(self, precision: int) -> I64:
        if precision >= self.scale:
            factor = 10 ** (precision - self.scale)
            if factor == 1:
                return self.raw
            too_big = np.abs(self.raw) > _INT64_MAX // factor
            if too_big.any():
                row = int(np.argmax(too_big))
                raise DataValidationError(
                    self.file, "range", f"{self.name} does not fit a 64-bit integer at {precision} decimals", row + 1
                )
            scaled: I64 = self.raw * np.int64(factor)
            return scaled
        div = 10 ** (self.scale - precision)
        bad = self.raw % div != 0
        if bad.any():
            row = int(np.argmax(bad))
            value = from_raw(int(self.raw[row]), self.scale)
            raise DataValidationError(
                self.file, "precision", f"{self.name}={value} has more than {precision} decimals", row + 1
            )
        reduced: I64 = self.raw // np.int64(div)
        return reduced

    def _wide_decimal(self, precision: int) -> pa.Array:
        return _upscale(decimal_from_raw(self.raw, self.scale, self.mask), precision, self.file, self.name)


class WideColumn(NumericColumn):
    """Exact decimals whose fixed-point integers do not fit int64 (huge volumes), kept as ``decimal128``."""

    def __init__(self, file: str, name: str, values: pa.Array) -> None:
        super().__init__(file, name, _null_mask(values))
        self.values = values
        self.scale = int(values.type.scale)

    def needed_precision(self) -> int:
        lo, hi = 0, self.scale  # the fewest decimals at which the values rescale without loss
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                pc.cast(self.values, decimal_type(mid), safe=True)
            except pa.ArrowInvalid:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def raw_at(self, precision: int) -> I64:
        values = self.to_decimal(precision)
        try:
            return raw_from_decimal(values)
        except Int64OverflowError as exc:
            detail = f"{self.name}={values[exc.row].as_py()} does not fit a 64-bit integer at {precision} decimals"
            raise DataValidationError(self.file, "range", detail, exc.row + 1) from None

    def to_decimal(self, precision: int) -> pa.Array:
        if precision >= self.scale:
            return _upscale(self.values, precision, self.file, self.name)
        target = decimal_type(precision)

        def convert(a: pa.Array) -> pa.Array:
            return pc.cast(a, target, safe=True)

        try:
            return convert(self.values)
        except pa.ArrowInvalid:
            row = first_failing_row(self.values, convert)
            detail = f"{self.name}={self.values[row].as_py()} has more than {precision} decimals"
            raise DataValidationError(self.file, "precision", detail, row + 1) from None


def _upscale(values: pa.Array, precision: int, file: str, name: str) -> pa.Array:
    """``values`` (decimal128) at ``precision`` >= their scale: exact, unless a value exceeds 38 digits."""
    target = decimal_type(precision)

    def convert(a: pa.Array) -> pa.Array:
        return pc.cast(a, target, safe=True)

    try:
        return convert(values)
    except pa.ArrowInvalid:
        row = first_failing_row(values, convert)
        detail = f"{name}={values[row].as_py()} has more than {_DECIMAL_DIGITS} digits at {precision} decimals"
        raise DataValidationError(file, "range", detail, row + 1) from None


class FloatColumn(NumericColumn):
    """Binary float values, read as the decimals the source wrote (see the module docstring)."""

    def __init__(self, file: str, name: str, values: F64, *, noise_limit: float = 2.0**42) -> None:
        """``noise_limit``: the largest ``|d × 10**p|`` at which a value within :data:`NOISE_ULPS` of ``d`` is
        read as ``d`` (ten spare bits for binary floats; text known to be printed floats uses
        :data:`_NOISE_TEXT_LIMIT`)."""
        self.noise_limit = noise_limit
        finite = np.isfinite(values)
        nan = None
        if not finite.all():
            nan = np.isnan(values)
            infinite = ~finite & ~nan
            if infinite.any():
                row = int(np.argmax(infinite))
                detail = f"{name}={float(values[row])!r} is not finite"
                raise DataValidationError(file, "number-format", detail, row + 1)
        super().__init__(file, name, nan)
        self.values = np.where(finite, values, 0.0) if nan is not None else values
        self._max_abs = float(np.max(np.abs(self.values))) if len(self.values) else 0.0
        self._last: tuple[int, F64, int | None] | None = None
        self._diagnosis: tuple[int, int] | None = None

    def _snapped(self, precision: int) -> tuple[F64, int | None]:
        if self._last is None or self._last[0] != precision:
            self._last = (precision, *_snap(self.values, precision, self._max_abs, self.noise_limit))
        return self._last[1], self._last[2]

    def needed_precision(self) -> int:
        v = self.values
        sample = v[:: max(1, len(v) // _SAMPLE)]
        p = 0
        while p < MAX_PRECISION and _snap(sample, p, self._max_abs, self.noise_limit)[1] is not None:
            p += 1
        while p < MAX_PRECISION and self._snapped(p)[1] is not None:
            p += 1
        if self._snapped(p)[1] is not None:  # no precision reads every value: find the ones to blame
            self._diagnosis = self._worst_rows()
        return p  # MAX_PRECISION may still fail: raw_at reports the row

    def _worst_rows(self) -> tuple[int, int]:
        """``(precision, first bad row)`` at the precision most values read at (error path only): the row to
        name is the one that breaks the column's own precision, not the largest value at 12 decimals."""
        best: tuple[int, int, int] | None = None  # (bad rows, precision, first bad row)
        for p in range(MAX_PRECISION + 1):
            k = np.rint(self.values * 10.0**p)
            exact = (k / 10.0**p == self.values) & (np.abs(k) < _EXACT_LIMIT)
            bad = np.flatnonzero(~exact)
            if best is None or len(bad) < best[0]:
                best = (len(bad), p, int(bad[0]) if len(bad) else 0)
        assert best is not None
        return best[1], best[2]

    def reads_exactly(self, precision: int) -> bool:
        """True when every value reads as a decimal of ``precision`` decimals whose fixed-point integer is below
        2**53 (what :meth:`raw_at` will return without an error)."""
        if self._max_abs * 10.0**precision >= _EXACT_LIMIT:
            return False
        return self._snapped(precision)[1] is None

    def raw_at(self, precision: int) -> I64:
        k, bad = self._snapped(precision)
        self._last = None
        if bad is not None and self._diagnosis is not None and precision == MAX_PRECISION:
            clean, row = self._diagnosis
            value = float(self.values[row])
            detail = (
                f"{self.name}={value!r} is not a number with at most {clean} decimals like the column's other values"
            )
            if abs(value) * 10.0**clean >= self.noise_limit:
                detail += "; too large to tell binary-float noise from digits (write the file's numbers as text)"
            raise DataValidationError(self.file, "precision", detail, row + 1)
        if bad is not None:
            value = float(self.values[bad])  # a Python float prints as 0.1, not np.float64(0.1)
            if abs(value) * 10.0**precision >= _EXACT_LIMIT:
                detail = (
                    f"{self.name}={value!r} is too large to read exactly from a binary float at {precision} decimals"
                )
                raise DataValidationError(self.file, "range", detail, bad + 1)
            detail = f"{self.name}={value!r} is not a number with at most {precision} decimals"
            raise DataValidationError(self.file, "precision", detail, bad + 1)
        if self._max_abs * 10.0**precision >= 2.0**63 or (precision > 0 and self._max_abs >= _EXACT_LIMIT):
            row = int(np.argmax(np.abs(self.values)))
            detail = f"{self.name}={float(self.values[row])!r} does not fit a 64-bit integer at {precision} decimals"
            raise DataValidationError(self.file, "range", detail, row + 1)
        raw = k.astype(np.int64)
        if self._max_abs >= _EXACT_LIMIT:  # beyond 2**53 (precision 0 here): the decimal the float prints as
            for i in np.flatnonzero(np.abs(self.values) >= _EXACT_LIMIT).tolist():
                raw[i] = _printed_integer(float(self.values[i]), 0)
        return raw

    def _wide_decimal(self, precision: int) -> pa.Array:
        k, bad = _snap(self.values, precision, self._max_abs, self.noise_limit)
        if bad is not None:
            self.raw_at(precision)  # raises the precision error naming the row
        huge = np.abs(self.values) >= _EXACT_LIMIT
        ints = [
            _printed_integer(float(v), precision) if h else int(x) for v, x, h in zip(self.values, k, huge, strict=True)
        ]  # exact Python integers: rare, only for values beyond int64
        scaled = [None if m else Decimal(i).scaleb(-precision) for i, m in zip(ints, self._null_list(), strict=True)]
        return pa.array(scaled, decimal_type(precision))

    def _null_list(self) -> list[bool]:
        return [False] * len(self.values) if self.mask is None else self.mask.tolist()


class ShiftedColumn(NumericColumn):
    """A column whose values are ``inner``'s × ``10**shift``, exactly: a unit change such as millions → units.

    The fixed-point integers are the same numbers: ``raw_at(p)`` is ``inner.raw_at(p + shift)``.
    """

    def __init__(self, inner: NumericColumn, shift: int) -> None:
        super().__init__(inner.file, inner.name, inner.mask)
        self.inner = inner
        self.shift = shift
        self.notes = inner.notes

    def needed_precision(self) -> int:
        return max(0, self.inner.needed_precision() - self.shift)

    def raw_at(self, precision: int) -> I64:
        return self.inner.raw_at(precision + self.shift)

    def to_decimal(self, precision: int) -> pa.Array:
        wide = self.inner.to_decimal(precision + self.shift)
        return pa.Array.from_buffers(decimal_type(precision), len(wide), wide.buffers(), null_count=wide.null_count)


def _printed_integer(value: float, precision: int) -> int:
    """``value × 10**precision`` of a float beyond 2**53, read as the decimal it prints as (``4.34805633907e19`` is
    43,480,563,390,700,000,000, not the 43,480,563,390,699,998,720 its binary value holds)."""
    return int(Decimal(repr(value)).scaleb(precision))


def _snap(values: F64, precision: int, max_abs: float, limit: float = 2.0**42) -> tuple[F64, int | None]:
    """Nearest integers of ``values × 10**precision`` and the 0-based index of the first value that
    is not (within the noise allowance) a decimal with ``precision`` decimals, or ``None``.

    ``max_abs`` bounds ``|values|``; it spares a pass for the range check in the common case.
    """
    scale = 10.0**precision
    k = values * scale
    np.rint(k, out=k)
    if max_abs * scale < _EXACT_LIMIT:
        exact = k / scale == values
    else:  # a float beyond 2**53 is an integer: the one it holds
        exact = ((k / scale == values) & (np.abs(k) < _EXACT_LIMIT)) | (np.abs(values) >= _EXACT_LIMIT)
    if exact.all():
        return k, None
    idx = np.flatnonzero(~exact)
    v, kk = values[idx], k[idx]
    near = (np.abs(kk) < limit) & (np.abs(v - kk / scale) <= NOISE_ULPS * np.spacing(np.abs(v)))
    if near.all():
        return k, None
    return k, int(idx[int(np.argmin(near))])


def _null_mask(arr: pa.Array) -> Mask | None:
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_null(), dtype=bool)


def first_failing_row(arr: pa.Array, convert: Callable[[pa.Array], object]) -> int:
    """0-based index of the first element on which ``convert`` raises ``pa.ArrowInvalid`` (bisection;
    only called once a whole-column conversion has already failed)."""
    lo, hi = 0, len(arr)  # invariant: the failure lies in arr[lo:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(arr.slice(lo, mid - lo))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


def text_column(column: pa.ChunkedArray | pa.Array, file: str, name: str, *, scale: int | None = None) -> NumericColumn:
    """Parse decimal text exactly (plain or exponent notation; surrounding blanks ignored; empty = null).

    The values are read at the most decimals any row writes, float noise aside (see the module
    docstring), or at ``scale`` when given (a value needing more decimals is then a ``number-format``
    error at its row, and no text is taken for float noise). Values beyond int64 at that scale give a
    :class:`WideColumn`.

    Raises:
        DataValidationError: ``number-format`` naming the first unparsable row or a value with more than
            18 decimals.
    """
    if scale is None:
        fast = _text_as_floats(single_array(column), file, name)
        if fast is not None:
            return fast
    s = pc.utf8_trim_whitespace(single_array(column))
    empty = pc.equal(s, "")
    if pc.any(empty).as_py():
        s = pc.if_else(empty, pa.scalar(None, pa.string()), s)
    notes: list[str] = []
    if scale is None:
        s = _denoise(_plain(s), name, notes)
        dot = pc.find_substring(s, ".")
        written = pc.if_else(pc.greater_equal(dot, 0), pc.subtract(pc.subtract(pc.binary_length(s), dot), 1), 0)
        scale = pc.max(written).as_py() or 0
        if scale > _TEXT_MAX_SCALE:
            row = int(np.argmax(np.asarray(pc.fill_null(pc.greater(written, _TEXT_MAX_SCALE), False))))
            detail = f"{name}={s[row].as_py()!r} has more than {_TEXT_MAX_SCALE} decimals"
            raise DataValidationError(file, "number-format", detail, row + 1)
    target = decimal_type(scale)

    def convert(a: pa.Array) -> pa.Array:
        return pc.cast(a, target)

    try:
        dec = convert(s)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        row = first_failing_row(s, convert)
        raise DataValidationError(file, "number-format", _not_a_number(name, s[row].as_py(), scale), row + 1) from None
    try:
        raw = raw_from_decimal(dec)
    except Int64OverflowError:
        wide = WideColumn(file, name, dec)
        wide.notes = notes
        return wide
    column_out = ScaledColumn(file, name, raw, scale, _null_mask(dec))
    column_out.notes = notes
    return column_out


_FLOAT_DIGITS = 15
"""Significant digits a decimal keeps through a binary float and back (DBL_DIG)."""


def _text_as_floats(s: pa.Array, file: str, name: str) -> FloatColumn | None:
    """Decimal text read through binary floats where that provably loses nothing, else ``None`` (the caller then
    parses the text as decimals, which is exact in every case and names bad rows).

    A decimal of at most 15 significant digits survives the round trip text → nearest double → decimal at its
    precision exactly (IEEE 754 binary64 keeps ``DBL_DIG`` = 15 decimal digits), and the snapping of
    :class:`FloatColumn` recovers it, provided its fixed-point integer stays below 2**53. Text of 16 or more digits
    is accepted here only when it is float noise (within :data:`NOISE_ULPS` of a shorter decimal, decimals 64 ulps
    apart at least); any other long value, a value the float parser refuses (blanks, words), or a column the
    snapping cannot read exactly sends the column to the exact text parser. One C++ parse and a few vectorized
    passes, against the text parser's dozen.
    """
    if len(s) == 0 or s.null_count == len(s):
        return None
    try:
        parsed = pc.cast(s, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    values = np.asarray(pc.fill_null(parsed, np.nan), dtype=np.float64)
    if np.isnan(values).sum() > s.null_count:
        return None  # "NaN" written in the file is not a number: the text parser names the row
    notes: list[str] = []
    lengths = pc.binary_length(s)
    if (pc.max(lengths).as_py() or 0) > _FLOAT_DIGITS:
        rows = np.flatnonzero(np.asarray(pc.fill_null(pc.greater(lengths, _FLOAT_DIGITS), False), dtype=bool))
        texts = s.take(pa.array(rows))
        mantissa = pc.replace_substring_regex(pc.replace_substring(texts, ".", ""), r"[eE].*$", "")
        digits = np.asarray(pc.utf8_length(pc.replace_substring_regex(mantissa, r"^[+-]?0*", "")))
        long_mask = digits > _FLOAT_DIGITS
        long_rows = rows[long_mask]
        if len(long_rows):
            printed = _printed_floats(texts.filter(pa.array(long_mask)), values[long_rows])
            if not printed.all() or not _all_near_shorter(values[long_rows]):
                return None  # genuine long decimals: only the text parser keeps every digit
            first = int(long_rows[0])
            short = _shortest_decimals(values[first : first + 1])[0]
            notes.append(
                f"{name}: {len(long_rows):,} value(s) printed from binary floats read as the decimals they stand for "
                f"(row {first + 1:,}: {s[first].as_py()} -> {short})"
            )
    column = FloatColumn(file, name, values, noise_limit=_NOISE_TEXT_LIMIT)
    if not column.reads_exactly(column.needed_precision()):
        return None
    column.notes = notes
    return column


def _significant(texts: pa.Array) -> pa.Array:
    """The significant digits of number texts: no sign, point, exponent, leading or trailing zeros."""
    digits = pc.replace_substring_regex(pc.replace_substring(texts, ".", ""), r"[eE].*$", "")
    return pc.replace_substring_regex(pc.replace_substring_regex(digits, r"^[+-]?0*", ""), r"0*$", "")


def _printed_floats(texts: pa.Array, values: F64) -> npt.NDArray[np.bool_]:
    """Which texts are exactly the shortest round-trip text of their double (Arrow prints it as ``repr`` does:
    ``54616842.58250001``); a long decimal no float printer writes (``98765432.12345601``) is not one."""
    printed = pc.cast(pa.array(values, pa.float64()), pa.string())
    return np.asarray(pc.fill_null(pc.equal(_significant(texts), _significant(printed)), False), dtype=bool)


def _all_near_shorter(values: F64) -> bool:
    """True when every value lies within :data:`NOISE_ULPS` of a decimal of at most 15 decimals (vectorized)."""
    todo = values
    for p in range(_NOISE_DIGITS):
        if len(todo) == 0:
            return True
        scale = 10.0**p
        k = np.rint(todo * scale)
        near = (np.abs(k) < _NOISE_TEXT_LIMIT) & (np.abs(todo - k / scale) <= NOISE_ULPS * np.spacing(np.abs(todo)))
        todo = todo[~near]
    return len(todo) == 0


_PLAIN_FRACTION = r"^[+-]?[0-9]*\.[0-9]+$"
_EXPONENT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+$"


def _plain(s: pa.Array) -> pa.Array:
    """``s`` with numbers in exponent notation (``7e-06``, as float printers write small values) rewritten as
    plain decimals, exactly (``0.000007``); other text unchanged."""
    if len(s) == 0 or not pc.any(pc.match_substring(s, "e", ignore_case=True)).as_py():
        return s
    mask = np.asarray(pc.fill_null(pc.match_substring_regex(s, _EXPONENT), False), dtype=bool)
    if not mask.any():
        return s
    texts = s.filter(pa.array(mask)).to_pylist()
    plain = [format(Decimal(t), "f") for t in texts]
    return pc.replace_with_mask(s, pa.array(mask), pa.array(plain, pa.string()))


def _denoise(s: pa.Array, name: str, notes: list[str]) -> pa.Array:
    """``s`` with every printed binary float — a plain decimal of 16+ significant digits that is exactly the
    shortest text of its double (what ``repr`` and every float printer write) — that lies within
    :data:`NOISE_ULPS` of a shorter decimal replaced by that decimal's text; a note says how many and shows
    the first. Long decimals a float printer would not write are real digits and stay."""
    if len(s) == 0 or (pc.max(pc.utf8_length(s)).as_py() or 0) < _NOISE_DIGITS:
        return s  # too short to hold 16 digits: the common case costs one pass
    digits = pc.utf8_length(pc.replace_substring_regex(pc.replace_substring(s, ".", ""), r"^[+-]?0*", ""))
    candidate = pc.and_(pc.match_substring_regex(s, _PLAIN_FRACTION), pc.greater_equal(digits, _NOISE_DIGITS))
    mask = np.asarray(pc.fill_null(candidate, False), dtype=bool)
    if not mask.any():
        return s
    rows = np.flatnonzero(mask)
    texts = s.take(pa.array(rows))
    values = np.asarray(pc.cast(texts, pa.float64()), dtype=np.float64)
    printed = _printed_floats(texts, values)
    rows, texts, values = rows[printed], texts.filter(pa.array(printed)), values[printed]
    short = _shortest_decimals(values)
    found = [(int(r), t, d) for r, t, d in zip(rows, texts.to_pylist(), short, strict=True) if d is not None]
    if not found:
        return s
    replace = np.zeros(len(s), dtype=bool)
    replace[[r for r, _, _ in found]] = True
    first_row, first_text, first_short = found[0]
    notes.append(
        f"{name}: {len(found):,} value(s) printed from binary floats read as the decimals they stand for "
        f"(row {first_row + 1:,}: {first_text} -> {first_short})"
    )
    return pc.replace_with_mask(s, pa.array(replace), pa.array([d for _, _, d in found], pa.string()))


def _shortest_decimals(values: F64) -> list[str | None]:
    """For each float, the text of the shortest decimal within :data:`NOISE_ULPS` of it (while decimals stay
    64 ulps apart, :data:`_NOISE_TEXT_LIMIT`), ``None`` when there is none."""
    out: list[str | None] = [None] * len(values)
    todo = np.arange(len(values))
    for p in range(_NOISE_DIGITS):
        if len(todo) == 0:
            break
        v = values[todo]
        scale = 10.0**p
        k = np.rint(v * scale)
        near = (np.abs(k) < _NOISE_TEXT_LIMIT) & (np.abs(v - k / scale) <= NOISE_ULPS * np.spacing(np.abs(v)))
        for i, kk in zip(todo[near], k[near], strict=True):
            out[int(i)] = format(Decimal(int(kk)).scaleb(-p), "f")
        todo = todo[~near]
    return out


def _not_a_number(name: str, text: str, scale: int) -> str:
    """Why Arrow refused ``text`` at ``scale`` decimals (error path only)."""
    if _DECIMAL_COMMA.match(text):
        return f"{name}={text!r} is not a number: a decimal comma? Smart Trader reads '.' as the decimal point"
    if _PLAIN.match(text):
        return f"{name}={text!r} has more than {scale} decimals"
    try:
        float(text)
    except ValueError:
        return f"{name}={text!r} is not a number"
    return f"{name}={text!r} cannot be read exactly at {scale} decimals; write it as a plain decimal"


def numeric_column(column: pa.ChunkedArray | pa.Array, file: str, name: str) -> NumericColumn:
    """The right :class:`NumericColumn` for a source column of text, integers, decimals or floats.

    Raises:
        DataValidationError: ``number-format`` when the column's type holds no numbers or a value is
            unparsable/infinite; ``range`` when an integer does not fit int64.
    """
    arr = single_array(column)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return text_column(arr, file, name)
    if pa.types.is_dictionary(t):
        return numeric_column(arr.dictionary_decode(), file, name)
    if pa.types.is_floating(t):
        values = np.asarray(pc.fill_null(arr.cast(pa.float64()), np.nan), dtype=np.float64)
        return FloatColumn(file, name, values)
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t) and len(arr) and (pc.max(arr).as_py() or 0) > _INT64_MAX:
            row = int(np.argmax(np.asarray(pc.fill_null(pc.greater(arr, _INT64_MAX), False))))
            raise DataValidationError(file, "range", f"{name} does not fit a 64-bit integer", row + 1)
        ints = np.asarray(pc.fill_null(arr.cast(pa.int64()), 0), dtype=np.int64)
        return ScaledColumn(file, name, ints, 0, _null_mask(arr))
    if pa.types.is_decimal(t):
        dec = arr.cast(decimal_type(t.scale)) if not isinstance(t, pa.Decimal128Type) else arr
        try:
            return ScaledColumn(file, name, raw_from_decimal(dec), t.scale, _null_mask(dec))
        except Int64OverflowError as exc:
            raise DataValidationError(file, "range", f"{name} does not fit a 64-bit integer", exc.row + 1) from None
    if pa.types.is_null(t):
        return ScaledColumn(file, name, np.zeros(len(arr), dtype=np.int64), 0, np.ones(len(arr), dtype=bool))
    raise DataValidationError(file, "number-format", f"column {name} holds {t}, not numbers")
