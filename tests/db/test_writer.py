"""The group-commit writer on SQLite and the real PostgreSQL: batches commit together, a failing job fails
alone, bulk jobs get one result per item, and a caller is answered only after its change is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, insert, select

from smart_trader.db.engine import make_async_engine, make_engine
from smart_trader.db.writer import BatchWriter
from tests.conftest import fresh_database_url

meta = MetaData()
items = Table("items", meta, Column("id", Integer, primary_key=True), Column("name", String(20), unique=True))


@pytest.fixture(
    params=[
        ("sqlite", "thread"),
        ("sqlite", "inline"),
        ("postgres", "thread"),
        ("postgres", "inline"),
        ("postgres", "async"),
    ],
    ids=lambda p: "-".join(p),
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A fresh database with one table (SQLite file, or the real PostgreSQL) and a way to run the writer: its own
    thread, inline on the event loop, or asynchronously (PostgreSQL's async driver)."""
    database, mode = request.param
    eng = make_engine(fresh_database_url(database, request, tmp_path))
    meta.create_all(eng)
    yield eng, mode
    eng.dispose()


def make_writer(engine: Engine, mode: str) -> BatchWriter:
    """A writer on ``engine`` in ``mode``; the async engine is made inside the test's event loop."""
    if mode == "async":
        return BatchWriter(engine, async_engine=make_async_engine(engine.url.render_as_string(hide_password=False)))
    return BatchWriter(engine, inline=mode == "inline")


def _names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r.name for r in conn.execute(select(items)))


def _add(name: str, fail: bool = False) -> Any:
    def job(conn: Connection) -> str:
        conn.execute(insert(items).values(name=name))
        if fail:
            raise ValueError(f"{name} refused")
        return name

    return job


def _bulk(conn: Connection, names: list[str]) -> list[int]:
    conn.execute(insert(items), [{"name": n} for n in names])  # a duplicate name fails the whole statement
    return [len(n) for n in names]


def test_a_failing_job_fails_alone_and_the_rest_commit(setup: tuple[Engine, str]) -> None:
    engine, mode = setup
    writer = make_writer(engine, mode)

    async def main() -> list[Any]:
        out = await asyncio.gather(
            *(writer.run(_add(f"ok{i}")) for i in range(20)),
            writer.run(_add("bad", fail=True)),
            return_exceptions=True,
        )
        await writer.aclose()
        return out

    writer.start()
    try:
        results = asyncio.run(main())
    finally:
        writer.stop()
    assert results[:20] == [f"ok{i}" for i in range(20)]
    assert isinstance(results[20], ValueError) and "bad refused" in str(results[20])
    assert _names(engine) == sorted(f"ok{i}" for i in range(20))  # "bad" was undone, nothing else


def test_bulk_items_get_their_own_results_and_a_bad_item_fails_only_its_caller(setup: tuple[Engine, str]) -> None:
    engine, mode = setup
    writer = make_writer(engine, mode)

    async def main() -> list[Any]:
        names = ["a", "bb", "ccc", "a", "dddd"]  # the second "a" breaks the unique constraint
        out = await asyncio.gather(*(writer.run_bulk(_bulk, n) for n in names), return_exceptions=True)
        await writer.aclose()
        return out

    writer.start()
    try:
        results = asyncio.run(main())
    finally:
        writer.stop()
    assert [r for r in results if not isinstance(r, Exception)] == [1, 2, 3, 4]
    assert sum(isinstance(r, Exception) for r in results) == 1
    assert _names(engine) == ["a", "bb", "ccc", "dddd"]
    assert writer.batches >= 1


def test_many_concurrent_jobs_share_few_commits(setup: tuple[Engine, str]) -> None:
    engine, mode = setup
    writer = make_writer(engine, mode)

    async def main() -> None:
        await asyncio.gather(*(writer.run(_add(f"n{i}")) for i in range(300)))
        await writer.aclose()

    writer.start()
    try:
        asyncio.run(main())
    finally:
        writer.stop()
    assert len(_names(engine)) == 300
    assert writer.jobs == 300 and writer.batches < 300  # group commit: fewer transactions than jobs


def test_no_batch_commits_while_the_inline_writer_is_paused(tmp_path: Path) -> None:
    """Jobs queued during :meth:`BatchWriter.paused` (SQLite's RESTART checkpoint runs then) wait, and commit
    together once it ends."""
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    meta.create_all(engine)
    writer = BatchWriter(engine, inline=True)

    async def main() -> list[Any]:
        async with writer.paused():
            jobs = [asyncio.ensure_future(writer.run(_add(f"p{i}"))) for i in range(10)]
            await asyncio.sleep(0.05)  # many times the 2 ms a batch waits to gather jobs
            assert not any(j.done() for j in jobs)
            assert _names(engine) == []
        return await asyncio.gather(*jobs)

    try:
        assert asyncio.run(main()) == [f"p{i}" for i in range(10)]
    finally:
        writer.stop()
    assert _names(engine) == sorted(f"p{i}" for i in range(10))
    assert writer.batches == 1
    engine.dispose()
