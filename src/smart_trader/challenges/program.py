"""Challenge programs as data: one frozen, validated model per prop-firm program.

A :class:`Program` describes one firm's challenge (e.g. "FTMO Challenge 2-Step") as a list of phases
(evaluation → verification → funded), each with its own pass conditions and loss limits. Everything
the evaluator needs is here; nothing is hard-coded per firm (CHALLENGES.md §8 "suggested config fields").

Units and conventions:

* Money is :class:`~decimal.Decimal` in the program's ``currency``; computed amounts are quantized to cents
  (ROUND_HALF_UP) as CHALLENGES.md §7 asks.
* Fields named ``pct`` / ``min_pct`` are **percent numbers** (``5`` means 5 %); fields named ``*share`` and the
  ``warnings`` levels are **fractions** (``0.5`` means half).
* ``tz`` is an IANA zone name (never a fixed offset) and ``reset_time`` the local wall-clock time of the day
  boundary (CHALLENGES.md §7.1).

Loading (:func:`load_program`, :func:`program_from_dict`) raises
:class:`~smart_trader.core.errors.InvalidInputError` whose message names every bad field by its path, e.g.
``phases[0].daily_loss.reference: must be one of balance, equity, max``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smart_trader.core.errors import InvalidInputError, NotFoundError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def to_cents(value: Decimal) -> Decimal:
    """``value`` quantized to cents (ROUND_HALF_UP), in the account currency."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _parse_hhmm(value: object) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020
        raise ValueError("must be a quoted 'HH:MM' string (YAML reads unquoted 17:00 as a number)")
    if not isinstance(value, str):
        raise ValueError("must be a 'HH:MM' string")
    parts = value.split(":")
    if len(parts) == 3 and parts[2] == "00":  # 'HH:MM:00', as a program dumped to JSON writes it
        parts = parts[:2]
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"must be 'HH:MM' (24 h), got {value!r}")
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute > 59:
        raise ValueError(f"must be 'HH:MM' (24 h), got {value!r}")
    return dt.time(hour, minute)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """One reference backing a program: ``id`` as in CHALLENGES.md §12 (``S1``, ``R1``…), its URL and a note."""

    id: str = Field(min_length=1)
    url: str = Field(min_length=1)
    note: str = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class Amount(_Frozen):
    """An amount given in exactly one way: ``pct`` (percent of a base), ``amount`` (fixed, account currency)
    or ``by_size`` (fixed amount per account size, e.g. Topstep MLL {50000: 2000, 100000: 3000} [S19][R1])."""

    pct: Decimal | None = Field(default=None, gt=0, le=100)
    amount: Decimal | None = Field(default=None, gt=0)
    by_size: dict[Decimal, Decimal] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Amount:
        given = [name for name in ("pct", "amount", "by_size") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of pct, amount, by_size")
        if self.by_size is not None:
            if not self.by_size:
                raise ValueError("by_size: must not be empty")
            if any(v <= 0 for v in self.by_size.values()):
                raise ValueError("by_size: amounts must be > 0")
        return self

    def resolve(self, base: Decimal, size: Decimal) -> Decimal:
        """The amount in account currency, quantized to cents.

        Args:
            base: what ``pct`` is a percent of (the initial balance or the day's reference).
            size: the account size, the key of ``by_size``.

        Raises:
            InvalidInputError: ``size`` has no entry in ``by_size``.
        """
        if self.pct is not None:
            return to_cents(base * self.pct / HUNDRED)
        if self.amount is not None:
            return to_cents(self.amount)
        assert self.by_size is not None
        if size not in self.by_size:
            sizes = ", ".join(str(s) for s in sorted(self.by_size))
            raise InvalidInputError(f"account size {size} has no amount in by_size (sizes: {sizes})")
        return to_cents(self.by_size[size])


class DailyLoss(_Frozen):
    """Daily loss limit, variants D1–D8 of CHALLENGES.md §2.2 (rule R5).

    ``floor(d) = ref − amount`` with ``ref`` = the day-start balance, equity or the max of both (``reference``),
    and ``amount`` = a percent of the initial balance or of ``ref`` (``amount_base``). With ``intraday_trailing``
    (D6, HyroTrader [S48]) ``ref`` is the day's equity peak so far. ``includes_floating`` false compares the
    balance instead of the equity; ``evaluation: eod`` (D8) tests only the day-end balance. ``kind: soft`` (D7,
    Topstep DLL [S22]) locks trading until the next boundary instead of failing.
    """

    amount: Amount
    amount_base: Literal["initial", "reference"] = "initial"
    reference: Literal["balance", "equity", "max"] = "balance"
    includes_floating: bool = True
    evaluation: Literal["intraday", "eod"] = "intraday"
    kind: Literal["hard", "soft"] = "hard"
    intraday_trailing: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> DailyLoss:
        if self.amount_base == "reference" and self.amount.pct is None:
            raise ValueError("amount_base reference needs amount.pct (a percent of the day's reference)")
        if self.evaluation == "eod" and (self.kind == "soft" or self.intraday_trailing):
            raise ValueError("evaluation eod supports only a hard, non-trailing daily loss")
        return self


class MaxLoss(_Frozen):
    """Maximum (overall) loss, rules R1–R4 of CHALLENGES.md §7.

    ``amount`` (``pct`` is a percent of the initial balance B0). ``mode``: ``static`` floor ``B0 − A`` [S4];
    ``trailing_eod`` floor ``min(HWM_EOD − A, lock)`` moved at day boundaries [S3][S19]; ``trailing_closed`` on the
    closed-balance high [R1][S51]; ``trailing_intraday`` on the live equity peak incl. unrealized P&L [S29].
    ``hwm_source`` ``max_bal_eq`` makes the EOD high-water mark use max(EOD balance, EOD equity) (ATFunded [S63]).
    ``lock``: the trailing floor stops rising at ``B0`` (``initial``, Topstep [S19]) or ``B0 + lock_offset``
    (``initial_plus``, Apex PA +$100 [S29]); ``none`` trails for ever (FTMO 1-Step [S3]).
    """

    amount: Amount
    mode: Literal["static", "trailing_eod", "trailing_closed", "trailing_intraday"] = "static"
    hwm_source: Literal["balance", "max_bal_eq"] = "balance"
    lock: Literal["none", "initial", "initial_plus"] = "none"
    lock_offset: Decimal | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MaxLoss:
        if self.lock == "initial_plus" and self.lock_offset is None:
            raise ValueError("lock initial_plus needs lock_offset")
        if self.lock != "initial_plus" and self.lock_offset is not None:
            raise ValueError("lock_offset is only used with lock initial_plus")
        if self.mode == "static" and self.lock != "none":
            raise ValueError("a static floor cannot lock (lock must be none)")
        return self

    def lock_level(self, initial: Decimal) -> Decimal | None:
        """Level at which a trailing floor stops rising, or ``None`` (account currency)."""
        if self.lock == "initial":
            return initial
        if self.lock == "initial_plus":
            assert self.lock_offset is not None
            return to_cents(initial + self.lock_offset)
        return None


class Consistency(_Frozen):
    """Best-day consistency pass-gate, rule R9: ``best_day ≤ max_share · Den``. Not met ⇒ not passed, never
    failed [S5][S20]. ``denominator``: ``net_total`` (Bal − B0), ``sum_positive`` (Σ positive days), ``target``
    (the profit target amount); ``day_pnl``: ``realized`` (balance change) or ``equity_delta``."""

    max_share: Decimal = Field(gt=0, le=1)
    denominator: Literal["net_total", "sum_positive", "target"] = "net_total"
    day_pnl: Literal["realized", "equity_delta"] = "realized"


class MaxPosition(_Frozen):
    """Maximum position size (contracts or quantity), rule R11: ``quantity`` or ``by_size`` (Topstep 5/10/15
    [S28]); ``scope`` per instrument or total over instruments. Enforced pre-trade by ``refusal()``."""

    quantity: Decimal | None = Field(default=None, gt=0)
    by_size: dict[Decimal, Decimal] | None = None
    scope: Literal["per_instrument", "total"] = "per_instrument"

    @model_validator(mode="after")
    def _exactly_one(self) -> MaxPosition:
        if (self.quantity is None) == (self.by_size is None):
            raise ValueError("give exactly one of quantity, by_size")
        return self

    def limit(self, size: Decimal) -> Decimal:
        """The limit for an account of ``size``; raises InvalidInputError when ``by_size`` lacks it."""
        if self.quantity is not None:
            return self.quantity
        assert self.by_size is not None
        if size not in self.by_size:
            raise InvalidInputError(f"account size {size} has no max_position in by_size")
        return self.by_size[size]


TargetBasis = Literal["balance_flat", "balance", "equity"]
TradingDayDefinition = Literal["opened", "opened_and_closed", "profitable_min_pct", "balance_change_min_pct"]


class Phase(_Frozen):
    """One phase of a program (evaluation, verification, funded), rules R1–R11.

    ``profit_target`` (``pct`` of B0) reached on ``target_basis``: ``balance_flat`` = balance with no open position
    (FTMO [S9]), ``balance`` or ``equity`` (B2Prop [S52]). ``min_trading_days`` counted per
    ``trading_day_definition`` (R8; ``min_pct`` percent of B0 for the two ``*_min_pct`` kinds). ``max_days`` /
    ``inactivity_days`` in firm days (R10). ``flat_by``: local 'HH:MM' by which positions must be closed each
    trading day (Topstep 15:10 CT [S22]). ``weekend_flat``: a position open when the firm's Friday closes (its day
    boundary) fails the phase (FTMO Account Standard [S11]; R11). ``warnings``: fractions of room used at which a
    warning is emitted.
    """

    name: str = Field(min_length=1)
    profit_target: Amount | None = None
    target_basis: TargetBasis = "balance_flat"
    min_trading_days: int = Field(default=0, ge=0)
    trading_day_definition: TradingDayDefinition = "opened"
    min_pct: Decimal | None = Field(default=None, gt=0)
    max_days: int | None = Field(default=None, gt=0)
    inactivity_days: int | None = Field(default=None, gt=0)
    daily_loss: DailyLoss | None = None
    max_loss: MaxLoss | None = None
    consistency: Consistency | None = None
    max_position: MaxPosition | None = None
    flat_by: dt.time | None = None
    weekend_flat: bool = False
    warnings: tuple[Decimal, ...] = (Decimal("0.8"), Decimal("0.9"), Decimal("0.95"))

    @field_validator("flat_by", mode="before")
    @classmethod
    def _flat_by(cls, value: object) -> object:
        return None if value is None else _parse_hhmm(value)

    @field_validator("warnings")
    @classmethod
    def _warnings(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if any(not Decimal(0) < v < Decimal(1) for v in value):
            raise ValueError("levels must be fractions strictly between 0 and 1")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _consistent(self) -> Phase:
        needs_pct = self.trading_day_definition in ("profitable_min_pct", "balance_change_min_pct")
        if needs_pct and self.min_pct is None:
            raise ValueError(f"trading_day_definition {self.trading_day_definition} needs min_pct")
        if self.consistency is not None and self.consistency.denominator == "target" and self.profit_target is None:
            raise ValueError("consistency denominator target needs a profit_target")
        return self


class Program(_Frozen):
    """A prop-firm challenge program: identity, clock, sources and phases.

    ``breach_on_equal`` true makes touching a floor a breach (Apex/Topstep "touch"/"hit" wording); false means
    only dropping below it is (FTMO "drop below" [S1]). ``unconfirmed`` lists the CHALLENGES.md §11 items that
    affect this program.
    """

    firm: str = Field(min_length=1)
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1)
    currency: str = Field(min_length=3, max_length=16)  # ISO 4217 or a crypto code (USDT)
    sizes: tuple[Decimal, ...] = Field(min_length=1)
    tz: str
    reset_time: dt.time
    breach_on_equal: bool = False
    sources: tuple[Source, ...] = Field(min_length=1)
    verified_on: dt.date
    notes: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = ()
    phases: tuple[Phase, ...] = Field(min_length=1)

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        if value.upper().startswith(("ETC/", "UTC+", "UTC-", "GMT+", "GMT-")):
            raise ValueError("use a named IANA zone (e.g. Europe/Prague), not a fixed offset")
        return value

    @field_validator("reset_time", mode="before")
    @classmethod
    def _reset(cls, value: object) -> dt.time:
        return _parse_hhmm(value)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if any(v <= 0 for v in value):
            raise ValueError("sizes must be > 0")
        return value

    @model_validator(mode="after")
    def _tables_cover_sizes(self) -> Program:
        for index, phase in enumerate(self.phases):
            if phase.flat_by == self.reset_time:
                raise ValueError(f"phases[{index}].flat_by: must differ from reset_time")
            tables: list[tuple[str, dict[Decimal, Decimal] | None]] = [
                ("profit_target", phase.profit_target.by_size if phase.profit_target else None),
                ("daily_loss.amount", phase.daily_loss.amount.by_size if phase.daily_loss else None),
                ("max_loss.amount", phase.max_loss.amount.by_size if phase.max_loss else None),
                ("max_position", phase.max_position.by_size if phase.max_position else None),
            ]
            for name, table in tables:
                if table is None:
                    continue
                missing = [str(s) for s in self.sizes if s not in table]
                if missing:
                    raise ValueError(f"phases[{index}].{name}.by_size: no entry for size(s) {', '.join(missing)}")
        return self


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "custom-")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field missing"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def program_from_dict(data: Mapping[str, Any]) -> Program:
    """Validate a program given as a mapping (e.g. parsed YAML/JSON).

    Raises:
        InvalidInputError: one line per problem, each ``<field path>: <what is wrong>``.
    """
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = _loc(tuple(error["loc"]))
            lines.append(f"{where}: {_message(error)}" if where else _message(error))
        pid = data.get("id") if isinstance(data, Mapping) else None
        head = f"invalid challenge program {pid!r}" if pid else "invalid challenge program"
        raise InvalidInputError(head + ":\n" + "\n".join(lines)) from None


