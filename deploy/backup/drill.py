"""The restore drill: backup → disaster → restore on a throwaway PostgreSQL 15 cluster, measuring RPO and RTO.

Nothing here touches the machine's own PostgreSQL or Redis: the drill makes its own cluster (``initdb`` in a temporary
folder, port 55432, Unix socket only, WAL archived by pgBackRest into a temporary, encrypted repository), its own
Redis (on a free port of 127.0.0.1, no persistence) and its own ``SMART_TRADER_HOME``, and runs the real platform on
them (``smart-trader serve --role api|feed|worker`` on free ports of 127.0.0.1, the feed replaying the packaged sample
of real Binance bars from the Parquet store). Every backup and restore step is one of the scripts beside this file.

1. Activity (a user, an account, market orders that fill, a resting limit order, the audit chain the worker writes),
   a full backup, more activity, a differential backup, more, an incremental one; a files snapshot (the Parquet
   store and an audit export) with its manifest.
2. Full restore: stop the platform, hash the state (``state_hash.py``), make a logical dump (``pg-dump.sh``), wipe
   PGDATA and the Parquet folder, restore (``pg-pitr-restore.sh --latest``, ``files-restore.sh``): the hash must be
   identical; the logical dump restored into a new database must hash the same too. RTO is measured to ``/ready``.
3. Disaster with loss: trade, note a time T, trade on while WAL is archived (``archive_timeout``) and most of one
   more archive cycle (``--loss-window``, so the disaster strikes late in the cycle), then kill -9 everything and
   wipe. Restore to the end of the archive: RPO is the time between the disaster and the last transaction recovered
   (PostgreSQL logs it at the end of recovery); RTO is the time from the disaster to ``/ready`` on every role.
4. Point-in-time restore to T: the state at T comes back (its hash as taken at T; the orders placed before T present,
   those after absent).

Prints ``RPO=<s> s RTO=<s> s`` lines and exits 1 when a check fails or RPO ≥ 300 s or RTO ≥ 900 s (the ``002``/``003``
targets). Usage (as root it runs PostgreSQL as the ``postgres`` OS user)::

    .venv/bin/python deploy/backup/drill.py [--workdir DIR] [--keep] [--archive-timeout 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import state_hash  # noqa: E402  (the sibling script, imported as a module)

RPO_TARGET_S = 300.0
RTO_TARGET_S = 900.0
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = os.environ.get("PG_OS_USER", "postgres")
SYMBOL, VENUE = "BTC/USDT:USDT", "BINANCE"
DB_PARTS = tuple(p for p in state_hash.PARTS if p != "files")


def log(msg: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def as_pg(args: list[str]) -> list[str]:
    """``args`` run as the PostgreSQL OS user when we are root (initdb, postgres and pgBackRest refuse root)."""
    return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else args


def pg(tool: str, *args: str) -> list[str]:
    """A PostgreSQL client or server program of :data:`PG_BIN` with ``args``, as the PostgreSQL OS user."""
    return as_pg([str(PG_BIN / tool), *args])


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now (other work on the machine may hold the usual ones)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run a command; returns its stdout; on failure raises with its output."""
    proc = subprocess.run(args, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def until(check: Callable[[], bool], seconds: float, what: str, every: float = 0.2) -> float:
    """Poll ``check()`` until true; returns the time it took; raises after ``seconds``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise TimeoutError(f"{what}: not within {seconds} s")
        time.sleep(every)
    return time.monotonic() - start


@dataclass
class Cluster:
    """The throwaway PostgreSQL cluster and its pgBackRest stanza."""

    work: Path
    port: int
    archive_timeout: int
    pgdata: Path = field(init=False)
    sock: Path = field(init=False)
    log_file: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.pgdata = self.work / "pgdata"
        self.sock = self.work / "sock"
        self.log_file = self.work / "postgresql.log"
        pgbr = self.work / "pgbackrest"
        self.env = {
            "PGDATA": str(self.pgdata),
            "PGPORT": str(self.port),
            "PGBR_PG_SOCKET": str(self.sock),
            "PGBR_CONFIG": str(pgbr / "pgbackrest.conf"),
            "PGBR_STANZA": "drill",
            "PGBR_REPO_PATH": str(pgbr / "repo"),
            "PGBR_SPOOL_PATH": str(pgbr / "spool"),
            "PGBR_LOG_PATH": str(pgbr / "log"),
            "PGBR_LOCK_PATH": str(pgbr / "lock"),
            "PGBR_CIPHER_PASS": secrets.token_urlsafe(48),
            "PGBR_ARCHIVE_TIMEOUT": str(self.archive_timeout),
            "PGBR_PROCESS_MAX": "1",
            "PG_OS_USER": PG_USER,
            "PATH": f"{PG_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def url(self, db: str = "smart_trader", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@/{db}?host={self.sock}&port={self.port}"

    def create(self) -> None:
        for d in (self.pgdata, self.sock):
            d.mkdir(mode=0o700, parents=True)
        (self.work / "pgbackrest").mkdir(mode=0o755)  # its config is readable by the PostgreSQL user's group only
        self.log_file.touch(mode=0o600)
        if subprocess.run(as_pg(["test", "-x", str(self.work)]), check=False).returncode != 0:
            raise RuntimeError(f"the {PG_USER} OS user cannot reach {self.work}: choose a --workdir under /tmp")
        if os.geteuid() == 0:
            for d in (self.pgdata, self.sock, self.log_file):
                shutil.chown(d, PG_USER)
        initdb = ["-U", "postgres", "--auth=trust", "--data-checksums", "-E", "UTF8", "--locale=C"]
        run(pg("initdb", *initdb, "-D", str(self.pgdata)))
        self.pgbackrest("render-config")
        archive_conf = self.work / "pgbackrest" / "postgresql-archive.conf"
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write(
                f"\n# the restore drill's throwaway cluster: Unix socket only\nport = {self.port}\n"
                f"listen_addresses = ''\nunix_socket_directories = '{self.sock}'\nunix_socket_permissions = 0700\n"
                f"timezone = 'UTC'\nlog_timezone = 'UTC'\nmax_connections = 100\ninclude '{archive_conf}'\n"
            )
        self.start()
        run(pg("psql", *self.conn_args("postgres"), "-q", "-c", "CREATE DATABASE smart_trader"))
        self.pgbackrest("stanza-create")
        self.pgbackrest("check")

    def pgbackrest(self, *args: str) -> str:
        return run(["bash", str(HERE / "pgbackrest.sh"), *args], self.env)

    def start(self) -> None:
        """Start the server and wait until it accepts connections and has left recovery (a restore promotes)."""
        run(pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "600", "start"))
        until(lambda: self.sql("SELECT pg_is_in_recovery()", "postgres") == "f", 600, "PostgreSQL leaves recovery")

    def stop(self, mode: str = "fast") -> None:
        run(pg("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop"), check=False)

    def conn_args(self, db: str) -> list[str]:
        return ["-X", "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", db]

    def sql(self, query: str, db: str = "smart_trader") -> str:
        out = run(pg("psql", *self.conn_args(db), "-At", "-c", query), check=False)
        return out.strip()

    def wipe(self) -> None:
        """The disaster: PGDATA's content is gone (the folder stays, owned by the PostgreSQL user)."""
        for child in self.pgdata.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def restore(self, *args: str) -> None:
        run(["bash", str(HERE / "pg-pitr-restore.sh"), *args], self.env)

    def last_recovered_commit(self, since: int) -> dt.datetime:
        """The time PostgreSQL logged as its last completed transaction at the end of recovery (log bytes from
        offset ``since``)."""
        text = self.log_file.read_bytes()[since:].decode(errors="replace")
        found = re.findall(r"last completed transaction was at log time (\S+ \S+)", text)
        if not found:
            raise AssertionError(f"no 'last completed transaction' line in the recovery log:\n{text[-3000:]}")
        return dt.datetime.fromisoformat(found[-1].replace("+00", "+00:00"))


@dataclass
class Platform:
    """The platform's three roles and the private Redis, on the drill's cluster and home."""

    work: Path
    cluster: Cluster
    ports: tuple[int, int, int]
    redis_port: int
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.work / "home"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.cluster.url(),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SECRET_KEY": self.secret_key,
            "SMART_TRADER_HOME": str(self.home),
            "LOG_JSON": "true",
        }

    def cli(self) -> list[str]:
        return [sys.executable, "-m", "smart_trader.cli.main"]

    def import_sample(self) -> None:
        from smart_trader.samples import DEFAULT_SAMPLE

        for file in DEFAULT_SAMPLE.files:
            run([*self.cli(), "data", "import", str(file), "--symbol", SYMBOL, "--venue", VENUE], self.env)

    def _spawn(self, name: str, args: list[str]) -> None:
        out = (self.work / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(args, env={**os.environ, **self.env}, stdout=out, stderr=out)

    def start(self) -> None:
        """Start Redis (empty: it is a transport, rebuilt from the database's outbox) and the three roles."""
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        until(
            lambda: run(["redis-cli", "-p", str(self.redis_port), "ping"], check=False).strip() == "PONG",
            10,
            "redis answers",
        )
        feed = ["--store", "--symbol", SYMBOL, "--venue", VENUE, "--kind", "bars", "--timeframe", "1m"]
        feed += ["--speed", "60", "--loop"]
        for (role, extra), port in zip((("api", []), ("feed", feed), ("worker", [])), self.ports, strict=True):
            self._spawn(
                role, [*self.cli(), "serve", "--role", role, *extra, "--host", "127.0.0.1", "--port", str(port)]
            )

    def wait_ready(self, timeout: float = 600) -> None:
        for role, port in zip(("api", "feed", "worker"), self.ports, strict=True):

            def ready(role: str = role, port: int = port) -> bool:
                proc = self.procs[role]
                if proc.poll() is not None:
                    tail = (self.work / f"{role}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{role} exited with {proc.returncode}:\n{tail}")
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            until(ready, timeout, f"{role} /ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for name in ("api", "feed", "worker", "redis"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class Trader:
    """A user of the platform placing orders through the API."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.client = httpx.Client(base_url=api, timeout=15)
        email, password = "drill@example.com", "drill-" + secrets.token_hex(12)
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = self.client.post("/api/v1/auth/token", data={"username": email, "password": password})
        assert r.status_code == 200, r.text
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = self.client.post(
            "/api/v1/accounts", json={"name": "drill", "starting_balance": "100000", "currency": "USDT"}
        )
        assert r.status_code == 201, r.text
        self.account = str(r.json()["id"])

    def order(self, side: str, **ticket: str) -> dict[str, Any]:
        body = {"symbol": SYMBOL, "venue": VENUE, "side": side, "type": "market", "qty": "0.01", **ticket}
        r = self.client.post(f"/api/v1/accounts/{self.account}/orders", json=body)
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()
        return order

    def status(self, order_id: str) -> str:
        r = self.client.get(f"/api/v1/accounts/{self.account}/orders/{order_id}")
        return str(r.json()["status"]) if r.status_code == 200 else f"http {r.status_code}"

    def has_status(self, order_id: str, status: str) -> bool:
        return self.status(order_id) == status

    def trade(self, n: int) -> list[str]:
        """Make ``n`` round trips (a market buy, then a market sell of the same quantity), waiting until each order is
        filled; their ids. The account is flat afterwards: its equity no longer moves with the price (a new high
        would update its high-water mark), so the state holds still while nobody trades."""
        ids = []
        for k in range(2 * n):
            oid = str(self.order("buy" if k % 2 == 0 else "sell")["id"])
            until(partial(self.has_status, oid, "filled"), 30, f"order {oid} filled")
            ids.append(oid)
        return ids


def audit_drained(url: str) -> Callable[[], bool]:
    """A check: every outbox event of the audit consumer's streams is in the audit chain (the worker caught up)."""
    from sqlalchemy import func, select

    from smart_trader.app.workers import consumers
    from smart_trader.db.engine import make_engine
    from smart_trader.db.outbox import outbox
    from smart_trader.workers.tables import consumed

    audit = next(c for c in consumers() if c.name == "audit")

    def check() -> bool:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                total = conn.execute(
                    select(func.count()).where(outbox.c.stream.in_(audit.streams), outbox.c.event_id.is_not(None))
                ).scalar_one()
                done = conn.execute(select(func.count()).where(consumed.c.consumer == "audit")).scalar_one()
        finally:
            engine.dispose()
        return int(total) > 0 and int(done) == int(total)

    return check


def orders_present(url: str, ids: list[str]) -> set[str]:
    from sqlalchemy import select

    from smart_trader.db.engine import make_engine
    from smart_trader.execution.tables import orders

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(select(orders.c.id).where(orders.c.id.in_(ids)))}
    finally:
        engine.dispose()


@contextmanager
def timed(what: str, durations: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    yield
    durations[what] = time.monotonic() - start
    log(f"{what}: {durations[what]:.1f} s")


def scripts_env(cluster: Cluster, platform: Platform, backups: Path) -> dict[str, str]:
    return {
        **cluster.env,
        **platform.env,
        "BACKUP_DIR": str(backups),
        "SMART_TRADER": str(Path(sys.executable).parent / "smart-trader"),
        "DATABASE_URL": cluster.url(driver="postgresql"),
    }


def drill(work: Path, archive_timeout: int, loss_window: float) -> dict[str, float]:
    results: dict[str, float] = {}
    cluster = Cluster(work, 55432, archive_timeout)
    platform = Platform(work, cluster, (free_port(), free_port(), free_port()), free_port())
    backups = work / "backups"
    env = scripts_env(cluster, platform, backups)
    url = cluster.url()
    try:
        with timed("setup (initdb, stanza, sample import, platform start)", results):
            cluster.create()
            platform.import_sample()
            platform.start()
            platform.wait_ready()
        trader = Trader(platform.api)
        resting = str(trader.order("buy", type="limit", limit_price="1")["id"])  # never fills: an open order
        first = trader.trade(2)
        until(audit_drained(url), 60, "audit chain caught up")
        with timed("full backup (pgBackRest)", results):
            cluster.pgbackrest("backup", "full")
        with timed("files backup (Parquet store + audit export)", results):
            snapshot = Path(run(["bash", str(HERE / "files-backup.sh")], env).strip().splitlines()[-1])
        second = trader.trade(2)
        with timed("differential backup", results):
            cluster.pgbackrest("backup", "diff")
        third = trader.trade(2)
        with timed("incremental backup", results):
            cluster.pgbackrest("backup", "incr")
        fourth = trader.trade(1)
        until(audit_drained(url), 60, "audit chain caught up")
        log(cluster.pgbackrest("info").strip())

        # --- 2. full restore: the state hash survives backup → wipe → restore ---
        platform.stop()
        before = state_hash.state(url, platform.home)
        log(f"state before: {before['state_sha256']} " + str({k: v["rows"] for k, v in before["parts"].items()}))
        assert before["parts"]["orders"]["rows"] == 1 + len(first + second + third + fourth)
        assert before["parts"]["audit"]["records"] > 0 and before["parts"]["files"]["rows"] > 0
        with timed("logical backup (pg_dump -Fc)", results):
            dump = run(["bash", str(HERE / "pg-dump.sh")], env).strip().splitlines()[-1]
        cluster.pgbackrest("check")  # the last WAL segment is in the repository
        declared = time.monotonic()
        cluster.stop("immediate")
        cluster.wipe()
        shutil.rmtree(platform.home / "market-data")
        with timed("restore 1: pgBackRest restore (end of archive)", results):
            cluster.restore("--latest")
        with timed("restore 1: files restore (manifest verified)", results):
            run(["bash", str(HERE / "files-restore.sh"), str(snapshot)], env)
        with timed("restore 1: PostgreSQL start and WAL replay", results):
            cluster.start()
        after = state_hash.state(url, platform.home)
        log(f"state after:  {after['state_sha256']}")
        assert after == before, f"state differs after the restore:\n{before}\n{after}"
        with timed("logical restore (pg_restore into a new database)", results):
            run(
                ["bash", str(HERE / "pg-restore.sh"), dump],
                {**env, "TARGET_DATABASE_URL": cluster.url("smart_trader_logical", "postgresql"), "CREATE_DB": "1"},
            )
        logical = state_hash.state(cluster.url("smart_trader_logical"), platform.home, DB_PARTS)
        assert logical["parts"] == {p: before["parts"][p] for p in DB_PARTS}, "the logical restore differs"
        platform.start()
        platform.wait_ready()
        results["RTO full restore (s)"] = time.monotonic() - declared
        log(
            f"full restore: state hash identical ({after['state_sha256']}), logical dump identical; "
            f"RTO={results['RTO full restore (s)']:.1f} s"
        )
        assert trader.status(resting) == "accepted", "the resting order did not survive the restore"
        trader.trade(1)  # the restored platform trades
        with timed("full backup after the restore (new timeline)", results):
            cluster.pgbackrest("backup", "full")

        # --- 3. disaster: everything after the last archived WAL is lost; RPO and RTO measured ---
        batch_a = trader.trade(2)
        until(audit_drained(url), 60, "audit chain caught up")
        time.sleep(1)
        at_t = state_hash.state(url, platform.home)
        target = dt.datetime.now(dt.UTC)
        time.sleep(1)
        again = state_hash.state(url, platform.home)
        moved = {
            p: (at_t["parts"][p], again["parts"][p]) for p in at_t["parts"] if at_t["parts"][p] != again["parts"][p]
        }
        assert not moved, f"the state moved without orders: cannot pin the state at T: {moved}"
        log(f"T = {target.isoformat()}, state at T {at_t['state_sha256']}")
        batch_b: list[str] = []
        placed_ns: dict[str, int] = {}

        def archived_past_t() -> bool:
            oid = trader.order("buy" if len(batch_b) % 2 == 0 else "sell")
            batch_b.append(str(oid["id"]))
            placed_ns[str(oid["id"])] = int(oid["created_ns"])
            last = cluster.sql("SELECT extract(epoch FROM last_archived_time) FROM pg_stat_archiver")
            return bool(last) and float(last) > target.timestamp() + 1

        with timed("trading until the WAL holding T is archived", results):
            until(archived_past_t, archive_timeout * 3 + 60, "WAL after T archived", every=2.0)
        # trading goes on for most of an archive cycle: the disaster strikes late in it, near the worst case
        stop_at = time.monotonic() + loss_window
        while time.monotonic() < stop_at:
            oid = trader.order("buy" if len(batch_b) % 2 == 0 else "sell")
            batch_b.append(str(oid["id"]))
            placed_ns[str(oid["id"])] = int(oid["created_ns"])
            time.sleep(1)
        log("DISASTER: every process killed, PGDATA and the Parquet store wiped")
        disaster = dt.datetime.now(dt.UTC)
        declared = time.monotonic()
        platform.stop(signal.SIGKILL)
        cluster.stop("immediate")
        cluster.wipe()
        shutil.rmtree(platform.home / "market-data")
        log_offset = cluster.log_file.stat().st_size
        with timed("restore 2: pgBackRest restore (end of archive)", results):
            cluster.restore("--latest")
        with timed("restore 2: files restore", results):
            run(["bash", str(HERE / "files-restore.sh"), str(snapshot)], {**env, "FORCE": "1"})
        with timed("restore 2: PostgreSQL start and WAL replay", results):
            cluster.start()
        platform.start()
        platform.wait_ready()
        rto = time.monotonic() - declared
        recovered = cluster.last_recovered_commit(log_offset)
        restored = state_hash.state(url, platform.home)  # the audit chain verifies (it raises when broken)
        log(f"state after the disaster's restore: {restored['parts']['audit']['records']} audit records, chain intact")
        rpo = (disaster - recovered).total_seconds()
        kept = orders_present(url, batch_b)
        lost = [o for o in batch_b if o not in kept]
        assert set(batch_a) <= orders_present(url, batch_a), "orders committed before T were lost"
        results["RPO (s)"], results["RTO (s)"] = rpo, rto
        now_ns = disaster.timestamp() * 1e9
        window = [(now_ns - placed_ns[o]) / 1e9 for o in lost]
        log(
            f"after the disaster at {disaster.isoformat()}: last transaction recovered {recovered.isoformat()}; "
            f"{len(kept)} of the {len(batch_b)} orders placed after T recovered, {len(lost)} lost"
            + (f" (placed {max(window):.1f} s to {min(window):.1f} s before the disaster)" if lost else "")
        )
        print(
            f"RPO={rpo:.1f} s RTO={rto:.1f} s (disaster → last archived transaction recovered; disaster → /ready "
            f"on every role)",
            flush=True,
        )

        # --- 4. point-in-time restore to T ---
        platform.stop()
        declared = time.monotonic()
        cluster.stop("fast")
        cluster.wipe()
        with timed("restore 3: pgBackRest restore to T", results):
            cluster.restore("--time", target.isoformat(sep=" "))
        run(["bash", str(HERE / "files-restore.sh"), str(snapshot)], {**env, "FORCE": "1"})
        with timed("restore 3: PostgreSQL start and WAL replay to T", results):
            cluster.start()
        pitr = state_hash.state(url, platform.home)
        assert pitr == at_t, f"the state restored to T differs from the state at T:\n{at_t}\n{pitr}"
        assert set(batch_a) <= orders_present(url, batch_a), "orders before T missing after the restore to T"
        assert not orders_present(url, batch_b), "orders placed after T are present after the restore to T"
        platform.start()
        platform.wait_ready()
        results["RTO point-in-time restore (s)"] = time.monotonic() - declared
        print(
            f"PITR: state at T identical ({pitr['state_sha256']}); {len(batch_a)} orders before T present, "
            f"{len(batch_b)} after T absent; RTO={results['RTO point-in-time restore (s)']:.1f} s",
            flush=True,
        )
    finally:
        platform.stop(signal.SIGKILL)
        cluster.stop("immediate")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where the throwaway cluster lives (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, repository) afterwards")
    parser.add_argument("--archive-timeout", type=int, default=60, help="archive_timeout of the cluster, seconds")
    parser.add_argument(
        "--loss-window",
        type=float,
        help="seconds of trading between the archiving of T's WAL and the disaster (default 0.8 × archive timeout)",
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        if args.workdir.exists() and any(args.workdir.iterdir()):
            parser.error(f"--workdir {args.workdir} is not empty")
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="st-drill-"))
    work.chmod(0o755)  # the PostgreSQL user must reach its folders inside
    started = time.monotonic()
    try:
        loss_window = args.loss_window if args.loss_window is not None else 0.8 * args.archive_timeout
        results = drill(work, args.archive_timeout, loss_window)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    results["drill total (s)"] = time.monotonic() - started
    for what, seconds in results.items():
        print(f"  {what}: {seconds:.1f}")
    rpo, rto = results["RPO (s)"], results["RTO (s)"]
    print(f"RPO={rpo:.1f} s RTO={rto:.1f} s (targets: RPO < {RPO_TARGET_S:.0f} s, RTO < {RTO_TARGET_S:.0f} s)")
    if rpo >= RPO_TARGET_S or rto >= RTO_TARGET_S:
        print("FAILED: over the target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
