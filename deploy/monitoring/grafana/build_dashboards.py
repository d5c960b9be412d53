"""Generate Smart Trader's Grafana dashboards (``dashboards/*.json``) from the panel lists below.

Usage: python deploy/monitoring/grafana/build_dashboards.py [--check]
  (no option: write the JSON files; --check: exit 1 when a committed file differs from what this script generates)

Four dashboards, each panel one or more PromQL queries over the application's own metrics
(``src/smart_trader/ops/metrics.py`` and the modules it names) and the recording rules of
``deploy/monitoring/prometheus/rules/recording.yml``: executive (P&L, equity, volume, payments), operations (latency,
errors, saturation, database, cache, workers, autoscaling), security (authentication failures, API access patterns,
audit integrity), trading and risk (VaR, drawdown, challenges, orders). No kube-state-metrics series: replica counts
come from ``up``, so the panels work the same on Compose and Kubernetes. Plain typed dicts: no dependency.
``tests/deploy/test_monitoring.py`` checks the files are what this script writes, that every metric exists in the
application, and (``-m deploy``) that every query returns data from a real Prometheus scraping the platform.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/prometheus.yml
WIDTH = 24
PanelType = Literal["timeseries", "stat", "gauge"]


class Query(NamedTuple):
    """One PromQL query of a panel and the legend of its series."""

    expr: str
    legend: str = ""


class Panel(NamedTuple):
    """A panel: its type, title, description, unit (Grafana unit id) and queries; ``width`` in grid columns (of 24)."""

    kind: PanelType
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 8


class Dashboard(TypedDict):
    """The fields of a Grafana dashboard JSON model this script writes."""

    uid: str
    title: str
    description: str
    tags: list[str]
    timezone: str
    editable: bool
    graphTooltip: int
    refresh: str
    schemaVersion: int
    version: int
    time: dict[str, str]
    templating: dict[str, list[dict[str, Any]]]
    annotations: dict[str, list[Any]]
    panels: list[dict[str, Any]]


RATE = "$__rate_interval"
INSTANCE_VAR: dict[str, Any] = {
    "name": "instance",
    "label": "Instance",
    "type": "query",
    "datasource": DATASOURCE,
    "query": {"query": "label_values(process_resident_memory_bytes, instance)", "refId": "instance"},
    "definition": "label_values(process_resident_memory_bytes, instance)",
    "includeAll": True,
    "allValue": ".*",
    "multi": True,
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    "refresh": 2,
    "sort": 1,
}


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


EXECUTIVE = (
    Panel(
        "stat",
        "P&L",
        "Realized + unrealized P&L of all accounts, per account currency.",
        "none",
        (q("sum by (currency) (trading_pnl_total)", "{{currency}}"),),
    ),
    Panel(
        "stat",
        "Portfolio value",
        "Equity (cash + marked positions) of all accounts, per account currency.",
        "none",
        (q("sum by (currency) (portfolio_equity)", "{{currency}}"),),
    ),
    Panel(
        "stat",
        "Traded notional, 24 h",
        "Notional of the fills of the last 24 hours, per quote currency.",
        "none",
        (q("sum by (currency) (increase(trading_volume_total[24h]))", "{{currency}}"),),
    ),
    Panel(
        "timeseries",
        "P&L",
        "P&L of all accounts over time.",
        "none",
        (q("sum by (currency) (trading_pnl_total)", "{{currency}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Portfolio value",
        "Equity of all accounts over time.",
        "none",
        (q("sum by (currency) (portfolio_equity)", "{{currency}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Trading volume per second",
        "Notional traded per second (the autoscaling metric).",
        "none",
        (q("sum(trading_volume_per_second)", "notional / s"),),
        12,
    ),
    Panel(
        "timeseries",
        "Fills and orders per minute",
        "Fills executed and orders accepted by the API.",
        "none",
        (
            q(f"sum(rate(fills_total[{RATE}])) * 60", "fills"),
            q(f"sum(rate(orders_submitted_total[{RATE}])) * 60", "orders submitted"),
        ),
        12,
    ),
    Panel(
        "stat",
        "Payments, 24 h",
        "Payments that granted a challenge in the last 24 hours, by provider.",
        "none",
        (q("sum by (provider) (increase(payments_total[24h]))", "{{provider}}"),),
    ),
    Panel(
        "stat",
        "Payment failure ratio, 15 min",
        "Share of payment webhook events that failed (alert above 5 %).",
        "percentunit",
        (q("payments:failure_ratio_rate15m", "failed"),),
    ),
    Panel(
        "stat",
        "Users connected",
        "Open WebSocket connections across the API processes.",
        "none",
        (q("sum(websocket_connections_active)", "connections"),),
    ),
    Panel(
        "stat",
        "Services up",
        "Processes answering Prometheus, per job.",
        "none",
        (q("sum by (job) (up)", "{{job}}"),),
        24,
    ),
)

SEL = 'instance=~"$instance"'
OPERATIONS = (
    Panel(
        "timeseries",
        "Requests per second",
        "HTTP responses per second, per job.",
        "reqps",
        (q(f"sum by (job) (rate(api_response_duration_seconds_count{{{SEL}}}[{RATE}]))", "{{job}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Latency p50 / p95 / p99",
        "HTTP response time percentiles over 5 minutes (alert: p95 > 0.5 s).",
        "s",
        (
            q("job:api_response_duration_seconds:p50_5m", "p50 {{job}}"),
            q("job:api_response_duration_seconds:p95_5m", "p95 {{job}}"),
            q("job:api_response_duration_seconds:p99_5m", "p99 {{job}}"),
        ),
        12,
    ),
    Panel(
        "timeseries",
        "Latency p95 by route",
        "95th percentile of the response time of each route.",
        "s",
        (
            q(
                f"histogram_quantile(0.95, sum by (route, le) "
                f"(rate(api_response_duration_seconds_bucket{{{SEL}}}[{RATE}])))",
                "{{route}}",
            ),
        ),
        12,
    ),
    Panel(
        "timeseries",
        "Error ratio (5xx)",
        "Share of responses that were server errors (alert above 5 %).",
        "percentunit",
        (q("job:http_errors:ratio_rate5m", "{{job}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Responses by status",
        "HTTP responses per second by status code.",
        "reqps",
        (q(f"sum by (status) (rate(api_response_duration_seconds_count{{{SEL}}}[{RATE}]))", "{{status}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "CPU",
        "CPU seconds used per second, per process.",
        "percentunit",
        (q(f"rate(process_cpu_seconds_total{{{SEL}}}[{RATE}])", "{{instance}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Memory used of the limit",
        "Resident memory over the container's limit (alert above 85 %).",
        "percentunit",
        (q(f"instance:process_memory_usage:ratio{{{SEL}}}", "{{instance}}"),),
    ),
    Panel(
        "timeseries",
        "Resident memory",
        "Resident memory per process.",
        "bytes",
        (q(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}"),),
    ),
    Panel(
        "timeseries",
        "File descriptors used",
        "Open file descriptors over the process limit.",
        "percentunit",
        (q(f"process_open_fds{{{SEL}}} / process_max_fds{{{SEL}}}", "{{instance}}"),),
    ),
    Panel(
        "timeseries",
        "Database pool usage",
        "Connections checked out over the pool's maximum (alert at 100 %).",
        "percentunit",
        (q(f"instance:db_pool_usage:ratio{{{SEL}}}", "{{instance}} {{pool}}"),),
    ),
    Panel(
        "timeseries",
        "Database connections",
        "Connections in use and idle, per pool.",
        "none",
        (
            q(f"sum by (pool) (db_pool_checked_out_connections{{{SEL}}})", "in use {{pool}}"),
            q(f"sum by (pool) (db_pool_idle_connections{{{SEL}}})", "idle {{pool}}"),
        ),
    ),
    Panel(
        "timeseries",
        "Write batches p95",
        "Group-commit writer: time per batch and jobs per batch (95th percentile).",
        "s",
        (
            q(
                f"histogram_quantile(0.95, sum by (le) (rate(db_write_batch_seconds_bucket{{{SEL}}}[{RATE}])))",
                "seconds per batch",
            ),
        ),
    ),
    Panel(
        "timeseries",
        "Cache hit ratio",
        "Leaderboard cache (Redis): hits over lookups.",
        "percentunit",
        (
            q(
                f'sum by (cache) (rate(cache_requests_total{{result="hit",{SEL}}}[{RATE}])) '
                f"/ sum by (cache) (rate(cache_requests_total{{{SEL}}}[{RATE}]))",
                "{{cache}}",
            ),
        ),
    ),
    Panel(
        "timeseries",
        "Cache lookups",
        "Cache lookups per second by result (error: Redis failed, served uncached).",
        "ops",
        (q(f"sum by (cache, result) (rate(cache_requests_total{{{SEL}}}[{RATE}]))", "{{cache}} {{result}}"),),
    ),
    Panel(
        "timeseries",
        "Worker queue length",
        "Events waiting per consumer group (alert above 1,000).",
        "none",
        (q("max by (group) (worker_queue_length)", "{{group}}"),),
    ),
    Panel(
        "timeseries",
        "Worker lag p95",
        "From an event's creation to its consumer's commit (alert above 30 s).",
        "s",
        (q("group:event_processing_seconds:p95_5m", "{{group}}"),),
    ),
    Panel(
        "timeseries",
        "Events processed",
        "Events applied per second by consumer group.",
        "ops",
        (q(f"sum by (group) (rate(events_processed_total[{RATE}]))", "{{group}}"),),
    ),
    Panel(
        "timeseries",
        "Monitoring cycle age",
        "Seconds since a worker last completed its monitoring cycle.",
        "s",
        (q("monitoring_cycle:age_seconds", "age"),),
    ),
    Panel(
        "timeseries",
        "WebSocket connections",
        "Open WebSocket connections per API process (alert above 5,000).",
        "none",
        (q(f"websocket_connections_active{{{SEL}}}", "{{instance}}"),),
    ),
    Panel(
        "timeseries",
        "Replicas",
        "Processes up per job (the replica count the autoscalers set).",
        "none",
        (q("count by (job) (up == 1)", "{{job}}"),),
    ),
    Panel(
        "timeseries",
        "Autoscaling: requests per second per process",
        "http_requests_per_second, the series the API autoscaler reads.",
        "reqps",
        (q(f"http_requests_per_second{{{SEL}}}", "{{instance}}"),),
    ),
    Panel(
        "timeseries",
        "Autoscaling: traded notional per second",
        "trading_volume_per_second, per process.",
        "none",
        (q("trading_volume_per_second", "{{instance}}"),),
    ),
)

SECURITY = (
    Panel(
        "timeseries",
        "Failed logins per minute",
        "All API processes (alert above 10 a minute).",
        "none",
        (q("auth_login_failures:per_minute", "failed logins / min"),),
        12,
    ),
    Panel(
        "timeseries",
        "Failed logins by reason",
        "Wrong credentials, disabled users, wrong current password.",
        "none",
        (q(f"sum by (reason) (rate(auth_login_failures_total[{RATE}])) * 60", "{{reason}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Login answers",
        "Answers of /api/v1/auth/token by status (429: backing off or locked).",
        "reqps",
        (
            q(
                f'sum by (status) (rate(api_response_duration_seconds_count{{route=~".*/auth/token"}}[{RATE}]))',
                "{{status}}",
            ),
        ),
        12,
    ),
    Panel(
        "timeseries",
        "Refused requests by route",
        "401 / 403 answers per route: missing or wrong credentials.",
        "reqps",
        (
            q(
                f'sum by (route, status) (rate(api_response_duration_seconds_count{{status=~"401|403"}}[{RATE}]))',
                "{{status}} {{route}}",
            ),
        ),
        12,
    ),
    Panel(
        "timeseries",
        "Rate-limited requests",
        "429 answers per route (rate limits, login backoff).",
        "reqps",
        (q(f'sum by (route) (rate(api_response_duration_seconds_count{{status="429"}}[{RATE}]))', "{{route}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Unknown paths",
        "Requests to no route (scanners, broken clients).",
        "reqps",
        (q(f'sum by (status) (rate(api_response_duration_seconds_count{{route="unmatched"}}[{RATE}]))', "{{status}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Busiest routes",
        "The 10 routes answering the most requests.",
        "reqps",
        (q(f"topk(10, sum by (route) (rate(api_response_duration_seconds_count[{RATE}])))", "{{route}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Refused payment webhooks",
        "Payment events refused or failed, by provider and reason (signature: a forged call or a wrong secret).",
        "ops",
        (q(f"sum by (provider, reason) (rate(payment_failures_total[{RATE}]))", "{{provider}} {{reason}}"),),
        12,
    ),
    Panel(
        "stat",
        "Audit log integrity",
        "1 while the audit hash chain verifies on every worker, 0 when broken.",
        "none",
        (q("min(audit_log_integrity and monitoring_cycle_last_timestamp_seconds > 0)", "intact"),),
    ),
    Panel(
        "stat",
        "Audit records verified",
        "Audit records verified by the monitoring cycle.",
        "none",
        (q("max(audit_log_verified_records)", "records"),),
    ),
    Panel(
        "stat",
        "Unreconciled accounts",
        "Accounts whose cash differs from their ledger.",
        "none",
        (q("max(accounts_unreconciled)", "accounts"),),
    ),
)

TRADING = (
    Panel(
        "timeseries",
        "VaR 95 % (fraction of equity)",
        "One-day historical VaR of the accounts: max, p95, mean.",
        "percentunit",
        (q('portfolio_var_95{stat=~"max|p95|mean"}', "{{stat}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Largest VaR",
        "The accounts with the largest VaR (rank 1 the largest; no account ids).",
        "percentunit",
        (q("portfolio_var_95_top", "rank {{rank}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Drawdown (fraction of the peak)",
        "Drawdown from the high-water mark: max, p95, mean.",
        "percentunit",
        (q('portfolio_drawdown{stat=~"max|p95|mean"}', "{{stat}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Largest drawdowns",
        "The accounts furthest below their peak (rank 1 the largest).",
        "percentunit",
        (q("portfolio_drawdown_top", "rank {{rank}}"),),
        12,
    ),
    Panel(
        "stat",
        "Challenges on their last day",
        "Active challenges on their last allowed firm day.",
        "none",
        (q("max(challenges_expiring)", "challenges"),),
    ),
    Panel(
        "stat",
        "Challenges near inactivity",
        "Active challenges one firm day from their inactivity limit.",
        "none",
        (q("max(challenges_inactive)", "challenges"),),
    ),
    Panel(
        "stat",
        "Stale instruments",
        "Instruments whose prices have not changed for too long.",
        "none",
        (q("max(market_data_stale_instruments)", "instruments"),),
    ),
    Panel(
        "timeseries",
        "Orders by status",
        "Order status changes per second seen by the broker.",
        "ops",
        (q(f"sum by (status) (rate(orders_total[{RATE}]))", "{{status}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Market data",
        "Market-data events processed by the feed per second, by kind.",
        "ops",
        (q(f"sum by (kind) (rate(market_events_total[{RATE}]))", "{{kind}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "Traded notional",
        "Notional traded per second, per quote currency.",
        "none",
        (q(f"sum by (currency) (rate(trading_volume_total[{RATE}]))", "{{currency}}"),),
        12,
    ),
    Panel(
        "timeseries",
        "P&L",
        "Realized + unrealized P&L of all accounts.",
        "none",
        (q("sum by (currency) (trading_pnl_total)", "{{currency}}"),),
        12,
    ),
)

DASHBOARDS: dict[str, tuple[str, str, tuple[Panel, ...], bool]] = {
    "executive": ("Smart Trader / Executive", "P&L, portfolio value, trading volume, payments.", EXECUTIVE, False),
    "operations": ("Smart Trader / Operations", "Latency, errors, saturation, database, cache, workers, autoscaling.",
                   OPERATIONS, True),
    "security": ("Smart Trader / Security", "Authentication failures, API access patterns, audit integrity.",
                 SECURITY, False),
    "trading-risk": ("Smart Trader / Trading and risk", "VaR, drawdown, challenges, orders, market data.",
                     TRADING, False),
}  # fmt: skip


def panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    """The Grafana JSON of one panel at grid position (x, y)."""
    targets = [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": t.expr, "legendFormat": t.legend or "__auto"}
        for i, t in enumerate(panel.queries)
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    return out


def dashboard(uid: str, title: str, description: str, panels: tuple[Panel, ...], per_instance: bool) -> Dashboard:
    """A dashboard: panels laid out left to right, a new row of the grid when one is full."""
    laid: list[dict[str, Any]] = []
    x = y = 0
    for i, p in enumerate(panels, start=1):
        if x + p.width > WIDTH:
            x, y = 0, y + 8
        laid.append(panel_json(p, i, x, y))
        x += p.width
    return {
        "uid": f"smart-trader-{uid}",
        "title": title,
        "description": description,
        "tags": ["smart-trader"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [INSTANCE_VAR] if per_instance else []},
        "annotations": {"list": []},
        "panels": laid,
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(dashboard(name, *spec), indent=2, ensure_ascii=False) + "\n"
        for name, spec in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
