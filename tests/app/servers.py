"""Real server processes for the platform tests: ``smart-trader up`` / ``serve`` under uvicorn, on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "smart_trader.cli.main"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server process and where it listens."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``/ready`` answers 200; fails with the log tail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM (graceful shutdown); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def start(args: list[str], env: dict[str, str], log: Path, port: int | None = None) -> Server:
    """Start ``smart-trader <args> --port <port>`` with ``env`` added to this process's environment."""
    port = port or free_port()
    full_env = {**os.environ, "LOG_JSON": "true", "SECRET_KEY": TEST_SECRET_KEY, **env}
    out = log.open("ab")
    proc = subprocess.Popen([*CLI, *args, "--port", str(port)], env=full_env, cwd=REPO, stdout=out, stderr=out)
    return Server(proc, port, log)


BTC_TRADES = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"


def replay_args(command: list[str], shared_data: Path, speed: str) -> list[str]:
    """``command`` (``["up"]`` or ``["serve", "--role", "feed"]``) replaying the real BTC/USDT trades, looping."""
    return [*command, "--replay", str(shared_data / BTC_TRADES), "--symbol", "BTC/USDT", "--venue", "BINANCE",
            "--speed", speed, "--loop"]  # fmt: skip


def login(base: str, email: str, password: str = "server-test-pw") -> dict[str, str]:
    """Register ``email`` on the server at ``base`` (``http://host:port``), log in; the Authorization header."""
    httpx.post(base + "/api/v1/auth/register", json={"email": email, "password": password})
    r = httpx.post(base + "/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
