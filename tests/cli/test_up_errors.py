"""Start-up errors of the server commands are one clear line and a non-zero exit, never a traceback (issue 9): a
second ``smart-trader up`` on a busy port or on a database another runtime holds (SQLite file and PostgreSQL), the
runtime lock taken by another process between the check and the application's start, an unreachable database and
invalid settings. Real processes: a first ``up`` is started and kept running while a second one is tried."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app import servers
from tests.conftest import TEST_SECRET_KEY

PORT_IN_USE = "port {port} is in use (another smart-trader up?): stop it or pass --port N"
RUNTIME_RUNNING = "another trading runtime (smart-trader up, or serve --role feed) is already running on this database"


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``smart-trader <args>`` in a new process with ``env`` added; its exit code and output."""
    full_env = {**os.environ, "LOG_JSON": "true", "SECRET_KEY": TEST_SECRET_KEY, **env}
    return subprocess.run(
        [*servers.CLI, *args], env=full_env, cwd=servers.REPO, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(run: subprocess.CompletedProcess[str], expected: str) -> str:
    """The run failed with ``expected`` in one ``error:`` line on stderr, and printed no traceback anywhere."""
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert expected in errors[0], output
    return errors[0]


@pytest.fixture
def first_up(tmp_path: Path) -> Iterator[tuple[servers.Server, dict[str, str]]]:
    """A running ``smart-trader up`` (the packaged sample) on a free port and a fresh home; its environment."""
    env = {"SMART_TRADER_HOME": str(tmp_path / "home")}
    server = servers.start(["up"], env, tmp_path / "first.log")
    try:
        server.wait_ready()
        yield server, env
    finally:
        server.stop()


def test_a_second_up_on_the_same_port_and_home_says_the_port_is_in_use_before_its_banner(
    first_up: tuple[servers.Server, dict[str, str]],
) -> None:
    server, env = first_up
    run = run_cli(["up", "--port", str(server.port)], env)
    line = assert_one_line_error(run, PORT_IN_USE.format(port=server.port))
    assert run.returncode == 2 and line == "error: " + PORT_IN_USE.format(port=server.port)
    assert "Smart Trader on" not in run.stdout and "replaying" not in run.stdout  # checked first: no banner, no work
    assert httpx.get(server.url + "/ready", timeout=5).status_code == 200  # the first one is untouched


def test_a_second_up_on_another_port_and_the_same_home_says_another_runtime_holds_the_database(
    first_up: tuple[servers.Server, dict[str, str]],
) -> None:
    server, env = first_up
    port = servers.free_port()
    run = run_cli(["up", "--port", str(port)], env)
    assert_one_line_error(run, RUNTIME_RUNNING)
    assert "Smart Trader on" not in run.stdout
    assert httpx.get(server.url + "/ready", timeout=5).status_code == 200
    with socket.socket() as s:  # the refused process let its port go
        s.bind(("127.0.0.1", port))


def test_the_runtime_lock_taken_between_the_check_and_the_start_is_one_line_too(tmp_path: Path) -> None:
    # another process takes the database after `up` checked it (the check is skipped here to make that certain):
    # the application's start-up fails in uvicorn's lifespan, which would print Starlette's traceback
    home = tmp_path / "home"
    home.mkdir()
    with (home / "smart-trader.db.runtime-lock").open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        port = servers.free_port()
        code = (
            "import smart_trader.cli.platform as p\n"
            "p.check_database = lambda settings, runtime: None\n"
            "from smart_trader.cli.main import app\n"
            f"app(['up', '--port', '{port}'])\n"
        )
        env = {**os.environ, "LOG_JSON": "true", "SECRET_KEY": TEST_SECRET_KEY, "SMART_TRADER_HOME": str(home)}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=servers.REPO, capture_output=True, text=True, timeout=120
        )
    assert "Smart Trader on" in run.stdout  # it got as far as starting the application
    assert_one_line_error(run, RUNTIME_RUNNING)
    assert "Application startup failed" in run.stderr  # uvicorn's own line, without the traceback it used to carry


def test_a_second_up_on_the_same_postgresql_database_says_another_runtime_holds_it(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    import psycopg

    name = f"test_st_up_errors_{os.getpid()}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    server = servers.start(["up"], {"SMART_TRADER_HOME": str(tmp_path / "a"), "DATABASE_URL": url}, tmp_path / "a.log")
    try:
        server.wait_ready()
        run = run_cli(
            ["up", "--port", str(servers.free_port())], {"SMART_TRADER_HOME": str(tmp_path / "b"), "DATABASE_URL": url}
        )
        assert_one_line_error(run, RUNTIME_RUNNING)
    finally:
        server.stop()
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unreachable_database_is_one_line_naming_it_without_its_password(tmp_path: Path) -> None:
    port = servers.free_port()  # nobody listens there
    url = f"postgresql://trader:s3cret-pw@127.0.0.1:{port}/trading"
    run = run_cli(["up", "--port", str(servers.free_port())], {"SMART_TRADER_HOME": str(tmp_path), "DATABASE_URL": url})
    line = assert_one_line_error(run, f"cannot reach the database postgresql+psycopg://trader:***@127.0.0.1:{port}")
    assert "DATABASE_URL" in line and "s3cret-pw" not in run.stdout + run.stderr
    assert "Smart Trader on" not in run.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MAX_BODY_BYTES", "0", "MAX_BODY_BYTES: Input should be greater than 0"),
        ("MAX_BODY_BYTES", "a lot", "MAX_BODY_BYTES: Input should be a valid integer"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: 'loud' is not one of DEBUG"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT: Input should be 'development', 'test' or 'production'"),
    ],
)
def test_an_invalid_setting_is_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    run = run_cli(["up", "--port", str(servers.free_port())], {"SMART_TRADER_HOME": str(tmp_path), variable: value})
    assert_one_line_error(run, expected)
    assert run.returncode == 2
