"""The monitoring kit (deploy/monitoring): Prometheus config, recording and alert rules, Alertmanager routing, Grafana
provisioning and dashboards.

Fast checks (CI): promtool check config / check rules / test rules, amtool check-config and its routing, yamllint,
the dashboards are what ``build_dashboards.py`` generates and are well formed, and every metric a rule or a dashboard
names exists in the application's registry. Slow check (``-m deploy``): the real platform (api, feed and worker on
PostgreSQL and Redis) driven with real traffic and scraped by a real Prometheus running the shipped rules; every rule
evaluates without error and every dashboard query returns data.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT, run, tool

MON = DEPLOY / "monitoring"
PROM = MON / "prometheus"
RULES = sorted((PROM / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
ALERTMANAGER = MON / "alertmanager" / "alertmanager.yml"
GRAFANA = MON / "grafana"
DASHBOARDS = {p.stem: p for p in sorted((GRAFANA / "dashboards").glob("*.json"))}
DOCUMENT_ALERTS = {  # the alerts the issue and the design documents (001, 003) ask for
    "ApiLatencyHigh", "ApiLatencyCritical", "ApiErrorRateHigh", "PaymentFailureRateHigh", "DatabasePoolExhausted",
    "AuditLogIntegrityCompromised", "QueueDepthHigh", "FailedLoginsHigh", "WorkerLagHigh", "MonitoringCycleStale",
    "MemoryHigh", "WebSocketConnectionsHigh",
}  # fmt: skip
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}  # fmt: skip
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}  # made by Prometheus for every target


def _rules() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def _dashboard_exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every query of every dashboard."""
    out = []
    for name, path in DASHBOARDS.items():
        for panel in json.loads(path.read_text())["panels"]:
            out += [(name, panel["title"], t["expr"]) for t in panel.get("targets", [])]
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names or
    values, durations or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations, subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def app_metric_names() -> set[str]:
    """Every series name the application's registry can expose (counters with ``_total``, histograms with
    ``_bucket``/``_count``/``_sum``), once the application of every role is built (``create_app`` imports every
    router, and so every metric's module; nothing connects before the app starts)."""
    from prometheus_client import REGISTRY

    from smart_trader.app.factory import create_app
    from smart_trader.settings import Settings

    create_app(Settings(secret_key=secrets.token_hex(32)), role="all")
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


# -- fast: Prometheus -----------------------------------------------------------------------------------------------


def _local_prometheus_config(tmp_path: Path) -> Path:
    """prometheus.yml with its container paths pointed at this checkout (the rules) and a token file in tmp."""
    token = tmp_path / "metrics_token"
    token.write_text(secrets.token_hex(16))
    text = (PROM / "prometheus.yml").read_text()
    text = text.replace("/run/secrets/metrics_token", str(token)).replace("/etc/prometheus/rules", str(PROM / "rules"))
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    return path


def test_prometheus_config_is_valid_and_loads_the_rules(tmp_path: Path) -> None:
    r = run([tool("promtool"), "check", "config", str(_local_prometheus_config(tmp_path))])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in r.stdout + r.stderr


def test_prometheus_config_keeps_the_compose_contract() -> None:
    """Jobs api, feed and worker find every replica by its Compose service name (A records, port 8000) and send the
    metrics token from the Compose secret; rules from /etc/prometheus/rules; alerts to alertmanager:9093."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for role in ("api", "feed", "worker"):
        job = jobs[role]
        assert job["dns_sd_configs"] == [{"names": [role], "type": "A", "port": 8000, "refresh_interval": "15s"}]
        assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_rules_are_valid() -> None:
    r = run([tool("promtool"), "check", "rules", *map(str, RULES)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_unit_tests_pass() -> None:
    r = run([tool("promtool"), "test", "rules", *map(str, RULE_TESTS)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_alerts_of_the_documents_exist_with_severity_summary_and_runbook() -> None:
    alerts = _alerts()
    assert {a["alert"] for a in alerts} >= DOCUMENT_ALERTS
    for a in alerts:
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        assert a["labels"]["team"] in ("platform", "security", "trading"), a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]
        expected = "{{ $externalLabels.runbook_base }}/docs/deployment.md#" + a["alert"].lower()
        assert a["annotations"]["runbook_url"] == expected, a["alert"]


def test_runbook_links_are_absolute_through_the_runbook_base_external_label() -> None:
    """The Compose Prometheus sets runbook_base from RUNBOOK_BASE (expand-external-labels, enabled by compose.yaml);
    the unit tests render every link with an absolute base."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["runbook_base"] == "${RUNBOOK_BASE}"
    prometheus = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]["prometheus"]
    assert "--enable-feature=expand-external-labels" in prometheus["command"]
    assert "RUNBOOK_BASE" in prometheus["environment"]
    checked = 0
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                for alert in check["exp_alerts"]:
                    url = alert.get("exp_annotations", {}).get("runbook_url")
                    if url is not None:
                        base = case["external_labels"]["runbook_base"]
                        assert url == f"{base}/docs/deployment.md#{check['alertname'].lower()}", url
                        assert url.startswith("https://"), url
                        checked += 1
    assert checked >= len(_alerts())


