"""The signing key: never a usable default. The embedded mode generates one under SMART_TRADER_HOME (mode 0600)
and keeps it; every other mode needs a strong SECRET_KEY; SECRET_KEY_PREVIOUS is accepted during a rotation."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway.security import TokenCodec
from smart_trader.settings import SECRET_KEY_FILE, Settings

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _settings(home: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, SMART_TRADER_HOME=str(home), **kw)  # type: ignore[arg-type]


def test_the_embedded_mode_creates_a_private_random_key_once_and_keeps_it(tmp_path: Path) -> None:
    key, accepted = _settings(tmp_path).signing_keys()
    path = tmp_path / SECRET_KEY_FILE
    assert path.read_text().strip() == key and accepted == (key,)
    assert len(key) == 64 and len(set(key)) >= 8
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _settings(tmp_path).signing_keys()[0] == key  # a restart signs with the same key
    assert _settings(tmp_path / "other").signing_keys()[0] != key  # another home, another key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    _settings(tmp_path).signing_keys()
    os.chmod(tmp_path / SECRET_KEY_FILE, 0o644)
    with pytest.raises(InvalidInputError, match=r"readable by other users.*chmod 600"):
        _settings(tmp_path).signing_keys()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"database_url": PG}, "refusing to start on PostgreSQL without SECRET_KEY"),
        ({"environment": "production"}, "refusing to start in production without SECRET_KEY"),
        ({"secret_key": "x" * 64}, "SECRET_KEY is too weak"),
        ({"secret_key": secrets.token_hex(8)}, "SECRET_KEY is too weak"),
        ({"secret_key": "dev-secret-change-me-dev-secret-change-me"}, "SECRET_KEY is too weak"),
        ({"secret_key": secrets.token_hex(32), "secret_key_previous": "short"}, "SECRET_KEY_PREVIOUS is too weak"),
    ],
)
def test_no_usable_default_outside_the_embedded_mode(tmp_path: Path, kw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        _settings(tmp_path, **kw).signing_keys()
    assert "openssl rand -hex 32" in str(err.value)
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_rotation_accepts_tokens_of_the_previous_key_and_signs_with_the_new(tmp_path: Path) -> None:
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    before = TokenCodec(*_settings(tmp_path, secret_key=old).signing_keys(), 900, 3600)
    token = before.issue("user-1", "session-1").access_token
    during = TokenCodec(*_settings(tmp_path, secret_key=new, secret_key_previous=old).signing_keys(), 900, 3600)
    claims = during.decode(token, "access")
    assert claims is not None and claims.sub == "user-1" and claims.sid == "session-1"
    fresh = during.issue("user-1", "session-2").access_token
    assert before.decode(fresh, "access") is None  # signed with the new key only
    after = TokenCodec(*_settings(tmp_path, secret_key=new).signing_keys(), 900, 3600)
    assert after.decode(token, "access") is None  # the grace period is over
    assert after.decode(fresh, "access") is not None
