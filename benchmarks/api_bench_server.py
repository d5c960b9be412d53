"""Server side of ``benchmarks/api_bench.py``: one uvicorn process (one worker, uvloop, httptools, no access log).

- ``--kind platform``: what ``smart-trader up`` runs — ``create_app(settings, "all", feed)`` with the logging
  ``up`` configures — on ``DATABASE_URL`` (empty: SQLite under ``SMART_TRADER_HOME``). ``--feed none`` starts no
  market-data feed; ``--feed 1`` / ``--feed max`` replay the real BTC/USDT trades file in a loop at real time / at
  full speed (imported into the store first, as ``up --replay`` does).
- ``--kind bare``: a bare FastAPI app with one POST endpoint validating the platform's order ticket model
  (``OrderIn``) and answering 201 — the floor of what any FastAPI endpoint costs on this machine.

    .venv/bin/python benchmarks/api_bench_server.py --kind platform --port 8101 --feed none
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from smart_trader.execution.router import OrderIn  # the platform's own order ticket: validated the same way

TRADES_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "trades" / "BTCUSDT_2021-01-08.binance.trades.parquet"
)


class OrderOut(BaseModel):
    id: str
    account_id: str
    symbol: str
    venue: str
    side: str
    type: str
    qty: Decimal | None
    limit_price: Decimal | None
    status: str


def bare_app() -> FastAPI:
    app = FastAPI()
    counter = iter(range(1, 1 << 62))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/accounts/{account_id}/orders", status_code=201, response_model=OrderOut)
    async def place(account_id: str, body: OrderIn) -> OrderOut:
        return OrderOut(
            id=f"o-{next(counter)}",
            account_id=account_id,
            symbol=body.symbol,
            venue=body.venue,
            side=body.side.value,
            type=body.type.value,
            qty=body.qty,
            limit_price=body.limit_price,
            status="new",
        )

    return app


def platform_app(feed: str) -> Any:
    from smart_trader.app.factory import create_app
    from smart_trader.cli.platform import build_feed
    from smart_trader.ops.logging import configure_logging
    from smart_trader.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)  # as `smart-trader up` does
    spec = None
    if feed == "none":  # no feed, but the instrument must be known: import the file as `up --replay` does
        from smart_trader.data.service import MarketDataService

        MarketDataService(settings.home_dir).import_file(TRADES_FILE, symbol="BTC/USDT", venue="BINANCE")
    else:
        spec = build_feed(
            settings, TRADES_FILE, False, None, "BTC/USDT", "BINANCE", feed, True, None, None, None, None, None
        )
    return create_app(settings, "all", spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["platform", "bare"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--feed", default="none", help="platform: none, or a replay speed (1, max), looping")
    args = ap.parse_args()
    import uvicorn

    app = bare_app() if args.kind == "bare" else platform_app(args.feed)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