def load_program(source: str | Path | Mapping[str, Any]) -> Program:
    """Load a program from YAML text (``str``), a YAML file (``Path``) or a mapping.

    Raises:
        InvalidInputError: unreadable file, bad YAML or a field that breaks a rule (path named in the message).
    """
    if isinstance(source, Mapping):
        return program_from_dict(source)
    where = "challenge program"
    if isinstance(source, Path):
        where = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{where}: cannot read ({exc.strerror})") from None
    else:
        text = source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{where}: a program must be a YAML mapping")
    if not isinstance(source, Path):
        return program_from_dict(data)
    try:
        return program_from_dict(data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


@functools.cache
def programs() -> Mapping[str, Program]:
    """The built-in presets (``challenges/presets/*.yaml``) by program id; read once and cached."""
    found: dict[str, Program] = {}
    folder = resources.files("smart_trader.challenges") / "presets"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            program = load_program(entry.read_text(encoding="utf-8"))
            if program.id in found:
                raise InvalidInputError(f"presets/{entry.name}: duplicate program id {program.id!r}")
            found[program.id] = program
    return found


def get_program(program_id: str) -> Program:
    """One built-in preset by id. Raises NotFoundError naming the known ids."""
    known = programs()
    if program_id not in known:
        raise NotFoundError(f"unknown challenge program {program_id!r} (known: {', '.join(sorted(known))})")
    return known[program_id]
