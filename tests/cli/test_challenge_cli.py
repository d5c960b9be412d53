"""``smart-trader challenge``: programs, evaluate (real recorded prices in ../shared/data) and simulate, with their
one-line errors and exit code 2 on bad input.

The fills of the evaluate tests are written by the tests themselves from real recorded prices (every fill price is
a recorded trade price or a recorded bar open/close); the expected breach instants, equities and floors are computed
here from the raw files with pandas/pyarrow, not with the project's readers or evaluator.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app

runner = CliRunner(env={"COLUMNS": "200"})
D = Decimal
DAY_NS = 86_400 * 10**9
BTC_TRADES = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
BTC_QUOTES = "quotes/BTCUSDT.binance.quotes.parquet"
ORCL = "bars/ORCL_1995-2014_1d.yahoo.csv"
PRESETS = {
    "apex-eod",
    "apex-intraday",
    "ftmo-1step",
    "ftmo-2step",
    "fundednext-stellar-2step",
    "the5ers-high-stakes",
    "topstep-combine",
}


def st(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def st_json(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def iso(ts_ns: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(ts_ns) // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def orcl_bars(shared_data: Path) -> pd.DataFrame:
    """The ORCL daily bars as exact decimals, with their open time in ns UTC (the date at 00:00 UTC)."""
    frame = pd.read_csv(shared_data / ORCL, dtype=str)
    frame["t0"] = [int(pd.Timestamp(d, tz="UTC").value) for d in frame["Date"]]
    for column in ("Open", "High", "Low", "Close"):
        frame[column] = [D(v) for v in frame[column]]
    return frame.set_index("Date")


# ------------------------------------------------------------------------------------------------------ programs


def test_programs_lists_the_seven_presets_as_a_table_and_as_json() -> None:
    code, out = st("challenge", "programs")
    assert code == 0, out
    for program_id in PRESETS:
        assert program_id in out
    assert "FTMO" in out and "Topstep" in out and "10000, 25000, 50000, 100000, 200000 USD" in out

    rows = st_json("challenge", "programs", "--json")
    assert {r["id"] for r in rows} == PRESETS
    ftmo = next(r for r in rows if r["id"] == "ftmo-2step")
    assert ftmo["firm"] == "FTMO" and ftmo["sizes"] == ["10000", "25000", "50000", "100000", "200000"]
    assert ftmo["phases"] == ["FTMO Challenge", "Verification", "FTMO Account"]
    assert all(s["url"].startswith("https://") for r in rows for s in r["sources"])


# ------------------------------------------------------------------------------------------------------ evaluate


def test_a_short_btc_position_breaches_the_daily_loss_at_the_recorded_trade_that_crosses_it(
    shared_data: Path, tmp_path: Path
) -> None:
    """FTMO 2-Step $10,000: daily loss 5 % of B0 = $500 below the day-start balance [S1]. Short 5 BTC at the first
    recorded BTC/USDT trade (39,432.48, 2021-01-08 00:00:00.278); the recorded price rises to 39,550. The breach is
    the first later trade at which 10,000 − 5·(p − entry) < 9,500 (drop below, not touch)."""
    raw = pq.read_table(shared_data / BTC_TRADES).to_pandas()
    ts = [int(t.value) for t in raw["timestamp"]]
    prices = [D(repr(p)) for p in raw["price"]]
    entry_ts, entry = ts[0], prices[0]
    qty = D(5)
    fills = write_csv(
        tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price"], [[entry_ts, "BTC/USDT", "sell", qty, entry]]
    )
    expected = next((t, p) for t, p in zip(ts, prices, strict=True) if cents(D(10000) - qty * (p - entry)) < D(9500))

    verdict = st_json(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "10000", "--fills", str(fills),
        "--prices", str(shared_data / BTC_TRADES),
    )  # fmt: skip
    assert verdict["status"] == "failed" and verdict["phase"] == "FTMO Challenge"
    assert verdict["breach"] == {
        "rule": "daily_loss",
        "ts": iso(expected[0]),
        "equity": str(cents(D(10000) - qty * (expected[1] - entry))),
        "floor": "9500.00",
    }
    assert verdict["passed_ts"] is None and verdict["trading_days"] == 1
    assert verdict["instrument"] == "BTCUSDT" and verdict["prices"]["kind"] == "trades"


def test_symbol_picks_one_instrument_of_a_mixed_file_and_maps_the_fills_name(shared_data: Path, tmp_path: Path) -> None:
    """A generic trades CSV holding two real recordings (50 XRP/ETH trades of 2019, then every BTC/USDT trade of the
    short test above): ``--symbol XBT=BTC/USDT`` reads the BTC/USDT rows for fills named XBT and finds the same
    breach; naming the instrument without the mapping refuses the XBT fills."""
    btc = pq.read_table(shared_data / BTC_TRADES).to_pandas()
    xrp = pq.read_table(shared_data / "trades/XRP-ETH_2019-10.binance.trades.parquet").to_pandas().head(50)
    rows: list[list[object]] = [
        [t, "XRP/ETH", repr(p), repr(a)] for t, p, a in zip(xrp["timestamp"], xrp["price"], xrp["amount"], strict=True)
    ]
    rows += [
        [t.value // 10**6, "BTC/USDT", repr(p), repr(q)]
        for t, p, q in zip(btc["timestamp"], btc["price"], btc["quantity"], strict=True)
    ]
    mixed = write_csv(tmp_path / "mixed.csv", ["timestamp", "symbol", "price", "amount"], rows)
    ts = [int(t.value) for t in btc["timestamp"]]
    prices = [D(repr(p)) for p in btc["price"]]
    qty, entry = D(5), prices[0]
    fills = write_csv(
        tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price"], [[ts[0], "XBT", "sell", qty, entry]]
    )
    expected = next(t for t, p in zip(ts, prices, strict=True) if cents(D(10000) - qty * (p - entry)) < D(9500))

    base = [
        "challenge",
        "evaluate",
        "--program",
        "ftmo-2step",
        "--size",
        "10000",
        "--fills",
        str(fills),
        "--prices",
        str(mixed),
    ]
    verdict = st_json(*base, "--symbol", "XBT=BTC/USDT")
    assert verdict["instrument"] == "BTC/USDT" and verdict["breach"]["ts"] == iso(expected)
    code, out = st(*base, "--symbol", "btcusdt")
    assert code == 2 and "column symbol: 'XBT' is not the prices' instrument 'btcusdt'" in out


def test_quotes_are_marked_at_the_mid(shared_data: Path, tmp_path: Path) -> None:
    """The same short judged on the recorded BTC/USDT book ticker: marks are (bid + ask) / 2; the breach is the first
    quote whose mid makes 10,000 − 8·(mid − entry) < 9,500. The fill is at the first quote's recorded bid."""
    raw = pq.read_table(shared_data / BTC_QUOTES).to_pandas()
    ts = [int(t.value) for t in raw["timestamp"]]
    mids = [(D(repr(b)) + D(repr(a))) / 2 for b, a in zip(raw["bid"], raw["ask"], strict=True)]
    entry = D(repr(float(raw["bid"].iloc[0])))  # sold at the recorded bid
    qty = D(8)
    fills = write_csv(
        tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price"], [[iso(ts[0]), "btc-usdt", "sell", qty, entry]]
    )
    expected = next(
        ((t, m) for t, m in zip(ts, mids, strict=True) if cents(D(10000) - qty * (m - entry)) < D(9500)), None
    )
    assert expected is not None, "the recording no longer moves enough for this test"

    verdict = st_json(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "10000", "--fills", str(fills),
        "--prices", str(shared_data / BTC_QUOTES),
    )  # fmt: skip
    assert verdict["prices"]["kind"] == "quotes"
    assert verdict["breach"] == {
        "rule": "daily_loss",
        "ts": iso(expected[0]),
        "equity": str(cents(D(10000) - qty * (expected[1] - entry))),
        "floor": "9500.00",
    }


