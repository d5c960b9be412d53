"""One reader at a time for an ordered consumer (the audit chain) however many worker replicas run: a PostgreSQL
session advisory lock per consumer name, or an exclusive ``flock`` beside the SQLite file. A killed holder's lock is
released by the database (its session ends) or the kernel (its file closes)."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

CONSUMER_LOCK_KEY = 72_163_553  # with hashtext(consumer name) as the second key


class ConsumerLock:
    """Held by the replica that runs the ordered consumer ``name``; :meth:`try_acquire` never waits."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._conn: Any = None
        self._file: IO[bytes] | None = None
        self.held = False

    def try_acquire(self) -> bool:
        """Take the lock if free; True when this replica holds it (again)."""
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k, hashtext(:n))"), {"k": CONSUMER_LOCK_KEY, "n": self.name}
                ).scalar()
            )
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            self.held = got
            return got
        database = self.engine.url.database
        if not database or database == ":memory:":
            self.held = True
            return True
        handle = Path(f"{database}.consumer-{self.name}.lock").open("ab")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        self.held = True
        return True

    def release(self) -> None:
        """Let go of the lock."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k, hashtext(:n))"), {"k": CONSUMER_LOCK_KEY, "n": self.name}
                )
                self._conn.commit()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self.held = False
