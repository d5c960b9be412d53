"""Fixtures of the notification tests: an empty database at the head migration, on SQLite and on the real PostgreSQL,
and the platform's group-commit writer on it (thread mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.writer import BatchWriter
from tests.conftest import fresh_database_url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str, worker_id: str) -> Iterator[str]:
    """A PostgreSQL database private to this pytest run and worker, dropped at the end (the repository-wide
    ``test_st_<worker>`` is shared by every run on the server: runs at once would reset each other's schema)."""
    import os

    import psycopg

    name = f"test_st_notif_{worker_id}_{os.getpid()}".replace("-", "_")
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database at head (SQLite file, or this worker's PostgreSQL database emptied)."""
    e = make_engine(fresh_database_url(request.param, request, tmp_path))
    upgrade_to_head(e)
    try:
        yield e
    finally:
        e.dispose()


@pytest.fixture
def writer(engine: Engine) -> Iterator[BatchWriter]:
    """The group-commit writer on ``engine`` (its own thread), as the worker process runs it."""
    w = BatchWriter(engine)
    w.start()
    try:
        yield w
    finally:
        w.stop()