def test_a_bar_is_judged_at_its_low_even_when_it_closes_higher(shared_data: Path, tmp_path: Path) -> None:
    """ORCL 2008-10-16 opened 16.16, fell to its low, closed 16.99 (an up bar: path open → low → high → close, the
    low at t0 + 8 h, a third of the day). 900 shares bought at the open lose 900·(open − low) > $500 at the low:
    FTMO $10,000 fails on the daily loss there, although the day closes with a gain."""
    bars = orcl_bars(shared_data)
    bar = bars.loc["2008-10-16"]
    qty = D(900)
    assert bar["Close"] > bar["Open"] and D(500) < qty * (bar["Open"] - bar["Low"]) < D(1000)
    fills = write_csv(
        tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price", "commission"],
        [["2008-10-16T00:00:00Z", "ORCL", "buy", qty, bar["Open"], "0"]],
    )  # fmt: skip
    verdict = st_json(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "10000", "--fills", str(fills),
        "--prices", str(shared_data / ORCL),
    )  # fmt: skip
    assert verdict["breach"] == {
        "rule": "daily_loss",
        "ts": iso(bar["t0"] + DAY_NS // 3),
        "equity": str(cents(D(10000) - qty * (bar["Open"] - bar["Low"]))),
        "floor": "9500.00",
    }


def test_four_winning_days_pass_ftmo_at_the_fourth_close(shared_data: Path, tmp_path: Path) -> None:
    """ORCL 1999-09-01, 02, 03 and 07 (four up days): 1,000 shares bought at each open and sold at each close, less
    $4 commission a fill. The $1,000 target is reached on day 3 but FTMO also needs 4 trading days [S2], so the phase
    passes at the day-4 sale (the close, t0 + 1 day − 1 ns), with the balance computed here."""
    bars = orcl_bars(shared_data)
    days = ["1999-09-01", "1999-09-02", "1999-09-03", "1999-09-07"]
    qty, fee = D(1000), D(4)
    rows: list[list[object]] = []
    balance = D(10000)
    for day in days:
        bar = bars.loc[day]
        rows.append([f"{day}T00:00:00Z", "ORCL", "buy", qty, bar["Open"], fee])
        rows.append([bar["t0"] + DAY_NS - 1, "ORCL", "sell", qty, bar["Close"], fee])  # epoch ns
        balance = cents(balance + qty * (bar["Close"] - bar["Open"]) - 2 * fee)
        worst = qty * (bar["Open"] - bar["Low"]) + fee
        assert worst < 500  # no daily-loss breach inside the day
    after_three = D(10000) + sum(qty * (bars.loc[d]["Close"] - bars.loc[d]["Open"]) - 2 * fee for d in days[:3])
    assert after_three >= D(11000)  # target reached early, held back by the minimum trading days
    fills = write_csv(tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price", "commission"], rows)

    verdict = st_json(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "10000", "--fills", str(fills),
        "--prices", str(shared_data / ORCL),
    )  # fmt: skip
    assert verdict["status"] == "passed" and verdict["breach"] is None
    assert verdict["passed_ts"] == iso(bars.loc["1999-09-07"]["t0"] + DAY_NS - 1)
    assert verdict["trading_days"] == 4 and verdict["balance"] == str(balance)
    assert verdict["marks"] > 0 and verdict["prices"]["kind"] == "bars"


def test_verification_phase_and_multiplier(shared_data: Path, tmp_path: Path) -> None:
    """--phase picks the Verification (target 5 %) and --multiplier scales the P&L: 100 'contracts' × 10 of ORCL on
    1999-09-03 (open 9.71875 → close 10.375) earn 6,562.50 on $100,000: above 5 % but one trading day of four, so
    the phase is still active."""
    bars = orcl_bars(shared_data)
    bar = bars.loc["1999-09-03"]
    fills = write_csv(
        tmp_path / "fills.csv", ["ts", "symbol", "side", "qty", "price"],
        [[bar["t0"], "ORCL", "buy", 100, bar["Open"]], [bar["t0"] + DAY_NS - 1, "ORCL", "sell", 100, bar["Close"]]],
    )  # fmt: skip
    verdict = st_json(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "100000", "--phase", "verification",
        "--multiplier", "orcl=10", "--fills", str(fills), "--prices", str(shared_data / ORCL),
    )  # fmt: skip
    assert verdict["phase"] == "Verification" and verdict["status"] == "active"
    assert verdict["balance"] == str(cents(D(100000) + 100 * 10 * (bar["Close"] - bar["Open"])))
    assert verdict["trading_days"] == 1


def _fills(tmp_path: Path, rows: list[list[object]], header: list[str] | None = None) -> str:
    return str(write_csv(tmp_path / "fills.csv", header or ["ts", "symbol", "side", "qty", "price"], rows))


@pytest.mark.parametrize(
    ("rows", "args", "needle"),
    [
        pytest.param(
            [], ["--program", "ftmo-9step"], "unknown challenge program 'ftmo-9step' (known: apex-eod", id="program"
        ),
        pytest.param(
            [], ["--size", "12345"], "offers no size 12345 (sizes: 10000, 25000, 50000, 100000, 200000)", id="size"
        ),
        pytest.param([], ["--phase", "funded"], "has no phase 'funded' (phases: 1 = 'FTMO Challenge'", id="phase"),
        pytest.param(
            [["2021-01-08T00:00:01Z", "BTCUSDT", "buy", "1", "abc"]], [],
            "fills.csv row 1 (line 2), column price: 'abc' is not a number", id="price",
        ),
        pytest.param(
            [["2021-01-08T00:00:01Z", "BTCUSDT", "buy", "1", "39000"], ["yesterday", "BTCUSDT", "sell", "1", "39000"]],
            [], "fills.csv row 2 (line 3), column ts: 'yesterday' is not an ISO 8601 time", id="ts",
        ),
        pytest.param(
            [["2021-01-08T00:00:01Z", "BTCUSDT", "hold", "1", "39000"]], [],
            "fills.csv row 1 (line 2), column side: 'hold' is not buy or sell", id="side",
        ),
        pytest.param(
            [["2021-01-08T00:00:01Z", "BTCUSDT", "buy", "0", "39000"]], [],
            "fills.csv row 1 (line 2), column qty: must be > 0", id="qty",
        ),
        pytest.param(
            [
                ["2021-01-08T00:00:05Z", "BTCUSDT", "buy", "1", "39000"],
                ["2021-01-08T00:00:01Z", "BTCUSDT", "sell", "1", "39000"],
            ],
            [], "fills.csv row 2 (line 3), column ts: 2021-01-08T00:00:01Z is earlier than row 1", id="order",
        ),
        pytest.param(
            [["2021-01-08T00:00:01Z", "ETHUSDT", "buy", "1", "39000"]], [],
            "column symbol: 'ETHUSDT' is not the prices' instrument 'BTCUSDT'", id="symbol",
        ),
        pytest.param(
            [["2021-01-08T00:00:01Z", "BTCUSDT", "buy", "1", "39000"]], ["--multiplier", "ES"],
            "--multiplier 'ES' is not SYMBOL=N", id="multiplier",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, rows: list[list[object]], args: list[str], needle: str
) -> None:
    """Checked before the prices are read: no market data is needed (the prices path need not exist)."""
    rows = rows or [["2021-01-08T00:00:01Z", "BTCUSDT", "buy", "1", "39000"]]
    options = {"--program": "ftmo-2step", "--size": "10000"}
    for i in range(0, len(args), 2):
        options[args[i]] = args[i + 1]
    argv = ["challenge", "evaluate", "--fills", _fills(tmp_path, rows), "--prices", str(tmp_path / "BTCUSDT_x.parquet")]
    for key, value in options.items():
        argv += [key, value]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_missing_column_is_named(tmp_path: Path) -> None:
    fills = _fills(tmp_path, [["2021-01-08", "BTCUSDT", "buy", "1"]], ["ts", "symbol", "side", "qty"])
    code, out = st(
        "challenge", "evaluate", "--program", "ftmo-2step", "--size", "10000", "--fills", fills, "--prices", "x.csv"
    )
    assert code == 2 and "fills.csv: missing column(s) price" in out


# ------------------------------------------------------------------------------------------------------ simulate


def orcl_day_trades(shared_data: Path, path: Path, year: str, qty: int) -> Path:
    """Closed trades from real prices: ``qty`` ORCL shares bought at each day's open and sold at its close in
    ``year``; ``pnl`` = qty·(close − open), ``mae`` = qty·(low − open) (the worst floating loss), day = the date."""
    bars = orcl_bars(shared_data)
    rows = [
        [day, qty * (b["Close"] - b["Open"]), min(D(0), qty * (b["Low"] - b["Open"]))]
        for day, b in bars.iterrows()
        if str(day).startswith(year)
    ]
    return write_csv(path, ["day", "pnl", "mae"], rows)


def test_simulate_is_reproducible_with_a_seed(shared_data: Path, tmp_path: Path) -> None:
    trades = orcl_day_trades(shared_data, tmp_path / "trades.csv", "1999", 2000)
    args = ["challenge", "simulate", "--program", "ftmo-2step", "--size", "100000", "--trades", str(trades)]
    first = st_json(*args, "--runs", "100", "--seed", "42")
    again = st_json(*args, "--runs", "100", "--seed", "42")
    other = st_json(*args, "--runs", "100", "--seed", "43")
    assert first == again and first != other
    assert (
        first["runs"] == 100
        and first["seed"] == 42
        and first["trades"] == 252
        and first["trades_per_day"] == {"1": 1.0}
    )
    shares = first["passed"]["share"] + sum(first["breach_causes"].values()) + first["active_share"]
    assert math.isclose(shares, 1.0, abs_tol=1e-5)
    low, high = first["passed"]["ci95"]
    assert low <= first["passed"]["share"] <= high
    assert first["floating_losses_simulated"] is True


def test_simulate_all_winners_passes_in_the_minimum_trading_days(tmp_path: Path) -> None:
    """+$3,000 a day (close times on 5 distinct UTC days) on FTMO $100,000: ceil(10,000 / 3,000) = 4 days, which is
    also the minimum of 4 trading days ⇒ passed in 4 days in every run."""
    trades = write_csv(
        tmp_path / "t.csv", ["ts", "open_ts", "pnl"],
        [[f"2024-03-0{d}T10:00:00Z", f"2024-03-0{d}T09:00:00Z", "3000"] for d in range(4, 9)],
    )  # fmt: skip
    out = st_json(
        "challenge", "simulate", "--program", "ftmo-2step", "--size", "100000", "--trades", str(trades),
        "--runs", "20", "--seed", "1",
    )  # fmt: skip
    assert out["passed"]["runs"] == 20 and out["days_to_pass"] == {"mean": 4.0, "median": 4.0}


@pytest.mark.parametrize(
    ("header", "rows", "needle"),
    [
        (["day", "pnl"], [["2024-01-02", "x"]], "t.csv row 1 (line 2), column pnl: 'x' is not a number"),
        (["day", "pnl", "mae"], [["2024-01-02", "10", "5"]], "t.csv row 1 (line 2), column mae: must be <= 0"),
        (["pnl"], [["10"]], "t.csv: needs a day column (ISO date) or a ts column"),
        (["day", "pnl"], [["2024-13-02", "10"]], "t.csv row 1 (line 2), column day: '2024-13-02' is not an ISO date"),
        (
            ["ts", "open_ts", "pnl"], [["2024-01-02T10:00Z", "2024-01-02T11:00Z", "1"]],
            "column open_ts: the trade opens after",
        ),
    ],
)  # fmt: skip
def test_simulate_bad_trades_are_named(
    tmp_path: Path, header: list[str], rows: list[list[object]], needle: str
) -> None:
    trades = write_csv(tmp_path / "t.csv", header, rows)
    code, out = st(
        "challenge", "simulate", "--program", "ftmo-2step", "--size", "100000", "--trades", str(trades), "--runs", "5"
    )
    assert code == 2 and needle in out, out
