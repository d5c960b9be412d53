"""The analytics routes on the running platform (SQLite and PostgreSQL), fed real recorded BTC/USDT trades: two FTMO
2-Step challenge accounts and a plain account trade; the analytics projection is applied to the platform's own outbox
rows (as the worker does; the platform's own in-process worker may apply them first: each is applied once); then
``GET /api/v1/leaderboards`` ranks the challenge accounts by return, pages, shows public names and no e-mail, and
refuses a bad period, limit or program with a problem document; ``GET /api/v1/accounts/{id}/performance`` answers the
owner and a risk manager, and 404 to another trader. With Redis, a leaderboard page is served from the cache until
the projection commits a change of the program; with Redis down (a closed port) or silent (a socket that never
answers), the page is served from the database, the same rows, at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import select

from smart_trader.analytics.leaderboard import CACHE_TIMEOUT_SECONDS, LeaderboardCache, encode, leaderboard, page_key
from smart_trader.analytics.projection import AnalyticsProjection
from smart_trader.db.outbox import outbox
from smart_trader.gateway.access import Role
from smart_trader.workers.consumer import apply
from smart_trader.workers.envelope import from_row
from smart_trader.workers.tables import consumed
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import bearer, custom_platform, login, make_user, write

V1 = "/api/v1"
PROGRAM = "ftmo-2step"


def _challenge(h: Harness, headers: dict[str, str]) -> str:
    body = {"program": PROGRAM, "account_size": "10000", "currency": "USDT"}
    r = h.client.post(f"{V1}/challenges", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["account_id"])


def _market(h: Harness, headers: dict[str, str], account: str, side: str, qty: str) -> None:
    order = h.order(headers, account, side=side, type="market", qty=qty)
    h.wait_status(headers, account, order["id"], "accepted")
    h.push_trades(1)
    h.wait_status(headers, account, order["id"], "filled")


def _outbox(h: Harness) -> list[Any]:
    with h.platform.engine.connect() as conn:
        q = select(outbox).where(outbox.c.stream.in_(("accounts", "orders", "challenges"))).order_by(outbox.c.id)
        return list(conn.execute(q))


def _project(h: Harness, projection: AnalyticsProjection) -> int:
    """Apply the analytics projection to every event row of the platform's outbox, in commit order, in one transaction
    of the platform's writer (SQLite has one writer). The platform's own worker may have applied some already (it
    runs the same consumer in this process): those are skipped. Returns how many this call applied; afterwards every
    event is consumed exactly once."""
    rows = _outbox(h)
    events = [from_row(r) for r in rows]
    applied = write(h, lambda conn: apply(conn, projection, events))
    projection.after_commit()
    with h.platform.engine.connect() as conn:
        q = select(consumed.c.event_id).where(consumed.c.consumer == "analytics")
        done = [str(r.event_id) for r in conn.execute(q)]
    assert {e.event_id for e in events} <= set(done) and len(done) == len(set(done))
    return applied


def _realized(h: Harness, account: str) -> bool:
    return any(
        r.event_type == "account.updated" and orjson.loads(r.payload)["realized_pnl"] not in ("0", "0E-8", None)
        and r.partition_key == account
        for r in _outbox(h)
    )  # fmt: skip


def _trade(h: Harness) -> dict[str, Any]:
    """alice and bob trade their challenge accounts, carol a plain account; returns who is who."""
    alice, bob, carol = (h.user(f"{n}@example.com") for n in ("alice", "bob", "carol"))
    accounts = {"alice": _challenge(h, alice), "bob": _challenge(h, bob), "carol": h.account(carol, "10000")}
    h.push_trades(30)
    h.settle()
    _market(h, alice, accounts["alice"], "buy", "0.05")
    _market(h, bob, accounts["bob"], "buy", "0.02")
    _market(h, carol, accounts["carol"], "buy", "0.01")
    h.push_trades(400)
    h.settle()
    _market(h, alice, accounts["alice"], "sell", "0.05")  # alice realizes her P&L
    h.push_trades(300)
    h.settle()
    deadline = time.monotonic() + 10
    while not _realized(h, accounts["alice"]):  # the runtime's batch reaches the outbox
        assert time.monotonic() < deadline, "alice's realized P&L never reached the outbox"
        time.sleep(0.05)
    return {"headers": {"alice": alice, "bob": bob, "carol": carol}, "accounts": accounts}


def test_leaderboards_and_performance_from_the_platforms_own_events(platform: Harness) -> None:
    h = platform
    world = _trade(h)
    accounts, headers = world["accounts"], world["headers"]
    _project(h, AnalyticsProjection())

    r = h.client.get(f"{V1}/leaderboards", params={"program": PROGRAM, "period": "all"}, headers=headers["carol"])
    assert r.status_code == 200, r.text
    board = r.json()
    entries = board["entries"]
    assert {e["account_id"] for e in entries} == {accounts["alice"], accounts["bob"]}  # carol's is no challenge
    assert [e["rank"] for e in entries] == [1, 2]
    assert entries[0]["return_pct"] >= entries[1]["return_pct"]
    assert all(e["trader"].startswith("trader-") for e in entries)
    assert "@" not in r.text  # no e-mail, ever
    alice_row = next(e for e in entries if e["account_id"] == accounts["alice"])
    assert alice_row["trades"] == 1 and alice_row["win_rate"] in (0.0, 1.0)  # one closed trade
    assert alice_row["status"] == "active" or alice_row["status"] is None

    day = h.client.get(f"{V1}/leaderboards", params={"program": PROGRAM, "period": "day"}, headers=headers["bob"])
    assert day.status_code == 200 and day.json()["period_start"] == "2021-01-08"  # the recording's (Prague) day
    page = h.client.get(
        f"{V1}/leaderboards", params={"program": PROGRAM, "limit": 1, "offset": 1}, headers=headers["bob"]
    ).json()
    assert page["entries"][0]["account_id"] == entries[1]["account_id"] and page["next_offset"] is None
    assert page["entries"][0]["rank"] == 2

    mine = h.client.get(f"{V1}/accounts/{accounts['alice']}/performance", headers=headers["alice"])
    assert mine.status_code == 200, mine.text
    perf = mine.json()
    assert perf["program"] == PROGRAM and perf["day_zone"] == "Europe/Prague" and perf["initial_balance"] == "10000"
    assert perf["periods"]["all"]["profit"] == alice_row["profit"]
    assert perf["periods"]["all"]["fills"] == 2
    assert perf["daily"][-1]["equity"] == alice_row["end_equity"]
    assert set(perf["periods"]) == {"day", "week", "month", "all"}

    other = h.client.get(f"{V1}/accounts/{accounts['alice']}/performance", headers=headers["bob"])
    assert_problem(other, 404, "no account")
    make_user(h, "rita@example.com", Role.RISK_MANAGER)
    rita = bearer(login(h, "rita@example.com")["access_token"])
    assert h.client.get(f"{V1}/accounts/{accounts['alice']}/performance", headers=rita).status_code == 200
    plain = h.client.get(f"{V1}/accounts/{accounts['carol']}/performance", headers=headers["carol"]).json()
    assert plain["program"] is None and plain["day_zone"] == "UTC" and plain["periods"]["all"]["days"] == 1


def test_bad_leaderboard_requests_are_4xx_naming_the_problem(platform: Harness) -> None:
    h = platform
    alice = h.user("alice@example.com")
    get = lambda **q: h.client.get(f"{V1}/leaderboards", params=q, headers=alice)  # noqa: E731
    assert_problem(get(program=PROGRAM, period="year"), 422, "period")
    assert_problem(get(program=PROGRAM, limit=0), 422, "limit")
    assert_problem(get(program=PROGRAM, limit=101), 422, "limit")
    assert_problem(get(program=PROGRAM, offset=-1), 422, "offset")
    assert_problem(get(), 422, "program")
    assert_problem(get(program="no-such-program"), 404, "no-such-program", PROGRAM)
    empty = get(program=PROGRAM, period="week").json()  # a known program nobody has traded yet
    assert empty["entries"] == [] and empty["period_start"] is None
    assert h.client.get(f"{V1}/leaderboards", params={"program": PROGRAM}).status_code == 401
    fresh = h.account(alice)
    perf = h.client.get(f"{V1}/accounts/{fresh}/performance", headers=alice).json()
    assert perf["periods"] == {} and perf["daily"] == [] and perf["initial_balance"] == "100000"


@pytest.fixture
def with_redis(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path, redis_url: str) -> Iterator[Harness]:
    with custom_platform(request, tmp_path, shared_data, "sqlite", redis_url=redis_url) as h:
        yield h


def test_with_redis_a_page_is_cached_until_the_projection_commits_a_change(with_redis: Harness, redis_url: str) -> None:
    h = with_redis
    client = redis.Redis.from_url(redis_url)
    cache = LeaderboardCache(client)
    projection = AnalyticsProjection(cache)
    world = _trade(h)
    _project(h, projection)
    carol = world["headers"]["carol"]
    params = {"program": PROGRAM, "period": "all", "limit": 7}

    first = h.client.get(f"{V1}/leaderboards", params=params, headers=carol)
    assert first.status_code == 200 and len(first.json()["entries"]) == 2
    generation = cache.generation(PROGRAM)
    assert client.get(page_key(PROGRAM, "all", 7, 0, generation)) == first.content  # cached as answered
    client.set(page_key(PROGRAM, "all", 7, 0, generation), b'{"marker": "from the cache"}', ex=30)
    assert h.client.get(f"{V1}/leaderboards", params=params, headers=carol).json() == {"marker": "from the cache"}

    h.push_trades(200)  # prices move: new account events
    h.settle()
    deadline = time.monotonic() + 10
    while cache.generation(PROGRAM) == generation:  # applied (here, or by the platform's own worker), committed
        _project(h, projection)
        assert time.monotonic() < deadline, "the generation never moved"
        time.sleep(0.1)
    again = h.client.get(f"{V1}/leaderboards", params=params, headers=carol).json()
    assert "marker" not in again and len(again["entries"]) == 2
    client.close()


CLOSED_PORT = "redis://127.0.0.1:1/0"


@contextmanager
def router_redis(h: Harness, url: str) -> Iterator[None]:
    """The API's Redis client (``platform.redis``, what the router caches pages with) pointed at ``url`` for a while.
    Only the client is swapped: a platform started with ``REDIS_URL`` unreachable does not start (its pub/sub bus
    subscribes at start), so the platform runs without Redis and nothing else of it expects a client."""
    assert h.platform.redis is None
    h.platform.redis = aioredis.Redis.from_url(url)
    try:
        yield
    finally:
        h.platform.redis = None


def test_with_redis_down_the_leaderboard_is_served_from_the_database(platform: Harness) -> None:
    h = platform
    world = _trade(h)
    _project(h, AnalyticsProjection())
    accounts, carol = world["accounts"], world["headers"]["carol"]
    params = {"program": PROGRAM, "period": "all", "limit": 7}

    with router_redis(h, CLOSED_PORT):  # every command refused
        r = h.client.get(f"{V1}/leaderboards", params=params, headers=carol)

    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert {e["account_id"] for e in entries} == {accounts["alice"], accounts["bob"]}
    assert [e["rank"] for e in entries] == [1, 2] and entries[0]["return_pct"] >= entries[1]["return_pct"]
    with h.platform.engine.connect() as conn:
        assert r.content == encode(leaderboard(conn, PROGRAM, "all", 7, 0))  # the rows the database holds


def test_a_redis_that_never_answers_delays_the_leaderboard_by_the_cache_timeout_only(platform: Harness) -> None:
    h = platform
    alice = h.user("alice@example.com")
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never reads nor answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with router_redis(h, f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            started = time.monotonic()
            r = h.client.get(f"{V1}/leaderboards", params={"program": PROGRAM}, headers=alice)
            elapsed = time.monotonic() - started

    assert r.status_code == 200, r.text
    assert r.json()["program"] == PROGRAM and r.json()["entries"] == []  # a known program nobody traded
    assert elapsed < CACHE_TIMEOUT_SECONDS + 1.5, elapsed  # one bounded wait for the read; nothing is written
