"""Compose for development (deploy/compose/compose.yaml): validated statically (compose's own parser, the compose-spec
schema, what is published and what must be set), then (marked ``deploy``) for real: ``docker compose up --wait``
until every service is healthy, the README walkthrough through the reverse proxy with its fills asserted as
``tests/app/test_walkthrough.py`` asserts them, a WebSocket through the proxy, Prometheus scraping every replica with
the metrics token, the provisioned dashboards loaded; then ``down -v``.

The monitoring configuration is ``deploy/monitoring/`` (mounted by compose.yaml); while it is not there, a minimal
one honouring the same contract is written outside the repository and selected with ``MONITORING_DIR``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.app import servers
from tests.app.test_walkthrough import (
    _account_after_walkthrough,
    _assert_filled_as_the_walkthrough_says,
    _needs_tools,
    _run_walkthrough,
    _sample_opens,
)

from .conftest import DEPLOY, run, tool

COMPOSE = DEPLOY / "compose" / "compose.yaml"
MONITORING = DEPLOY / "monitoring"
SERVICES = {"postgres", "redis", "api", "feed", "worker", "prometheus", "alertmanager", "grafana", "proxy"}
SECRETS = ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY", "METRICS_TOKEN", "GRAFANA_ADMIN_PASSWORD",
           "ALERTMANAGER_PAGERDUTY_ROUTING_KEY", "ALERTMANAGER_SLACK_WEBHOOK_URL",
           "ALERTMANAGER_SECURITY_SLACK_WEBHOOK_URL"]  # fmt: skip
REQUIRED = [*SECRETS, "RUNBOOK_BASE"]  # no default either (not a secret: the alerts' runbook links)


def _secrets() -> dict[str, str]:
    """Every required setting: random passwords, keys and tokens; the receivers' URLs as the development placeholders
    .env.example suggests (delivery fails, visibly); a runbook base."""
    values = {name: os.urandom(32).hex() for name in SECRETS}
    for name in SECRETS:
        if name.endswith("_URL"):
            values[name] = f"https://slack.invalid/{values[name]}"
    return {**values, "RUNBOOK_BASE": "https://runbooks.example.org/smart-trader"}


def _config(env: dict[str, str]) -> dict[str, Any]:
    result = run([tool("docker-compose"), "-f", str(COMPOSE), "config", "--format", "json"], env=env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


# --- fast, static ---


def test_compose_file_passes_compose_config_and_the_compose_spec_schema() -> None:
    env = _secrets()
    result = run([tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], env=env)
    assert result.returncode == 0, result.stderr
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_services_are_the_documented_ones_and_every_long_running_one_has_a_healthcheck() -> None:
    config = _config(_secrets())
    services = config["services"]
    assert set(services) == SERVICES | {"migrate"}
    migrate = services.pop("migrate")  # one-shot: the schema upgrade before the roles start
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    for role in ("api", "feed", "worker"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", role
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck (up --wait would not wait)"
    assert services["api"]["deploy"]["replicas"] == 2
    assert "replicas" not in (services["feed"].get("deploy") or {}) or services["feed"]["deploy"]["replicas"] == 1
    assert "appendonly yes" in " ".join(services["redis"]["command"])  # AOF: the event streams survive a restart
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_only_the_proxy_and_monitoring_uis_are_published_and_only_on_loopback() -> None:
    services = _config(_secrets())["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"proxy", "prometheus", "alertmanager", "grafana"}
    for name, ports in published.items():
        for port in ports:
            assert port["host_ip"] == "127.0.0.1", f"{name} published beyond loopback: {port}"
            assert port["published"] not in ("5432", "6379")


def test_each_secret_is_required_and_has_no_default() -> None:
    for missing in REQUIRED:
        env = {**_secrets(), missing: ""}
        result = run([tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], env=env)
        assert result.returncode != 0, f"compose accepted an empty {missing}"
        assert missing in result.stderr and ".env" in result.stderr, result.stderr
    text = COMPOSE.read_text()
    for name in REQUIRED:
        assert f"${{{name}:-" not in text, f"{name} has a default"
    env_example = (DEPLOY / "compose" / ".env.example").read_text()
    for name in REQUIRED:
        assert f"\n{name}=\n" in env_example, f"{name} is not in .env.example, empty"


def test_redis_reads_its_password_from_a_secret_file_not_the_command_line() -> None:
    """docker inspect and ps show the command and the environment: the password is in neither, only in the secret
    file, from which the server's config is written at start and the healthcheck authenticates."""
    env = _secrets()
    redis = _config(env)["services"]["redis"]
    shown = json.dumps({k: redis.get(k) for k in ("command", "entrypoint", "environment", "healthcheck", "labels")})
    assert env["REDIS_PASSWORD"] not in shown
    assert "REDISCLI_AUTH" not in (redis.get("environment") or {})
    assert {s["source"] for s in redis["secrets"]} == {"redis_password"}
    script = " ".join(redis["command"])
    assert "/run/secrets/redis_password" in script and "requirepass" in script and "appendonly yes" in script
    assert script.rstrip().endswith("exec redis-server /tmp/redis.conf")
    check = " ".join(redis["healthcheck"]["test"])
    # compose config writes $ as $$ (its own escape); the container's shell sees $(cat ...)
    assert 'REDISCLI_AUTH="$$(cat /run/secrets/redis_password)"' in check and "grep -q PONG" in check
    assert redis["user"] == "999:999" and redis["cap_drop"] == ["ALL"]
    assert _config(env)["secrets"]["redis_password"]["environment"] == "REDIS_PASSWORD"


