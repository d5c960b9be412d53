"""One home folder for every entry point: SMART_TRADER_HOME from the environment or .env, else the per-user data
folder, never $HOME itself; `data import` then `up --store` and `backtest` see the same store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_trader.cli.common import settings
from smart_trader.cli.main import app
from smart_trader.cli.platform import build_feed
from smart_trader.settings import Settings

runner = CliRunner()
ORCL = "bars/ORCL_1995-2014_1d.yahoo.csv"


def test_the_home_folder_is_never_home_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("SMART_TRADER_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    home = Settings().home_dir
    assert home != tmp_path / "user"
    assert home == tmp_path / "user" / ".local" / "share" / "smart-trader"
    assert Settings().resolved_database_url == f"sqlite:///{home / 'smart-trader.db'}"


def test_an_empty_smart_trader_home_means_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("SMART_TRADER_HOME", " ")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().home_dir == tmp_path / "user" / ".local" / "share" / "smart-trader"


def test_dot_env_home_is_used_by_data_import_up_store_and_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.delenv("SMART_TRADER_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("SMART_TRADER_HOME=~/st-home\n")
    monkeypatch.chdir(project)
    expected = tmp_path / "user" / "st-home"

    result = runner.invoke(app, ["data", "import", str(shared_data / ORCL), "--symbol", "ORCL", "--venue", "NASDAQ"])
    assert result.exit_code == 0, result.output
    assert (expected / "market-data" / "instruments.json").is_file()
    assert not (tmp_path / "user" / "market-data").exists()  # not $HOME

    assert settings().home_dir == expected  # what `up` and `serve` start with
    spec = build_feed(settings(), None, True, None, "ORCL", "NASDAQ", "max", False, None, "1d", None, None, None)
    assert spec is not None and "ORCL.NASDAQ" in spec.description  # `up --store` finds the import

    listing = runner.invoke(app, ["data", "list"], env={"COLUMNS": "200"})
    assert "ORCL" in listing.output

    out = tmp_path / "run"
    result = runner.invoke(app, ["backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "stats.json").read_text())["bars_processed"] == 5036


def test_an_invalid_setting_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMART_TRADER_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("ACCESS_TOKEN_SECONDS", "soon")
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 2
    assert "ACCESS_TOKEN_SECONDS" in result.output and "Traceback" not in result.output
