"""Denial-of-service benchmark (issue 9): a victim's order round trip while another user attacks the platform.

    .venv/bin/python benchmarks/dos_bench.py [--databases sqlite,postgres] [--duration 60] [--warmup 3]
        [--speed 1] [--victim-clients 4] [--victim-rate 5] [--read-rate 20] [--hammer-clients 20]
        [--profile DIR] [--json FILE]

Needs ``wrk`` (``apt-get install -y wrk``), the real BTC/USDT trades file in ``../shared/data`` and, for
``postgres``, the real PostgreSQL at 127.0.0.1:5432 (user ``postgres``; a database ``bench_dos`` is created and
dropped; ``BENCH_POSTGRES_URL`` overrides it).

Servers: real ``smart-trader up`` subprocesses (uvicorn, one worker) replaying the real BTC/USDT trades
(``trades/BTCUSDT_2021-01-08.binance.trades.parquet``, 2,001 trades over 46 s: ~43 trades/s at ``--speed 1``, the
market's own rate, looping), on SQLite (default) or PostgreSQL, with the platform's default rate limits, risk
limits and hashing pool. Two servers per database, each on a fresh home (and database):

1. **defaults** — phases, in this order, on one process: ``baseline`` (no attacker), ``login`` (``--hammer-clients``
   wrk connections sending wrong passwords to ``POST /api/v1/auth/token`` as fast as they are answered, all from
   127.0.0.1: the per-IP auth limit and the login backoff answer them 429), ``stops`` (an attacker account holds
   its maximum of open buy stops, far above the market — placed before the phase at a pace under the account's
   submission limit; a few more are sent after it is reached and must be rejected — while the replay goes on).
   ``login`` runs before ``stops`` so the stops need not be canceled; the login attack leaves nothing behind that
   the victim uses (the victim logged in before; its token lives longer than the run).
2. **flood** — the same platform with the auth rate limit raised (``RATE_LIMIT_AUTH_IP``) and the login backoff
   and lockout off: phases ``baseline`` and ``login-flood``, the same hammer, now every attempt reaches argon2 and
   the password-hashing pool (``HASH_WORKERS``, ``HASH_QUEUE``) is saturated. It shows what the bounded executor
   alone does for reads and orders. A separate process because the limits are settings read at start-up; it has its
   own baseline, so each attack is compared with a baseline of the same process.

Same process for the phases of one configuration (not a fresh server per phase): the comparison is then between
minutes of one process with the same accounts, caches, database file and replay position, and only the attack
differs; a fresh server per phase would add start-up and cache-warming differences of the same order as the
effect measured. Drift (a growing database) works against the later phases, i.e. against the attacks.

Victim (another user; a separate client process, aiohttp on uvloop, so the load generator never shares the GIL with
the orchestration): ``--victim-clients`` closed-loop clients, each with its own account and keep-alive connection,
each placing a limit buy far below the market (0.001 BTC at 1,000 USDT: it stays working), waiting for the 201,
then canceling it (``DELETE``, answered 200 once the broker confirmed), at ``--victim-rate`` orders per second per
client — never more than one request in flight per client, so latency, not throughput, is measured (the default
4 × 5 orders/s, each with its cancel, is 40 order requests/s: under the per-user order rate limit of 50/s). One more
client reads ``GET /health`` and one ``GET /api/v1/accounts/{id}``, each at ``--read-rate`` per second. Latency is
the time from sending a request to its full answer; a client that falls behind its schedule sends at once (the
"from schedule" p99 adds the time it fell behind, against coordinated omission). Percentiles are over the answers
that did the work (201, 200/202 for a cancel); other answers (429...) are counted apart. ``--warmup`` seconds of load
before each phase's ``--duration`` measured seconds.

Each phase also reports the server's CPU and the CPU other processes used meanwhile (/proc/stat minus the server,
its PostgreSQL backends, and the clients): the machine is shared, and a neighbour's job shows there.

Target (issue 9): p99 of the victim's order round trip (``POST`` → 201) under each attack within 2× of the
baseline of the same process. Prints a Markdown report (``--json`` also writes every figure); ``--profile DIR``
records the server with py-spy (raw collapsed stacks) during each attack phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
TRADES = ROOT.parent / "shared" / "data" / "trades" / "BTCUSDT_2021-01-08.binance.trades.parquet"
CLI = Path(sys.executable).parent / "smart-trader"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_dos")
VICTIM_ORDER = {
    "symbol": "BTC/USDT",
    "venue": "BINANCE",
    "side": "buy",
    "type": "limit",
    "qty": "0.001",
    "limit_price": "1000",
}  # BTC traded near 39,500 USDT: stays working until canceled
STOP_ORDER = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "stop", "qty": "0.001"}
STOP_PRICE = 1_000_000  # far above the market: never triggers; each stop gets its own price (STOP_PRICE + i)
FLOOD_ENV = {
    "RATE_LIMIT_AUTH_IP": "1000000/second",
    "LOGIN_BACKOFF_BASE_SECONDS": "0",
    "LOGIN_BACKOFF_MAX_SECONDS": "0",
    "LOGIN_LOCKOUT_FAILURES": "1000000000",
}
PHASES = {"defaults": ["baseline", "login", "stops"], "flood": ["baseline", "login-flood"]}
ATTACKS = {
    "baseline": "no attacker",
    "login": "{n} clients hammer POST /auth/token with wrong passwords (default limits: 429s)",
    "stops": "an attacker account holds its maximum of open buy stops far above the market",
    "login-flood": "{n} clients hammer POST /auth/token with wrong passwords, auth limit and login backoff off "
    "(every attempt hashed)",
}


# -- HTTP helpers (setup, synchronous) ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, form: bool = False
) -> tuple[int, Any]:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def ok(status: int, body: Any, what: str, expected: tuple[int, ...] = (200, 201)) -> Any:
    if status not in expected:
        raise RuntimeError(f"{what}: HTTP {status}: {body}")
    return body


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


# -- the server -----------------------------------------------------------------------------------
class Server:
    """``smart-trader up`` replaying the trades file in a loop, on a fresh home (and database)."""

    def __init__(self, database: str, name: str, workdir: Path, speed: str, extra_env: dict[str, str]) -> None:
        self.database = database
        self.port = free_port()
        self.home = workdir / f"{database}-{name}"
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
            ACCESS_TOKEN_SECONDS="7200",  # the victim's token outlives the run
        )
        if database == "postgres":
            reset_postgres()
            env["DATABASE_URL"] = PG_URL
        env.update(extra_env)
        self.env = {k: env[k] for k in sorted(extra_env)}
        self.log_path = self.home / "server.log"
        self.log = self.log_path.open("wb")
        cmd = [
            str(CLI),
            "up",
            "--replay",
            str(TRADES),
            "--symbol",
            "BTC/USDT",
            "--venue",
            "BINANCE",
            "--speed",
            speed,
            "--loop",
            "--port",
            str(self.port),
        ]
        # cwd: the home, so no stray .env is read
        self.proc = subprocess.Popen(cmd, cwd=self.home, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            try:
                status, _ = http("GET", f"{self.url}/ready")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{database}-{name}: server did not become ready:\n{tail}")
            time.sleep(0.3)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def market_events(self) -> float:
        """``market_events_total`` over every kind (the runtime's count of trades/quotes/bars processed)."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith("market_events_total{"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.database == "postgres":
            drop_postgres()


@dataclass
class Users:
    victim_token: str
    victim_accounts: list[str]
    attacker_token: str
    attacker_account: str
    target_email: str  # the login attack's target (a real user, never used otherwise)


def prepare(server: Server, victim_accounts: int) -> Users:
    base = f"{server.url}/api/v1"

    def user(name: str) -> tuple[str, str]:
        email, password = f"{name}@example.com", secrets.token_urlsafe(18)
        ok(*http("POST", f"{base}/auth/register", {"email": email, "password": password}), f"register {name}")
        return email, password

    def login(email: str, password: str) -> str:
        body = ok(*http("POST", f"{base}/auth/token", {"username": email, "password": password}, form=True), "token")
        return f"Bearer {body['access_token']}"

    def account(token: str, name: str) -> str:
        body = {"name": name, "starting_balance": "1000000000000", "currency": "USDT"}
        return str(ok(*http("POST", f"{base}/accounts", body, {"Authorization": token}), "account")["id"])

    victim = login(*user("victim"))
    attacker = login(*user("attacker"))
    target_email, _ = user("target")
    return Users(
        victim,
        [account(victim, f"victim-{i}") for i in range(victim_accounts)],
        attacker,
        account(attacker, "attacker"),
        target_email,
    )


# -- the attacker's stops ---------------------------------------------------------------------------
def orders_of(server: Server, token: str, account: str, status: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        q = urllib.parse.urlencode({"status": status, "limit": 1000, "offset": len(out)})
        page = ok(
            *http("GET", f"{server.url}/api/v1/accounts/{account}/orders?{q}", None, {"Authorization": token}),
            "list orders",
        )
        out += page
        if len(page) < 1000:
            return out


def park_stops(server: Server, users: Users, extra: int, count: int | None) -> dict[str, Any]:
    """Place the attacker account's maximum of open buy stops (paced under its submission limit), wait until the
    broker accepted them all, then send ``extra`` more and check that every one is rejected. ``count``: that many
    stops instead (a build without account limits: ``GET .../limits`` answers 404)."""
    auth = {"Authorization": users.attacker_token}
    acct = users.attacker_account
    status, limits = http("GET", f"{server.url}/api/v1/accounts/{acct}/limits", None, auth)
    if status == 404 and count is not None:  # no limits in this build
        limits = {"max_open_orders": count, "max_orders_per_second": 100}
    else:
        ok(status, limits, "limits")
    cap, rate = int(count or limits["max_open_orders"]), int(limits["max_orders_per_second"])
    pace = 1.0 / max(1.0, min(0.8 * rate, 40.0))  # under the account's rate and the per-user rate limit (50/s)
    url = f"{server.url}/api/v1/accounts/{acct}/orders"
    started = time.monotonic()
    statuses: dict[int, int] = {}
    for i in range(cap):
        due = started + i * pace
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        status, _ = http("POST", url, {**STOP_ORDER, "stop_price": str(STOP_PRICE + i)}, auth)
        statuses[status] = statuses.get(status, 0) + 1
    placed = time.monotonic() - started
    sent = cap
    for _round in range(5):  # top up what the broker rejected (orders bunched by a stall break the rate limit)
        deadline = time.monotonic() + 60
        while True:
            accepted = orders_of(server, users.attacker_token, acct, "accepted")
            rejected = orders_of(server, users.attacker_token, acct, "rejected")
            if len(accepted) + len(rejected) >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if len(accepted) >= cap:
            break
        time.sleep(1.0)
        for _ in range(cap - len(accepted)):
            time.sleep(pace)
            status, _ = http("POST", url, {**STOP_ORDER, "stop_price": str(STOP_PRICE + sent)}, auth)
            statuses[status] = statuses.get(status, 0) + 1
            sent += 1
    before_rejected = len(rejected)
    extra_status: dict[int, int] = {}
    for i in range(extra):
        time.sleep(pace)
        status, _ = http("POST", url, {**STOP_ORDER, "stop_price": str(STOP_PRICE + sent + i)}, auth)
        extra_status[status] = extra_status.get(status, 0) + 1
    deadline = time.monotonic() + 30
    while True:
        rejected = orders_of(server, users.attacker_token, acct, "rejected")
        new = orders_of(server, users.attacker_token, acct, "new")
        if (len(rejected) >= before_rejected + extra and not new) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    accepted_after = orders_of(server, users.attacker_token, acct, "accepted")
    reasons = sorted({str(o.get("reason")) for o in rejected})
    return {
        "max_open_orders": cap,
        "max_orders_per_second": rate,
        "placed_seconds": round(placed, 1),
        "post_statuses": statuses,
        "open_stops": len(accepted_after),
        "extra_sent": extra,
        "extra_post_statuses": extra_status,
        "rejected": len(rejected) - before_rejected,
        "rejected_while_placing": before_rejected,
        "reasons": reasons,
    }


# -- the login hammer (wrk) ---------------------------------------------------------------------------
HAMMER_LUA = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%%d":%%d', k, v)) end
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"socket_errors":%%d,"p50":%%d,"p99":%%d,'
    .. '"statuses":{%%s}}\\n', summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
"""


def start_hammer(server: Server, email: str, clients: int, seconds: float, workdir: Path) -> subprocess.Popen[str]:
    script = workdir / "hammer.lua"
    body = urllib.parse.urlencode({"username": email, "password": "wrong-password-" + secrets.token_hex(4)})
    script.write_text(HAMMER_LUA % {"body": json.dumps(body)})
    cmd = [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.url + "/api/v1/auth/token",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def hammer_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out}\n{err}")
    w: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    seconds = w["duration_us"] / 1e6
    return {
        "requests": w["requests"],
        "per_second": round(w["requests"] / seconds, 1),
        "statuses": w["statuses"],
        "socket_errors": w["socket_errors"],
        "p50_ms": w["p50"] / 1000,
        "p99_ms": w["p99"] / 1000,
    }


# -- the victim (a client process) ------------------------------------------------------------------
async def victim_main(cfg: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    base: str = cfg["url"]
    token: str = cfg["token"]
    warm_until = time.perf_counter() + cfg["warmup"]
    end = warm_until + cfg["duration"]
    samples: dict[str, list[tuple[float, float, float]]] = {"order": [], "cancel": [], "health": [], "read": []}
    statuses: dict[str, dict[str, int]] = {k: {} for k in samples}
    body = json.dumps(VICTIM_ORDER).encode()
    headers = {"Authorization": token, "Content-Type": "application/json"}

    expected = {"order": (201,), "cancel": (200, 202), "health": (200,), "read": (200,)}

    def note(kind: str, sent: float, due: float, done: float, status: int) -> None:
        if sent < warm_until:
            return
        if status in expected[kind]:  # latency of answers that did the work (a 429 is quick and did nothing)
            samples[kind].append((done - sent, done - min(sent, due), sent - warm_until))  # + when sent (s)
        s = statuses[kind]
        s[str(status)] = s.get(str(status), 0) + 1

    async def paced(interval: float, step: Any) -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            k = 0
            start = time.perf_counter() + secrets.randbelow(1000) / 1000 * interval  # clients out of phase
            while True:
                due = start + k * interval
                now = time.perf_counter()
                if due > now:
                    await asyncio.sleep(due - now)
                if time.perf_counter() >= end:
                    return
                await step(session, due)
                k += 1

    def order_step(account: str) -> Any:
        url = f"{base}/api/v1/accounts/{account}/orders"

        async def step(session: Any, due: float) -> None:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                raw = await r.read()
                status = r.status
            t1 = time.perf_counter()
            note("order", t0, due, t1, status)
            if status != 201:
                return
            order_id = json.loads(raw)["id"]
            async with session.delete(f"{url}/{order_id}", headers=headers) as r:
                await r.read()
                status = r.status
            note("cancel", t1, t1, time.perf_counter(), status)

        return step

    def get_step(kind: str, url: str) -> Any:
        async def step(session: Any, due: float) -> None:
            t0 = time.perf_counter()
            async with session.get(url, headers=headers) as r:
                await r.read()
                status = r.status
            note(kind, t0, due, time.perf_counter(), status)

        return step

    tasks = [paced(1.0 / cfg["victim_rate"], order_step(a)) for a in cfg["accounts"]]
    if cfg["read_rate"] > 0:
        tasks.append(paced(1.0 / cfg["read_rate"], get_step("health", f"{base}/health")))
        tasks.append(paced(1.0 / cfg["read_rate"], get_step("read", f"{base}/api/v1/accounts/{cfg['accounts'][0]}")))
    await asyncio.gather(*tasks)
    return {"samples": samples, "statuses": statuses}


def victim_worker(cfg_json: str) -> None:
    import uvloop

    cfg = json.loads(cfg_json)
    result = uvloop.run(victim_main(cfg))
    Path(cfg["output"]).write_text(json.dumps(result))  # a file: a pipe left non-blocking truncated it


def run_victim(server: Server, users: Users, args: argparse.Namespace, output: Path) -> subprocess.Popen[str]:
    cfg = {
        "output": str(output),
        "url": server.url,
        "token": users.victim_token,
        "accounts": users.victim_accounts,
        "victim_rate": args.victim_rate,
        "read_rate": args.read_rate,
        "warmup": args.warmup,
        "duration": args.duration,
    }
    return subprocess.Popen(
        [sys.executable, __file__, "--victim-worker", json.dumps(cfg)], stdout=subprocess.DEVNULL, text=True
    )


# -- CPU used by other processes (the VM is shared: a busy neighbour shows here) -----------------------
def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every core; /proc/stat, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(name: str) -> list[int]:
    """PostgreSQL backends serving database ``name`` (their CPU is the benchmark's, not a neighbour's)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"postgres: ") and f" {name} ".encode() in cmd:
                out.append(int(d.name))
    return out


class OwnCpu:
    """CPU used over a window by the machine, and by this benchmark (server, its database backends, the clients
    and load generators this process waited for, this process): the difference is other processes'."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.db = PG_URL.rsplit("/", 1)[1] if server.database == "postgres" else None
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_seconds()
        self.server0 = server.cpu_seconds()
        self.backends0 = {pid: proc_cpu_seconds(pid) for pid in (database_backends(self.db) if self.db else [])}
        import resource

        self.children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)

    def other_cores(self) -> float:
        """Cores other processes kept busy on average since the start of the window."""
        import resource

        wall = time.monotonic() - self.t0
        busy = machine_busy_seconds() - self.busy0
        ours = self.server.cpu_seconds() - self.server0
        if self.db:
            now = {pid: proc_cpu_seconds(pid) for pid in database_backends(self.db)}
            ours += sum(v - self.backends0.get(pid, 0.0) for pid, v in now.items())
        for now_r, then in (
            (resource.getrusage(resource.RUSAGE_CHILDREN), self.children0),
            (resource.getrusage(resource.RUSAGE_SELF), self.self0),
        ):
            ours += (now_r.ru_utime - then.ru_utime) + (now_r.ru_stime - then.ru_stime)
        return max(0.0, (busy - ours) / wall)


# -- statistics -------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ascending values, in ms."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n q / 100)
    return sorted_values[int(rank) - 1] * 1000


@dataclass
class Stats:
    n: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    p99_sched: float  # from the scheduled send time (coordinated omission)
    statuses: dict[str, int]

    @staticmethod
    def of(samples: list[list[float]], statuses: dict[str, int]) -> Stats:
        lat = sorted(s[0] for s in samples)
        sched = sorted(s[1] for s in samples)
        return Stats(
            len(lat),
            percentile(lat, 50),
            percentile(lat, 90),
            percentile(lat, 99),
            percentile(lat, 99.9),
            (lat[-1] * 1000) if lat else float("nan"),
            percentile(sched, 99),
            statuses,
        )


@dataclass
class Phase:
    database: str
    server: str
    name: str
    attack: str
    stats: dict[str, Stats]
    server_cpu: float  # server CPU seconds per wall second
    market_events_per_s: float
    load_before: float
    other_cores: float  # CPU other processes used during the phase, in cores (noise from neighbours)
    hammer: dict[str, Any] | None = None
    stops: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)


def run_phase(
    server: Server, server_name: str, users: Users, name: str, args: argparse.Namespace, workdir: Path
) -> Phase:
    stops = None
    if name == "stops":
        print("  parking the attacker's stops ...", file=sys.stderr, flush=True)
        stops = park_stops(server, users, args.extra_stops, args.stops)
        print(f"  {stops}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    own = OwnCpu(server)
    hammer = None
    if name in ("login", "login-flood"):
        hammer = start_hammer(server, users.target_email, args.hammer_clients, args.warmup + args.duration + 1, workdir)
        time.sleep(0.5)
    keep = workdir if args.json is None else args.json.with_name(args.json.stem + "-samples")
    keep.mkdir(parents=True, exist_ok=True)  # with --json: every sample kept beside it (latency, from schedule, when)
    samples_file = keep / f"victim-{server.database}-{server_name}-{name}.json"
    victim = run_victim(server, users, args, samples_file)
    time.sleep(args.warmup)
    cpu0, events0, t0 = server.cpu_seconds(), server.market_events(), time.monotonic()
    spy = None
    if args.profile is not None and name != "baseline":
        args.profile.mkdir(parents=True, exist_ok=True)
        out = args.profile / f"{server.database}-{server_name}-{name}.folded"
        spy = subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(server.proc.pid),
                "--duration",
                str(max(1, round(args.duration) - 1)),
                "--rate",
                "200",
                "--threads",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    victim.wait(timeout=args.warmup + args.duration + 120)
    wall = time.monotonic() - t0
    cpu, events = server.cpu_seconds() - cpu0, server.market_events() - events0
    if spy is not None:
        spy.wait(60)
    if victim.returncode != 0:
        raise RuntimeError(f"victim client failed ({victim.returncode})")
    result = json.loads(samples_file.read_text())
    hammer_stats = hammer_result(hammer) if hammer is not None else None
    other = own.other_cores()
    stats = {k: Stats.of(result["samples"][k], result["statuses"][k]) for k in result["samples"]}
    attack = ATTACKS[name].format(n=args.hammer_clients)
    return Phase(
        server.database,
        server_name,
        name,
        attack,
        stats,
        cpu / wall,
        events / wall,
        load,
        other,
        hammer_stats,
        stops,
        server.env,
    )


# -- report -----------------------------------------------------------------------------------------


def _f(x: float) -> str:
    return "–" if x != x else (f"{x:.1f}" if x < 100 else f"{x:,.0f}")


def _statuses(s: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(s.items()))


def markdown(info: dict[str, str], phases: list[Phase], args: argparse.Namespace, command: str) -> str:
    out = [
        "# DoS benchmark: a victim's latency under attack",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['machine']}, Python {info['python']}",
        f"- **Commit:** `{info['commit']}`",
        f"- **Command:** `{command}`",
        f"- Replay ×{args.speed} of the real BTC/USDT trades, looping; victim: {args.victim_clients} "
        f"clients × {args.victim_rate:g} orders/s (POST, then DELETE), health and account reads at "
        f"{args.read_rate:g}/s each; {args.warmup:g} s warm-up + {args.duration:g} s measured per phase.",
        "",
        "Victim latency, ms (“sched p99”: from the time the request was due, counting time a client fell behind):",
        "",
        "| database | server | phase | orders | order p50 | order p90 | order p99 | order p99.9 | order max | "
        "order sched p99 | **p99 ÷ baseline** | cancel p50 | cancel p99 | health p50 | health p99 | read p50 | "
        "read p99 | read p99 ÷ baseline | non-2xx | server CPU | market events/s | other processes' CPU |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baselines = {(p.database, p.server): p for p in phases if p.name == "baseline"}
    for p in phases:
        o, c, h, r = (p.stats[k] for k in ("order", "cancel", "health", "read"))
        b = baselines.get((p.database, p.server))
        ratio = f"**{o.p99 / b.stats['order'].p99:.2f}**" if b else "–"
        rratio = f"{r.p99 / b.stats['read'].p99:.2f}" if b else "–"
        bad = sum(v for st in p.stats.values() for k, v in st.statuses.items() if not k.startswith("2"))
        out.append(
            f"| {p.database} | {p.server} | {p.name} | {o.n:,} | {_f(o.p50)} | {_f(o.p90)} | {_f(o.p99)} | "
            f"{_f(o.p999)} | {_f(o.max)} | {_f(o.p99_sched)} | {ratio} | {_f(c.p50)} | {_f(c.p99)} | {_f(h.p50)} | "
            f"{_f(h.p99)} | {_f(r.p50)} | {_f(r.p99)} | {rratio} | {bad} | {p.server_cpu:.0%} | "
            f"{p.market_events_per_s:.0f} | {p.other_cores:.2f} |"
        )
    out += [
        "",
        "“server CPU”: the server process's CPU time per wall second (100% = one core). “other processes' CPU”: cores "
        "kept busy by processes that are not the benchmark's (server, its PostgreSQL backends, the victim client, wrk) "
        "during the phase, from /proc/stat: on this shared VM, above ~0.2 a neighbour was running and that phase's "
        "latencies are suspect.",
    ]
    out += ["", "Attacks:", ""]
    for p in phases:
        if p.hammer:
            hm = p.hammer
            out.append(
                f"- {p.database}/{p.server}/{p.name}: {p.attack}: {hm['per_second']:,.0f} attempts/s answered "
                f"(statuses {_statuses(hm['statuses'])}; socket errors {hm['socket_errors']}), attacker p50 "
                f"{hm['p50_ms']:.1f} ms, p99 {hm['p99_ms']:.1f} ms."
            )
        if p.stops:
            s = p.stops
            out.append(
                f"- {p.database}/{p.server}/{p.name}: {p.attack}: {s['open_stops']} open stops (limit "
                f"max_open_orders {s['max_open_orders']}, placed in {s['placed_seconds']} s at under "
                f"{s['max_orders_per_second']}/s; POST statuses {s['post_statuses']}); {s['extra_sent']} more sent "
                f"(POST statuses {s['extra_post_statuses']}): {s['rejected']} rejected by the broker "
                f"(rejected while placing: {s['rejected_while_placing']}); reasons: {'; '.join(s['reasons'])}."
            )
    envs = {p.server: p.env for p in phases}
    out += ["", "Server settings beyond the defaults:", ""]
    for name, env in envs.items():
        out.append(f"- `{name}`: " + (", ".join(f"`{k}={v}`" for k, v in env.items()) or "none (platform defaults)"))
    out.append("")
    worst = max(
        (
            p.stats["order"].p99 / baselines[(p.database, p.server)].stats["order"].p99
            for p in phases
            if p.name != "baseline" and (p.database, p.server) in baselines
        ),
        default=float("nan"),
    )
    out.append(
        f"Target p99(attack) ≤ 2 × p99(baseline): worst ratio {worst:.2f} — {'met' if worst <= 2 else 'NOT met'}."
    )
    out.append("")
    return "\n".join(out)


def write_json(path: Path, info: dict[str, str], args: argparse.Namespace, phases: list[Phase]) -> None:
    data = {"info": info, "args": {k: str(v) for k, v in vars(args).items()}, "phases": [asdict(p) for p in phases]}
    path.write_text(json.dumps(data, indent=1))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--victim-worker":
        victim_worker(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--databases", default="sqlite", help="comma-separated: sqlite, postgres")
    ap.add_argument("--servers", default="defaults,flood", help="comma-separated: defaults, flood")
    ap.add_argument("--phases", default=None, help="only these phases (comma-separated), baseline always kept")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring, per phase")
    ap.add_argument("--speed", default="1", help="replay speed (×real time; 1 ≈ 43 trades/s)")
    ap.add_argument("--victim-clients", type=int, default=4, help="victim order clients (one account each)")
    ap.add_argument("--victim-rate", type=float, default=5.0, help="orders per second per victim client")
    ap.add_argument("--read-rate", type=float, default=20.0, help="health and account reads per second (each)")
    ap.add_argument("--hammer-clients", type=int, default=20, help="wrk connections sending wrong passwords")
    ap.add_argument("--extra-stops", type=int, default=10, help="stops sent beyond the limit (must be rejected)")
    ap.add_argument(
        "--stops",
        type=int,
        default=None,
        help="the attacker's stops (default: its max_open_orders; needed for builds without limits)",
    )
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="setting for every server")
    ap.add_argument("--flood-env", action="append", default=[], metavar="KEY=VALUE", help="more for 'flood'")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy raw stacks of each attack phase here")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    ap.add_argument("--report", type=Path, default=None, help="print the report of a --json file and exit")
    args = ap.parse_args()
    if args.report is not None:
        data = json.loads(args.report.read_text())
        saved = [Phase(**{**d, "stats": {k: Stats(**v) for k, v in d["stats"].items()}}) for d in data["phases"]]
        for key in ("speed", "victim_clients", "victim_rate", "read_rate", "warmup", "duration"):
            setattr(args, key, type(getattr(args, key))(data["args"][key]))
        print(markdown(data["info"], saved, args, "python benchmarks/dos_bench.py " + data["args"].get("argv", "")))
        return
    args.argv = " ".join(sys.argv[1:])
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    if not TRADES.exists():
        sys.exit(f"missing {TRADES}")
    common = dict(kv.split("=", 1) for kv in args.env)
    flood = {**FLOOD_ENV, **dict(kv.split("=", 1) for kv in args.flood_env)}
    wanted = None if args.phases is None else {"baseline", *args.phases.split(",")}
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="dos-bench-") as tmp:
        for database in args.databases.split(","):
            for server_name in args.servers.split(","):
                env = common if server_name == "defaults" else {**common, **flood}
                names = [n for n in PHASES[server_name] if wanted is None or n in wanted]
                if names == ["baseline"]:
                    continue
                print(f"{database}/{server_name}: starting ...", file=sys.stderr, flush=True)
                server = Server(database, server_name, Path(tmp), args.speed, env)
                try:
                    users = prepare(server, args.victim_clients)
                    for name in names:
                        print(f"{database}/{server_name}/{name} ...", file=sys.stderr, flush=True)
                        p = run_phase(server, server_name, users, name, args, Path(tmp))
                        o = p.stats["order"]
                        print(
                            f"  order p50 {o.p50:.1f} p99 {o.p99:.1f} max {o.max:.1f} ms (n {o.n}); health p99 "
                            f"{p.stats['health'].p99:.1f}; read p99 {p.stats['read'].p99:.1f}; cancel p99 "
                            f"{p.stats['cancel'].p99:.1f}; cpu {p.server_cpu:.0%}; events/s "
                            f"{p.market_events_per_s:.0f}; hammer {p.hammer}",
                            file=sys.stderr,
                            flush=True,
                        )
                        phases.append(p)
                        if args.json is not None:  # after every phase: a run cut short keeps what it measured
                            write_json(args.json, machine(), args, phases)
                finally:
                    server.stop()
    command = "python benchmarks/dos_bench.py " + " ".join(sys.argv[1:])
    info = machine()
    print(markdown(info, phases, args, command.strip()))
    if args.json is not None:
        write_json(args.json, info, args, phases)


if __name__ == "__main__":
    main()
