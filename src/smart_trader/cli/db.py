"""``smart-trader db``: the database schema, for operators (a deployment's migration step: the Helm chart's
pre-install/pre-upgrade hook Job, Compose's ``migrate`` service)."""

from __future__ import annotations

import typer

from .common import cli_errors, console
from .common import settings as load_settings

app = typer.Typer(
    help="The database schema: upgrade it to the newest revision, show where it stands.", no_args_is_help=True
)


@app.command()
def upgrade() -> None:
    """Apply every pending migration to DATABASE_URL (one transaction; on PostgreSQL under an advisory lock, so
    several processes may run it at once). Exit 0 at head; 4 when the database cannot be reached."""
    from sqlalchemy.exc import OperationalError

    from smart_trader.core.errors import TemporaryError
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import schema_status, upgrade_to_head

    from .platform import database_unreachable

    with cli_errors():
        settings = load_settings()
        engine = make_engine(settings.resolved_database_url)
        try:
            before = schema_status(engine).current
            upgrade_to_head(engine)
            status = schema_status(engine)
        except OperationalError as exc:
            raise TemporaryError(database_unreachable(settings, exc)) from None
        finally:
            engine.dispose()
    if status.ahead:
        console.print(
            f"database schema at {status.current}, a newer release's: left as it is (this release: {status.head})"
        )
        return
    moved = "already at head" if before == status.head else f"upgraded from {before or 'an empty database'}"
    console.print(f"database schema at {status.head} ({moved})")


@app.command()
def status() -> None:
    """Print the schema's current and head revisions; exit 1 when migrations are pending, 4 when the database
    cannot be reached (0 at head, or when a newer release already migrated it)."""
    from sqlalchemy.exc import OperationalError

    from smart_trader.core.errors import TemporaryError
    from smart_trader.db.engine import make_engine
    from smart_trader.db.migrate import schema_status

    from .platform import database_unreachable

    with cli_errors():
        settings = load_settings()
        engine = make_engine(settings.resolved_database_url)
        try:
            state = schema_status(engine)
        except OperationalError as exc:
            raise TemporaryError(database_unreachable(settings, exc)) from None
        finally:
            engine.dispose()
    console.print(f"current {state.current or '(empty)'}  head {state.head}")
    if state.ahead:
        console.print("the schema is a newer release's: this release runs on it (expand-then-contract migrations)")
    elif not state.at_head:
        typer.echo("migrations pending: run `smart-trader db upgrade`", err=True)
        raise typer.Exit(1)
