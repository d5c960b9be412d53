"""Authentication through the API: registration, OAuth2 password tokens, refresh, API keys, and the 401s.

Every error is checked to be an RFC 9457 problem document (see :func:`tests.app.conftest.assert_problem`).
"""

from __future__ import annotations

import time

import jwt

from tests.app.conftest import PASSWORD, Harness, assert_problem
from tests.conftest import TEST_SECRET_KEY

SECRET = TEST_SECRET_KEY  # the test platform's SECRET_KEY
ACCOUNTS = "/api/v1/accounts"


def _register(h: Harness, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = h.client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _token(h: Harness, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = h.client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_then_token_gives_a_working_access_token(platform: Harness) -> None:
    user = _register(platform, "Alice@Example.COM")
    assert user["email"] == "alice@example.com"  # stored lower-case
    assert set(user) == {"id", "email", "created_ns", "roles"}  # nothing about the password comes back
    assert user["roles"] == ["trader"]
    tokens = _token(platform, "alice@example.com")  # login is case-insensitive too
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == platform.settings.access_token_seconds
    claims = jwt.decode(tokens["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == user["id"] and claims["typ"] == "access"
    r = platform.client.get(ACCOUNTS, headers=_bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.json() == []


def test_duplicate_email_is_409_whatever_its_case(platform: Harness) -> None:
    _register(platform, "bob@example.com")
    r = platform.client.post("/api/v1/auth/register", json={"email": "BOB@example.com", "password": "other-long-pw-1"})
    assert_problem(r, 409, "bob@example.com", "already registered")
    # the first password still works, the second never took
    _token(platform, "bob@example.com")
    r = platform.client.post("/api/v1/auth/token", data={"username": "bob@example.com", "password": "other-long-pw-1"})
    assert_problem(r, 401)


def test_invalid_registrations_are_422_naming_the_field(platform: Harness) -> None:
    c = platform.client
    r = c.post("/api/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD})
    body = assert_problem(r, 422, "email")
    assert any(e["loc"][-1] == "email" for e in body["errors"])
    r = c.post("/api/v1/auth/register", json={"email": "short@example.com", "password": "1234567"})
    assert_problem(r, 422, "password", "at least 10 characters")
    r = c.post("/api/v1/auth/register", json={"email": "weak@example.com", "password": "password1234"})
    assert_problem(r, 422, "too easy to guess", "very common password")
    r = c.post("/api/v1/auth/register", json={"email": "x@example.com"})
    assert_problem(r, 422, "password", "required")
    r = c.post("/api/v1/auth/register", json={"email": "x@example.com", "password": PASSWORD, "admin": True})
    assert_problem(r, 422, "admin")
    # nothing was created by the refused attempts
    r = c.post("/api/v1/auth/token", data={"username": "short@example.com", "password": "1234567"})
    assert_problem(r, 401)


def test_wrong_password_and_unknown_user_are_the_same_401(platform: Harness) -> None:
    _register(platform, "carol@example.com")
    wrong = platform.client.post("/api/v1/auth/token", data={"username": "carol@example.com", "password": "nope-nope"})
    unknown = platform.client.post("/api/v1/auth/token", data={"username": "who@example.com", "password": PASSWORD})
    a = assert_problem(wrong, 401)
    b = assert_problem(unknown, 401)
    assert a["detail"] == b["detail"]  # does not tell which emails exist
    assert wrong.headers["www-authenticate"] == "Bearer"
    r = platform.client.post("/api/v1/auth/token", data={"username": "carol@example.com"})
    assert_problem(r, 422, "password")


def test_refresh_gives_a_working_access_token_and_token_types_do_not_mix(platform: Harness) -> None:
    _register(platform, "dave@example.com")
    pair = _token(platform, "dave@example.com")
    r = platform.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["access_token"] != pair["access_token"]
    assert platform.client.get(ACCOUNTS, headers=_bearer(fresh["access_token"])).status_code == 200
    # an access token is not a refresh token, and a refresh token is not an access token
    r = platform.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert_problem(r, 401, "refresh token")
    r = platform.client.get(ACCOUNTS, headers=_bearer(pair["refresh_token"]))
    assert_problem(r, 401, "access token")
    r = platform.client.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"})
    assert_problem(r, 401)


def test_api_key_works_as_x_api_key_and_a_wrong_one_is_401(platform: Harness) -> None:
    headers = platform.user("erin@example.com")
    account_id = platform.account(headers)
    r = platform.client.post("/api/v1/api-keys", headers=headers, json={"name": "my bot"})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["name"] == "my bot" and issued["key"].startswith("st_") and issued["key"][:10] == issued["prefix"]
    by_key = platform.client.get(ACCOUNTS, headers={"X-API-Key": issued["key"]})
    assert by_key.status_code == 200, by_key.text
    assert [a["id"] for a in by_key.json()] == [account_id]  # the key acts as its owner
    order = platform.client.post(
        f"{ACCOUNTS}/{account_id}/orders",
        headers={"X-API-Key": issued["key"]},
        json={
            "symbol": "BTC/USDT",
            "venue": "BINANCE",
            "side": "buy",
            "type": "limit",
            "qty": "0.001",
            "limit_price": "1",
        },
    )
    assert order.status_code == 201, order.text
    r = platform.client.get(
        ACCOUNTS, headers={"X-API-Key": issued["key"][:-1] + ("A" if issued["key"][-1] != "A" else "B")}
    )
    assert_problem(r, 401, "API key")
    # a wrong key is refused even alongside a valid bearer token: the key is what was presented
    r = platform.client.get(ACCOUNTS, headers={**headers, "X-API-Key": "st_wrong"})
    assert_problem(r, 401, "API key")
    r = platform.client.post("/api/v1/api-keys", json={"name": "x"})
    assert_problem(r, 401)


def test_no_credentials_is_401_on_every_protected_route(platform: Harness) -> None:
    for method, path in [
        ("GET", ACCOUNTS),
        ("POST", ACCOUNTS),
        ("GET", f"{ACCOUNTS}/some-id"),
        ("GET", f"{ACCOUNTS}/some-id/orders"),
        ("DELETE", f"{ACCOUNTS}/some-id/orders/x"),
        ("GET", "/api/v1/instruments"),
        ("GET", "/api/v1/market/quote?symbol=BTC/USDT&venue=BINANCE"),
    ]:
        r = platform.client.request(method, path)
        body = assert_problem(r, 401, "not authenticated")
        assert r.headers["www-authenticate"] == "Bearer", (method, path, body)


def test_tampered_expired_and_foreign_jwts_are_401(platform: Harness) -> None:
    user = _register(platform, "frank@example.com")
    good = _token(platform, "frank@example.com")["access_token"]
    assert platform.client.get(ACCOUNTS, headers=_bearer(good)).status_code == 200
    header, payload, signature = good.split(".")
    tampered_sig = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    now = int(time.time())
    ids = {"sid": "a-session", "jti": "a-token-id"}
    other_user = jwt.encode(
        {"sub": "someone-else", "typ": "access", "iat": now, "exp": now + 600, **ids}, SECRET, algorithm="HS256"
    ).split(".")[1]
    forged_payload = f"{header}.{other_user}.{signature}"  # another user's claims under frank's signature
    claims = {"sub": user["id"], "typ": "access", **ids}
    expired = jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, SECRET, "HS256")
    foreign = jwt.encode({**claims, "iat": now, "exp": now + 600}, "x" * 40, "HS256")
    unsigned = jwt.encode({**claims, "iat": now, "exp": now + 600}, "", "none")
    no_exp = jwt.encode({**claims, "iat": now}, SECRET, "HS256")
    no_session = jwt.encode({"sub": user["id"], "typ": "access", "iat": now, "exp": now + 600}, SECRET, "HS256")
    for bad in (tampered_sig, forged_payload, expired, foreign, unsigned, no_exp, no_session, "not.a.jwt"):
        r = platform.client.get(ACCOUNTS, headers=_bearer(bad))
        assert_problem(r, 401, "invalid or expired")
    # the same claims, validly signed and unexpired, are accepted: the refusals above are about the token
    fine = jwt.encode({**claims, "iat": now, "exp": now + 60}, SECRET, "HS256")
    assert platform.client.get(ACCOUNTS, headers=_bearer(fine)).status_code == 200


def test_a_wrong_current_password_in_a_password_change_is_a_failed_login(platform: Harness) -> None:
    """A stolen token or key must not let its holder guess the password freely through the password change."""
    _register(platform, "gina@example.com")
    bearer = _bearer(_token(platform, "gina@example.com")["access_token"])
    free = platform.settings.login_free_failures
    body = {"current_password": "not-the-password", "new_password": "a-brand-new-passphrase-7"}
    for _ in range(free + 1):  # the free failures, then the one that starts the backoff
        assert_problem(platform.client.post("/api/v1/auth/password", headers=bearer, json=body), 401, "wrong")
    r = platform.client.post("/api/v1/auth/password", headers=bearer, json=body)
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    # the account itself is backing off: the right password at the login route waits too
    r = platform.client.post("/api/v1/auth/token", data={"username": "gina@example.com", "password": PASSWORD})
    assert_problem(r, 429)
