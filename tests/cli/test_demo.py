"""The backtesting side on a bare clone: `smart-trader demo` (= `make demo`) on the packaged sample, and the README's
command-line block run as written, with nothing beside the repository (no ../shared/data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app, sample_runs
from smart_trader.samples import DEFAULT_SAMPLE

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def bare(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with no ``shared`` beside it, and no shared-data setting."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("SMART_TRADER_DATA", raising=False)
    assert not (folder.parent / "shared").exists()
    return home


def _stats(home: Path, folder: str) -> dict[str, object]:
    stats: dict[str, object] = json.loads((home / "runs" / folder / "stats.json").read_text())
    return stats


def test_demo_backtests_the_packaged_sample_with_nothing_beside_the_clone(bare: Path) -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "1,440 rows, 1,440 new" in result.output  # each day file of the sample imported
    runs = {run.folder: run for run in sample_runs(DEFAULT_SAMPLE.symbol, DEFAULT_SAMPLE.venue)}
    assert set(runs) == {p.name for p in (bare / "runs").iterdir()}
    for folder in runs:
        assert {"stats.json", "trades.csv", "fills.csv", "equity.csv", "chart.png"} <= {
            p.name for p in (bare / "runs" / folder).iterdir()
        }
        assert folder in result.output  # the comparison table names where each run is
    one_minute = _stats(bare, "demo-BTCUSDTUSDT-1m-sma_cross")
    quarter = _stats(bare, "demo-BTCUSDTUSDT-15m-sma_cross")
    with_fees = _stats(bare, "demo-BTCUSDTUSDT-1m-sma_cross-4bps")
    hold = _stats(bare, "demo-BTCUSDTUSDT-1m-buy_and_hold")
    assert one_minute["strategy"] == "sma_cross" and one_minute["params"] == {"fast": 10, "slow": 30}
    assert one_minute["instruments"] == ["BTC/USDT:USDT.BINANCE"]
    assert (one_minute["bars_processed"], quarter["bars_processed"]) == (2880, 192)  # two days, 1m and 15m
    assert with_fees["number_of_trades"] == one_minute["number_of_trades"]  # the same signals...
    assert Decimal(str(with_fees["final_equity"])) < Decimal(str(one_minute["final_equity"]))  # ...paying fees
    assert hold["strategy"] == "buy_and_hold" and hold["bars_processed"] == 2880

    again = runner.invoke(app, ["demo"])  # the same home: the import adds nothing, the runs are rewritten
    assert again.exit_code == 0 and "1,440 rows, 0 new" in again.output, again.output


def test_demo_in_a_build_without_its_sample_says_what_to_pass(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("smart_trader.samples.default_sample", lambda: None)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 3 and "--data-dir" in result.output and "Traceback" not in result.output


def test_demo_with_a_missing_data_dir_is_not_found(bare: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 3 and "no market data at" in result.output


def test_demo_on_the_shared_data_folder(bare: Path, shared_data: Path) -> None:
    result = runner.invoke(app, ["demo", "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    folders = {p.name for p in (bare / "runs").iterdir()}
    assert folders == {"demo-ORCL-1d-sma_cross", "demo-ETHBTC-5m-sma_cross", "demo-GBPUSD-1m-sma_cross"}
    assert _stats(bare, "demo-ORCL-1d-sma_cross")["bars_processed"] == 5036


def test_make_demo_needs_nothing_beside_the_clone() -> None:
    rule = re.search(r"^demo:.*\n(\t.*\n)*", (REPO / "Makefile").read_text(), re.M)
    assert rule and "shared" not in rule.group(0)
    assert rule.group(0).rstrip().endswith("$(VENV)/bin/smart-trader demo")  # no --data-dir


def _command_line_block() -> str:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"^## Command line \(data and backtests\)\n.*?```bash\n(.*?)```", readme, re.S | re.M)
    assert m, "README has no command-line block"
    return m.group(1)


def test_the_readme_command_line_block_names_only_files_in_the_clone() -> None:
    block = _command_line_block()
    assert "shared" not in block
    first = block.splitlines()[0]
    folders = dict(re.findall(r"(\w+)=(\S+)", first))
    for var, rel in re.findall(r"\$(\w+)/(\S+)", block):
        assert var in folders, f"${var} is not set on the block's first line"
        assert (REPO / folders[var] / rel).is_file(), f"{folders[var]}/{rel} is not in the repository"


@pytest.mark.slow
def test_the_readme_command_line_block_runs_as_written(tmp_path: Path) -> None:
    """The block in bash, from a folder laid out as a clone (``src`` and ``tests`` of this repository, and a
    ``.venv/bin/smart-trader`` running this interpreter), with an empty home; `data download` needs the internet
    and is left out."""
    clone = tmp_path / "clone"
    (clone / ".venv" / "bin").mkdir(parents=True)
    for name in ("src", "tests"):
        (clone / name).symlink_to(REPO / name)
    cli = clone / ".venv" / "bin" / "smart-trader"
    cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smart_trader.cli.main "$@"\n')
    cli.chmod(0o755)
    script = "\n".join(line for line in _command_line_block().splitlines() if "needs internet" not in line)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=clone, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "SMART_TRADER_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "Traceback" not in run.stderr
    for out in ("out/btc-15m", "out/perp", "out/ccxt"):
        assert json.loads((clone / out / "stats.json").read_text())["bars_processed"] > 0
    assert len((clone / "btc-1h.csv").read_text().splitlines()) == 25  # 24 hours of 5 May and the header
    assert (tmp_path / "home" / "runs" / "demo-BTCUSDTUSDT-15m-sma_cross" / "stats.json").is_file()
