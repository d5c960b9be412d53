"""HTTP hardening (issue 9): security headers on every response (HSTS only over TLS), no caching of credentials,
the request-body size limit (413 without reading an oversized body), CORS by allowed origins, ``/metrics`` for
loopback clients or METRICS_TOKEN holders, the API docs served offline under a strict CSP, and the OpenAPI document
declaring the problem responses each operation gives (generated from the access table).

Most tests run the whole application (role ``all``, SQLite, started: TestClient as a context manager); the body-limit
and ``X-Forwarded-Proto`` tests also run it under a real uvicorn server and talk to it through a raw socket, so the
server's own body handling is part of what is tested.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from smart_trader.app.factory import create_app
from smart_trader.gateway.access import ALL_ROLES, rule_for
from smart_trader.gateway.hardening import BodySizeLimit
from smart_trader.gateway.openapi import PROBLEM_REF, document
from smart_trader.settings import Settings

MIB = 1024 * 1024
TWENTY_MB = 20 * MIB
PASSWORD = "correct-horse-battery-staple-9"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def make_settings(home: Path, **values: Any) -> Settings:
    # the home folder is read under its alias only (``home=`` would be ignored: Settings' docstring)
    return Settings(
        secret_key=secrets.token_hex(32), _env_file=None, log_json=False, **{"SMART_TRADER_HOME": home}, **values
    )


def make_app(home: Path, **values: Any) -> FastAPI:
    return create_app(make_settings(home, **values))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path)) as c:
        yield c


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters (the code path is the same; the defaults cost ~0.3 s per hash)."""
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def assert_problem(r: Any, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = dict(r.json())
    assert {"type", "title", "status", "detail", "instance"} <= body.keys() and body["status"] == status
    for w in words:
        assert w.lower() in body["detail"].lower(), (w, body["detail"])
    return body


def assert_security_headers(headers: Any, csp: str | None = API_CSP) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    if csp is not None:
        assert headers["content-security-policy"] == csp
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


# -- security headers -----------------------------------------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers_and_no_hsts_over_plain_http(client: TestClient) -> None:
    answers = [
        client.get("/health"),  # a route
        client.get("/api/v1/instruments"),  # 401 problem from the gateway
        client.get("/nowhere"),  # 404 from the router
        client.post("/api/v1/accounts/a-1/orders", content=b"{not json", headers={"content-type": "application/json"}),
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 422, 200]
    for r in answers:
        assert_security_headers(r.headers)
        assert "strict-transport-security" not in r.headers  # served over http: no HSTS
        assert r.headers.get("cache-control") != "no-store"  # only credential responses are kept out of caches
    assert_security_headers(client.get("/").headers, csp=None)  # the landing page: inline styles only
    assert "script-src" not in client.get("/").headers["content-security-policy"]


def test_hsts_is_sent_when_the_request_came_over_tls(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path), base_url="https://smart-trader.example") as c:
        for path in ("/health", "/docs", "/api/v1/auth/me"):
            r = c.get(path)
            assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", path
            assert_security_headers(r.headers, csp=None)


def test_token_and_key_responses_are_never_cached(client: TestClient) -> None:
    r = client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = client.post("/api/v1/auth/token", data={"username": "a@example.com", "password": PASSWORD})
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    key = client.post("/api/v1/api-keys", headers=auth, json={"name": "bot"})
    assert key.status_code == 201, key.text
    answers = [
        r,
        token,
        key,
        client.get("/api/v1/api-keys", headers=auth),
        client.get("/api/v1/auth/me", headers=auth),
        client.post("/api/v1/auth/token", data={"username": "a@example.com", "password": "wrong-password-x"}),
    ]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["pragma"] == "no-cache"
        assert_security_headers(answer.headers)


# -- request-body size limit ----------------------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_413_before_anything_reads_it(client: TestClient) -> None:
    # through the whole application: the order route (its fast path reads bodies itself) and a login form
    for path, content_type in (
        ("/api/v1/accounts/a-1/orders", "application/json"),
        ("/api/v1/auth/token", "application/x-www-form-urlencoded"),
    ):
        r = client.post(path, content=b"x" * TWENTY_MB, headers={"content-type": content_type})
        body = assert_problem(r, 413, "1048576 bytes", "MAX_BODY_BYTES")
        assert body["type"].endswith("/payload-too-large") and body["instance"] == path
        assert_security_headers(r.headers)
        assert r.headers["x-request-id"]  # inside the request-context middleware: logged with its id
    assert (
        client.post("/api/v1/auth/register", json={"email": "b@example.com", "password": PASSWORD}).status_code == 201
    )


