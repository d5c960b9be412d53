"""``smart-trader data book SYMBOL --venue V``: microstructure measures of a stored order book.

Registered on the ``data`` command group (``cli/data.py``): ``app.command("book")(book)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smart_trader.core.errors import InvalidInputError

from .common import cli_errors, console, err_console, parse_time, service

if TYPE_CHECKING:
    import pyarrow as pa

    from smart_trader.microstructure.measures import BookMeasures

DEFAULT_LEVELS = 5
GAP_POLICIES = ("resync", "raise", "continue")
_SHOWN = ("best_bid", "best_bid_size", "best_ask", "best_ask_size", "spread", "mid", "microprice")


def book(
    symbol: Annotated[str, typer.Argument(help="instrument symbol, e.g. BTCUSDT")],
    venue: Annotated[str, typer.Option(help="venue code, e.g. BINANCE")],
    levels: Annotated[int, typer.Option(min=1, help="levels per side summed in imbalance_N")] = DEFAULT_LEVELS,
    start: Annotated[str | None, typer.Option(help="ISO 8601 UTC, inclusive (start at a snapshot)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 UTC, exclusive")] = None,
    gaps: Annotated[
        str, typer.Option(help="on a sequence gap: resync (wait for the next snapshot), raise, continue")
    ] = "resync",
    out: Annotated[Path | None, typer.Option(help="write to a .csv or .parquet file instead of printing")] = None,
) -> None:
    """Rebuild SYMBOL's stored order book and print, per book event, best bid/ask, spread, mid, microprice,
    top-N depth imbalance and order-flow imbalance. Sequence gaps are reported on stderr."""
    with cli_errors():
        from smart_trader.microstructure.builder import GapPolicy
        from smart_trader.microstructure.service import stored_book_measures

        if out is not None and out.suffix not in (".csv", ".parquet"):
            raise InvalidInputError(f"--out must end in .csv or .parquet, got {out.name}")
        if gaps not in GAP_POLICIES:
            raise InvalidInputError(f"--gaps must be one of {', '.join(GAP_POLICIES)}, not {gaps!r}")
        policy = GapPolicy(gaps)
        measures = stored_book_measures(
            service(), symbol, venue, levels=levels, start_ns=parse_time(start, "start"), end_ns=parse_time(end, "end"),
            policy=policy,
        )  # fmt: skip
        for gap in measures.gaps:
            action = {GapPolicy.RESYNC: "updates dropped until the next snapshot", GapPolicy.CONTINUE: "applied anyway"}
            err_console.print(f"[yellow]warning:[/yellow] {gap} ({action.get(policy, '')})", highlight=False)
        if out is not None:
            _write(measures.table, out)
            console.print(f"wrote {measures.table.num_rows:,} book events to {out}")
        else:
            _print(measures)
        skipped = f", {measures.events_skipped:,} update(s) skipped" if measures.events_skipped else ""
        console.print(f"{measures.events_applied:,} book events{skipped}, {len(measures.gaps)} sequence gap(s)")


def _write(table: pa.Table, out: Path) -> None:
    import polars as pl
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        pq.write_table(table, out)
        return
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame.with_columns(pl.col(pl.Decimal).cast(pl.String)).write_csv(out)


def _print(measures: BookMeasures, limit: int = 20) -> None:
    import pyarrow as pa
    from rich.table import Table

    from smart_trader.core.clock import ns_to_datetime

    table = measures.table
    imbalance = f"imbalance_{measures.levels}"
    view = Table("ts_event (UTC)", *_SHOWN, imbalance, "ofi")
    n = table.num_rows
    rows = list(range(min(n, limit // 2))) + list(range(max(limit // 2, n - limit // 2), n))
    ts = table.column("ts_event").cast(pa.int64())
    columns = [table.column(c) for c in (*_SHOWN, imbalance, "ofi")]
    for i in rows:
        cells = [_cell(c[i].as_py()) for c in columns]
        view.add_row(ns_to_datetime(ts[i].as_py()).isoformat(), *cells)
    console.print(view)
    if n > limit:
        console.print(f"(first and last {limit // 2} of {n:,} events shown)")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1 else f"{value:,.6f}"
    return str(value)
