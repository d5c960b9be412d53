"""The README's walkthrough, run as written (bash, curl, jq) against the README's main command."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from smart_trader.data.readers import read_file
from tests.app import servers

README = servers.REPO / "README.md"
MAKEFILE = servers.REPO / "Makefile"


def _walkthrough() -> str:
    text = README.read_text()
    m = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert m, "README has no walkthrough block"
    return m.group(1)


def _main_command_args(shared_data: Path) -> list[str]:
    """The arguments of `make up` (the README's main command), with the data path resolved here."""
    recipe = re.search(r"^up:.*\n\t\$\(VENV\)/bin/smart-trader (.*)$", MAKEFILE.read_text(), re.M)
    assert recipe, "Makefile has no `up` recipe"
    replay = re.search(r"^REPLAY \?= \.\./shared/data/(.*)$", MAKEFILE.read_text(), re.M)
    assert replay
    return recipe.group(1).replace("$(REPLAY)", str(shared_data / replay.group(1))).split()


@pytest.mark.slow
def test_readme_walkthrough_runs_against_the_main_command(tmp_path: Path, shared_data: Path) -> None:
    missing = [t for t in ("bash", "curl", "jq") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the walkthrough needs {', '.join(missing)}")
    args = _main_command_args(shared_data)
    assert args[:2] == ["up", "--replay"]
    server = servers.start(
        args,
        {"SMART_TRADER_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "REDIS_URL": ""},
        tmp_path / "server.log",
    )
    try:
        server.wait_ready()
        api = server.url + "/api/v1"
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _walkthrough()],
            env={"API": api, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{server.log_tail()}"
        token = httpx.post(api + "/auth/token", data={"username": "me@example.com", "password": "a-long-password"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        (account,) = httpx.get(api + "/accounts", headers=headers).json()
        fills = httpx.get(f"{api}/accounts/{account['id']}/fills", headers=headers).json()
        positions = httpx.get(f"{api}/accounts/{account['id']}/positions", headers=headers).json()
    finally:
        server.stop()
    # both orders filled, at prices that were traded in the replayed file
    replay = Path(args[2])
    traded = {Decimal(p) for p in read_file(replay).table.column("price").to_pylist()}
    assert [(f["side"], Decimal(f["quantity"])) for f in fills] == [("buy", Decimal("0.5")), ("sell", Decimal("0.2"))]
    assert all(Decimal(f["price"]) in traded for f in fills)
    buy, sell = (Decimal(f["price"]) for f in fills)
    (pos,) = positions
    assert Decimal(pos["quantity"]) == Decimal("0.3")
    assert Decimal(pos["realized_pnl"]) == (sell - buy) * Decimal("0.2")
    assert Decimal(account["cash"]) == Decimal(100000) - buy * Decimal("0.5") + sell * Decimal("0.2")
    assert '"equity"' in run.stdout and '"realized_pnl"' in run.stdout  # the walkthrough printed its reads
