"""The runtime's unit of work: the changes the brokers made since the last write, turned into rows by each
registered persistence contributor (:class:`Persister`) and written in one transaction through the group-commit
writer; after the commit each contributor's hook runs and the outbox relay is woken.

Each subpackage writes only its own tables through its contributor (``execution/persist.py``: orders, fills, order
events; ``portfolio/persist.py``: ledger, positions, account summaries, equity snapshots, account events); a new one
(``challenges/persist.py``) plugs in through :class:`~smart_trader.live.runtime.TradingRuntime`'s ``persisters``
argument or :meth:`BatchUnitOfWork.register`. Pattern: cosmicpython's ``AbstractUnitOfWork.collect_new_events``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import Connection

from smart_trader.db.writer import BatchWriter
from smart_trader.execution.persist import OrderChange
from smart_trader.trading.session import AccountSession

log = structlog.get_logger("smart_trader.runtime")
RowsT = TypeVar("RowsT")


class Persister(Protocol[RowsT]):
    """A persistence contributor: turns a batch's changes into rows of its own subpackage's tables, and writes them.

    :meth:`collect` runs on the event loop and may advance the contributor's own record of what is stored;
    :meth:`write` runs inside the batch's transaction and may run twice (the writer redoes a failed batch with
    savepoints), so it only touches the database through ``conn``; :meth:`after_commit` runs once the batch is
    durable.
    """

    def collect(
        self, changes: Sequence[OrderChange], accounts: Sequence[AccountSession], snapshot: bool
    ) -> RowsT | None:
        """The rows of this batch (``None``: nothing to write).

        Args:
            changes: the order events since the last batch, in the order the brokers emitted them.
            accounts: the sessions the events touched, then (with ``snapshot``) every other loaded session holding a
                position.
            snapshot: a periodic snapshot (equity of accounts with open positions is due).
        """
        ...

    def write(self, conn: Connection, rows: RowsT) -> None:
        """Write ``rows`` in the caller's transaction.

        Raises:
            SQLAlchemyError: the database refused a statement (the whole batch is then rolled back).
        """
        ...

    def after_commit(self, rows: RowsT) -> None:
        """``rows`` are committed (metrics, forgetting what memory no longer needs)."""
        ...


class BatchUnitOfWork:
    """Collects the brokers' order events (:attr:`changes`) and writes them, with what they changed, one batch at a
    time.

    Args:
        writer: the group-commit writer.
        persisters: the contributors, in the order their rows are written.
        loaded: every loaded session (read when a snapshot is due).
        on_failure: awaited after a batch failed to commit (the runtime rebuilds its accounts from the database).
        notify_outbox: called after each commit (every batch writes outbox events; wakes the relay).
    """

    def __init__(
        self,
        writer: BatchWriter,
        persisters: Sequence[Persister[Any]],
        loaded: Callable[[], Iterable[AccountSession]],
        on_failure: Callable[[], Awaitable[None]],
        notify_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = writer
        self.persisters: list[Persister[Any]] = list(persisters)
        self.loaded = loaded
        self.on_failure = on_failure
        self.notify_outbox = notify_outbox
        self.changes: list[OrderChange] = []
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None

    def register(self, persister: Persister[Any]) -> None:
        """Add a contributor; its rows are written after those of the contributors before it."""
        self.persisters.append(persister)

    @property
    def writing(self) -> bool:
        """Whether a batch is being collected or written now."""
        return self._lock.locked()

    def discard(self) -> None:
        """Forget the changes not written yet (memory is being rebuilt from the database)."""
        self.changes[:] = []

    async def wait_inflight(self) -> None:
        """Wait for a write whose caller was cancelled (shutdown) to finish, whatever its outcome."""
        if self._inflight is not None:
            await asyncio.gather(self._inflight, return_exceptions=True)

    async def flush(self, snapshot: bool = False) -> None:
        """Write every change made in memory so far (with ``snapshot``, also equity snapshots of accounts with open
        positions) in one transaction. One write at a time; a write is not abandoned when the caller is cancelled;
        if it fails, ``on_failure`` is awaited and the changes are lost to memory (the database is the truth)."""
        async with self._lock:
            work = self._collect(snapshot)
            if not work:
                return

            def write(conn: Connection) -> None:
                for persister, rows in work:
                    persister.write(conn, rows)

            self._inflight = asyncio.ensure_future(self.writer.run(write))
            try:
                await asyncio.shield(self._inflight)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing the broker's changes failed; rebuilding every account from the database")
                await self.on_failure()
                return
            for persister, rows in work:
                persister.after_commit(rows)
            self.notify_outbox()

    def _collect(self, snapshot: bool) -> list[tuple[Persister[Any], Any]]:
        changes, self.changes[:] = list(self.changes), []
        touched = list({id(c.session): c.session for c in changes}.values())
        accounts = touched
        if snapshot:
            seen = {id(s) for s in touched}
            accounts = touched + [s for s in self.loaded() if id(s) not in seen and _has_position(s)]
        work: list[tuple[Persister[Any], Any]] = []
        for persister in self.persisters:
            rows = persister.collect(changes, accounts, snapshot)
            if rows is not None:
                work.append((persister, rows))
        return work


def _has_position(session: AccountSession) -> bool:
    return any(p.quantity for p in session.account.positions.values())
