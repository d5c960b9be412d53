"""``smart-trader users``: user administration on the server (create, grant, revoke, disable, enable, list), run on a
temporary ``SMART_TRADER_HOME`` (the embedded SQLite database), with its exit codes and one-line errors; and what it
changes is what a running platform on that database enforces (an administrator made here logs in and administers; a
user disabled here is refused by the running server within seconds)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smart_trader.app.factory import create_app
from smart_trader.cli.main import app
from smart_trader.settings import Settings
from tests.conftest import TEST_SECRET_KEY

runner = CliRunner(env={"COLUMNS": "200"})
PASSWORD = "correct-horse-battery"
LINE = re.compile(
    r"^(?P<email>\S*)\s+id (?P<id>[0-9a-f-]{36})\s+roles (?P<roles>[a-z_, ]+?)\s+(?P<state>active|disabled)$"
)


@pytest.fixture(autouse=True)
def embedded(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded database of a fresh home (no DATABASE_URL / REDIS_URL from the environment), and cheap argon2id
    parameters (as in ``tests/app/conftest.py``: the code path is the same, only the cost differs)."""
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return home


def st(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``smart-trader *args``: exit code, stdout, stderr."""
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def users_listed() -> dict[str, dict[str, str]]:
    """``users list`` parsed: email → {id, roles, state}."""
    code, out, err = st("users", "list")
    assert code == 0, err
    listed: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        m = LINE.match(line.strip())
        assert m is not None, f"unparsable line {line!r}"
        listed[m["email"]] = {"id": m["id"], "roles": m["roles"], "state": m["state"]}
    return listed


def roles_of(email: str) -> set[str]:
    return {r.strip() for r in users_listed()[email]["roles"].split(",")}


def assert_one_line_error(code: int, expected_code: int, err: str, *words: str) -> None:
    assert code == expected_code, (code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


def create(email: str, *roles: str, password: str = PASSWORD) -> tuple[int, str, str]:
    args = ["users", "create", email]
    for r in roles:
        args += ["--role", r]
    return st(*args, "--password-stdin", stdin=password + "\n")


def test_create_an_admin_reading_the_password_from_stdin(embedded: Path) -> None:
    code, out, err = create("admin@example.org", "admin")
    assert code == 0, err
    m = LINE.match(out.strip())
    assert m is not None and m["email"] == "admin@example.org" and m["roles"] == "admin" and m["state"] == "active", out
    assert PASSWORD not in out + err  # the password is never echoed
    assert (embedded / "smart-trader.db").is_file()  # the embedded database of SMART_TRADER_HOME
    assert users_listed() == {"admin@example.org": {"id": m["id"], "roles": "admin", "state": "active"}}


def test_create_with_several_roles_and_the_default_role(embedded: Path) -> None:
    assert create("both@example.com", "trader", "risk_manager")[0] == 0
    assert roles_of("both@example.com") == {"risk_manager", "trader"}
    code, _, err = create("default@example.com")  # no --role: an administrator (how the first one is made)
    assert code == 0, err
    assert roles_of("default@example.com") == {"admin"}


def test_grant_and_revoke_roles(embedded: Path) -> None:
    assert create("rita@example.com", "trader")[0] == 0
    code, out, err = st("users", "grant", "rita@example.com", "risk_manager")
    assert code == 0, err
    assert "risk_manager" in out and "trader" in out
    assert roles_of("rita@example.com") == {"risk_manager", "trader"}
    code, _, err = st("users", "grant", "rita@example.com", "risk_manager")  # granting again changes nothing
    assert code == 0, err
    assert roles_of("rita@example.com") == {"risk_manager", "trader"}
    code, out, err = st("users", "revoke", "rita@example.com", "trader")
    assert code == 0, err
    assert roles_of("rita@example.com") == {"risk_manager"}
    # the last role cannot be taken: a user keeps one (disable them to lock them out)
    code, _, err = st("users", "revoke", "rita@example.com", "risk_manager")
    assert_one_line_error(code, 2, err, "at least one role")
    assert roles_of("rita@example.com") == {"risk_manager"}


def test_disable_and_enable(embedded: Path) -> None:
    assert create("dan@example.com", "trader")[0] == 0
    assert create("other@example.com", "trader")[0] == 0
    code, out, err = st("users", "disable", "dan@example.com")
    assert code == 0, err
    assert out.strip().endswith("disabled")
    listed = users_listed()
    assert listed["dan@example.com"]["state"] == "disabled"
    assert listed["other@example.com"]["state"] == "active"  # nobody else
    code, out, err = st("users", "enable", "dan@example.com")
    assert code == 0, err
    assert users_listed()["dan@example.com"]["state"] == "active"


def test_list_is_oldest_first_with_roles_and_state(embedded: Path) -> None:
    code, out, err = st("users", "list")
    assert code == 0 and out.strip() == "", (out, err)  # an empty database lists nobody
    for email, role in (("a@example.com", "admin"), ("b@example.com", "trader"), ("c@example.com", "risk_manager")):
        assert create(email, role)[0] == 0
    st("users", "disable", "b@example.com")
    listed = users_listed()
    assert list(listed) == ["a@example.com", "b@example.com", "c@example.com"]
    assert [(v["roles"], v["state"]) for v in listed.values()] == [
        ("admin", "active"),
        ("trader", "disabled"),
        ("risk_manager", "active"),
    ]
    code, out, _ = st("users", "list", "--limit", "1")
    assert code == 0 and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("users", "grant", "x@example.com", "superuser"),
        ("users", "revoke", "x@example.com", "root"),
    ],
)
def test_an_unknown_role_is_exit_2_in_one_line(embedded: Path, args: tuple[str, ...]) -> None:
    assert create("x@example.com", "trader")[0] == 0
    code, _out, err = st(*args)
    assert_one_line_error(code, 2, err, "unknown role", args[-1], "trader", "risk_manager", "admin")
    assert roles_of("x@example.com") == {"trader"}


def test_create_with_an_unknown_role_is_exit_2_and_creates_nobody(embedded: Path) -> None:
    code, _, err = create("boss@example.com", "boss")
    assert_one_line_error(code, 2, err, "unknown role", "boss")
    assert "boss@example.com" not in users_listed()


@pytest.mark.parametrize("command", [("grant", "trader"), ("revoke", "trader"), ("disable",), ("enable",)])
def test_an_unknown_user_is_exit_3_in_one_line(embedded: Path, command: tuple[str, ...]) -> None:
    code, _, err = st("users", command[0], "nobody@example.com", *command[1:])
    assert_one_line_error(code, 3, err, "no user", "nobody@example.com")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password123", "too easy to guess"),  # a breached/common password
        ("weak@example.com", "too easy to guess"),  # the email itself
        ("x7Qp2", "too short"),
    ],
)
def test_a_weak_password_is_exit_2_in_one_line_and_creates_nobody(embedded: Path, password: str, why: str) -> None:
    code, _out, err = create("weak@example.com", "admin", password=password)
    assert_one_line_error(code, 2, err, why)
    assert password not in err.replace("weak@example.com", "")  # the message does not repeat the password
    assert "weak@example.com" not in users_listed()


def test_an_email_already_registered_is_exit_2_whatever_its_case(embedded: Path) -> None:
    assert create("Admin@Example.com", "admin")[0] == 0
    code, _, err = create("admin@example.COM", "trader")
    assert_one_line_error(code, 2, err, "already registered")
    assert roles_of("admin@example.com") == {"admin"}


@pytest.mark.parametrize("email", ["", "   ", "not an email"])
def test_an_email_the_api_would_refuse_is_refused(embedded: Path, email: str) -> None:
    """Registration through the API validates the email (``EmailStr``); the command must not create users the API
    never could (an administrator with an empty email)."""
    code, _, err = create(email, "admin")
    assert_one_line_error(code, 2, err, "email")
    assert users_listed() == {}


# -- what the command changes, a running platform enforces -------------------------------------------------------


@pytest.fixture
def server(embedded: Path) -> Iterator[TestClient]:
    """The platform (role ``all``, no feed) on the same embedded database."""
    settings = Settings(
        secret_key=TEST_SECRET_KEY,
        environment="test",
        log_json=False,
        rate_limits_enabled=False,
        _env_file=None,
        **{"SMART_TRADER_HOME": embedded},
    )
    with TestClient(create_app(settings, "all")) as client:
        yield client


def _login(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_an_admin_created_by_the_command_administers_the_running_platform(server: TestClient) -> None:
    assert create("root@example.com", "admin")[0] == 0
    assert create("trader@example.com", "trader")[0] == 0
    admin = _login(server, "root@example.com")
    r = server.get("/api/v1/admin/users", headers=admin)
    assert r.status_code == 200, r.text
    assert {u["email"]: u["roles"] for u in r.json()} == {
        "root@example.com": ["admin"],
        "trader@example.com": ["trader"],
    }
    trader = _login(server, "trader@example.com")
    assert server.get("/api/v1/admin/users", headers=trader).status_code == 403


def test_a_user_disabled_or_granted_by_the_command_is_seen_by_the_running_server(server: TestClient) -> None:
    """The command writes the database directly; a running server applies it within seconds (its backstop re-reads
    what changed every 5 s), with no restart."""
    assert create("granted@example.com", "trader")[0] == 0
    assert create("disabled@example.com", "trader")[0] == 0
    granted = _login(server, "granted@example.com")
    disabled = _login(server, "disabled@example.com")
    assert server.get("/api/v1/auth/me", headers=disabled).status_code == 200
    assert server.get("/api/v1/risk/accounts", headers=granted).status_code == 403
    assert st("users", "grant", "granted@example.com", "risk_manager")[0] == 0
    assert st("users", "disable", "disabled@example.com")[0] == 0
    _poll(lambda: server.get("/api/v1/risk/accounts", headers=granted).status_code == 200, "the granted role")
    _poll(lambda: server.get("/api/v1/auth/me", headers=disabled).status_code == 401, "the disabled user's token")
    r = server.post("/api/v1/auth/token", data={"username": "disabled@example.com", "password": PASSWORD})
    assert r.status_code == 401, r.text


def _poll(condition: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: the running server did not see the change within {timeout} s")
        time.sleep(0.1)
