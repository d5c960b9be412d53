"""REST API benchmark: order submissions per second and latency at 64 concurrent clients.

    .venv/bin/python benchmarks/api_bench.py [--duration 12] [--warmup 3] [--connections 64]
        [--configs bare,sqlite,sqlite-replay,sqlite-market,postgres] [--env KEY=VALUE ...] [--profile DIR]
        [--write-docs | --output FILE]

Needs ``wrk`` (``apt-get install -y wrk``), the real BTC/USDT trades file in ``../shared/data`` and, for the
``postgres`` configurations, the real PostgreSQL at 127.0.0.1:5432 (user ``postgres``; a database ``bench_st`` is
created and dropped; ``BENCH_POSTGRES_URL`` overrides it).

Every configuration starts its own server subprocess (``benchmarks/api_bench_server.py``: uvicorn, one worker,
uvloop, httptools, no access log) on a fresh home:

- ``bare``: a bare FastAPI app with one validated POST endpoint (the platform's order ticket model), 201 —
  measured in the same run, as the yardstick for the ratios.
- ``sqlite`` / ``postgres``: the platform as ``smart-trader up`` runs it (``create_app(settings, "all", feed)``,
  API + paper broker + portfolio + outbox relay in one process, JSON request logs to a file) on SQLite or on
  PostgreSQL, with the real trades file imported (so BTC/USDT on BINANCE is known) and no market-data feed:
  limit buys far below the market (0.01 BTC at 1,000 USDT), so every order is accepted by the broker and stays
  working — the API's write path plus the broker taking the orders.
- ``sqlite-replay`` / ``postgres-replay``: the same with the trades file replayed in a loop at real time, so the
  broker also matches each trade against the growing book of working orders.
- ``sqlite-market``: market buys (0.001 BTC) with the real-time replay running: every order is accepted and
  filled at the next trade (fills, ledger, positions and equity written too).

Load: ``wrk`` (one thread, ``--connections`` keep-alive connections, closed loop), a pre-registered user's
bearer token, one account per connection's turn (64 accounts, round-robin). Each configuration gets ``--warmup``
seconds of load, then ``--duration`` seconds measured; wrk's latency percentiles are used. Errors are socket
errors plus non-2xx answers; the orders stored in the database are counted afterwards and compared with the
201s (``stored``), and ``backlog`` is how many were still ``new`` (not yet taken by the broker) when the load
stopped. ``--profile DIR`` records the server with py-spy (collapsed stacks) during the measured seconds.
Prints a Markdown report; ``--write-docs`` also writes it to ``docs/benchmarks-api.md``, ``--output FILE`` elsewhere.

``--env KEY=VALUE`` (repeatable) sets a platform setting in every platform server's environment, e.g. the rate
limits and risk limits of issue 9: one user sending ~5,000 orders/s over 64 accounts is far above the defaults
(``RATE_LIMIT_ORDERS_USER`` 100/s, ``RATE_LIMIT_ORDERS_IP`` 500/s, ``MAX_ORDERS_PER_SECOND`` 50 and
``MAX_OPEN_ORDERS`` 500 per account), so the benchmark's figures are measured with ``RATE_LIMITS_ENABLED=false`` or
with the limits set above its rate (the limiter then still runs on every request). The settings are printed in the
report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).resolve().parent / "api_bench_server.py"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_st")
PASSWORD = "bench-password-1234"
LIMIT_ORDER = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "limit", "qty": "0.01"}
LIMIT_ORDER["limit_price"] = "1000"  # BTC traded near 40,000 USDT: the order stays working
MARKET_ORDER = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.001"}


@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # platform | bare
    database: str  # sqlite | postgres | -
    feed: str  # none | 1 | max
    order: dict[str, str]

    @property
    def description(self) -> str:
        if self.kind == "bare":
            return "bare FastAPI endpoint (pydantic body, 201)"
        feed = "no feed" if self.feed == "none" else f"replay ×{self.feed}, looping"
        what = "market buys (filled)" if self.order["type"] == "market" else "limit buys (working)"
        return f"platform on {'SQLite' if self.database == 'sqlite' else 'PostgreSQL'}, {feed}, {what}"


CONFIGS = {
    "bare": Config("bare", "bare", "-", "none", LIMIT_ORDER),
    "sqlite": Config("sqlite", "platform", "sqlite", "none", LIMIT_ORDER),
    "sqlite-replay": Config("sqlite-replay", "platform", "sqlite", "1", LIMIT_ORDER),
    "sqlite-market": Config("sqlite-market", "platform", "sqlite", "1", MARKET_ORDER),
    "postgres": Config("postgres", "platform", "postgres", "none", LIMIT_ORDER),
    "postgres-replay": Config("postgres-replay", "platform", "postgres", "1", LIMIT_ORDER),
}
DEFAULT_CONFIGS = "bare,sqlite,sqlite-replay,sqlite-market,postgres,postgres-replay"

WRK_SCRIPT = """
local paths = {%(paths)s}
local body = %(body)s
local headers = {["Content-Type"] = "application/json", ["Authorization"] = %(auth)s}
local reqs = {}
local i = 0
function init(args)
  for k, p in ipairs(paths) do reqs[k] = wrk.format("POST", p, headers, body) end
