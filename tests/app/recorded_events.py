"""Real events for the backbone's crash tests and benchmark: a short session on the running platform fed real
recorded BTC/USDT trades (traders register, log in, open plain and challenge accounts, buy and sell; a leveraged
challenge account breaches), then its outbox rows tiled into a long stream: copy ``k`` repeats every event with a new
event id and its times (envelope and payload) shifted by ``k`` days, so each account's series goes on in order."""

from __future__ import annotations

import time
from decimal import ROUND_UP, Decimal
from typing import Any

import orjson
from sqlalchemy import Engine, select

from smart_trader.core.values import from_raw
from smart_trader.db.outbox import outbox
from tests.app.conftest import Harness

V1 = "/api/v1"
DAY_NS = 86_400 * 10**9
TIME_KEYS = ("ts_event", "ts_init", "ts", "ts_last", "created_ns", "updated_ns", "ts_opened")


def trade_session(h: Harness, traders: int = 3, rounds: int = 6) -> None:
    """Drive the platform: per trader a plain account and an FTMO 2-Step challenge; market round trips on both; the
    first trader's challenge takes a leveraged long that the recording's later fall breaches."""
    people = [h.user(f"trader{k}@example.com") for k in range(traders)]
    accounts: list[tuple[dict[str, str], str]] = []
    for headers in people:
        accounts.append((headers, h.account(headers)))
        r = h.client.post(
            f"{V1}/challenges",
            headers=headers,
            json={"program": "ftmo-2step", "account_size": "10000", "currency": "USDT"},
        )
        assert r.status_code == 201, r.text
        accounts.append((headers, str(r.json()["account_id"])))
    h.push_trades(20)
    h.settle()
    for k in range(rounds):
        for headers, acct in accounts:
            side = "buy" if k % 2 == 0 else "sell"
            order = h.order(headers, acct, side=side, type="market", qty="0.01")
            h.wait_status(headers, acct, order["id"], "accepted", "rejected")
        h.push_trades(40)
        h.settle()
    headers, acct = accounts[1]  # trader 0's challenge: a long the recording's later fall breaches
    pp = h.instrument.price_precision
    entry = from_raw(h.trades[h.cursor].price_raw, pp)
    low = min(from_raw(t.price_raw, pp) for t in h.trades[h.cursor + 1 : h.cursor + 3000])
    qty = (Decimal(650) / (entry - low)).quantize(h.instrument.lot_size, rounding=ROUND_UP)
    order = h.order(headers, acct, side="buy", type="market", qty=str(qty))
    h.wait_status(headers, acct, order["id"], "accepted")
    h.push_trades(len(h.trades) - h.cursor)
    h.settle()
    time.sleep(1.0)  # the last batch's account and challenge events


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every outbox row with an event id, in id order, as insertable dicts (without ``id`` and ``published_ns``); the
    notifications' own documents are left out (a consumer's output, made again by the consumer)."""
    q = select(outbox).where(outbox.c.event_id.is_not(None), outbox.c.stream != "notifications")
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(outbox.c.id)).all()
    return [{k: v for k, v in r._mapping.items() if k not in ("id", "published_ns")} for r in rows]


def tile(rows: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """``total`` rows: ``rows`` repeated, copy ``k`` with event ids ``<id>~k`` and times shifted by ``k`` days."""
    out: list[dict[str, Any]] = []
    k = 0
    while len(out) < total:
        shift = k * DAY_NS
        for r in rows:
            if len(out) == total:
                break
            payload = orjson.loads(r["payload"])
            for key in TIME_KEYS:
                if isinstance(payload.get(key), int):
                    payload[key] += shift
            out.append(
                {
                    **r,
                    "event_id": r["event_id"] if k == 0 else f"{r['event_id']}~{k}",
                    "payload": orjson.dumps(payload).decode(),
                    "ts_event": r["ts_event"] + shift,
                    "ts_init": r["ts_init"] + shift,
                    "created_ns": r["created_ns"] + shift,
                }
            )
        k += 1
    return out