def _run_limited(headers: list[tuple[bytes, bytes]], chunks: list[bytes], limit: int) -> dict[str, Any]:
    """Run :class:`BodySizeLimit` around an application that reads the whole body, feeding ``chunks``; what was
    answered and how much of the body was pulled from the client."""
    pulled: list[int] = []
    sent: list[Message] = []
    app_saw: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                app_saw.append(-size)
                raise RuntimeError("client went away")  # what a framework does then; must not reach the client
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        app_saw.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        i = len(pulled)
        pulled.append(len(chunks[i]))
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers}
    asyncio.run(BodySizeLimit(app, limit)(scope, receive, send))
    return {"status": sent[0]["status"], "sent": sent, "pulled": sum(pulled), "app_saw": app_saw}


def test_body_limit_middleware_refuses_a_declared_length_without_calling_the_application() -> None:
    out = _run_limited([(b"content-length", str(TWENTY_MB).encode())], [b"x" * TWENTY_MB], MIB)
    assert out["status"] == 413 and out["pulled"] == 0 and out["app_saw"] == []
    out = _run_limited([(b"content-length", str(MIB).encode())], [b"x" * MIB], MIB)  # at the limit: accepted
    assert out["status"] == 200 and out["app_saw"] == [MIB]


def test_body_limit_middleware_cuts_a_chunked_body_off_once_over_the_limit() -> None:
    chunk = 64 * 1024
    chunks = [b"x" * chunk] * (TWENTY_MB // chunk)
    out = _run_limited([(b"transfer-encoding", b"chunked")], chunks, MIB)
    assert out["status"] == 413
    assert out["pulled"] == MIB + chunk  # counted as it streamed: stopped at the first chunk over the limit
    assert len(out["sent"]) == 2  # the 413 only: the application's own error answer was dropped
    assert out["app_saw"] == [-MIB]  # the application was told the client went away, having seen 1 MiB
    out = _run_limited([(b"transfer-encoding", b"chunked")], [b"x" * chunk] * 16, MIB)  # exactly 1 MiB: accepted
    assert out["status"] == 200 and out["app_saw"] == [MIB]


# -- a real server: uvicorn, a raw socket ---------------------------------------------------------------------------


class ThreadServer:
    """The application under uvicorn (httptools) in a thread, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, http="httptools", lifespan="on", log_config=None,
            forwarded_allow_ips="127.0.0.1",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(make_app(tmp_path_factory.mktemp("home"))) as s:
        yield s


def _response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, f"connection closed after {data!r}"
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        got = sock.recv(65536)
        assert got
        rest += got
    return int(lines[0].split()[1]), headers, rest[:length]


def test_real_server_answers_413_to_a_20_mb_content_length_before_the_body_is_sent(server: ThreadServer) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/auth/register HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
            + f"content-length: {TWENTY_MB}\r\n\r\n".encode()
            + b'{"email": "'  # a start of the body; the other 20 MB never come
        )
        status, headers, body = _response(sock)
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert b"MAX_BODY_BYTES" in body and headers["x-content-type-options"] == "nosniff"


def test_real_server_cuts_a_chunked_20_mb_body_off_soon_after_the_limit(server: ThreadServer) -> None:
    chunk = 64 * 1024
    frame = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
    sent = 0
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/auth/register HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        sock.setblocking(False)
        answered = b""
        while sent < TWENTY_MB:
            with contextlib.suppress(BlockingIOError):
                answered += sock.recv(65536)
            if answered:
                break
            try:
                sock.sendall(frame)
                sent += chunk
            except BlockingIOError:  # the server stopped reading: wait for its answer
                time.sleep(0.01)
        sock.setblocking(True)
        status, _headers, body = _response_from(sock, answered)
    assert status == 413 and b"MAX_BODY_BYTES" in body
    assert sent < TWENTY_MB // 2, f"the client got to send {sent} bytes before the 413"


def _response_from(sock: socket.socket, already: bytes) -> tuple[int, dict[str, str], bytes]:
    class Prefixed:
        def __init__(self) -> None:
            self.pending = already

        def settimeout(self, t: float) -> None:
            sock.settimeout(t)

        def recv(self, n: int) -> bytes:
            if self.pending:
                out, self.pending = self.pending, b""
                return out
            return sock.recv(n)

    return _response(Prefixed(), 10.0)  # type: ignore[arg-type]


def test_real_server_sends_hsts_only_when_a_trusted_proxy_says_the_request_came_over_https(
    server: ThreadServer,
) -> None:
    for forwarded, expected in ((b"x-forwarded-proto: https\r\n", True), (b"", False)):
        with server.connect() as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: localhost\r\n" + forwarded + b"\r\n")
            status, headers, _ = _response(sock)
        assert status == 200
        assert ("strict-transport-security" in headers) is expected, headers


# -- CORS -----------------------------------------------------------------------------------------------------------


def test_cors_preflight_from_an_allowed_origin_only(tmp_path: Path) -> None:
    allowed, other = "https://app.example", "https://evil.example"
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    with TestClient(make_app(tmp_path, cors_origins=f"{allowed}, https://second.example")) as c:
        ok = c.options("/api/v1/accounts", headers={"origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in ok.headers  # bearer headers, never cookies
        assert_security_headers(ok.headers)
        refused = c.options("/api/v1/accounts", headers={"origin": other, **preflight})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        simple = c.get("/health", headers={"origin": allowed})
        assert simple.headers["access-control-allow-origin"] == allowed
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-origin" not in c.get("/health", headers={"origin": other}).headers


def test_no_cors_without_configured_origins(client: TestClient) -> None:
    r = client.options(
        "/api/v1/accounts", headers={"origin": "https://app.example", "access-control-request-method": "POST"}
    )
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in client.get("/health", headers={"origin": "https://app.example"}).headers


# -- /metrics -------------------------------------------------------------------------------------------------------


def test_metrics_answer_loopback_clients_and_refuse_others_without_a_configured_token(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "::1"):
        with TestClient(make_app(tmp_path), client=(host, 41000)) as local:
            r = local.get("/metrics")
            assert r.status_code == 200 and "api_response_duration" in r.text, host
    with TestClient(make_app(tmp_path), client=("10.1.2.3", 1234)) as remote:
        body = assert_problem(remote.get("/metrics"), 403, "METRICS_TOKEN", "loopback")
        assert body["type"].endswith("/forbidden")
        assert remote.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 403


def test_metrics_beyond_loopback_need_the_configured_token(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    with TestClient(make_app(tmp_path, metrics_token=token), client=("10.1.2.3", 1234)) as remote:
        assert_problem(remote.get("/metrics"), 401, "METRICS_TOKEN")
        for wrong in (f"Bearer {token}x", f"Basic {token}", "Bearer ", token):
            r = remote.get("/metrics", headers={"Authorization": wrong})
            assert_problem(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
        ok = remote.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    with TestClient(make_app(tmp_path, metrics_token=token), client=("127.0.0.1", 41000)) as local:
        assert local.get("/metrics").status_code == 200  # loopback needs no token


# -- docs, offline --------------------------------------------------------------------------------------------------


def test_docs_reference_only_local_assets_which_answer_and_a_csp_allowing_exactly_them(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
    assert urls and all(u.startswith("/static/") for u in urls), urls  # nothing from a CDN
    assert "http://" not in html and "https://" not in html
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert (
        client.get("/static/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/openapi.json").status_code == 200
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    [inline] = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"  # the page's own inline script, by hash
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "swaggerUIRedirectOauth2" in redirect.text
    [inline] = re.findall(r"<script>(.*?)</script>", redirect.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in redirect.headers["content-security-policy"]
    assert client.get("/redoc").status_code == 404  # not served: its bundle would need a looser policy


# -- OpenAPI: the problem responses, from the access table ----------------------------------------------------------


def test_openapi_declares_security_and_the_problem_responses_of_every_operation(client: TestClient) -> None:
    document(client.app)  # type: ignore[arg-type]
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
    }
    assert set(schema["components"]["securitySchemes"]) == {"OAuth2PasswordBearer", "APIKeyHeader"}
    checked = 0
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            rule = rule_for(method.upper(), path)
            assert rule is not None, (method, path)
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            if rule.public:
                assert "security" not in op, where
            else:
                assert {k for s in op["security"] for k in s} == {"OAuth2PasswordBearer", "APIKeyHeader"}, where
                assert "401" in responses, where
            if not rule.public and rule.allowed != ALL_ROLES:
                assert "403" in responses, where
            if "{" in path:
                assert "404" in responses, where
            if "requestBody" in op:
                assert {"400", "413", "422"} <= responses.keys(), where
            if op.get("parameters"):
                assert "422" in responses, where
            assert ("429" in responses) is (rule.rate != "ops"), where
            for status, response in responses.items():
                if status.startswith("4"):
                    assert response["content"] == {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
            checked += 1
    assert checked > 20
    place = schema["paths"]["/api/v1/accounts/{account_id}/orders"]["post"]["responses"]
    assert {"200", "201", "401", "403", "404", "409", "413", "422", "429"} <= place.keys()
    assert "Retry-After" in place["429"]["headers"]
    register = schema["paths"]["/api/v1/auth/register"]["post"]
    assert "security" not in register and "401" not in register["responses"] and "409" in register["responses"]
    assert schema["paths"]["/health"]["get"]["responses"].keys() == {"200"}
