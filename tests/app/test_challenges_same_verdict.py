"""One judge, the platform's door: the same strategy on the same real data fails a challenge at the same instant on the
running platform (SQLite and PostgreSQL) as in ``smart-trader backtest --challenge``.

``backtest --strategy buy_and_hold`` on NVDA's Yahoo daily bars (1999) with $100,000 and FTMO 2-Step gives a fill
(quantity, bar) and a verdict (stats.json). The platform is then fed the same bars as ``Bar`` events of timeframe
``1d``; a USD ``ftmo-2step`` challenge account of 100,000 buys the backtest's quantity at the same bar, and its breach
has the backtest's rule, instant, equity and floor: the runtime values a bar's path at the times of
``execution.matching.bar_path_offsets`` (open, extremes at tf/3 and 2tf/3, close at tf − 1), as the backtest does.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smart_trader.app.factory import FeedSpec, create_app
from smart_trader.challenges.days import iso_utc
from smart_trader.cli.main import app as cli
from smart_trader.core.instruments import Instrument
from smart_trader.data.model import Bar
from smart_trader.data.schema import Kind
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.feeds import MarketFeed
from smart_trader.live.replay import ReplayFeed
from smart_trader.settings import Settings
from tests.app.conftest import Harness, QueueFeed, assert_problem

D = Decimal
V1 = "/api/v1"
NVDA = "bars/NVDA_1999-2014_1d.yahoo.csv"
TIMEFRAME = "1d"
runner = CliRunner(env={"COLUMNS": "200"})


def start_bar_client(settings: Settings, timeframe: str) -> tuple[TestClient, QueueFeed]:
    """Like ``conftest.start_client``, but the feed's events are bars of ``timeframe`` (``FeedSpec.timeframe``: the
    runtime values a bar's path at ``bar_path_offsets`` of that timeframe)."""
    feed = QueueFeed()

    async def build(_svc: MarketDataService) -> MarketFeed:
        return await feed.started()

    app = create_app(settings, "all", FeedSpec(build, timeframe, f"test feed of {timeframe} bars"))
    client = TestClient(app, client=("127.0.0.1", 50000))
    client.__enter__()
    deadline = time.monotonic() + 5
    while feed.loop is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.loop is not None, "the feed did not start"
    return client, feed


def stored_bars(service: MarketDataService, inst: Instrument, timeframe: str) -> list[Bar]:
    """The instrument's stored bars as the platform's replay makes them (``ReplayFeed``, full speed)."""
    feed = ReplayFeed(service, inst, Kind.BARS, Timeframe.parse(timeframe))

    async def collect() -> list[Bar]:
        return [e async for e in feed]

    return asyncio.run(collect())