def test_every_runbook_link_has_its_section_in_the_operators_guide() -> None:
    guide = ROOT / "docs" / "deployment.md"
    if not guide.is_file():
        if os.environ.get("CI"):
            pytest.fail("docs/deployment.md is missing")
        pytest.skip("docs/deployment.md not assembled yet")
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in guide.read_text().splitlines()
        if line.startswith("#")
    }
    missing = {a["alert"] for a in _alerts() if a["alert"].lower() not in anchors}
    assert missing == set(), "alerts whose runbook section is missing from docs/deployment.md"


def test_every_metric_of_the_rules_and_dashboards_exists_in_the_application() -> None:
    recorded = {r["record"] for r in _rules() if "record" in r}
    known = app_metric_names() | recorded | PROMETHEUS_OWN
    used: dict[str, set[str]] = {}
    for rule in _rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(rule.get("alert") or rule["record"])
    for dash, title, expr in _dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{dash}: {title}")
    for path in DASHBOARDS.values():
        for var in json.loads(path.read_text())["templating"]["list"]:
            for name in metric_names(var["definition"].removeprefix("label_values(").split(",")[0]):
                used.setdefault(name, set()).add(f"variable {var['name']}")
    assert len(used) > 40  # the parser found the metrics
    assert {n: sorted(w) for n, w in used.items() if n not in known} == {}


def test_metric_name_parser_skips_functions_labels_and_variables() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(api_response_duration_seconds_bucket{instance=~"$i", '
        'le="5.0"}[$__rate_interval]))) / on (job) group_left foo:bar:ratio > bool 1 or time() - max(up offset 5m)'
    )
    assert metric_names(expr) == {"api_response_duration_seconds_bucket", "foo:bar:ratio", "up"}


# -- fast: Alertmanager, YAML, Grafana ------------------------------------------------------------------------------


def test_alertmanager_config_is_valid() -> None:
    r = run([tool("amtool"), "check-config", str(ALERTMANAGER)])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ("severity=critical team=platform alertname=ApiErrorRateHigh", "pager"),
        ("severity=warning team=platform alertname=QueueDepthHigh", "chat"),
        ("severity=critical team=security alertname=AuditLogIntegrityCompromised", "security,pager"),
        ("severity=warning team=security alertname=FailedLoginsHigh", "security"),
        ("severity=critical team=trading alertname=AccountsUnreconciled", "pager"),
        ("alertname=Unlabelled", "chat"),
    ],
)
def test_alertmanager_routes_by_severity_and_team(labels: str, receivers: str) -> None:
    r = run([tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels.split()])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == receivers