def test_alertmanager_gets_every_receiver_secret_its_config_reads() -> None:
    config = _config(_secrets())
    mounted = {f"/run/secrets/{s['source']}" for s in config["services"]["alertmanager"]["secrets"]}
    read = set(re.findall(r"/run/secrets/[\w]+", (MONITORING / "alertmanager" / "alertmanager.yml").read_text()))
    assert read and read == mounted
    for name in mounted:
        source = config["secrets"][name.rsplit("/", 1)[1]]["environment"]
        assert source.startswith("ALERTMANAGER_") and source in SECRETS


def test_app_containers_are_read_only_without_capabilities() -> None:
    services = _config(_secrets())["services"]
    for name in ("api", "feed", "worker"):
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://"), name
    assert "/run/secrets/" not in services["api"]["environment"]["METRICS_TOKEN"]
    assert {s["source"] for s in services["prometheus"]["secrets"]} == {"metrics_token"}


def test_the_proxy_forwards_websocket_upgrades_and_sets_the_client_address() -> None:
    conf = (DEPLOY / "compose" / "proxy" / "default.conf").read_text()
    ws = conf.split("location /ws", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade" in ws and "Connection $connection_upgrade" in ws
    assert "X-Forwarded-For $remote_addr" in ws and "X-Forwarded-For $remote_addr" in conf.split("location", 1)[0]
    # api is re-resolved through Docker's DNS (a recreated replica's new address is picked up): the variable in
    # proxy_pass, which nginx 1.22 (the local stand-in) and 1.27 both re-resolve
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in conf and "set $api http://api:8000;" in conf
    directives = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert not re.search(r"^\s*upstream\s", directives, re.M) and "server api:8000" not in directives
    locations = conf.split("location ")[1:]
    assert sum("proxy_pass $api;" in loc for loc in locations) == 2 == len(locations) - 1  # all but /metrics


# --- real: the whole stack ---


def _throwaway_monitoring(folder: Path) -> Path:
    """A minimal monitoring configuration on the contract of deploy/monitoring (used only while that is missing)."""
    (folder / "prometheus" / "rules").mkdir(parents=True)
    (folder / "alertmanager").mkdir()
    for sub in ("provisioning/datasources", "provisioning/dashboards", "dashboards"):
        (folder / "grafana" / sub).mkdir(parents=True)
    prometheus = {
        "global": {"scrape_interval": "5s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [
            {
                "job_name": "smart-trader",
                "authorization": {"credentials_file": "/run/secrets/metrics_token"},
                "dns_sd_configs": [{"names": ["api", "feed", "worker"], "type": "A", "port": 8000}],
            }
        ],
    }
    (folder / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
    (folder / "alertmanager" / "alertmanager.yml").write_text(
        yaml.safe_dump({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]})
    )
    ds = {"name": "Prometheus", "type": "prometheus", "uid": "prometheus", "url": "http://prometheus:9090"}
    (folder / "grafana/provisioning/datasources/prometheus.yaml").write_text(
        yaml.safe_dump({"apiVersion": 1, "datasources": [ds]})
    )
    provider = {"name": "smart-trader", "type": "file", "options": {"path": "/var/lib/grafana/dashboards"}}
    (folder / "grafana/provisioning/dashboards/smart-trader.yaml").write_text(
        yaml.safe_dump({"apiVersion": 1, "providers": [provider]})
    )
    dashboard = {
        "uid": "up",
        "title": "Up",
        "panels": [{"datasource": {"uid": "prometheus"}, "targets": [{"expr": "up"}]}],
    }
    (folder / "grafana/dashboards/up.json").write_text(json.dumps(dashboard))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the containers' users (nobody, 472) read them
    return folder


class _StackLogs:
    """What ``_run_walkthrough`` prints when the walkthrough fails: the stack's last log lines."""

    def __init__(self, compose: list[str], env: dict[str, str]) -> None:
        self.compose, self.env = compose, env

    def log_tail(self, lines: int = 40) -> str:
        return run([*self.compose, "logs", "--no-color", "--tail", str(lines)], env=self.env).stdout[-8000:]


@pytest.fixture
def stack(
    image: str,
    stand_ins: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The compose project up and healthy (``up -d --wait``) on free loopback ports; ``down -v`` afterwards."""
    tmp = tmp_path_factory.mktemp("compose")
    monitoring = MONITORING if (MONITORING / "prometheus" / "prometheus.yml").is_file() else None
    monitoring = monitoring or _throwaway_monitoring(tmp / "monitoring")
    env_file = tmp / ".env"
    settings = {
        **_secrets(),
        "SMART_TRADER_IMAGE": image,
        "MONITORING_DIR": str(monitoring),
        "PROXY_PORT": str(servers.free_port()),
        "PROMETHEUS_PORT": str(servers.free_port()),
        "ALERTMANAGER_PORT": str(servers.free_port()),
        "GRAFANA_PORT": str(servers.free_port()),
        "EDGE_SUBNET": "172.30.82.0/24",  # not the default: a developer's own stack may be up
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    project = f"st-test-{os.getpid()}"
    compose = [tool("docker-compose"), "-p", project, "-f", str(COMPOSE), "--env-file", str(env_file)]
    env = {**stand_ins, **settings}
    started = time.monotonic()
    try:
        up = run([*compose, "up", "-d", "--wait", "--wait-timeout", "300"], env=env, timeout=420)
        assert up.returncode == 0, up.stderr[-3000:] + "\n" + _StackLogs(compose, env).log_tail(30)
        print(f"\n[timing] compose up --wait (all healthy): {time.monotonic() - started:.1f} s")
        yield compose, env
    finally:
        started = time.monotonic()
        down = run([*compose, "down", "-v", "--remove-orphans", "--timeout", "20"], env=env, timeout=300)
        print(f"\n[timing] compose down -v: {time.monotonic() - started:.1f} s")
        assert down.returncode == 0, down.stderr[-3000:]


def _ws_bars(base: str, token: str) -> list[dict[str, Any]]:
    """Three messages of the 1-minute bar channel, read through the proxy's WebSocket upgrade."""
    import websockets

    async def read() -> list[dict[str, Any]]:
        async with websockets.connect(f"{base.replace('http', 'ws', 1)}/ws?token={token}") as ws:
            await ws.send(
                json.dumps(
                    {
                        "op": "subscribe",
                        "channel": "bars",
                        "symbol": "BTC/USDT:USDT",
                        "venue": "BINANCE",
                        "timeframe": "1m",
                    }
                )
            )
            return [json.loads(await asyncio.wait_for(ws.recv(), 15)) for _ in range(3)]

    return asyncio.run(read())


@pytest.mark.deploy
def test_compose_up_is_healthy_and_the_walkthrough_passes_through_the_proxy(
    stack: tuple[list[str], dict[str, str]],
) -> None:
    _needs_tools()
    compose, env = stack
    ps = run([*compose, "ps", "--format", "json"], env=env)
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    rows = rows[0] if len(rows) == 1 and isinstance(rows[0], list) else rows
    assert sorted(r["Service"] for r in rows) == sorted([*SERVICES, "api"])  # two api replicas
    assert all(r["Health"] == "healthy" for r in rows), [(r["Service"], r["Health"]) for r in rows]

    proxy = f"http://127.0.0.1:{env['PROXY_PORT']}"
    api = proxy + "/api/v1"
    started = time.monotonic()
    walk = _run_walkthrough(api, _StackLogs(compose, env))  # type: ignore[arg-type]
    account, fills, positions = _account_after_walkthrough(api)
    print(f"\n[timing] walkthrough through the proxy: {time.monotonic() - started:.1f} s")
    _assert_filled_as_the_walkthrough_says(account, fills, positions, _sample_opens())
    assert '"equity"' in walk.stdout

    token = httpx.post(api + "/auth/token", data={"username": "me@example.com", "password": "a-long-password"})
    messages = _ws_bars(proxy, token.json()["access_token"])
    assert messages[0]["type"] == "subscribed" and {m["type"] for m in messages[1:]} == {"bar"}
    assert httpx.get(proxy + "/metrics").status_code == 404  # not through the proxy: Prometheus scrapes each replica

    prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
    deadline, targets = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        targets = httpx.get(prometheus + "/api/v1/targets").json()["data"]["activeTargets"]
        app = [t for t in targets if t["labels"]["instance"].endswith(":8000")]
        if len(app) == 4 and all(t["health"] == "up" for t in app):
            break
        time.sleep(2)
    app = [t for t in targets if t["labels"]["instance"].endswith(":8000")]
    assert len(app) == 4 and all(t["health"] == "up" for t in app), [(t["scrapeUrl"], t["lastError"]) for t in app]

    grafana = f"http://127.0.0.1:{env['GRAFANA_PORT']}"
    assert httpx.get(grafana + "/api/health").json()["database"] == "ok"
    assert httpx.get(grafana + "/api/search").status_code == 401
    found = httpx.get(grafana + "/api/search", auth=("admin", env["GRAFANA_ADMIN_PASSWORD"])).json()
    assert found, "no dashboard provisioned"
    alertmanager = f"http://127.0.0.1:{env['ALERTMANAGER_PORT']}"
    assert httpx.get(alertmanager + "/-/ready").status_code == 200
    for name in ("pagerduty_routing_key", "slack_webhook_url", "security_slack_webhook_url"):  # readable as its user
        read = run([*compose, "exec", "-T", "alertmanager", "cat", f"/run/secrets/alertmanager_{name}"], env=env)
        assert read.returncode == 0 and read.stdout.strip() == env[f"ALERTMANAGER_{name.upper()}"], read.stderr
    config = httpx.get(prometheus + "/api/v1/status/config").json()["data"]["yaml"]
    assert f"runbook_base: {env['RUNBOOK_BASE']}" in config  # the alerts' runbook links are absolute

    # Redis: authenticated with the secret file's password, which docker inspect does not show
    redis_id = run([*compose, "ps", "-q", "redis"], env=env).stdout.strip()
    inspect = run(["docker", "inspect", redis_id], env=env)
    assert inspect.returncode == 0 and redis_id[:12] in inspect.stdout, inspect.stderr
    assert env["REDIS_PASSWORD"] not in inspect.stdout
    noauth = run([*compose, "exec", "-T", "redis", "redis-cli", "ping"], env=env)
    assert "PONG" not in noauth.stdout, noauth.stdout  # NOAUTH: a password is required
