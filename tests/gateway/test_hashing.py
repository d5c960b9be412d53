"""Password hashing on its own bounded pool (gateway/hashing.py): real argon2id hashes, 503 beyond the queue, and
database reads (``asyncio.to_thread``, the default pool) never waiting behind hashes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from smart_trader.gateway.hashing import PasswordHashing
from smart_trader.gateway.problems import ProblemError


@pytest.fixture(autouse=True)
def cheaper_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id, at a cost of tens of milliseconds rather than the defaults' ~0.3-1 s on a busy 2-core machine
    (the flood below hashes 32 times); the GIL is released while hashing all the same."""
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=16 * 1024, parallelism=1))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.001)


def test_hash_and_verify_run_on_the_hashing_threads() -> None:
    async def scenario() -> None:
        hashing = PasswordHashing(workers=2, queue=4)
        try:
            stored = await hashing.hash("correct horse battery staple")
            assert stored.startswith("$argon2id$")
            assert await hashing.verify(stored, "correct horse battery staple") is True
            assert await hashing.verify(stored, "wrong") is False
            assert await hashing.verify("not a hash", "x") is False
            assert await hashing.verify(None, "anything") is False  # no such user: a real hash is still checked
            names = await asyncio.gather(*(hashing.run(lambda: threading.current_thread().name) for _ in range(4)))
            assert all(n.startswith("password-hash") for n in names)
            assert hashing.in_flight == 0
        finally:
            hashing.close()

    run(scenario)


def test_a_full_pool_refuses_at_once_and_reads_still_run() -> None:
    async def scenario() -> None:
        hashing = PasswordHashing(workers=2, queue=3)
        release = threading.Event()
        started = threading.Semaphore(0)

        def blocked() -> str:
            started.release()
            release.wait(30)
            return "hashed"

        try:
            jobs = [asyncio.create_task(hashing.run(blocked)) for _ in range(5)]  # 2 running, 3 waiting
            await until(lambda: hashing.in_flight == 5)
            for _ in range(2):  # both threads are inside a job
                assert await asyncio.to_thread(started.acquire, True, 10)
            with pytest.raises(ProblemError) as err:
                await hashing.verify("$argon2id$...", "guess")
            assert err.value.status == 503 and err.value.headers is not None
            assert int(err.value.headers["Retry-After"]) >= 1
            # a database read (the default pool) runs while every hashing thread is busy and the queue is full
            read = await asyncio.to_thread(lambda: "rows")
            assert read == "rows" and not any(j.done() for j in jobs)
            release.set()
            assert await asyncio.gather(*jobs) == ["hashed"] * 5
            await until(lambda: hashing.in_flight == 0)
            assert await hashing.run(lambda: 42) == 42  # room again
        finally:
            release.set()
            hashing.close()

    run(scenario)


def test_reads_finish_before_a_flood_of_real_hashes() -> None:
    async def scenario() -> None:
        hashing = PasswordHashing(workers=2, queue=30)
        stored = await hashing.hash("s3cret-password")
        order: list[str] = []

        async def login(i: int) -> None:
            await hashing.verify(stored, f"guess-{i}")
            order.append("hash")

        async def read() -> None:
            await asyncio.to_thread(lambda: None)
            order.append("read")

        try:
            flood = [asyncio.create_task(login(i)) for i in range(32)]
            await until(lambda: hashing.in_flight >= 2)
            await asyncio.gather(*(read() for _ in range(8)))
            # eight reads done while at most a handful of the 32 hashes had finished
            assert order.count("read") == 8 and order.count("hash") < 16, order
            await asyncio.gather(*flood)
            assert order.count("hash") == 32
        finally:
            hashing.close()

    run(scenario)


def test_a_cancelled_waiting_job_gives_its_place_back() -> None:
    async def scenario() -> None:
        hashing = PasswordHashing(workers=1, queue=1)
        release = threading.Event()
        try:
            running = asyncio.create_task(hashing.run(release.wait, 30))
            waiting = asyncio.create_task(hashing.run(lambda: "never"))
            await until(lambda: hashing.in_flight == 2)
            waiting.cancel()  # the client went away while its hash waited
            await until(lambda: hashing.in_flight == 1)
            release.set()
            assert await running is True
            await until(lambda: hashing.in_flight == 0)
        finally:
            release.set()
            hashing.close()

    run(scenario)


def test_closed_pool_refuses() -> None:
    async def scenario() -> None:
        hashing = PasswordHashing(workers=1, queue=1)
        hashing.close()
        with pytest.raises(ProblemError) as err:
            await hashing.hash("x")
        assert err.value.status == 503

    run(scenario)
