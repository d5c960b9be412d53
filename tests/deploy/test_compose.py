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
from .test_image import docker, docker_engine, image, stand_ins  # noqa: F401 (session fixtures)

COMPOSE = DEPLOY / "compose" / "compose.yaml"
MONITORING = DEPLOY / "monitoring"
SERVICES = {"postgres", "redis", "api", "feed", "worker", "prometheus", "alertmanager", "grafana", "proxy"}
SECRETS = ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY", "METRICS_TOKEN", "GRAFANA_ADMIN_PASSWORD"]


def _secrets() -> dict[str, str]:
    return {name: os.urandom(32).hex() for name in SECRETS}


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
    assert "--appendonly" in services["redis"]["command"]
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
    for missing in SECRETS:
        env = {**_secrets(), missing: ""}
        result = run([tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], env=env)
        assert result.returncode != 0, f"compose accepted an empty {missing}"
        assert missing in result.stderr and ".env" in result.stderr, result.stderr
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert f"${{{name}:-" not in text, f"{name} has a default"


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
    assert "server api:8000" in conf


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
    image: str,  # noqa: F811 (the session fixture imported above)
    stand_ins: dict[str, str],  # noqa: F811
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
