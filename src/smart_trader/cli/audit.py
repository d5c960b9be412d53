"""``smart-trader audit``: check the tamper-evident audit trail (run on the server: works on the database directly)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from smart_trader.core.errors import InvalidInputError

from .common import cli_errors, console
from .common import settings as load_settings

app = typer.Typer(help="The audit trail: verify its hash chain, export it.", no_args_is_help=True)


@app.command()
def verify(
    first: Annotated[int, typer.Option("--from", min=1, help="first record (seq)")] = 1,
    last: Annotated[
        int | None, typer.Option("--to", min=1, help="last record (seq) to check; default the head")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="check an export file (audit export) instead of the database")
    ] = None,
) -> None:
    """Check the audit chain from --from to --to: every record's hash, its link to the one before, no gap. Prints the
    number of records and the head hash; on a broken chain prints the first broken record and exits 1. With --file,
    checks an export the same way, and each event's payload against its record."""
    from sqlalchemy import func, select

    from smart_trader.compliance.store import verify_stored
    from smart_trader.compliance.tables import audit_log
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import upgrade_to_head

    if file is not None and file.suffix == ".parquet":
        from smart_trader.compliance.archive import check_parquet

        with cli_errors():
            n, head, broken = check_parquet(file)
        if broken is not None:
            typer.echo(f"audit archive broken at {broken} ({n} records before it verified)", err=True)
            raise typer.Exit(1)
        console.print(f"audit archive intact: {n} records, head {head}")
        return
    if file is not None:
        from smart_trader.compliance.export import check_file

        with cli_errors():
            checked = check_file(file)
        if checked.broken is not None:
            typer.echo(
                f"audit export broken at {checked.broken} ({checked.records} records before it verified)", err=True
            )
            raise typer.Exit(1)
        console.print(f"audit export intact: {checked.records} records, head {checked.head_hash}")
        return
    with cli_errors():
        engine = make_engine(load_settings().resolved_database_url)
        try:
            upgrade_to_head(engine)
            with engine.connect() as conn:
                n, head, broken = verify_stored(conn, first, last)
                oldest = conn.execute(select(func.min(audit_log.c.seq))).scalar()
        finally:
            engine.dispose()
    if broken is not None:
        typer.echo(f"audit trail broken at {broken} ({n} records before it verified)", err=True)
        raise typer.Exit(1)
    start = max(first, int(oldest or 1))  # records before it are archived (retention)
    console.print(f"audit trail intact: {n} records from {start}, head {head}")


def _bound(text: str | None, name: str) -> tuple[int | None, int | None]:
    """``--from``/``--to`` of export: a record number (seq) or a UTC date (YYYY-MM-DD) → (seq, ns)."""
    if text is None:
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{name} takes a record number or a date YYYY-MM-DD (UTC), got {text!r}") from None
    return None, int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="the file to write (JSON Lines)")],
    first: Annotated[
        str | None, typer.Option("--from", help="first record (seq) or first UTC day (YYYY-MM-DD)")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="last record (seq), or the UTC day the export stops before (YYYY-MM-DD)")
    ] = None,
) -> None:
    """Export the audit records of a range with the events they record, as a self-checking file a regulator can
    verify without Smart Trader (the header line says how; `smart-trader audit verify --file` does it)."""
    from smart_trader.compliance.export import export, seq_range
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import upgrade_to_head

    first_seq, first_ns = _bound(first, "--from")
    last_seq, last_ns = _bound(last, "--to")
    with cli_errors():
        engine = make_engine(load_settings().resolved_database_url)
        try:
            upgrade_to_head(engine)
            with engine.connect() as conn:
                if first_ns is not None or last_ns is not None:
                    found = seq_range(conn, first_ns, last_ns)
                    if found is None:
                        raise InvalidInputError("no audit record in that range")
                    first_seq = first_seq or (found[0] if first_ns is not None else 1)
                    last_seq = last_seq or (found[1] if last_ns is not None else None)
                with out.open("wb") as f:
                    n = export(conn, f, first_seq or 1, last_seq)
        finally:
            engine.dispose()
    console.print(f"exported {n} audit records to {out}")


@app.command("archive")
def archive_cmd(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="where the Parquet files go (one per UTC month)")],
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", min=1, help="keep this many days (default AUDIT_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Retention: move the audit records older than the retention period to Parquet files (one per UTC month, each
    with the hash of the record before it and its head), record them in audit_archives and delete them from the
    database. The chain still verifies from its first stored record; `audit verify --file F.parquet` checks a file."""
    import time

    from smart_trader.compliance.archive import archive
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import upgrade_to_head

    settings = load_settings()
    days = retention_days or settings.audit_retention_days
    now = time.time_ns()
    with cli_errors():
        engine = make_engine(settings.resolved_database_url)
        try:
            upgrade_to_head(engine)
            with engine.begin() as conn:
                written = archive(conn, out_dir, now - days * 86_400 * 1_000_000_000, now)
        finally:
            engine.dispose()
    for a in written:
        console.print(f"archived records {a.first_seq}–{a.last_seq} ({a.period}) to {a.path}, head {a.head_hash}")
    if not written:
        console.print(f"nothing older than {days} days to archive")