def test_alertmanager_commits_no_secret() -> None:
    """Every receiver reads its key or URL from a file; no URL or key is written in the config."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for receiver in config["receivers"]:
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            for c in configs:
                assert any(k.endswith("_file") for k in c), (receiver["name"], kind)
                assert not {"url", "api_url", "routing_key", "service_key"} & set(c), (receiver["name"], kind)


def test_monitoring_yaml_is_lint_clean() -> None:
    r = run([tool("yamllint"), "--strict", "-c", str(ROOT / ".yamllint.yaml"), str(MON)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboards_are_what_the_generator_writes() -> None:
    r = run([sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboards_are_well_formed() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert set(DASHBOARDS) == {"executive", "operations", "security", "trading-risk"}
    uids = set()
    for name, path in DASHBOARDS.items():
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and ids, name
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), (name, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (name, panel["title"])
    assert len(uids) == len(DASHBOARDS)
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


# -- slow: a real Prometheus scraping the running platform ----------------------------------------------------------

PASSWORD = "monitoring-check-pw-1"
ORCL = "bars/ORCL_1995-2014_1d.yahoo.csv"  # real daily bars: 86,400x replays a trading day a second, so the
# one-day VaR (20 daily returns) of an account holding ORCL exists after ~2 minutes


def _query_of_panel(expr: str) -> str:
    """A dashboard query as Grafana would send it: its interval variables at 1m, template variables matching all."""
    return re.sub(r"\$\w+", ".*", expr.replace("$__rate_interval", "1m").replace("$__interval", "1m"))


def _prometheus_config(tmp_path: Path, targets: dict[str, int], token: Path) -> Path:
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(p) for p in RULES],
        "scrape_configs": [
            {
                "job_name": job,
                "authorization": {"type": "Bearer", "credentials_file": str(token)},
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
            for job, port in targets.items()
        ],
    }
    path = tmp_path / "prometheus-test.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class _Traffic:
    """Real requests against the API process, as a user, an attacker and a payment provider would send them."""

    def __init__(self, base: str) -> None:
        self.base = base + "/api/v1"
        self.client = httpx.Client(timeout=10)
        self.headers: dict[str, str] = {}

    def sign_up(self, email: str) -> None:
        r = self.client.post(f"{self.base}/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = self.client.post(f"{self.base}/auth/token", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def order_that_fills(self) -> str:
        r = self.client.post(
            f"{self.base}/accounts",
            headers=self.headers,
            json={"name": "monitoring", "starting_balance": "100000", "currency": "USD"},
        )
        assert r.status_code == 201, r.text
        account = str(r.json()["id"])
        order = {"symbol": "ORCL", "venue": "NASDAQ", "side": "buy", "type": "market", "qty": "100"}
        r = self.client.post(f"{self.base}/accounts/{account}/orders", headers=self.headers, json=order)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30
        while not self.client.get(f"{self.base}/accounts/{account}/fills", headers=self.headers).json():
            assert time.monotonic() < deadline, "the order did not fill"
            time.sleep(0.2)
        return account

    def failed_logins(self, email: str, n: int) -> list[int]:
        return [
            self.client.post(
                f"{self.base}/auth/token", data={"username": email, "password": "wrong-password"}
            ).status_code
            for _ in range(n)
        ]

    def leaderboard_twice(self) -> None:
        program = self.client.get(f"{self.base}/challenges/programs", headers=self.headers).json()[0]["id"]
        for _ in range(2):  # a miss, then a hit of the Redis cache
            r = self.client.get(f"{self.base}/leaderboards", params={"program": program}, headers=self.headers)
            assert r.status_code == 200, r.text

    def forged_payment(self) -> int:
        body = b'{"id": "evt_forged", "type": "checkout.session.completed"}'
        headers = {"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}", "Content-Type": "application/json"}
        return self.client.post(f"{self.base}/webhooks/stripe", content=body, headers=headers).status_code

    def probes(self) -> tuple[int, int]:
        """A scanner's unknown path and a request without credentials."""
        return (self.client.get(self.base.removesuffix("/api/v1") + "/wp-login.php").status_code,
                self.client.get(f"{self.base}/auth/me").status_code)  # fmt: skip


def _hold_websocket(url: str, token: str, stop: threading.Event) -> None:
    from websockets.sync.client import connect

    with connect(f"{url}/ws?token={token}"):
        stop.wait(600)