def backtest(prices: Path, out: Path, start: str | None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``backtest --strategy buy_and_hold --cash 100000 --challenge ftmo-2step`` (from ``start``): its challenge verdict
    (stats.json) and its fills (fills.csv)."""
    args = ["backtest", "--strategy", "buy_and_hold", "--data", str(prices), "--cash", "100000",
            "--challenge", "ftmo-2step", "--output", str(out)]  # fmt: skip
    r = runner.invoke(cli, args + ([] if start is None else ["--start", start]))
    assert r.exit_code == 0, r.output
    verdict = json.loads((out / "stats.json").read_text())["challenge"]
    with (out / "fills.csv").open() as f:
        fills = list(csv.DictReader(f))
    return verdict, fills


@dataclass
class Doors:
    """The backtest's verdict and fills, and the platform's challenge after the same buy at the same bar."""

    verdict: dict[str, Any]
    fills: list[dict[str, str]]
    challenge: dict[str, Any]
    bars: list[Bar]
    k: int  # index in ``bars`` of the bar the buy filled at
    headers: dict[str, str]
    cid: str
    account_id: str


def both_doors(h: Harness, shared_data: Path, tmp_path: Path, start: str | None = None) -> Doors:
    """Backtest buy-and-hold from ``start`` (ISO date, default the file's first bar); then feed the platform the same
    bars from ``start``, buy the backtest's quantity on a ``ftmo-2step`` challenge account of 100,000 USD after the bar
    the strategy decided on (so it fills at the same bar's open), and wait until the challenge fails."""
    prices = shared_data / NVDA
    verdict, fills = backtest(prices, tmp_path / "bt", start)
    assert verdict["status"] == "failed" and verdict["breach"] is not None
    entry = fills[0]
    assert entry["side"] == "buy"
    qty = D(entry["quantity"])

    # the same bars on the platform: import the file into the platform's store (the instrument must exist), then
    # restart the app with a feed of 1d bars
    service = MarketDataService(h.settings.home_dir)
    inst = service.import_file(prices, symbol="NVDA", venue="LOCAL").instrument
    assert inst.quote_currency == "USD"
    bars = stored_bars(service, inst, TIMEFRAME)
    first = 0 if start is None else next(i for i, b in enumerate(bars) if iso_utc(b.ts_event).startswith(start))
    k = next(i for i, b in enumerate(bars) if b.ts_event == int(entry["ts_event"]))  # the backtest's fill bar
    assert k > first and bars[k].open == D(entry["price"])
    h.client.__exit__(None, None, None)
    h.client, h.feed = start_bar_client(h.settings, TIMEFRAME)

    alice = h.user("alice@example.com")
    r = h.client.post(f"{V1}/challenges", headers=alice, json={"program": "ftmo-2step", "account_size": "100000"})
    assert r.status_code == 201, r.text
    cid, acct = r.json()["id"], r.json()["account_id"]
    h.feed.push(bars[first:k])  # the bars before the fill's: the strategy decided on the last of them
    h.settle()
    order = h.order(alice, acct, symbol="NVDA", venue="LOCAL", side="buy", type="market", qty=str(qty))
    h.wait_status(alice, acct, order["id"], "accepted")
    h.feed.push([bars[k]])
    h.wait_status(alice, acct, order["id"], "filled")
    placed = h.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()
    assert len(placed) == 1
    assert D(placed[0]["price"]) == D(entry["price"]) and placed[0]["ts_event"] == int(entry["ts_event"])
    assert D(placed[0]["quantity"]) == qty

    deadline = time.monotonic() + 15
    while (c := h.client.get(f"{V1}/challenges/{cid}", headers=alice).json())["status"] != "failed":
        assert time.monotonic() < deadline, f"challenge still {c['status']}"
        time.sleep(0.05)
    return Doors(verdict, fills, c, bars, k, alice, cid, acct)


def same_breach(doors: Doors) -> None:
    """The platform's breach has the backtest's rule, instant, equity and floor."""
    expected, got = doors.verdict["breach"], doors.challenge["breach"]
    assert {k: got[k] for k in ("rule", "ts", "equity", "floor")} == {
        k: expected[k] for k in ("rule", "ts", "equity", "floor")
    }
    assert got["details"]["positions"] == expected["details"]["positions"]


def test_the_platform_fails_buy_and_hold_at_the_backtests_instant(
    platform: Harness, shared_data: Path, tmp_path: Path
) -> None:
    """NVDA from its first bar (1999-01-22): the buy fills at the open of 1999-01-25; that bar closes up, its low
    (1.640625, a third of a day after the open in the bar path) takes the equity under the daily floor of 95,000."""
    h = platform
    doors = both_doors(h, shared_data, tmp_path)
    same_breach(doors)
    expected, bars, k = doors.verdict["breach"], doors.bars, doors.k
    # the instant is the bar's low, a third of a day after its open (bar_path_offsets; an up bar visits its low first)
    assert bars[k].close >= bars[k].open
    assert doors.challenge["breach"]["ts"] == iso_utc(bars[k].ts_event + Timeframe.parse(TIMEFRAME).ns // 3)
    alice, cid, acct = doors.headers, doors.cid, doors.account_id
    events = h.client.get(f"{V1}/challenges/{cid}/events", headers=alice).json()
    breached = [e for e in events if e["event_type"] == "ChallengeBreached"]
    assert len(breached) == 1 and iso_utc(breached[0]["ts_event"]) == expected["ts"]
    # the position is flattened at the next bar's open, as in the backtest; new orders are refused naming the rule
    h.feed.push([bars[k + 1]])
    h.settle()
    deadline = time.monotonic() + 10
    while len(closing := h.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()) < 2:
        assert time.monotonic() < deadline, closing
        time.sleep(0.05)
    fills = doors.fills
    assert (closing[1]["side"], D(closing[1]["price"]), closing[1]["ts_event"]) == (
        fills[1]["side"],
        D(fills[1]["price"]),
        int(fills[1]["ts_event"]),
    )
    r = h.client.post(
        f"{V1}/accounts/{acct}/orders",
        headers=alice,
        json={"symbol": "NVDA", "venue": "LOCAL", "side": "buy", "type": "market", "qty": "1"},
    )
    assert_problem(r, 409, expected["rule"])


def test_a_fill_bar_closing_under_the_floor_fails_at_the_backtests_instant(
    platform: Harness, shared_data: Path, tmp_path: Path
) -> None:
    """NVDA from 1999-01-25: the buy fills at the open of 1999-01-26 (1.833333), a down bar that closes at 1.671875,
    already under the floor; the bar path visits the high, then the low (1.645833) at two thirds of the day: the
    backtest fails there."""
    doors = both_doors(platform, shared_data, tmp_path, start="1999-01-25")
    bars, k = doors.bars, doors.k
    assert bars[k].close < bars[k].open
    assert doors.verdict["breach"]["ts"] == iso_utc(bars[k].ts_event + 2 * Timeframe.parse(TIMEFRAME).ns // 3)
    same_breach(doors)


def test_the_breach_evidence_quotes_the_price_it_was_valued_at(
    platform: Harness, shared_data: Path, tmp_path: Path
) -> None:
    """The first test's breach: the equity is the bar's low valued; the evidence's marks must name that low (on both
    doors: the backtest's previous close happens to equal it here)."""
    doors = both_doors(platform, shared_data, tmp_path)
    low = doors.bars[doors.k].low
    assert doors.verdict["breach"]["details"]["marks"] == f"NVDA.LOCAL {low}"
    assert doors.challenge["breach"]["details"]["marks"] == f"NVDA.LOCAL {low}"
