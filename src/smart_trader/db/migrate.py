"""Schema migrations (Alembic), run at start: one chain for SQLite and PostgreSQL.

:func:`upgrade_to_head` brings a database to the newest revision (safe to call from several processes at once
on PostgreSQL: it takes an advisory lock); :func:`schema_status` tells ``/ready`` whether the schema is at head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration in one transaction (PostgreSQL: under an advisory lock)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
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


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the database's current revision.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current, head_revision())
