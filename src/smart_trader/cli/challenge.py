"""``smart-trader challenge ...``: list the prop-firm programs, judge a trading history, simulate pass odds.

- ``programs [--json]`` — the built-in presets (``smart_trader/challenges/presets``).
- ``evaluate`` — "would my trading history have passed?": replays a fills CSV with price marks from any market-data
  file ``data import`` reads through :func:`smart_trader.challenges.replay.replay` and prints a JSON verdict.
- ``simulate`` — pass probability, days to pass and breach causes by bootstrapping a list of closed trades
  (:mod:`smart_trader.challenges.simulate`); prints JSON.

Inputs (all times UTC; an integer is ns since the epoch, text is ISO 8601 and naive text is UTC):

* fills CSV: ``ts``, ``symbol``, ``side`` (``buy``/``sell``), ``qty`` (> 0, units or contracts), ``price`` (quote
  currency per unit), optional ``commission`` (account currency, taken from the balance at the fill); rows in
  time order (equal times keep the file's order).
* prices file: any file :func:`smart_trader.data.readers.read_file` reads. Marks: trade prices; the quote mid
  ``(bid + ask) / 2``; for bars the path ``open → low, high`` (or ``high, low``, per
  :func:`smart_trader.execution.matching.bar_path`) ``→ close`` at ``t0``, ``t0 + ⌊tf/3⌋``, ``t0 + ⌊2·tf/3⌋``
  and ``t0 + tf − 1 ns`` (``t0`` the bar's open time, ``tf`` the file's bar length; all four at ``t0`` when the
  bar length is unknown), so the worst point inside a bar is judged and a fill inside a bar sees the points after
  it (daily bars dated by day, e.g. Yahoo's, have ``t0`` = 00:00 UTC of the date, so their path spans that UTC
  day). Marks before the phase start are dropped, and so are those after the last fill when it leaves no position.
* the prices' instrument is ``--symbol`` (``--symbol PRICES`` picks it in a file holding several;
  ``--symbol FILLS=PRICES`` also maps the fills' name onto it), else the file name's first part as ``backtest
  --data`` reads it (``BTCUSDT_2021-01-08.binance.trades.parquet`` → ``BTCUSDT``). Names match ignoring case and
  punctuation, like ``data import --symbol`` (``BTC/USDT`` = ``btcusdt``).
* trades CSV (``simulate``): ``pnl`` (account currency, net of commission), and ``day`` (ISO date) or ``ts`` (close
  time; ``exit_time`` is read as ``ts``, as ``backtest`` writes it); optional ``open_ts``/``entry_time`` (checked
  ``≤ ts``) and ``mae`` (≤ 0).

Errors: one line on stderr, exit 2 for bad input (unknown program, size, phase, malformed row naming its row and
column, fills out of order), 3 for a missing file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from smart_trader.core.errors import InvalidInputError, NotFoundError

from .common import cli_errors, console, parse_decimal, parse_time

if TYPE_CHECKING:
    from smart_trader.challenges.program import Program
    from smart_trader.challenges.replay import Mark, ReplayFill
    from smart_trader.challenges.simulate import SimTrade

app = typer.Typer(
    help="Prop-firm challenges: list the programs, judge a trading history, simulate the odds of passing.",
    no_args_is_help=True,
)

_INT = re.compile(r"^[+-]?\d+$")


def squash(name: str) -> str:
    """``name`` upper-cased without punctuation or spaces (``BTC/USDT`` → ``BTCUSDT``), for symbol matching."""
    return "".join(ch for ch in name.upper() if ch.isalnum())


# ---------------------------------------------------------------------------------------------------- resolving


def resolve_program(text: str, option: str = "--program") -> Program:
    """A built-in program by id, or a program YAML file when ``text`` names an existing ``.yaml``/``.yml`` file.

    Raises:
        InvalidInputError: unknown id (the message lists the known ids) or an invalid YAML program.
    """
    from smart_trader.challenges.program import get_program, load_program

    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        return load_program(path)
    try:
        return get_program(text)
    except NotFoundError as exc:
        raise InvalidInputError(f"{option}: {exc}") from None


def resolve_size(program: Program, text: str) -> Decimal:
    """The account size ``text`` if ``program`` offers it.

    Raises:
        InvalidInputError: not a number, or a size the program does not offer (the message lists its sizes).
    """
    size = parse_decimal(text, "size")
    assert size is not None
    if size not in program.sizes:
        sizes = ", ".join(str(s) for s in program.sizes)
        raise InvalidInputError(f"--size: program {program.id} offers no size {text} (sizes: {sizes})")
    return size


def resolve_phase(program: Program, text: str | None) -> int:
    """Index of the phase named ``text`` (case-insensitive) or numbered ``text`` (1 = the first); the first when
    ``None``.

    Raises:
        InvalidInputError: no such phase (the message lists them).
    """
    if text is None:
        return 0
    names = [p.name for p in program.phases]
    if text.strip().isdigit() and 1 <= int(text) <= len(names):
        return int(text) - 1
    for index, name in enumerate(names):
        if name.casefold() == text.strip().casefold():
            return index
    listed = ", ".join(f"{i} = {n!r}" for i, n in enumerate(names, 1))
    raise InvalidInputError(f"--phase: program {program.id} has no phase {text!r} (phases: {listed})")


def parse_multipliers(pairs: Sequence[str]) -> dict[str, Decimal]:
    """``["ES=50"]`` → ``{"ES": Decimal(50)}`` (keys squashed, see :func:`squash`).

    Raises:
        InvalidInputError: an item is not ``SYMBOL=N`` with ``N`` a positive number.
    """
    out: dict[str, Decimal] = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        number = _decimal(value.strip()) if sep else None
        if not sep or not squash(name) or number is None or number <= 0:
            raise InvalidInputError(f"--multiplier {item!r} is not SYMBOL=N with N a positive number")
        out[squash(name)] = number
    return out


# ---------------------------------------------------------------------------------------------------- CSV input


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_ts(text: str) -> int:
    """ns UTC of an epoch-ns integer or an ISO 8601 date/date-time (naive = UTC).

    Raises:
        ValueError: neither.
    """
    from smart_trader.core.clock import parse_utc

    text = text.strip()
    if _INT.match(text):
        return int(text)
    return parse_utc(text)


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row of a CSV input: ``number`` is 1-based over data rows (header excluded), ``line`` the file
    line it ends on."""

    number: int
    line: int
    values: dict[str, str]


