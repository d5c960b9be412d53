"""The README's walkthrough, run as written (bash, curl, jq) against the README's main command: from this
repository, and from a bare clone in an empty folder (no ../shared beside it), as a newcomer meets it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from smart_trader.data.readers import read_file
from smart_trader.samples import default_sample
from tests.app import servers

README = servers.REPO / "README.md"
MAKEFILE = servers.REPO / "Makefile"


def _walkthrough() -> str:
    text = README.read_text()
    m = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert m, "README has no walkthrough block"
    return m.group(1)


def _main_command_args() -> list[str]:
    """The arguments of `make up` (the README's main command)."""
    recipe = re.search(r"^up:.*\n\t\$\(VENV\)/bin/smart-trader (.*)$", MAKEFILE.read_text(), re.M)
    assert recipe, "Makefile has no `up` recipe"
    return recipe.group(1).split()


def test_make_up_needs_nothing_beside_the_clone() -> None:
    up_rule = re.search(r"^up:.*\n(\t.*\n)*", MAKEFILE.read_text(), re.M)
    assert up_rule and "shared" not in up_rule.group(0)
    assert not re.search(r"^\w+ \??= *\.\./shared", MAKEFILE.read_text(), re.M)  # no variable the rule could use
    assert _main_command_args() == ["up"]  # the packaged sample, no source arguments


def _run_walkthrough(api: str, server: servers.Server, **env: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough()],
        env={"API": api, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{server.log_tail()}"
    return run


def _needs_tools() -> None:
    missing = [t for t in ("bash", "curl", "jq") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the walkthrough needs {', '.join(missing)}")


def _account_after_walkthrough(api: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    token = httpx.post(api + "/auth/token", data={"username": "me@example.com", "password": "a-long-password"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    (account,) = httpx.get(api + "/accounts", headers=headers).json()
    fills = httpx.get(f"{api}/accounts/{account['id']}/fills", headers=headers).json()
    positions = httpx.get(f"{api}/accounts/{account['id']}/positions", headers=headers).json()
    return account, fills, positions


def _assert_filled_as_the_walkthrough_says(
    account: dict[str, Any], fills: list[dict[str, Any]], positions: list[dict[str, Any]], prices: set[Decimal]
) -> None:
    """A 0.5 buy and a 0.2 sell filled at replayed prices (the limit sell possibly at its own, whole, limit)."""
    assert [(f["side"], Decimal(f["quantity"])) for f in fills] == [("buy", Decimal("0.5")), ("sell", Decimal("0.2"))]
    buy, sell = (Decimal(f["price"]) for f in fills)
    assert buy in prices
    assert sell in prices or sell == sell.to_integral_value()
    (pos,) = positions
    assert Decimal(pos["quantity"]) == Decimal("0.3")
    assert Decimal(pos["realized_pnl"]) == (sell - buy) * Decimal("0.2")
    assert Decimal(account["cash"]) == Decimal(100000) - buy * Decimal("0.5") + sell * Decimal("0.2")


def _sample_opens() -> set[Decimal]:
    sample = default_sample()
    assert sample is not None, "the package ships its sample"
    return {Decimal(p) for f in sample.files for p in read_file(f).table.column("open").to_pylist()}


@pytest.mark.slow
def test_readme_walkthrough_runs_against_the_main_command(tmp_path: Path) -> None:
    _needs_tools()
    server = servers.start(
        _main_command_args(),
        {"SMART_TRADER_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "REDIS_URL": ""},
        tmp_path / "server.log",
    )
    try:
        server.wait_ready()
        api = server.url + "/api/v1"
        run = _run_walkthrough(api, server)
        account, fills, positions = _account_after_walkthrough(api)
    finally:
        server.stop()
    # the sample is one-minute bars: a market order fills at the next bar's open
    _assert_filled_as_the_walkthrough_says(account, fills, positions, _sample_opens())
    assert '"equity"' in run.stdout and '"realized_pnl"' in run.stdout  # the walkthrough printed its reads


@pytest.mark.slow
def test_readme_walkthrough_runs_against_a_replay_of_real_trades(tmp_path: Path, shared_data: Path) -> None:
    _needs_tools()
    server = servers.start(
        servers.replay_args(["up"], shared_data, "1"),
        {"SMART_TRADER_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "REDIS_URL": ""},
        tmp_path / "server.log",
    )
    try:
        server.wait_ready()
        api = server.url + "/api/v1"
        _run_walkthrough(api, server, SYMBOL="BTC/USDT", VENUE="BINANCE")
        account, fills, positions = _account_after_walkthrough(api)
    finally:
        server.stop()
    traded = {Decimal(p) for p in read_file(shared_data / servers.BTC_TRADES).table.column("price").to_pylist()}
    _assert_filled_as_the_walkthrough_says(account, fills, positions, traded)
    assert all(Decimal(f["price"]) in traded for f in fills)  # on trades, both at traded prices


@pytest.mark.slow
def test_a_bare_clone_runs_the_walkthrough_with_make_ups_command(tmp_path: Path) -> None:
    """`git clone` into an empty folder (nothing beside it), the clone's source run on this (development)
    interpreter through PYTHONPATH, `up` with no arguments: /ready, a quote within a minute, the README
    walkthrough, and `data list` on the same home. It shows that the committed files are enough (nothing from
    ../shared, nothing uncommitted). It cannot see a runtime import of a development-only package (this
    interpreter has them all) nor a file missing from the built wheel (the source tree runs, not the wheel):
    `test_install.py` installs the wheel into a fresh venv for that."""
    _needs_tools()
    if shutil.which("git") is None:
        pytest.skip("needs git")
    workspace = tmp_path / "empty"
    workspace.mkdir()
    clone = workspace / "smart-trader"
    subprocess.run(["git", "clone", "-q", "--no-local", str(servers.REPO), str(clone)], check=True, timeout=120)
    assert not (workspace / "shared").exists()
    args = _main_command_args()
    port = servers.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(clone / "src"),
        "SMART_TRADER_HOME": str(tmp_path / "home"),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "LOG_JSON": "true",
    }
    log = tmp_path / "clone-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smart_trader.cli.main", *args, "--port", str(port)],
            env=env, cwd=clone, stdout=out, stderr=out,
        )  # fmt: skip
    server = servers.Server(proc, port, log)
    try:
        server.wait_ready(timeout=60)
        api = server.url + "/api/v1"
        headers = servers.login(server.url, "newcomer@example.com")
        sample = default_sample()
        assert sample is not None
        quote = httpx.get(
            api + "/market/quote", params={"symbol": sample.symbol, "venue": sample.venue}, headers=headers
        )
        assert quote.status_code == 200 and quote.json()["last_price"] is not None, quote.text
        run = _run_walkthrough(api, server)
        assert '"equity"' in run.stdout
        listing = subprocess.run(
            [sys.executable, "-m", "smart_trader.cli.main", "data", "list"],
            env=env, cwd=clone, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "BTC/USDT:USDT" in listing.stdout, listing.stdout + listing.stderr  # the same home as `up`
    finally:
        server.stop()
    imported = subprocess.run(  # the clone's own package was the one running
        [sys.executable, "-c", "import smart_trader; print(smart_trader.__file__)"],
        env=env, cwd=clone, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.stdout.strip().startswith(str(clone))