end
function request()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,'
    .. '"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"mean":%%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass
class Result:
    config: Config
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    stored: int | None = None
    backlog: int | None = None
    server_cpu: float | None = None
    statuses: dict[str, int] | None = None
    load: float = 0.0  # the machine's 1-minute load average before the configuration started
    batch_jobs: float | None = None  # mean jobs per group-commit transaction (the server's db_write_batch_jobs)
    batch_ms: float | None = None  # mean time of one group-commit transaction (ms)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float | None:
        """Server CPU milliseconds per request (less sensitive than orders/s to other load on the machine)."""
        return None if self.server_cpu is None else self.server_cpu * 1000 / self.rps


# -- servers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, form: bool = False) -> Any:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def reset_postgres() -> None:
    import psycopg

    name = PG_URL.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_URL.rsplit("/", 1)[1]}" WITH (FORCE)')


class Server:
    """A server subprocess on a fresh home (and a fresh ``bench_st`` database for PostgreSQL)."""

    def __init__(self, config: Config, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.home = workdir / config.name
        self.home.mkdir(parents=True)
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            SMART_TRADER_HOME=str(self.home),
            SECRET_KEY=secrets.token_hex(32),
            ENVIRONMENT="development",
            LOG_JSON="true",
            DATABASE_URL="",
            REDIS_URL="",
        )
        if config.database == "postgres":
            reset_postgres()
            env["DATABASE_URL"] = PG_URL
        if config.kind == "platform":
            env.update(extra_env or {})
        self.log = (self.home / "server.log").open("wb")
        cmd = [sys.executable, str(SERVER), "--kind", config.kind, "--port", str(self.port), "--feed", config.feed]
        # cwd: the home, so no stray .env is read
        self.proc = subprocess.Popen(cmd, cwd=self.home, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                http("GET", f"{self.url}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{config.name}: server did not start; see {self.home / 'server.log'}") from None
                time.sleep(0.2)

    @property
    def database_url(self) -> str:
        return PG_URL if self.config.database == "postgres" else f"sqlite:///{self.home / 'smart-trader.db'}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def order_counts(self) -> dict[str, int]:
        from sqlalchemy import create_engine, text

        url = self.database_url.replace("postgresql://", "postgresql+psycopg://")
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT status, count(*) FROM orders GROUP BY status")).all()
        finally:
            engine.dispose()
        return {str(s): int(n) for s, n in rows}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- load -------------------------------------------------------------------------------------------
def lua_string(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII text


def prepare(server: Server, accounts: int) -> tuple[str, list[str]]:
    """Register a user, open ``accounts`` accounts; the bearer token and the order paths."""
    if server.config.kind == "bare":
        return "Bearer none", [f"/api/v1/accounts/acct-{i}/orders" for i in range(accounts)]
    base = f"{server.url}/api/v1"
    http("POST", f"{base}/auth/register", {"email": "bench@example.com", "password": PASSWORD})
    token = http("POST", f"{base}/auth/token", {"username": "bench@example.com", "password": PASSWORD}, form=True)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    paths = []
    for i in range(accounts):
        acct = http(
            "POST",
            f"{base}/accounts",
            {"name": f"bench-{i}", "starting_balance": "1000000000000", "currency": "USDT"},
            auth,
        )
        paths.append(f"/api/v1/accounts/{acct['id']}/orders")
    probe = http("POST", f"{server.url}{paths[0]}", server.config.order, auth)  # raises unless 2xx
    assert probe["status"] == "new", probe
    return auth["Authorization"], paths


def run_wrk(server: Server, script: Path, seconds: float, connections: int, threads: int) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    parsed: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return parsed


def bench(
    config: Config, workdir: Path, args: argparse.Namespace, profile_dir: Path | None
) -> Result:  # one configuration
    load = os.getloadavg()[0]
    server = Server(config, workdir, args.server_env)
    try:
        if config.feed != "none":
            time.sleep(2)  # the replay's first trades: market orders need a price
        auth, paths = prepare(server, args.connections)
        script = server.home / "orders.lua"
        script.write_text(
            WRK_SCRIPT
            % {
                "paths": ", ".join(lua_string(p) for p in paths),
                "body": lua_string(json.dumps(config.order)),
                "auth": lua_string(auth),
            }
        )
        run_wrk(server, script, args.warmup, args.connections, args.threads)
        before = sum(server.order_counts().values()) if config.kind == "platform" else 0
        spy = None
        if profile_dir is not None and config.kind == "platform":
            profile_dir.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(server.proc.pid),
                    "--duration",
                    str(round(args.duration)),
                    "--rate",
                    "250",
                    "--threads",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(profile_dir / f"{config.name}.folded"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu0 = server.cpu_seconds()
        w = run_wrk(server, script, args.duration, args.connections, args.threads)
        cpu = server.cpu_seconds() - cpu0
        if spy is not None:
            spy.wait(60)
        result = Result(
            config,
            w["requests"],
            w["duration_us"] / 1e6,
            w["status_errors"],
            w["socket_errors"],
            w["p50"] / 1000,
            w["p90"] / 1000,
            w["p99"] / 1000,
            w["max"] / 1000,
            server_cpu=cpu / (w["duration_us"] / 1e6),
            load=load,
        )
        if config.kind == "platform":
            counts = server.order_counts()
            result.stored = sum(counts.values()) - before
            result.backlog = counts.get("new", 0)
            result.statuses = counts
            result.batch_jobs, result.batch_ms = writer_batches(server.url)
        return result
    finally:
        server.stop()
        if config.database == "postgres":
            drop_postgres()


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def writer_batches(url: str) -> tuple[float | None, float | None]:
    """Mean jobs per writer transaction and mean transaction time (ms), from the server's ``/metrics``."""
    import urllib.request

    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        for name in ("db_write_batch_jobs_sum", "db_write_batch_jobs_count", "db_write_batch_seconds_sum"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    count = values.get("db_write_batch_jobs_count")
    if not count:
        return None, None
    return values["db_write_batch_jobs_sum"] / count, values["db_write_batch_seconds_sum"] * 1000 / count


# -- report -----------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    )

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    if dirty:
        commit += f" + {len(dirty.splitlines())} uncommitted change(s) under src/"
    from importlib.metadata import version

    libs = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "sqlalchemy", "psycopg")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{len(os.sched_getaffinity(0))} cores ({cpu}), {platform.system()}",
        "python": f"{platform.python_version()}; " + ", ".join(f"{lib} {version(lib)}" for lib in libs),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "wrk",
        "commit": commit,
    }


def markdown(info: dict[str, str], results: list[Result], args: argparse.Namespace, command: str) -> str:
    bare = next((r for r in results if r.config.kind == "bare"), None)
    out = [
        "# API benchmark: order submissions",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['machine']}",
        f"- **Software:** Python {info['python']}; {info['wrk']}",
        f"- **Commit:** `{info['commit']}`",
        f"- **Command:** `{command}`",
        "- **Platform settings:** "
        + (", ".join(f"`{k}={v}`" for k, v in sorted(args.server_env.items())) or "defaults"),
        "",
        f"`POST /api/v1/accounts/{{id}}/orders` at {args.connections} concurrent keep-alive clients (wrk, "
        f"{args.threads} thread, closed loop), {args.duration:g} s measured after {args.warmup:g} s of warm-up, one "
        "uvicorn worker (uvloop, httptools) per configuration, load generator on the same machine. Targets: "
        "≥ 3,000 orders/s on SQLite and ≥ 2,000 on PostgreSQL, p99 < 50 ms.",
        "",
        "| configuration | orders/s | × bare | p50 ms | p90 ms | p99 ms | max ms | errors | stored / 2xx | "
        "backlog | server CPU | CPU ms/order | jobs/commit | ms/commit | load before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r.rps / bare.rps:.3f}" if bare else "–"
        stored = "–" if r.stored is None else f"{r.stored:,} / {r.requests - r.status_errors:,}"
        backlog = "–" if r.backlog is None else f"{r.backlog:,}"
        cpu = "–" if r.server_cpu is None else f"{r.server_cpu:.0%}"
        out.append(
            f"| `{r.config.name}`: {r.config.description} | {r.rps:,.0f} | {ratio} | {r.p50_ms:.1f} | "
            f"{r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {r.status_errors + r.socket_errors} | {stored} | "
            f"{backlog} | {cpu} | {r.cpu_ms or 0:.2f} | {_num(r.batch_jobs, 1)} | {_num(r.batch_ms, 2)} | "
            f"{r.load:.2f} |"
        )
    out += [
        "",
        "“× bare” is orders/s divided by the bare FastAPI endpoint's requests/s in the same run. “errors”: socket "
        "errors plus non-2xx answers. “stored / 2xx”: orders the database holds from the measured seconds against "
        "the 2xx answers wrk counted (in-flight requests at the end make the first a little larger). “backlog”: "
        "orders still `new` (stored, not yet taken by the broker) when the load stopped. “server CPU”: the server "
        "process's CPU time per wall second (100% = one core; the writer thread can add to the event loop's). "
        "“CPU ms/order”: server CPU time per answered request — the cost that bounds throughput on a quiet "
        "machine (about 1000 / it orders/s per core the server can use). "
        "“jobs/commit”, “ms/commit”: the server's group-commit writer, mean jobs per transaction and mean time "
        "per transaction (its `db_write_batch_*` metrics, whole run). "
        "“load before”: the machine's 1-minute load average when the configuration started (2 cores: above ~0.5 "
        "something else was running and the figures are pessimistic).",
        "",
    ]
    for r in results:
        if r.config.kind == "platform" and r.stored is not None:
            sqlite_target = 3000 if r.config.database == "sqlite" else 2000
            ok = r.rps >= sqlite_target and r.p99_ms < 50
            out.append(
                f"- `{r.config.name}`: {'meets' if ok else 'misses'} the target ({sqlite_target:,}/s, p99 < 50 ms)."
            )
    busiest = max((r.load for r in results), default=0.0)
    if busiest > 1.0:
        out += [
            "",
            f"**Caution:** other processes were running (1-minute load average up to {busiest:.1f} on "
            f"{len(os.sched_getaffinity(0))} cores before a configuration started): orders/s and latencies are "
            "pessimistic; “CPU ms/order” and the ratios to the bare endpoint measured in the same conditions are "
            "the more reliable figures. Re-run on a quiet machine for the headline numbers.",
        ]
    out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=12.0, help="measured seconds per configuration")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--profile", type=Path, default=None, help="record each platform server with py-spy here")
    ap.add_argument("--write-docs", action="store_true", help="write the report to docs/benchmarks-api.md")
    ap.add_argument("--output", type=Path, default=None, help="write the report to this file")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="platform setting (repeatable)")
    args = ap.parse_args()
    bad = [kv for kv in args.env if "=" not in kv]
    if bad:
        sys.exit(f"--env takes KEY=VALUE, got {bad}")
    args.server_env = dict(kv.split("=", 1) for kv in args.env)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        for name in names:
            print(f"{name}: {CONFIGS[name].description} ...", file=sys.stderr, flush=True)
            r = bench(CONFIGS[name], Path(tmp), args, args.profile)
            print(
                f"  {r.rps:,.0f}/s p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms errors "
                f"{r.status_errors + r.socket_errors} stored {r.stored} backlog {r.backlog} statuses {r.statuses} "
                f"load before {r.load:.2f}",
                file=sys.stderr,
                flush=True,
            )
            results.append(r)
    command = "python benchmarks/api_bench.py " + " ".join(sys.argv[1:])
    report = markdown(machine(), results, args, command.strip())
    print(report)
    if args.write_docs:
        (ROOT / "docs" / "benchmarks-api.md").write_text(report)
        print(f"wrote {ROOT / 'docs' / 'benchmarks-api.md'}", file=sys.stderr)
    if args.output is not None:
        args.output.write_text(report)
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