class CsvInput:
    """A small CSV table read with the standard library (exact text, no float): column names are matched
    case-insensitively and trimmed, and every problem names the file, the row and the column."""

    def __init__(self, path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.path = path
        self._required = tuple(required)
        self._optional = tuple(optional)
        self.columns: tuple[str, ...] = ()

    def where(self, row: CsvRow, column: str) -> str:
        """``fills.csv row 3 (line 4), column price``."""
        return f"{self.path.name} row {row.number} (line {row.line}), column {column}"

    def rows(self) -> Iterator[CsvRow]:
        """The data rows (fully blank lines skipped).

        Raises:
            InvalidInputError: no header, a missing required column, a row with more fields than the header.
            FileNotFoundError: no such file.
        """
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InvalidInputError(f"{self.path.name}: empty file (needs a header row)")
            names = [h.strip().lower() for h in header]
            self.columns = tuple(names)
            missing = [c for c in self._required if c not in names]
            if missing:
                raise InvalidInputError(
                    f"{self.path.name}: missing column(s) {', '.join(missing)} (has: {', '.join(names) or 'none'})"
                )
            number = 0
            for fields in reader:
                if not any(f.strip() for f in fields):
                    continue
                number += 1
                if len(fields) > len(names):
                    raise InvalidInputError(
                        f"{self.path.name} row {number} (line {reader.line_num}): {len(fields)} fields for "
                        f"{len(names)} columns"
                    )
                values = {n: f.strip() for n, f in zip(names, fields, strict=False)}
                yield CsvRow(number, reader.line_num, values)

    def text(self, row: CsvRow, column: str, *, required: bool = True) -> str | None:
        """The cell's text, ``None`` when empty and optional. Raises InvalidInputError when required and empty."""
        value = row.values.get(column, "")
        if value:
            return value
        if required:
            raise InvalidInputError(f"{self.where(row, column)}: empty (a value is required)")
        return None

    def number(self, row: CsvRow, column: str, *, required: bool = True) -> Decimal | None:
        """The cell as an exact Decimal. Raises InvalidInputError when it is not a finite number."""
        text = self.text(row, column, required=required)
        if text is None:
            return None
        value = _decimal(text)
        if value is None:
            raise InvalidInputError(f"{self.where(row, column)}: {text!r} is not a number")
        return value

    def time(self, row: CsvRow, column: str, *, required: bool = True) -> int | None:
        """The cell as ns UTC (epoch-ns integer or ISO 8601). Raises InvalidInputError otherwise."""
        text = self.text(row, column, required=required)
        if text is None:
            return None
        try:
            return parse_ts(text)
        except ValueError:
            raise InvalidInputError(
                f"{self.where(row, column)}: {text!r} is not an ISO 8601 time or epoch nanoseconds"
            ) from None


@dataclass(frozen=True, slots=True)
class FillRow:
    """A fill as read, with its row for error messages."""

    row: CsvRow
    fill: ReplayFill


def read_fills(path: Path) -> list[FillRow]:
    """The fills of a fills CSV (see the module docstring), in file order.

    Raises:
        InvalidInputError: missing column, malformed cell (row and column named), no rows, rows out of time order.
    """
    from smart_trader.challenges.days import iso_utc
    from smart_trader.challenges.replay import ReplayFill

    table = CsvInput(path, ("ts", "symbol", "side", "qty", "price"), ("commission",))
    out: list[FillRow] = []
    for row in table.rows():
        ts = table.time(row, "ts")
        symbol = table.text(row, "symbol")
        side = (table.text(row, "side") or "").lower()
        if side not in ("buy", "sell"):
            raise InvalidInputError(f"{table.where(row, 'side')}: {row.values['side']!r} is not buy or sell")
        qty = table.number(row, "qty")
        price = table.number(row, "price")
        commission = table.number(row, "commission", required=False) or Decimal(0)
        assert ts is not None and symbol is not None and qty is not None and price is not None
        if qty <= 0:
            raise InvalidInputError(f"{table.where(row, 'qty')}: must be > 0, got {qty}")
        if price <= 0:
            raise InvalidInputError(f"{table.where(row, 'price')}: must be > 0, got {price}")
        if out and ts < out[-1].fill.ts:
            before = out[-1]
            raise InvalidInputError(
                f"{table.where(row, 'ts')}: {iso_utc(ts)} is earlier than row {before.row.number} "
                f"({iso_utc(before.fill.ts)}); fills must be in time order"
            )
        side_: Literal["buy", "sell"] = "buy" if side == "buy" else "sell"
        out.append(FillRow(row, ReplayFill(ts, symbol, side_, qty, price, commission)))
    if not out:
        raise InvalidInputError(f"{path.name}: no fills")
    return out


def read_trades(path: Path, program: Program) -> list[SimTrade]:
    """The closed trades of a trades CSV (see the module docstring). The day of a trade is its ``day`` column,
    else the program's firm day (zone and reset time) of its close time ``ts``.

    Raises:
        InvalidInputError: no ``pnl`` or neither ``day`` nor ``ts``, a malformed cell (row and column named),
            ``mae`` > 0, ``open_ts`` after ``ts``, no rows.
    """
    from smart_trader.challenges.days import DayClock
    from smart_trader.challenges.simulate import SimTrade

    clock = DayClock(program.tz, program.reset_time)
    table = CsvInput(path, ("pnl",), ("day", "ts", "open_ts", "mae"))
    out: list[SimTrade] = []
    for row in table.rows():
        values, columns = row.values, table.columns
        ts_col = "ts" if "ts" in columns else "exit_time" if "exit_time" in columns else None
        open_col = "open_ts" if "open_ts" in columns else "entry_time" if "entry_time" in columns else None
        has_day = "day" in columns
        if not has_day and ts_col is None:
            raise InvalidInputError(f"{path.name}: needs a day column (ISO date) or a ts column (close time)")
        pnl = table.number(row, "pnl")
        mae = table.number(row, "mae", required=False)
        assert pnl is not None
        if mae is not None and mae > 0:
            raise InvalidInputError(f"{table.where(row, 'mae')}: must be <= 0 (the worst floating loss), got {mae}")
        close = table.time(row, ts_col, required=not has_day) if ts_col else None
        opened = table.time(row, open_col, required=False) if open_col else None
        if close is not None and opened is not None and opened > close:
            raise InvalidInputError(f"{table.where(row, open_col or 'open_ts')}: the trade opens after it closes")
        day: dt.date
        if has_day and values.get("day"):
            try:
                day = dt.date.fromisoformat(values["day"])
            except ValueError:
                raise InvalidInputError(f"{table.where(row, 'day')}: {values['day']!r} is not an ISO date") from None
        elif close is not None:
            day = clock.day_of(close)
        else:
            raise InvalidInputError(f"{table.where(row, 'day')}: empty (give a day or a ts)")
        out.append(SimTrade(pnl=pnl, day=day, mae=mae))
    if not out:
        raise InvalidInputError(f"{path.name}: no trades")
    return out


# ---------------------------------------------------------------------------------------------------- marks


@dataclass(frozen=True, slots=True)
class PriceMarks:
    """Marks read from a market-data file: ``kind`` and ``format`` as the reader says, ``instrument`` the name
    the fills must match, ``marks`` in time order (ns UTC, quote currency)."""

    kind: str
    format: str
    instrument: str
    marks: list[Mark]


def bar_marks(
    ts: Sequence[int], o: Sequence[Decimal], h: Sequence[Decimal], low: Sequence[Decimal], c: Sequence[Decimal],
    timeframe_ns: int | None, price_precision: int, symbol: str,
) -> list[Mark]:  # fmt: skip
    """The path of each bar (see the module docstring) as marks: open at ``t0``, the two extremes at
    ``t0 + ⌊tf/3⌋`` and ``t0 + ⌊2·tf/3⌋``, the close at ``t0 + tf − 1`` ns (all at ``t0`` when ``timeframe_ns``
    is ``None``). ``price_precision`` is the prices' decimals (they become exact raw integers for ``bar_path``)."""
    from smart_trader.challenges.replay import Mark
    from smart_trader.execution.matching import bar_path, bar_path_offsets

    offsets = bar_path_offsets(timeframe_ns)
    out: list[Mark] = []
    for t0, *prices in zip(ts, o, h, low, c, strict=True):
        raw = [int(p.scaleb(price_precision)) for p in prices]
        back = dict(zip(raw, prices, strict=True))
        path = bar_path(raw[0], raw[1], raw[2], raw[3])
        out.extend(Mark(t0 + off, symbol, back[p]) for off, p in zip(offsets, path, strict=True))
    return out


def read_marks(path: Path, instrument: str, pick: str | None, since: int, until: int | None) -> PriceMarks:
    """Marks of ``path`` between ``since`` and ``until`` (ns UTC, inclusive; ``None`` = to the end).

    ``pick`` selects the instrument of a file holding several (passed to ``read_file(symbol=...)``).

    Raises:
        InvalidInputError: the file holds order-book depth, or any reader error (file, row and rule named).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from smart_trader.challenges.replay import Mark
    from smart_trader.data.readers import read_file
    from smart_trader.data.schema import Kind

    result = read_file(path, symbol=pick)
    table = result.table
    if result.kind not in (Kind.TRADES, Kind.QUOTES, Kind.BARS):
        raise InvalidInputError(f"{path.name} holds {result.kind}: give trades, quotes or bars for the marks")
    ts_all = np.asarray(pc.cast(table.column("ts_event"), pa.int64()).to_numpy(zero_copy_only=False))
    mask = ts_all >= since
    tf = None if result.timeframe is None else result.timeframe.ns
    if result.kind is Kind.BARS and tf is not None:
        mask |= ts_all + tf > since  # the bar holding the start
    if until is not None:
        mask &= ts_all <= until
    kept = table.filter(pa.array(mask))
    ts = [int(t) for t in ts_all[mask].tolist()]
    marks: list[Mark]
    if result.kind is Kind.TRADES:
        marks = [Mark(t, instrument, p) for t, p in zip(ts, kept.column("price").to_pylist(), strict=True)]
    elif result.kind is Kind.QUOTES:
        bids, asks = kept.column("bid_price").to_pylist(), kept.column("ask_price").to_pylist()
        marks = [Mark(t, instrument, (b + a) / 2) for t, b, a in zip(ts, bids, asks, strict=True)]
    else:
        marks = bar_marks(
            ts, kept.column("open").to_pylist(), kept.column("high").to_pylist(), kept.column("low").to_pylist(),
            kept.column("close").to_pylist(), tf, result.price_precision, instrument,
        )  # fmt: skip
        marks = [m for m in marks if m.ts >= since and (until is None or m.ts <= until)]
    return PriceMarks(str(result.kind), result.format, instrument, marks)


def _instrument_names(symbol: str | None, prices: Path) -> tuple[str | None, str | None, str]:
    """``(fills name, pick for the reader, instrument name)`` from ``--symbol`` and the prices file name."""
    if symbol is None:
        return None, None, prices.name.split("_")[0].split(".")[0]
    left, sep, right = symbol.partition("=")
    if sep:
        if not squash(left) or not squash(right):
            raise InvalidInputError(f"--symbol {symbol!r} is not NAME or FILLS_NAME=PRICES_NAME")
        return left.strip(), right.strip(), right.strip()
    if not squash(symbol):
        raise InvalidInputError(f"--symbol {symbol!r} names no instrument")
    return None, symbol.strip(), symbol.strip()


# ---------------------------------------------------------------------------------------------------- commands


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command("programs")
def programs_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the built-in challenge programs: id, firm, name, account sizes, phases and sources."""
    with cli_errors():
        from smart_trader.challenges.program import programs

        known = list(programs().values())
        if as_json:
            _echo_json(
                [
                    {
                        "id": p.id,
                        "firm": p.firm,
                        "name": p.name,
                        "currency": p.currency,
                        "sizes": [str(s) for s in p.sizes],
                        "phases": [ph.name for ph in p.phases],
                        "verified_on": p.verified_on.isoformat(),
                        "sources": [{"id": s.id, "url": s.url} for s in p.sources],
                    }
                    for p in known
                ]
            )
            return
        from rich.table import Table

        table = Table(title="challenge programs (--json adds the source URLs)")
        for column in ("id", "firm", "name", "sizes", "phases", "sources"):
            table.add_column(column, no_wrap=column in ("id", "sizes"))
        for p in known:
            table.add_row(
                p.id, p.firm, p.name, f"{', '.join(str(s) for s in p.sizes)} {p.currency}",
                " → ".join(ph.name for ph in p.phases),
                f"{' '.join(s.id for s in p.sources)}, verified {p.verified_on.isoformat()}",
            )  # fmt: skip
        console.print(table)


@app.command("evaluate")
def evaluate(
    program: Annotated[str, typer.Option(help="program id (`smart-trader challenge programs`) or a YAML file")],
    size: Annotated[str, typer.Option(help="account size, one the program offers, e.g. 100000")],
    fills: Annotated[Path, typer.Option(help="fills CSV: ts, symbol, side, qty, price[, commission]")],
    prices: Annotated[Path, typer.Option(help="market-data file for the marks (trades, quotes or bars)")],
    phase: Annotated[str | None, typer.Option(help="phase name or number (1 = first, the default)")] = None,
    multiplier: Annotated[
        list[str] | None, typer.Option(help="contract multiplier SYMBOL=N (repeatable), e.g. ES=50; default 1")
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(help="the prices' instrument (picks it in a multi-instrument file); FILLS=PRICES maps names"),
    ] = None,
    start: Annotated[str | None, typer.Option(help="phase start, ISO 8601 UTC; default the first fill")] = None,
    until: Annotated[
        str | None, typer.Option(help="evaluate up to, ISO 8601 UTC; default the end of the last input's firm day")
    ] = None,
) -> None:
    """Would this trading history have passed? Replays FILLS with marks from PRICES through the program's rules
    and prints a JSON verdict: status (passed, failed, locked, active), phase, breach (rule, ts, equity, floor),
    passed_ts, trading_days, best_day_share, balance, equity."""
    with cli_errors():
        from collections import Counter

        from smart_trader.challenges.days import DayClock, iso_utc
        from smart_trader.challenges.replay import ReplayFill, replay

        prog = resolve_program(program)
        account_size = resolve_size(prog, size)
        phase_index = resolve_phase(prog, phase)
        mults = parse_multipliers(multiplier or [])
        start_ts = parse_time(start, "start")
        until_ts = parse_time(until, "until")
        rows = read_fills(fills)
        fills_name, pick, instrument = _instrument_names(symbol, prices)
        wanted = squash(fills_name or instrument)
        for r in rows:
            if squash(r.fill.symbol) != wanted:
                hint = "--symbol" if symbol is None else f"--symbol {symbol}"
                raise InvalidInputError(
                    f"{fills.name} row {r.row.number} (line {r.row.line}), column symbol: {r.fill.symbol!r} is not "
                    f"the prices' instrument {fills_name or instrument!r} ({hint} names it; one instrument per run)"
                )
        allowed = {wanted, squash(instrument)}
        unknown = [m for m in mults if m not in allowed]
        if unknown:
            raise InvalidInputError(f"--multiplier: {', '.join(unknown)} is not the instrument {instrument!r}")
        if len(set(mults.values())) > 1:
            raise InvalidInputError("--multiplier: two different multipliers for the one instrument")
        mult = next(iter(mults.values()), None)
        replay_fills = [
            ReplayFill(r.fill.ts, instrument, r.fill.side, r.fill.qty, r.fill.price, r.fill.commission) for r in rows
        ]
        first_ts, last_fill_ts = replay_fills[0].ts, replay_fills[-1].ts
        begin = first_ts if start_ts is None else start_ts
        if begin > first_ts:
            raise InvalidInputError(f"--start {start} is after the first fill ({iso_utc(first_ts)})")
        if until_ts is not None and until_ts < last_fill_ts:
            raise InvalidInputError(f"--until {until} is before the last fill ({iso_utc(last_fill_ts)})")
        net = sum((f.qty if f.side == "buy" else -f.qty for f in replay_fills), Decimal(0))
        # flat after the last fill: later prices change nothing, so they are not read
        price_marks = read_marks(prices, instrument, pick, begin, until_ts if net != 0 else last_fill_ts)
        last_input = max(last_fill_ts, price_marks.marks[-1].ts if price_marks.marks else begin)
        if until_ts is None:
            until_ts = DayClock(prog.tz, prog.reset_time).boundary_after(last_input)
        verdict = replay(
            prog, account_size, replay_fills, price_marks.marks, phase_index=phase_index, start_ts=begin,
            until_ts=until_ts, multipliers={instrument: mult} if mult is not None else None,
        )  # fmt: skip
        events = Counter(verdict.pop("events"))
        out = {
            "program": prog.id,
            "size": str(account_size),
            "currency": prog.currency,
            **verdict,
            "instrument": instrument,
            "fills": len(replay_fills),
            "marks": len(price_marks.marks),
            "prices": {"file": prices.name, "kind": price_marks.kind, "format": price_marks.format},
            "start": iso_utc(begin),
            "until": iso_utc(until_ts),
            "events": dict(sorted(events.items())),
        }
        _echo_json(out)


@app.command("simulate")
def simulate_(
    program: Annotated[str, typer.Option(help="program id (`smart-trader challenge programs`) or a YAML file")],
    size: Annotated[str, typer.Option(help="account size, one the program offers, e.g. 100000")],
    trades: Annotated[Path, typer.Option(help="closed trades CSV: pnl and day or ts[, open_ts][, mae]")],
    runs: Annotated[int, typer.Option(help="number of bootstrap runs", min=1)] = 1000,
    seed: Annotated[int | None, typer.Option(help="random seed (same seed, same output); default drawn")] = None,
    phase: Annotated[str | None, typer.Option(help="phase name or number (1 = first, the default)")] = None,
    max_days: Annotated[int, typer.Option(help="cap on simulated trading days per run", min=1)] = 250,
) -> None:
    """Odds of passing: resample the closed trades with replacement into trading days (the original trades-per-day
    distribution), judge each run with the program's rules and print JSON: passed share with a 95 % Wilson
    interval, days to pass (mean, median), breach causes (rule → share of runs), still-active share. Without an
    ``mae`` column floating losses inside trades are not simulated."""
    with cli_errors():
        from smart_trader.challenges.simulate import simulate

        prog = resolve_program(program)
        account_size = resolve_size(prog, size)
        phase_index = resolve_phase(prog, phase)
        if seed is not None and seed < 0:
            raise InvalidInputError(f"--seed must be >= 0, got {seed}")
        rows = read_trades(trades, prog)
        result = simulate(prog, account_size, rows, runs=runs, seed=seed, phase_index=phase_index, max_days=max_days)
        _echo_json(result.to_dict())
