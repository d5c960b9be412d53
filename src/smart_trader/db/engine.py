"""Database engines: the embedded SQLite file (WAL) or PostgreSQL through psycopg 3.

SQLite is opened with ``journal_mode=WAL`` (readers never block the writer), ``synchronous=NORMAL``
(a commit is durable against a process crash — kill -9 — and the WAL is synced at checkpoints),
``foreign_keys=ON`` and a 5 s busy timeout. Automatic checkpoints are off: a checkpoint copies the WAL into the
database file and fsyncs it, and done inside a commit it made that commit ~1 ms slower on the writer's hot path.
:class:`Checkpointer` runs them from a background thread instead (a thread blocked in fsync does not hold the GIL).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create the engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    The SQLite file's folder is created when missing.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, pool_size=pool_size, max_overflow=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=8, pool_pre_ping=True)


def make_async_engine(url: str, *, pool_size: int = 6) -> AsyncEngine:
    """An asyncio engine (psycopg's async driver) for the PostgreSQL ``url`` (the writer's, see
    :class:`~smart_trader.db.writer.BatchWriter`)."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's recipe for pysqlite: take transaction control from the driver (which would not BEGIN before a
    # SAVEPOINT or a SELECT), and BEGIN ourselves in the "begin" event. Savepoints then nest inside the batch's
    # transaction, and a read sees one snapshot of the database for all its statements.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


class Checkpointer:
    """Checkpoints an SQLite WAL every ``every`` seconds from its own thread and connection (``PASSIVE``: never
    waits for readers or the writer), and truncates the WAL at :meth:`stop`. Nothing to do for other databases."""

    def __init__(self, engine: Engine, every: float = 1.0) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self.enabled = engine.dialect.name == "sqlite"

    def start(self) -> None:
        """Start checkpointing (SQLite only)."""
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        """Stop, after a final checkpoint that empties the WAL."""
        if self.enabled and self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._checkpoint("TRUNCATE")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._checkpoint("PASSIVE")

    def _checkpoint(self, mode: str) -> None:
        try:
            with self.engine.connect() as conn:  # the driver's own connection: no BEGIN around the checkpoint
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except Exception:  # a busy or closed database: the next round tries again
            log.warning("sqlite checkpoint failed", exc_info=True)
