"""The package as a user installs it: the repository's wheel built, installed into a fresh virtual environment
(no system site packages, so only the runtime dependencies `pip` pulls from the package index, as `make up` does),
then run from an empty folder with a fresh SMART_TRADER_HOME: `--help`, `up` with no source (the packaged sample)
serving a quote, and `demo`.

Unlike the bare-clone test in ``test_walkthrough.py`` (the clone's source on the development interpreter), this
catches a runtime import of a development-only package and a sample file left out of the wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from smart_trader.samples import DEFAULT_SAMPLE
from tests.app import servers

pytestmark = pytest.mark.slow

# what pip prints when it cannot reach the package index (urllib3/requests errors and resolver messages)
NETWORK_ERRORS = (
    "NewConnectionError",
    "NameResolutionError",
    "Failed to establish a new connection",
    "ConnectTimeoutError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
    "Read timed out",
)
# development-only packages (the `dev` extra): a fresh runtime install must not have them
DEV_ONLY = ("pytest", "mypy", "hypothesis", "pandas", "backtrader")


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let the test's own packages or source in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, **extra}


def _index_unreachable(output: str) -> str | None:
    """Why the package index looks unreachable after a failed pip run, else ``None``: a connection error in pip's
    output, or the index not answering for the build backend (a package every index we build from has)."""
    for line in output.splitlines():
        if any(marker in line for marker in NETWORK_ERRORS):
            return line.strip()[:300]
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "hatchling"],
        env=_clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if probe.returncode != 0:
        said = (probe.stdout + probe.stderr).strip().splitlines()
        return f"`pip index versions hatchling` failed too: {said[-1] if said else probe.returncode}"
    return None


def _pip(args: list[str], what: str, cwd: Path) -> float:
    """Run a pip command; its seconds. Skips when the package index cannot be reached (fails under ``CI``)."""
    start = time.monotonic()
    run = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        output = run.stdout + run.stderr
        reason = _index_unreachable(output)
        if reason is not None:
            msg = f"{what}: the package index cannot be reached ({reason})"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        raise AssertionError(f"{what} failed ({run.returncode}):\n{output[-4000:]}")
    return time.monotonic() - start


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


PROBE = """
import hashlib, importlib.resources, importlib.util, json, sys
import smart_trader, smart_trader.samples as s
files = importlib.resources.files("smart_trader.samples")
print(json.dumps({
    "isolated": sys.prefix != sys.base_prefix,
    "package": smart_trader.__file__,
    "sample": [str(f) for f in s.DEFAULT_SAMPLE.files] if s.default_sample() else None,
    "resources": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files.iterdir() if f.is_file()},
    "dev_only": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
}))
"""


def test_the_built_wheel_installs_into_a_fresh_venv_and_runs_the_sample(tmp_path: Path) -> None:
    wheels, venv, empty, home = tmp_path / "wheels", tmp_path / "venv", tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    timings: dict[str, float] = {}

    # the wheel of this repository (pip builds it in an isolated environment with the build backend only)
    timings["wheel build"] = _pip(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(servers.REPO)],
        "building the wheel", tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("smart_trader-*.whl")

    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=_clean_env())
    timings["venv"] = time.monotonic() - start
    python, cli = venv / "bin" / "python", venv / "bin" / "smart-trader"
    timings["pip install"] = _pip([str(python), "-m", "pip", "install", "-q", str(wheel)], "installing", tmp_path)

    env = _clean_env(SMART_TRADER_HOME=str(home), DATABASE_URL="", REDIS_URL="", LOG_JSON="true")
    env.pop("SMART_TRADER_DATA", None)

    # the installed package, not this repository's source, and the sample inside it, byte for byte
    probe = _run([str(python), "-c", PROBE, *DEV_ONLY], empty, env)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert found["isolated"] and Path(found["package"]).is_relative_to(site), found["package"]
    assert found["dev_only"] == [], f"a runtime install has development packages: {found['dev_only']}"
    assert found["sample"] is not None, "the installed package ships no sample"
    for path, ours in zip(found["sample"], DEFAULT_SAMPLE.files, strict=True):
        assert Path(path).is_relative_to(site)
        assert found["resources"][ours.name] == hashlib.sha256(ours.read_bytes()).hexdigest()
    assert "README.md" in found["resources"]  # the sample's provenance travels with it

    helped = _run([str(cli), "--help"], empty, env)
    assert helped.returncode == 0 and "up" in helped.stdout, helped.stdout + helped.stderr

    # `up` with no source: the packaged sample, served
    log = tmp_path / "up.log"
    port = servers.free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([str(cli), "up", "--port", str(port)], cwd=empty, env=env, stdout=out, stderr=out)
    server = servers.Server(proc, port, log)
    try:
        start = time.monotonic()
        server.wait_ready(timeout=120)
        timings["up → ready"] = time.monotonic() - start
        headers = servers.login(server.url, "installed@example.com")
        params = {"symbol": DEFAULT_SAMPLE.symbol, "venue": DEFAULT_SAMPLE.venue}
        deadline = time.monotonic() + 30
        while True:  # the first replayed bar gives the last price
            quote = httpx.get(server.url + "/api/v1/market/quote", params=params, headers=headers, timeout=5)
            if quote.status_code == 200 and quote.json().get("last_price") is not None:
                break
            assert time.monotonic() < deadline, f"no last price: {quote.status_code} {quote.text}"
            time.sleep(0.2)
    finally:
        server.stop()

    # the backtest demo on the packaged sample, from the same empty folder (nothing beside it)
    demo = _run([str(cli), "demo"], empty, env, timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (home / "runs" / "demo-BTCUSDTUSDT-15m-sma_cross" / "stats.json").is_file()
    assert list(empty.iterdir()) == []  # nothing written into the working folder

    print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
