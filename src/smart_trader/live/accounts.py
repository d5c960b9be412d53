"""The runtime's loaded accounts: each one's trading pipeline (:class:`AccountSession`) built from the database, an
account that fails to load left in quarantine, the risk manager's limits and halts applied when it loads and when
they change, the risk gauges of every loaded account, and the rebuild of every account after a failed write.

Every session the registry builds gets, besides the checks and monitors of the runtime's :class:`SessionFactory`
(a challenge's), its account's risk limits as one pre-trade check run after them
(:class:`~smart_trader.risk.checks.RiskChecks`: order quantity and notional, position, price collar, open orders,
submission rate last) and a :class:`~smart_trader.risk.drawdown.HighWaterMark` monitor seeded with the stored
equity peak. The paper broker's own ``limits`` are not set: each limit is enforced once, by the session.

Reads go through the subpackages' storage functions (``execution/store.py``, ``portfolio/store.py``,
``risk/store.py``), never their tables. Times: ns since the epoch, UTC (``time_floor_ns`` market clock,
``changed_since`` wall clock); quarantine on the monotonic clock.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from smart_trader.core.clock import NS_PER_DAY, MarketClock
from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.execution import store as order_store
from smart_trader.execution.events import OrderEvent
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.execution.persist import OrderPersister
from smart_trader.live.market_state import MarketState
from smart_trader.ops import metrics
from smart_trader.portfolio import store as account_store
from smart_trader.portfolio.account import Account
from smart_trader.portfolio.persist import PortfolioPersister, StoredAccount
from smart_trader.risk import store as risk_store
from smart_trader.risk.aggregates import RiskGauges, publish
from smart_trader.risk.checks import AccountRiskLimits, RiskChecks
from smart_trader.risk.drawdown import HighWaterMark, drawdown_fraction
from smart_trader.risk.limits import halt_reason, risk_limits
from smart_trader.risk.var import VAR_WINDOW_RETURNS, DailyCloses
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, ChecksFor, MonitorsFor, SessionFactory

log = structlog.get_logger("smart_trader.runtime")
QUARANTINE_SECONDS = 30.0  # an account that failed to load is retried after this long
LIMITS_RECHECK_SECONDS = 5.0  # changed risk limits and halts are re-read from the database this often
RISK_GAUGES_SECONDS = 5.0  # the risk aggregates (portfolio_var_95, portfolio_drawdown) are published this often
CLOSES_SEED_BATCH = 1_000  # accounts whose daily closes are read from the database per publication, at most
Listener = Callable[[Order, OrderEvent], None]


def durable_ids(prefix: str) -> Callable[[], str]:
    """Ids unique across processes and restarts: ``<prefix>-<12 random hex>-<n, 12 digits>`` (zero-padded, so
    one run's ids sort in the order they were made)."""
    run = uuid.uuid4().hex[:12]
    return map(f"{prefix}-{run}-{{:012d}}".format, itertools.count(1)).__next__


@dataclass(slots=True, eq=False)
class AccountBook:
    """One loaded account: its trading pipeline (:class:`AccountSession`: account, broker, checks, monitors), what of
    it is already stored, its risk limits' check (swapped in place when a risk manager changes them) and its
    high-water mark."""

    session: AccountSession
    stored: StoredAccount
    risk: RiskChecks
    high_water: HighWaterMark

    @property
    def account(self) -> Account:
        """The exact account."""
        return self.session.account

    @property
    def broker(self) -> PaperBroker:
        """The account's paper broker."""
        return self.session.broker

    @property
    def peak(self) -> Decimal:
        """The stored equity peak (account currency)."""
        return self.stored.peak


_Loaded = tuple[Account, list[Any], Decimal, int, tuple[AccountRiskLimits, str | None]]


def _plus(given: Callable[[Account], Sequence[Any]] | None, extra: object) -> Callable[[Account], tuple[Any, ...]]:
    """``given``'s parts of an account followed by ``extra``."""

    def parts(account: Account) -> tuple[Any, ...]:
        return (*(given(account) if given is not None else ()), extra)

    return parts


class AccountRegistry:
    """Every account the runtime has loaded, by id.

    Args:
        engine: the database (reads run in threads).
        instrument: looks an instrument up by id (raises :class:`NotFoundError` when unknown).
        sessions: builds each account's pipeline.
        clock: the market clock the sessions run on.
        market: the last prices (the accounts' marks).
        dispatch: the market-event dispatcher the sessions are indexed in.
        orders: execution's contributor (remembers the restored orders' stored fields, listens to the brokers).
        portfolio: portfolio's contributor (follows what of each account is stored).
        listener: the broker listener of a new session (the batch's change list).
        default_limits: open orders and submissions per second of an account a risk manager set none for.
        now_ns: the wall clock (ns UTC) the limits' change times are compared with.
        loaders: read with each account's connection as it loads, before its session is built (e.g. a challenge
            contributor preparing the account's monitor).
        resets: called when every account is dropped to be rebuilt from the database, before they load again.
        actives: more sources of the accounts to load at start, read with a connection (e.g. the challenge accounts
            still judged: their day resets run without orders or positions).
    """

    def __init__(
        self,
        engine: Engine,
        instrument: Callable[[InstrumentId], Instrument],
        sessions: SessionFactory,
        clock: MarketClock,
        market: MarketState,
        dispatch: MarketDispatcher,
        orders: OrderPersister,
        portfolio: PortfolioPersister,
        listener: Callable[[AccountSession], Listener],
        default_limits: OrderLimits | None = None,
        now_ns: Callable[[], int] = wall_clock_ns,
        loaders: Sequence[Callable[[Connection, str], None]] = (),
        resets: Sequence[Callable[[], None]] = (),
        actives: Sequence[Callable[[Connection], Iterable[str]]] = (),
    ) -> None:
        self.engine = engine
        self.actives = list(actives)
        self.instrument = instrument
        self.sessions = sessions
        self.clock = clock
        self.market = market
        self.dispatch = dispatch
        self.orders = orders
        self.portfolio = portfolio
        self.listener = listener
        self.default_limits = default_limits or OrderLimits()
        self.now_ns = now_ns
        self.loaders = list(loaders)
        self.resets = list(resets)
        self.books: dict[str, AccountBook] = {}
        self.halted_instruments: set[InstrumentId] = set()  # halted for every account (shared by the risk checks)
        self.closes: dict[str, DailyCloses] = {}  # account id → its daily equity closes (the VaR gauge)
        self.reloads: dict[str, asyncio.Task[None]] = {}  # account id → re-read of its limits in progress
        self._quarantine: dict[str, float] = {}  # account id → monotonic time it failed to load

    def sessions_loaded(self) -> Iterator[AccountSession]:
        """The sessions of every loaded account."""
        return (b.session for b in self.books.values())

    # -- loading --------------------------------------------------------------------------
    def stored_clock(self) -> int:
        """The latest market time stored (order events, equity snapshots), ns UTC; 0 for an empty database."""
        with self.engine.connect() as conn:
            return max(order_store.latest_ts(conn), account_store.latest_snapshot_ts(conn))

    def _active_accounts(self) -> list[str]:
        """Accounts with working orders (to restore them) or open positions (their equity moves with prices)."""
        with self.engine.connect() as conn:
            ids = order_store.accounts_with_open_orders(conn) | account_store.accounts_with_positions(conn)
            for source in self.actives:
                ids |= set(source(conn))
            return sorted(ids)

    async def load_active(self) -> None:
        """Load the halted instruments, then every account with working orders or open positions (quarantining those
        that fail)."""
        await self.reload_instrument_halts()
        for account_id in await asyncio.to_thread(self._active_accounts):
            await self.book_or_quarantine(account_id)

    async def book_or_quarantine(self, account_id: str) -> AccountBook | None:
        """:meth:`book`, but an account that fails to load (a damaged ledger, an instrument gone from the catalog)
        is logged and left alone for ``QUARANTINE_SECONDS`` instead of stopping everyone else's orders."""
        failed = self._quarantine.get(account_id)
        if failed is not None and time.monotonic() - failed < QUARANTINE_SECONDS:
            return None
        try:
            book = await self.book(account_id)
        except Exception:
            self._quarantine[account_id] = time.monotonic()
            log.exception("account could not be loaded; its orders wait", account_id=account_id)
            return None
        self._quarantine.pop(account_id, None)
        return book

    def _load(self, account_id: str) -> _Loaded | None:
        with self.engine.connect() as conn:
            row = account_store.get_account(conn, account_id)
            if row is None:
                return None
            fills = order_store.fills_by_id(conn, account_id)
            account = account_store.load_account(conn, row, fills, self.instrument)
            working = order_store.open_orders_of(conn, account_id)
            controls = self._controls(conn, account_id)
            for load in self.loaders:
                load(conn, account_id)
        return account, working, row.equity_peak, len(account.ledger.entries), controls

    async def book(self, account_id: str) -> AccountBook | None:
        """The loaded account ``account_id`` (loading it from the database the first time), or ``None`` when there is
        no such account.

        Raises:
            DataValidationError: its stored ledger does not replay to itself.
            NotFoundError: an instrument of its working orders is not in the catalog.
        """
        book = self.books.get(account_id)
        if book is not None:
            return book
        loaded = await asyncio.to_thread(self._load, account_id)
        if loaded is None:
            return None
        book = self.books.get(account_id)  # loaded meanwhile by another task
        if book is not None:
            return book
        account, rows, peak, entries, (limits, halted) = loaded
        working = [order_store.order_of(r) for r in rows]
        account.mark_provider = self.market.mark
        instruments = {o.instrument_id: self.instrument(o.instrument_id) for o in working}
        # submissions per wall-clock second, whatever the replay's speed
        risk = RiskChecks(limits, self.halted_instruments, rate_clock=time.monotonic_ns)
        high_water = HighWaterMark(peak)
        given = self.sessions
        checks: ChecksFor = _plus(given.checks, risk)  # after a challenge's checks: the rate limit must run last
        monitors: MonitorsFor = _plus(given.monitors, high_water)
        factory = SessionFactory(given.config, checks, monitors)
        session = factory(account, instruments, self.clock, self.market.mark, ids=durable_ids)
        apply_halt(session, halted)
        stored = self.portfolio.track(account_id, entries, peak, high_water)
        book = AccountBook(session, stored, risk, high_water)
        session.broker.listeners.append(self.listener(session))
        for row, order in zip(rows, working, strict=True):
            self.orders.remember(row._mapping)
            session.broker.restore(order)
            self.dispatch.work(session, order.instrument_id)
        self.books[account_id] = book
        self.dispatch.watch(session)
        return book

    async def reset(self) -> None:
        """Forget every account and load the active ones again from what is stored."""
        for book in self.books.values():
            self.dispatch.forget(book.session)
        self.books.clear()
        self.orders.clear()
        self.portfolio.clear()
        for reset in self.resets:
            reset()
        await self.load_active()

    # -- risk limits and halts --------------------------------------------------------------
    def _controls(self, conn: Connection, account_id: str) -> tuple[AccountRiskLimits, str | None]:
        """An account's limits in force and halt reason (``None``: trading), from what a risk manager stored (the
        defaults where none was stored: ``risk/limits.py``)."""
        stored = risk_store.limits_of(conn, account_id)
        d = self.default_limits
        return risk_limits(stored, d.max_open_orders, d.max_submissions_per_second), halt_reason(stored)

    async def reload_instrument_halts(self) -> None:
        """Read the instruments a risk manager halted for every account into the set every session's risk checks read
        (replaced in place: the checks hold the set itself)."""

        def read() -> dict[str, str]:
            with self.engine.connect() as conn:
                return risk_store.halted_instruments(conn)

        halted = await asyncio.to_thread(read)
        self.halted_instruments.clear()
        self.halted_instruments.update(InstrumentId(i) for i in halted)

    async def limits_loop(self, every: float = LIMITS_RECHECK_SECONDS) -> None:
        """Re-read the limits changed in the database since the last look (a risk control event lost by pub/sub, or an
        API process without Redis): a halt is late by seconds, never ignored."""
        since = self.now_ns()
        while True:
            await asyncio.sleep(every)
            now = self.now_ns()
            try:
                changed = await asyncio.to_thread(self._limits_changed_since, since - 2_000_000_000)
            except Exception:
                log.exception("could not re-read the accounts' risk limits")
                continue
            for account_id in changed:
                if account_id in self.books:
                    self.limits_changed(account_id)
            try:  # a small table: read whole (an instrument halt whose event was lost applies within seconds)
                await self.reload_instrument_halts()
            except Exception:
                log.exception("could not re-read the halted instruments")
            since = now

    def _limits_changed_since(self, since_ns: int) -> list[str]:
        with self.engine.connect() as conn:
            return risk_store.changed_since(conn, since_ns)

    def limits_changed(self, account_id: str) -> asyncio.Task[None]:
        """A risk manager changed an account's limits or trading state: re-read them (:meth:`reload_limits`); the
        order taker waits for the task (:attr:`reloads`) before it takes any further order of that account."""
        task = asyncio.get_running_loop().create_task(self.reload_limits(account_id))
        self.reloads[account_id] = task
        task.add_done_callback(
            lambda t: self.reloads.pop(account_id, None) if self.reloads.get(account_id) is t else None
        )
        return task

    async def reload_limits(self, account_id: str) -> None:
        """Apply an account's limits and trading state as stored now (a risk manager changed them); an account not
        loaded gets them when it loads."""
        book = self.books.get(account_id)
        if book is None:
            return

        def read() -> tuple[AccountRiskLimits, str | None]:
            with self.engine.connect() as conn:
                return self._controls(conn, account_id)

        limits, halted = await asyncio.to_thread(read)
        book = self.books.get(account_id)  # rebuilt meanwhile (a failed write): the new one read them itself
        if book is None:
            return
        book.risk.limits = limits  # the session's risk checks, rebuilt in place; its other checks stay
        apply_halt(book.session, halted)

    # -- metrics ----------------------------------------------------------------------------
    def update_gauges(self) -> None:
        """Set the P&L gauge (realized + unrealized) and the equity gauge (``portfolio_equity``), per account
        currency."""
        pnl: dict[str, Decimal] = {}
        equity: dict[str, Decimal] = {}
        for book in self.books.values():
            a = book.account
            try:
                total = a.realized_pnl + a.unrealized_pnl
                value = a.equity
            except NotFoundError:
                continue
            pnl[a.currency] = pnl.get(a.currency, Decimal(0)) + total
            equity[a.currency] = equity.get(a.currency, Decimal(0)) + value
        for currency, value in pnl.items():
            metrics.TRADING_PNL.labels(currency).set(float(value))
        for currency, value in equity.items():
            metrics.PORTFOLIO_EQUITY.labels(currency).set(float(value))

    async def risk_gauges_loop(self, gauges: RiskGauges, every: float | None = None) -> None:
        """:meth:`publish_risk` now (replacing what an earlier runtime of the process published) and then every
        ``every`` seconds (default :data:`RISK_GAUGES_SECONDS`, read at each round)."""
        while True:
            try:
                await self.publish_risk(gauges)
            except Exception:
                log.exception("could not publish the risk gauges")
            await asyncio.sleep(RISK_GAUGES_SECONDS if every is None else every)

    async def publish_risk(self, gauges: RiskGauges) -> None:
        """Publish ``portfolio_drawdown`` and ``portfolio_var_95`` over every loaded account (``risk/aggregates.py``:
        max, mean, p50, p95 and the top ranks; no series per account).

        - drawdown: ``(peak − equity) / peak`` with ``peak`` the account's :class:`HighWaterMark` (exact per
          valuation, seeded with the stored ``equity_peak``) and ``equity`` its equity now at the latest marks (the
          monitor's own last valuation is stale while the account is below its peak: the dispatcher skips it then);
          an account whose equity cannot be valued (a position without a mark) is left out.
        - VaR: the one-day 95 % historical VaR of each account's daily equity closes as a fraction of equity
          (:class:`~smart_trader.risk.var.DailyCloses`; accounts with fewer than 20 daily returns are left out). The
          closes are kept in memory per account: read once from the equity snapshots when the account is first
          published (at most :data:`CLOSES_SEED_BATCH` accounts per round, on one connection in a thread, 251 index
          seeks per account at most; the others wait for the next rounds), then advanced here at each UTC day
          change of the market clock with the last equity seen in the day. A round thus costs one equity valuation
          per account and a VaR (a sort of ≤ 250 returns) only for accounts whose day closed — about 0.5 s of the
          event loop every 5 s for 50,000 accounts, no query after the seeding.
        """
        books = self.books
        for aid in [a for a in self.closes if a not in books]:
            del self.closes[aid]
        now = self.clock.now_ns()
        day = now // NS_PER_DAY if now > 0 else None
        unseeded = [aid for aid in books if aid not in self.closes][:CLOSES_SEED_BATCH]
        if unseeded:
            seeds = await asyncio.to_thread(self._read_closes, unseeded)
            for aid, points in seeds.items():
                if aid in self.books and aid not in self.closes:
                    self.closes[aid] = DailyCloses(points, day)
        drawdown: dict[str, Decimal] = {}
        var_95: dict[str, Decimal] = {}
        for aid, book in list(self.books.items()):
            try:
                equity = book.account.equity
            except NotFoundError:
                continue
            peak = book.high_water.peak
            drawdown[aid] = drawdown_fraction(equity, equity if peak is None else max(peak, equity))
            closes = self.closes.get(aid)
            if closes is not None:
                if day is not None:
                    closes.observe(day, equity)
                var = closes.var_95
                if var is not None:
                    var_95[aid] = var
        publish(gauges, var_95=var_95, drawdown=drawdown)

    def _read_closes(self, account_ids: list[str]) -> dict[str, list[tuple[int, Decimal]]]:
        with self.engine.connect() as conn:
            return risk_store.daily_close_points_of(conn, account_ids, VAR_WINDOW_RETURNS + 1)


def apply_halt(session: AccountSession, halted: str | None) -> None:
    """Set what a risk manager stored: halted with its reason, or released (a challenge's own halt stays)."""
    if halted is not None:
        session.halt(RISK_HALT, halted)
    else:
        session.release(RISK_HALT)


RISK_HALT = "risk"
"""The halt source of a risk manager (:meth:`AccountSession.halt`)."""
