"""Shared fixtures: the real recorded market data in ../shared/data and an isolated SMART_TRADER_HOME."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_SECRET_KEY = secrets.token_hex(32)  # a strong signing key for the tests' servers (a new one each run)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real recorded market data (``../shared/data`` beside the repository).

    Skips with a reason when absent; fails instead when ``CI`` is set, since CI always has it.
    """
    if not SHARED_DATA.is_dir():
        msg = f"real market data not found at {SHARED_DATA} (expected ../shared/data beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty SMART_TRADER_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("SMART_TRADER_HOME", str(path))
    return path


def _service_missing(msg: str) -> None:
    """Skip with ``msg``, or fail when ``CI`` is set (CI always starts PostgreSQL and Redis)."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of the real PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database ``test``).

    Skips when it does not answer (fails under ``CI``)."""
    import psycopg

    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _service_missing(f"PostgreSQL not reachable at {url} ({exc}); start it with pg_ctlcluster ... main start")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str, worker_id: str) -> str:
    """A database of this test worker's own (``test_<worker>``) on the real PostgreSQL, created once."""
    import psycopg

    name = f"test_st_{worker_id}".replace("-", "_")
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"


def reset_postgres(url: str) -> None:
    """Drop every table of the database (a fresh, empty schema)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def fresh_database_url(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The SQLAlchemy URL of an empty database: ``"sqlite"``, a file under ``tmp_path``; ``"postgres"``, this test
    worker's database on the real PostgreSQL (psycopg 3 driver) with every table dropped."""
    if database == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url.replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis (127.0.0.1:6379). Skips when it does not answer (fails under ``CI``)."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        _service_missing(f"Redis not reachable at {url} ({exc}); start it with redis-server --daemonize yes ...")
    return url