@pytest.fixture
def platform_database() -> Iterator[tuple[str, str]]:
    """A database of its own (monitoring_check) on the real PostgreSQL and Redis database 13, emptied after."""
    import psycopg
    import redis

    admin = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("TEST_REDIS_MONITORING_URL", "redis://127.0.0.1:6379/13")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS monitoring_check WITH (FORCE)")
            conn.execute("CREATE DATABASE monitoring_check")
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).flushdb()
    except (psycopg.OperationalError, redis.exceptions.ConnectionError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL or Redis not reachable: {exc}")
        pytest.skip(f"PostgreSQL or Redis not reachable: {exc}")
    url = admin.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/monitoring_check"
    yield url, redis_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS monitoring_check WITH (FORCE)")
    redis.Redis.from_url(redis_url).flushdb()


@pytest.mark.deploy
def test_real_prometheus_scrapes_the_platform_evaluates_every_rule_and_every_panel_has_data(
    tmp_path: Path, shared_data: Path, platform_database: tuple[str, str]
) -> None:
    from tests.app import servers

    prometheus = tool("prometheus")
    database_url, redis_url = platform_database
    token = secrets.token_hex(24)
    token_file = tmp_path / "metrics_token"
    token_file.write_text(token)
    env = {
        "SMART_TRADER_HOME": str(tmp_path / "home"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "METRICS_TOKEN": token,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        "MONITORING_INTERVAL_SECONDS": "5",
    }
    started = time.monotonic()
    timings: dict[str, float] = {}
    feed_args = ["serve", "--role", "feed", "--host", "127.0.0.1", "--replay", str(shared_data / ORCL),
                 "--symbol", "ORCL", "--venue", "NASDAQ", "--speed", "86400"]  # fmt: skip
    feed = servers.start(feed_args, env, tmp_path / "feed.log")
    feed.wait_ready(120)  # it migrates the database
    procs = {"feed": feed}
    for role in ("api", "worker"):
        procs[role] = servers.start(["serve", "--role", role, "--host", "127.0.0.1"], env, tmp_path / f"{role}.log")
    prom_port = servers.free_port()
    prom_log = (tmp_path / "prometheus.log").open("wb")
    config = _prometheus_config(tmp_path, {job: s.port for job, s in procs.items()}, token_file)
    prom = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log, stderr=prom_log,
    )  # fmt: skip
    stop_ws = threading.Event()
    try:
        for s in procs.values():
            s.wait_ready(60)
        timings["platform ready"] = time.monotonic() - started
        traffic = _Traffic(procs["api"].url)
        traffic.sign_up("monitoring@example.com")
        traffic.order_that_fills()
        statuses = traffic.failed_logins("monitoring@example.com", 6)
        assert statuses[0] == 401 and 429 in statuses, statuses  # wrong password, then the login guard's backoff
        traffic.leaderboard_twice()
        assert traffic.forged_payment() == 400
        assert traffic.probes() == (404, 401)
        ws = threading.Thread(
            target=_hold_websocket,
            args=(procs["api"].url.replace("http", "ws"), traffic.headers["Authorization"].split()[1], stop_ws),
            daemon=True,
        )
        ws.start()
        timings["traffic driven"] = time.monotonic() - started

        api = httpx.Client(base_url=f"http://127.0.0.1:{prom_port}/api/v1", timeout=10)

        def poll(what: str, seconds: float, check: Any) -> Any:
            deadline = time.monotonic() + seconds
            while True:
                assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
                try:
                    result = check()
                except httpx.HTTPError:
                    result = None
                if result:
                    timings[what] = time.monotonic() - started
                    return result
                assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
                time.sleep(1)

        def targets_up() -> bool:
            active = api.get("/targets").json()["data"]["activeTargets"]
            return len(active) == 3 and all(t["health"] == "up" for t in active)

        poll("every target up (metrics token accepted)", 60, targets_up)

        def rules_evaluated() -> list[dict[str, Any]] | None:
            groups = api.get("/rules").json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r["lastEvaluation"] > "2000" for r in rules) else None

        rules = poll("every rule evaluated", 60, rules_evaluated)
        assert len(rules) == len(_rules())
        unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert unhealthy == {}

        def has_data(expr: str) -> bool:
            r = api.get("/query", params={"query": _query_of_panel(expr)}).json()
            assert r["status"] == "success", (expr, r)
            return bool(r["data"]["result"])

        queries = _dashboard_exprs()
        deadline = time.monotonic() + 300  # the VaR needs 20 market days of closes, one every 5 s round
        empty = queries
        while empty and time.monotonic() < deadline:
            time.sleep(2)
            traffic.client.get(f"{traffic.base}/auth/me", headers=traffic.headers)  # keep the request rates up
            empty = [(d, t, e) for d, t, e in empty if not has_data(e)]
        timings["every dashboard query has data"] = time.monotonic() - started
        assert empty == [], "dashboard queries without data"
        # the recording rules the autoscalers read have a series per process
        for name in ("http_requests_per_second", "trading_volume_per_second"):
            assert has_data(name), name
        # the rules still evaluate cleanly with every series present
        assert all(r["health"] == "ok" for r in rules_evaluated() or [])
    finally:
        stop_ws.set()
        prom.terminate()
        prom.wait(30)
        for s in procs.values():
            s.stop()
        print("durations (s from start):", {k: round(v, 1) for k, v in timings.items()})
    shutil.rmtree(tmp_path / "tsdb", ignore_errors=True)
