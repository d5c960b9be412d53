"""Password hashing on its own bounded thread pool, so logins can never starve database reads.

argon2id (``gateway/security.py``) takes tens of milliseconds of CPU per hash on purpose. Run on
``asyncio.to_thread`` it shared the default executor with :meth:`~smart_trader.app.platform.Platform.read`: twelve
clients sending wrong passwords filled that pool and other users' reads went from 2 ms to 1.2 s.

:class:`PasswordHashing` owns a :class:`~concurrent.futures.ThreadPoolExecutor` of ``workers`` threads (argon2-cffi
releases the GIL while hashing, so they run in parallel with the event loop) and admits at most ``queue`` jobs
waiting for them. A job beyond that is refused at once with a 503 problem and ``Retry-After``: under a login flood
the API answers quickly instead of building an ever longer queue, and the default executor (database reads) never
runs a hash.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from smart_trader.gateway.problems import ProblemError
from smart_trader.gateway.security import hash_password, verify_password

T = TypeVar("T")

BUSY_DETAIL = "too many logins are being checked right now; retry shortly"


class PasswordHashing:
    """argon2id hashing and verification on a dedicated, bounded pool.

    Args:
        workers: threads hashing (``HASH_WORKERS``).
        queue: jobs that may wait for a thread (``HASH_QUEUE``); one more is refused with 503.

    ``hash``/``verify`` are the credential operations; :meth:`run` runs any other CPU-bound credential job on the same
    pool under the same bound.
    """

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be ≥ 1 and queue ≥ 0")
        self.workers = workers
        self.queue = queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-hash")
        self._lock = threading.Lock()  # _in_flight is decremented from worker threads
        self._in_flight = 0  # running + waiting
        self._seconds = 0.05  # moving average of one job's duration (Retry-After estimate)
        self._dummy: str | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Jobs running or waiting now."""
        return self._in_flight

    def _retry_after(self) -> str:
        waves = (self._in_flight + 1) / self.workers
        return str(max(1, math.ceil(waves * self._seconds)))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the hashing pool.

        Raises:
            ProblemError: 503 (``Retry-After``) when ``workers`` jobs run and ``queue`` more are waiting, or the pool
                is closed.
        """
        with self._lock:
            if self._closed or self._in_flight >= self.workers + self.queue:
                raise ProblemError(503, BUSY_DETAIL, "busy", {"Retry-After": self._retry_after()})
            self._in_flight += 1

        def job() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)

        try:
            future: Future[T] = self._executor.submit(job)
        except RuntimeError:  # shut down between the check and the submit
            self._release(None)
            raise ProblemError(503, BUSY_DETAIL, "busy", {"Retry-After": "1"}) from None
        # released when the job ends, also when it is cancelled before it started (the awaiting request went away):
        # a job still running after its caller left keeps its slot until it really ends
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        """The argon2id PHC string of ``password``.

        Raises:
            ProblemError: 503 when the pool is saturated (see :meth:`run`).
        """
        return await self.run(hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches ``password_hash``. With ``None`` (no such user) a real hash of a random
        password is verified instead, so the answer takes as long as for an existing user, and is ``False``.

        Raises:
            ProblemError: 503 when the pool is saturated (see :meth:`run`).
        """
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.run(hash_password, secrets.token_urlsafe(16))
            await self.run(verify_password, self._dummy, password)
            return False
        return await self.run(verify_password, password_hash, password)

    def close(self) -> None:
        """Refuse new jobs, cancel waiting ones, and let running ones finish in the background."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
