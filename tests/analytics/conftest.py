"""Fixtures of the analytics tests: a PostgreSQL database private to this pytest run and worker, and the platform
(``tests/app/conftest.py``) for the route tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.app.conftest import fast_password_hashing, platform  # noqa: F401 - the platform tests' fixtures


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str, worker_id: str) -> Iterator[str]:
    """``test_st_analytics_<worker>_<pid>``, dropped at the end: the repository-wide ``test_st_<worker>`` is shared by
    every run on the server, and another run resetting it mid-test would fail these tests for nothing (the same
    override as ``tests/app/conftest.py``)."""
    import psycopg

    name = f"test_st_analytics_{worker_id}_{os.getpid()}".replace("-", "_")
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
