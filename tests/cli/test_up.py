"""`smart-trader up` / `serve` refuse to start without a usable source or with unsafe settings: a one-line
message on stderr and a non-zero exit, before any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app

runner = CliRunner()


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, args, env=env)
    return result.exit_code, result.output


def test_up_without_a_source_in_a_build_without_its_sample_says_how_to_give_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `up` alone replays the packaged sample (tests/app/test_walkthrough.py runs it); a build missing its files
    # must still stop with the way to give a source, not start an empty server
    monkeypatch.setattr("smart_trader.cli.platform.default_sample", lambda: None)
    code, out = _run(["up"])
    assert code == 2
    assert "no market-data source" in out and "--replay FILE --symbol S --venue V" in out and "--exchange" in out


def test_up_with_an_instrument_but_no_source_is_refused(home: Path) -> None:
    code, out = _run(["up", "--symbol", "ETH/USDT", "--venue", "BINANCE"])
    assert code == 2
    assert "--symbol/--venue name the instrument of --replay, --store or --exchange" in out


def test_up_with_a_missing_file_is_not_found(home: Path) -> None:
    code, out = _run(["up", "--replay", str(home / "nope.csv"), "--symbol", "X", "--venue", "Y"])
    assert code == 3
    assert "no such file" in out


@pytest.mark.parametrize("speed", ["0", "-1", "fast", "inf"])
def test_up_refuses_a_bad_speed(home: Path, shared_data: Path, speed: str) -> None:
    code, out = _run(
        [
            "up",
            "--replay",
            str(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv"),
            "--symbol",
            "ORCL",
            "--venue",
            "NASDAQ",
            "--speed",
            speed,
        ]
    )
    assert code == 2
    assert "--speed must be a positive number or 'max'" in out


def test_up_refuses_two_sources(home: Path) -> None:
    code, out = _run(["up", "--store", "--exchange", "binance", "--symbol", "BTC/USDT"])
    assert code == 2
    assert "give one market-data source" in out


def test_store_replay_of_nothing_stored_says_so(home: Path) -> None:
    code, out = _run(["up", "--store", "--symbol", "BTC/USDT", "--venue", "BINANCE"])
    assert code == 2
    assert "nothing stored for BTC/USDT on BINANCE" in out and "--replay" in out


def test_production_start_with_the_default_secret_refuses_to_run(home: Path) -> None:
    code, out = _run(
        ["up", "--store", "--symbol", "X", "--venue", "Y"], env={"ENVIRONMENT": "production", "SECRET_KEY": ""}
    )
    assert code == 2
    assert "refusing to start in production" in out and "SECRET_KEY" in out


def test_serve_needs_a_known_role(home: Path) -> None:
    code, out = _run(["serve", "--role", "scheduler"])
    assert code == 2
    assert "--role must be api, feed or worker" in out


def test_serve_refuses_the_embedded_sqlite_file(home: Path) -> None:
    code, out = _run(["serve", "--role", "api"], env={"DATABASE_URL": "", "SECRET_KEY": "k" * 40})
    assert code == 2
    assert "set DATABASE_URL to a PostgreSQL database" in out


def test_serve_without_a_secret_key_refuses_to_start(home: Path) -> None:
    code, out = _run(
        ["serve", "--role", "api"],
        env={"SECRET_KEY": "", "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test", "ENVIRONMENT": "test"},
    )
    assert code == 2
    assert "refusing to start on PostgreSQL without SECRET_KEY" in out and "openssl rand -hex 32" in out


@pytest.mark.parametrize("key", ["k" * 40, "short-key", "dev-secret-change-me-dev-secret-change-me"])
def test_serve_with_a_weak_secret_key_refuses_to_start(home: Path, key: str) -> None:
    code, out = _run(
        ["serve", "--role", "api"],
        env={"SECRET_KEY": key, "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test", "ENVIRONMENT": "test"},
    )
    assert code == 2
    assert "SECRET_KEY is too weak" in out
