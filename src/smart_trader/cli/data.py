"""``smart-trader data ...``: import, list, read bars, list formats, download.

Heavy libraries (pyarrow, polars, the readers) load inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smart_trader.core.errors import InvalidInputError, NotFoundError

from .book import book
from .common import cli_errors, console, parse_time, service

if TYPE_CHECKING:
    import pyarrow as pa

app = typer.Typer(
    help="Market data: import files, list the store, read bars and order books, download from exchanges.",
    no_args_is_help=True,
)
app.command("book")(book)

KINDS = ("bars", "trades", "quotes", "book")
PRICE_TYPES = ("last", "bid", "ask", "mid")
ASSET_CLASSES = ("equity", "fx", "crypto", "future", "index", "commodity")


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is None:
        return None
    if value.lower() not in allowed:
        raise InvalidInputError(f"{option} must be one of {', '.join(allowed)}, not {value!r}")
    return value.lower()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="market-data file: CSV/TSV/JSON/Parquet/Feather/DBN, compressed or not")],
    symbol: Annotated[str, typer.Option(help="instrument symbol, e.g. BTC/USDT or ORCL")],
    venue: Annotated[str, typer.Option(help="venue code, e.g. BINANCE or NASDAQ")],
    kind: Annotated[str | None, typer.Option(help="expected kind (bars, trades, quotes, book)")] = None,
    format: Annotated[
        str | None, typer.Option(help="reader name (`smart-trader data formats`); detected when omitted")
    ] = None,
    tz: Annotated[
        str | None, typer.Option(help="IANA zone of naive local times in the file, e.g. UTC or Europe/London")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="map fields to columns: ts=Date,close=Last (1-based positions too; ts=Date:%d/%m/%Y)"),
    ] = None,
    price_type: Annotated[str | None, typer.Option(help="bars: last, bid, ask or mid")] = None,
    timeframe: Annotated[str | None, typer.Option(help="bars: e.g. 1m; inferred when omitted")] = None,
    asset_class: Annotated[str | None, typer.Option(help="for a new instrument: equity, fx, crypto...")] = None,
) -> None:
    """Import FILE into the store (re-importing the same rows adds nothing). Says which columns it read as what."""
    with cli_errors():
        from smart_trader.core.instruments import AssetClass
        from smart_trader.data.readers._columns import parse_mapping
        from smart_trader.data.schema import Kind, PriceType
        from smart_trader.data.timeframes import Timeframe

        kind_ = _choice(kind, KINDS, "--kind")
        price_type_ = _choice(price_type, PRICE_TYPES, "--price-type")
        asset_class_ = _choice(asset_class, ASSET_CLASSES, "--asset-class")
        mapping = parse_mapping(columns)
        tf = Timeframe.parse(timeframe) if timeframe else None
        with console.status(f"importing {file.name}..."):
            r = service().import_file(
                file, symbol=symbol, venue=venue, kind=Kind(kind_) if kind_ else None, format=format,
                price_type=PriceType(price_type_) if price_type_ else None, timeframe=tf,
                asset_class=AssetClass(asset_class_) if asset_class_ else None, tz=tz, columns=mapping,
            )  # fmt: skip
        rate = r.rows_read / r.seconds if r.seconds > 0 else float("inf")
        for note in r.notes:
            console.print(f"  {note}", highlight=False)
        console.print(
            f"imported [bold]{r.rows_read:,}[/] rows ({r.format}) into [bold]{r.key}[/]: "
            f"{r.rows_added:,} new, {r.partitions_written} partition file(s) written, {r.seconds:.2f} s "
            f"({rate:,.0f} rows/s)"
        )


@app.command("formats")
def formats() -> None:
    """List the file formats `data import` reads (detected from the file; --format forces one)."""
    from rich.table import Table

    from smart_trader.data.readers import FORMATS

    table = Table("format", "kind", "layout")
    for f in FORMATS.values():
        table.add_row(f.name, "any" if f.name == "generic" else str(f.kind), f.description)
    console.print(table)


@app.command("list")
def list_(
    symbol: Annotated[str | None, typer.Option(help="only this symbol")] = None,
    venue: Annotated[str | None, typer.Option(help="only this venue")] = None,
) -> None:
    """List the stored datasets."""
    with cli_errors():
        from rich.table import Table

        from smart_trader.core.clock import ns_to_datetime

        datasets = service().datasets(symbol, venue)
        table = Table("venue", "symbol", "dataset", "rows", "first (UTC)", "last (UTC)", "price dp", "size dp")
        for d in datasets:
            table.add_row(
                d.key.venue, d.key.symbol, d.key.kind_dir, f"{d.rows:,}",
                ns_to_datetime(d.first_ts_ns).isoformat(), ns_to_datetime(d.last_ts_ns).isoformat(),
                str(d.price_precision), str(d.size_precision),
            )  # fmt: skip
        if datasets:
            console.print(table)
        elif symbol is not None or venue is not None:
            console.print("no stored dataset matches; `smart-trader data list` shows them all")
        else:
            console.print("the store is empty: import a file with `smart-trader data import FILE --symbol S --venue V`")


@app.command("bars")
def bars(
    symbol: Annotated[str, typer.Argument(help="instrument symbol")],
    venue: Annotated[str, typer.Option(help="venue code")],
    timeframe: Annotated[str, typer.Option(help="1s .. 1d, e.g. 5m")] = "1m",
    start: Annotated[str | None, typer.Option(help="ISO 8601 UTC, inclusive")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 UTC, exclusive")] = None,
    price_type: Annotated[str | None, typer.Option(help="last, bid, ask or mid")] = None,
    out: Annotated[Path | None, typer.Option(help="write to a .csv or .parquet file instead of printing")] = None,
) -> None:
    """Bars of SYMBOL at a timeframe: stored, or aggregated from finer bars, trades or quotes."""
    with cli_errors():
        from smart_trader.data.schema import PriceType
        from smart_trader.data.timeframes import Timeframe

        pt = _choice(price_type, PRICE_TYPES, "--price-type")
        table = service().bars(
            symbol, venue, Timeframe.parse(timeframe), start_ns=parse_time(start, "start"),
            end_ns=parse_time(end, "end"), price_type=PriceType(pt) if pt else None,
        )  # fmt: skip
        if out is not None:
            write_table(table, out)
            console.print(f"wrote {table.num_rows:,} bars to {out}")
            return
        _print_bars(table)


def write_table(table: pa.Table, out: Path) -> None:
    """Write ``table`` to ``out``: Parquet as stored (exact decimals), or CSV with decimals as plain text.

    Raises:
        InvalidInputError: ``out`` does not end in ``.csv`` or ``.parquet``.
    """
    import polars as pl

    if out.suffix not in (".csv", ".parquet"):
        raise InvalidInputError(f"--out must end in .csv or .parquet, got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if out.suffix == ".parquet":
        frame.write_parquet(out)
    else:
        frame.with_columns(pl.col(pl.Decimal).cast(pl.String)).write_csv(out)


def _print_bars(table: pa.Table, limit: int = 20) -> None:
    import pyarrow as pa
    from rich.table import Table

    from smart_trader.core.clock import ns_to_datetime

    view = Table("ts_event (UTC)", "open", "high", "low", "close", "volume")
    n = table.num_rows
    rows = list(range(min(n, limit // 2))) + list(range(max(limit // 2, n - limit // 2), n))
    cols = [table.column(c) for c in ("open", "high", "low", "close", "volume")]
    ts = table.column("ts_event").cast(pa.int64())
    for i in rows:
        view.add_row(ns_to_datetime(ts[i].as_py()).isoformat(), *[str(c[i].as_py()) for c in cols])
    console.print(view)
    console.print(f"{n:,} bars" + (f" (first and last {limit // 2} shown)" if n > limit else ""))


@app.command("download")
def download(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance")],
    symbol: Annotated[str, typer.Option(help="ccxt symbol, e.g. BTC/USDT")],
    since: Annotated[str, typer.Option(help="ISO 8601 UTC start")],
    timeframe: Annotated[str | None, typer.Option(help="bars timeframe, e.g. 1m (omit with --kind trades)")] = "1m",
    until: Annotated[str | None, typer.Option(help="ISO 8601 UTC end (exclusive); now when omitted")] = None,
    kind: Annotated[str, typer.Option(help="bars or trades")] = "bars",
    venue: Annotated[str | None, typer.Option(help="venue code to store under (default: the exchange id)")] = None,
) -> None:
    """Download bars or trades through ccxt into the store; resumes after the last stored row."""
    with cli_errors():
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from smart_trader.data.catalog import infer_instrument
        from smart_trader.data.datasets import DatasetKey
        from smart_trader.data.download import Downloader, DownloadRequest, make_exchange  # ccxt loads in ~1 s
        from smart_trader.data.schema import Kind
        from smart_trader.data.timeframes import Timeframe

        kind_ = Kind(_choice(kind, ("bars", "trades"), "--kind") or "bars")
        svc = service()
        tf = Timeframe.parse(timeframe) if kind_ is Kind.BARS and timeframe else None
        key = DatasetKey(venue or exchange, symbol, kind_, tf)
        last = next((d.last_ts_ns for d in svc.datasets(symbol, key.venue) if d.key == key), None)
        since_ns = parse_time(since, "since")
        assert since_ns is not None
        req = DownloadRequest(exchange, symbol, kind_, tf, since_ns, parse_time(until, "until"))
        downloader = Downloader(make_exchange(exchange))
        rows = 0
        instrument = None
        with contextlib.suppress(NotFoundError):
            instrument = svc.instrument(symbol, key.venue)  # data from files or earlier downloads fixes it
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"{exchange} {symbol} {kind_}", total=None)
            for page in downloader.pages(req, resume_from_ns=last):
                if page.num_rows == 0:
                    continue
                if instrument is None:  # the first page defines a new instrument from the market's precisions
                    pp = page.schema.field("price" if kind_ is Kind.TRADES else "open").type.scale
                    sp = page.schema.field("size" if kind_ is Kind.TRADES else "volume").type.scale
                    instrument = infer_instrument(symbol, key.venue, pp, sp)
                svc.store.write(
                    key, page, price_precision=instrument.price_precision, size_precision=instrument.size_precision
                )
                svc.catalog.add(instrument)
                rows += page.num_rows
                progress.update(task, description=f"{exchange} {symbol} {kind_}: {rows:,} rows")
        console.print(f"downloaded {rows:,} rows into {key}" + (" (resumed)" if last is not None else ""))
