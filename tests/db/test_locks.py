"""Only one trading runtime per database: a second one is refused, and the lock frees when the first stops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smart_trader.core.errors import InvalidInputError
from smart_trader.db.engine import make_engine
from smart_trader.db.locks import RuntimeLock
from tests.conftest import fresh_database_url


@pytest.fixture(params=["sqlite", "postgres"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database, as two processes would have."""
    url = fresh_database_url(request.param, request, tmp_path)
    a, b = make_engine(url), make_engine(url)
    yield a, b
    a.dispose()
    b.dispose()


def test_a_second_runtime_is_refused_until_the_first_lets_go(engines: tuple[Engine, Engine]) -> None:
    first, second = RuntimeLock(engines[0]), RuntimeLock(engines[1])
    first.acquire()
    try:
        with pytest.raises(InvalidInputError, match="another trading runtime"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # free again
    second.release()
