"""Test kit of the analytics tests: domain events of accounts made from real backtests.

A backtest of a built-in strategy over a real recording in ``../shared/data`` gives an equity curve and fills; they
become the events the trading runtime would have written for an account that traded the same way:
``account.updated`` (stream ``accounts``: equity, cash and cumulative realized P&L, computed with the portfolio's own
:class:`~smart_trader.portfolio.position.Position`) at every ``every``-th point of the curve and at every fill, and
``order.fill`` (stream ``orders``) per fill, shaped as ``portfolio/persist.py`` and ``execution/persist.py`` shape
them. The challenge events (stream ``challenges``) are two status changes per challenge account, shaped as
``challenges/persist.py`` shapes them.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, select

from smart_trader.analytics.tables import (
    analytics_accounts,
    analytics_days,
    analytics_fill_days,
    analytics_performance,
)
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.store import fill_row
from smart_trader.portfolio.position import Position
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.strategy.results import BacktestResult
from smart_trader.workers.envelope import Envelope

D = Decimal
TABLES = (analytics_accounts, analytics_days, analytics_fill_days, analytics_performance)


def backtest(
    shared_data: Path, file: str, symbol: str, cash: Decimal, strategy: Strategy, since: dt.date | None = None
) -> BacktestResult:
    """Run ``strategy`` over the real recording ``file`` (bars from ``since`` on) with ``cash``."""
    r = read_file(shared_data / file)
    table = r.table
    if since is not None:
        start = pa.scalar(dt.datetime.combine(since, dt.time(), dt.UTC), pa.timestamp("ns", "UTC"))
        table = table.filter(pc.greater_equal(table["ts_event"], start))
    instrument = infer_instrument(symbol, "LOCAL", r.price_precision, r.size_precision)
    engine = BacktestEngine(starting_cash=cash)
    engine.add_bars(instrument, table, r.timeframe)
    return engine.run(strategy)


def _payload(data: dict[str, Any]) -> dict[str, Any]:
    """A payload as the outbox stores it: JSON, decimals as strings."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(data, default=str))
    return loaded


def envelope(stream: str, event_type: str, account_id: str, ts: int, payload: dict[str, Any]) -> Envelope:
    """An event as a consumer receives it (``outbox_id`` set later, in delivery order)."""
    return Envelope(
        outbox_id=0,
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        version=1,
        stream=stream,
        partition_key=account_id,
        topic=f"{stream}.{account_id}",
        ts_event=ts,
        ts_init=ts,
        payload=_payload(payload),
    )


def account_events(result: BacktestResult, account_id: str, cash: Decimal, every: int) -> list[Envelope]:
    """The ``accounts`` and ``orders`` events of an account that traded as ``result`` did, in time order."""
    fills = sorted(result.fills, key=lambda f: f.ts_event)
    fill_times = {f.ts_event for f in fills}
    events: list[Envelope] = []
    positions: dict[str, Position] = {}
    realized = D(0)
    balance = cash
    k = 0
    ts_list, eq_list = result.equity_ts.tolist(), result.equity.tolist()
    for i, (ts, equity) in enumerate(zip(ts_list, eq_list, strict=True)):
        while k < len(fills) and fills[k].ts_event <= ts:
            f = fills[k]
            pos = positions.setdefault(f.instrument_id, Position(f.instrument_id))
            realized += pos.apply_fill(f.side, f.quantity, f.price, f.commission, f.ts_event)
            signed = f.quantity * f.price
            balance += (-signed if f.side is OrderSide.BUY else signed) - f.commission
            row = {k2: v for k2, v in fill_row(f, account_id).items() if k2 != "account_id"}
            events.append(
                envelope(
                    "orders",
                    "order.fill",
                    account_id,
                    f.ts_event,
                    {"type": "order", "event": "fill", "account_id": account_id, "order_id": f.order_id, "fill": row},
                )
            )
            k += 1
        if i % every and ts not in fill_times and i != len(ts_list) - 1:
            continue
        view = {
            "type": "account",
            "account_id": account_id,
            "cash": balance,
            "equity": D(repr(equity)),
            "unrealized_pnl": D(repr(equity)) - balance,
            "realized_pnl": realized,
            "commissions": D(0),
            "ts": ts,
        }
        events.append(envelope("accounts", "account.updated", account_id, ts, view))
    return events


def challenge_events(account_id: str, challenge_id: str, first_ts: int, last_ts: int) -> list[Envelope]:
    """Two ``challenges`` events of a challenge account: a warning while active, then the pass."""
    out = []
    for ts, event, status in ((first_ts, "ChallengeWarning", "active"), (last_ts, "ChallengePassed", "passed")):
        payload = {
            "type": "challenge",
            "event": event,
            "account_id": account_id,
            "challenge_id": challenge_id,
            "ts_event": ts,
            "data": {"event_type": event},
            "challenge": {"status": status, "phase": "Evaluation"},
        }
        out.append(envelope("challenges", f"challenge.{event}", account_id, ts, payload))
    return out


@dataclass(frozen=True)
class Account:
    """An account of the test world and its events (every stream, time order)."""

    account_id: str
    events: list[Envelope]


def sequential(accounts: Sequence[Account]) -> list[Envelope]:
    """Every account's events, one account after the other."""
    return number([e for a in accounts for e in a.events])


def interleaved(accounts: Sequence[Account], seed: int) -> list[Envelope]:
    """Every event, accounts and streams interleaved at random; each (account, stream)'s own order kept."""
    rng = random.Random(seed)
    queues: list[list[Envelope]] = []
    for a in accounts:
        for stream in ("accounts", "orders", "challenges"):
            q = [e for e in a.events if e.stream == stream]
            if q:
                queues.append(list(reversed(q)))
    out: list[Envelope] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop())
        if not q:
            queues.remove(q)
    return number(out)


def number(events: Sequence[Envelope]) -> list[Envelope]:
    """The events with ``outbox_id`` in delivery order."""
    return [replace(e, outbox_id=i + 1) for i, e in enumerate(events)]


def batches(events: Sequence[Envelope], seed: int, largest: int = 40) -> Iterator[list[Envelope]]:
    """``events`` cut in batches of random sizes (1..``largest``)."""
    rng = random.Random(seed)
    i = 0
    while i < len(events):
        n = rng.randint(1, largest)
        yield list(events[i : i + n])
        i += n


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every analytics table's rows, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for t in TABLES:
        q = select(t).order_by(*t.primary_key.columns)
        out[t.name] = [tuple(r) for r in conn.execute(q)]
    return out


def clear(engine: Engine, consumer: str) -> None:
    """Empty the analytics tables and the consumer's idempotency marks (a rebuild from scratch)."""
    from smart_trader.workers.tables import consumed

    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(t.delete())
        conn.execute(consumed.delete().where(consumed.c.consumer == consumer))
