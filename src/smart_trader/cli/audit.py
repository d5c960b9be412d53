"""``smart-trader audit``: check the tamper-evident audit trail (run on the server: works on the database directly)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import cli_errors, console
from .common import settings as load_settings

app = typer.Typer(help="The audit trail: verify its hash chain.", no_args_is_help=True)


@app.command()
def verify(
    first: Annotated[int, typer.Option("--from", min=1, help="first record (seq)")] = 1,
    last: Annotated[
        int | None, typer.Option("--to", min=1, help="last record (seq) to check; default the head")
    ] = None,
) -> None:
    """Check the audit chain from --from to --to: every record's hash, its link to the one before, no gap. Prints the
    number of records and the head hash; on a broken chain prints the first broken record and exits 1."""
    from smart_trader.compliance.store import verify_stored
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import upgrade_to_head

    with cli_errors():
        engine = make_engine(load_settings().resolved_database_url)
        try:
            upgrade_to_head(engine)
            with engine.connect() as conn:
                n, head, broken = verify_stored(conn, first, last)
        finally:
            engine.dispose()
    if broken is not None:
        typer.echo(f"audit trail broken at {broken} ({n} records before it verified)", err=True)
        raise typer.Exit(1)
    console.print(f"audit trail intact: {n} records from {first}, head {head}")
