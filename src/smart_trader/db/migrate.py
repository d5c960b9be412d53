"""Schema migrations (Alembic), run at start: one chain for SQLite and PostgreSQL.

:func:`upgrade_to_head` brings a database to the newest revision (safe to call from several processes at once
on PostgreSQL: it takes an advisory lock); :func:`schema_status` tells ``/ready`` whether the schema is at head
(or a newer release's, which this code tolerates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_216_355_001  # PostgreSQL advisory lock id serializing concurrent upgrades


def alembic_config(url: str = "") -> Config:
    """An Alembic config pointing at the package's migrations (``url`` for command-line use)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str:
    """The newest migration revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations (False: a newer release's)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration in one transaction (PostgreSQL: under an advisory lock).

    A schema AHEAD of this code (its revision is a newer release's: during a rolling, blue-green or canary update the
    new release migrated first) is left as it is: migrations are written expand-then-contract, so the release before
    keeps working on the schema of the one after (docs/deployment.md, "Migrations and rollouts")."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and not known_revision(current):
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where the database schema stands: ``current`` revision (``None`` when empty) and ``head``."""

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        """True when every migration is applied."""
        return self.current == self.head

    @property
    def ahead(self) -> bool:
        """True when the schema is a newer release's (a revision this code does not know)."""
        return self.current is not None and not known_revision(self.current)

    @property
    def serves(self) -> bool:
        """True when this code can run on the schema: at head, or ahead (expand-then-contract migrations)."""
        return self.at_head or self.ahead


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the database's current revision.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current, head_revision())
