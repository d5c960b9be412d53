"""Making sure only one trading runtime works on a database: a PostgreSQL session advisory lock, or, for the
SQLite file, an exclusive ``flock`` on a lock file beside it. Two runtimes would take the same orders twice."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

from smart_trader.core.errors import InvalidInputError

RUNTIME_LOCK_KEY = 72_163_552  # with the database's name hashed as the second key: one lock per database
_MESSAGE = (
    "another trading runtime (smart-trader up, or serve --role feed) is already running on this database; run one "
    "per deployment (any number of serve --role api processes may join it)"
)


class RuntimeLock:
    """Held from :meth:`acquire` to :meth:`release` by the process running the trading runtime.

    Raises:
        InvalidInputError: on :meth:`acquire`, another process holds it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock or raise at once (never waits)."""
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k, hashtext(current_database()))"), {"k": RUNTIME_LOCK_KEY}
            ).scalar()
            conn.commit()
            if not got:
                conn.close()
                raise InvalidInputError(_MESSAGE)
            self._conn = conn  # the lock lives as long as this session
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        handle = Path(database + ".runtime-lock").open("ab")  # noqa: SIM115 - held open until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InvalidInputError(_MESSAGE) from None
        self._file = handle

    def release(self) -> None:
        """Let go (closing the session or the file releases it; a killed process releases it too)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a pooled connection outlives close(): unlock explicitly
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k, hashtext(current_database()))"), {"k": RUNTIME_LOCK_KEY}
                )
                self._conn.commit()
            self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
