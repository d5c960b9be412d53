"""WebSocket fan-out benchmark: one uvicorn process, thousands of connections, quote messages at a fixed rate.

A server subprocess (uvicorn, one worker, uvloop + httptools, websockets-sansio, no permessage-deflate) serves
the real ``/ws`` router with a :class:`~smart_trader.gateway.hub.Hub` and a publisher task that publishes quote
messages (``{"type": "quote", ..., "ts_sent": <time.time_ns()>}``) round-robin over ``--symbols`` instruments.
Client processes (``--clients``, the ``websockets`` asyncio client on uvloop) open ``--connections`` WebSocket
connections, each subscribed to one symbol's quotes (``connections / symbols`` per symbol), so the publish rate
is ``rate * symbols / connections`` and the server delivers ``--rate`` messages per second in all.

Measured over ``--duration`` seconds once every connection is subscribed (after ``--warmup`` s): delivered
messages/s, delivery latency (client receive time − publish timestamp, same machine clock; it includes the
client's own queueing, since clients share the CPU with the server), server CPU, dropped connections.

The clients run ``gc.collect(); gc.freeze()`` once connected, so their own full collections stay out of the
figures; the server's collector is untouched (``--gc-freeze`` does the same in the server once everyone is
connected) and the table shows its gen-2 pauses during the measured window.

``--redis URL`` routes the hub server's publishing through a :class:`~smart_trader.gateway.redis_bus.RedisBus`.
``--server bare`` runs the same protocol on a plain ``websockets`` server (no ASGI, no hub: a dict of sets and
``websockets.broadcast``) as a baseline of what the transport itself costs.

    .venv/bin/python benchmarks/ws_bench.py --connections 5000 --rate 20000 --duration 15 [--server hub|bare|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

TOKEN = "bench-token"
CONNECT_CONCURRENCY = 100


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def symbol_names(count: int) -> list[str]:
    return [f"S{i:04d}/USDT" for i in range(count)]


# -- server --------------------------------------------------------------------------------------------------


async def publisher(publish: Any, symbols: int, rate: float) -> None:
    """Publish ``rate`` quote messages/s round-robin over the symbols, catching up after late wake-ups."""
    topics = [f"quotes.{s}.BENCH" for s in symbol_names(symbols)]
    interval_ns = int(1e9 / rate)
    next_ns = time.monotonic_ns()
    seq = 0
    while True:
        now = time.monotonic_ns()
        while next_ns <= now:
            topic = topics[seq % symbols]
            message = orjson.dumps(
                {
                    "type": "quote",
                    "topic": topic,
                    "bid": "64123.10",
                    "ask": "64123.20",
                    "bid_size": "1.250",
                    "ask_size": "0.840",
                    "seq": seq,
                    "ts_sent": time.time_ns(),
                }
            ).decode()
            publish(topic, message)
            seq += 1
            next_ns += interval_ns
        await asyncio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))


def watch_gc() -> None:
    """Time the garbage collector's pauses between SIGUSR1 (reset) and SIGUSR2 (write to $BENCH_STATS, JSON).

    With ``BENCH_GC_FREEZE=1``, SIGHUP (sent once every client is connected) runs ``gc.collect(); gc.freeze()``.
    """

    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    def reset(*_: Any) -> None:
        pauses.clear()

    def report(*_: Any) -> None:
        stats = {
            str(g): [sum(1 for gen, _ in pauses if gen == g), max((p for gen, p in pauses if gen == g), default=0)]
            for g in range(3)
        }
        Path(os.environ["BENCH_STATS"]).write_text(json.dumps(stats))

    def freeze(*_: Any) -> None:
        gc.collect()
        gc.freeze()

    gc.callbacks.append(timer)
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        signal.signal(signal.SIGHUP, freeze)
    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, report)


def serve_hub(port: int, symbols: int, publish_rate: float) -> None:
    """The real stack: FastAPI + the /ws router + Hub under uvicorn (uvloop, httptools, websockets-sansio)."""
    from contextlib import asynccontextmanager

    import uvicorn
    from fastapi import FastAPI

    from smart_trader.gateway.hub import Hub
    from smart_trader.gateway.redis_bus import RedisBus
    from smart_trader.gateway.ws import router

    redis_url = os.environ.get("BENCH_REDIS_URL", "")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        bus = RedisBus(redis_url, app.state.hub, prefix=f"ws-bench-{os.getpid()}:") if redis_url else None
        if bus is not None:
            await bus.start()
        task = asyncio.create_task(publisher(app.state.hub.publish, symbols, publish_rate))
        yield
        task.cancel()
        if bus is not None:
            await bus.stop()

    watch_gc()
    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    app.state.hub = Hub(queue_size=1000)

    async def authenticate(token: str) -> str | None:
        return "bench" if token == TOKEN else None

    async def account_owner(account_id: str) -> str | None:
        return None

    app.state.authenticate = authenticate
    app.state.account_owner = account_owner
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=os.environ.get("BENCH_DEFLATE") == "1",
        log_level="warning",
        backlog=4096,
    )


def serve_bare(port: int, symbols: int, publish_rate: float) -> None:
    """Baseline: a plain websockets server, same protocol, ``websockets.broadcast`` to a dict of sets."""
    import uvloop
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    topics: dict[str, set[ServerConnection]] = {}

    def publish(topic: str, message: str) -> None:
        conns = topics.get(topic)
        if conns:
            broadcast(conns, message)

    async def handler(ws: ServerConnection) -> None:
        subscribed: set[str] = set()
        with contextlib.suppress(ConnectionClosed):
            await serve_connection(ws, subscribed)
        for topic in subscribed:
            topics[topic].discard(ws)

    async def serve_connection(ws: ServerConnection, subscribed: set[str]) -> None:
        async for raw in ws:
            request = orjson.loads(raw)
            topic = f"quotes.{request['symbol']}.{request['venue']}"
            topics.setdefault(topic, set()).add(ws)
            subscribed.add(topic)
            await ws.send(orjson.dumps({"type": "subscribed", "topic": topic}).decode())

    watch_gc()

    async def main() -> None:
        compression = "deflate" if os.environ.get("BENCH_DEFLATE") == "1" else None
        async with serve(handler, "127.0.0.1", port, compression=compression, backlog=4096):
            await publisher(publish, symbols, publish_rate)

    uvloop.run(main())


# -- clients -------------------------------------------------------------------------------------------------


@dataclass
class ClientReport:
    connected: int
    failed: int
    closed: int
    latencies_ns: bytes
    received_total: int
    cpu_s: float


def client_main(uri: str, symbols: list[str], conn: Connection, deflate: bool) -> None:
    """One client process: open one connection per entry of ``symbols``, then record latencies in the window."""
    import uvloop

    raise_fd_limit()
    uvloop.run(_client(uri, symbols, conn, deflate))


async def _client(uri: str, symbols: list[str], pipe: Connection, deflate: bool) -> None:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed

    window = [0, 0]  # [start_ns, end_ns] once known
    latencies = array("q")
    stats = {"failed": 0, "closed": 0, "received": 0}
    conns: list[ClientConnection] = []
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(symbol: str) -> None:
        async with semaphore:
            for attempt in range(5):
                try:
                    ws = await connect(
                        uri,
                        compression="deflate" if deflate else None,
                        ping_interval=None,
                        max_size=2**20,
                        open_timeout=60,
                        close_timeout=1,
                    )
                    await ws.send(
                        orjson.dumps({"op": "subscribe", "channel": "quotes", "symbol": symbol, "venue": "BENCH"})
                    )
                    reply = orjson.loads(await ws.recv())
                    assert reply["type"] == "subscribed", reply
                    conns.append(ws)
                    consumers.append(asyncio.create_task(consume(ws)))  # read from now on: no backlog builds up
                    return
                except (OSError, TimeoutError, ConnectionClosed):
                    await asyncio.sleep(0.2 * (attempt + 1))
            stats["failed"] += 1

    async def consume(ws: ClientConnection) -> None:
        loads = orjson.loads
        now = time.time_ns
        append = latencies.append
        received = 0
        try:
            async for message in ws:
                t = now()
                received += 1
                if window[0] <= t < window[1]:
                    append(t - loads(message)["ts_sent"])
        except ConnectionClosed:
            if not window[1] or time.time_ns() < window[1]:  # closed by the server (dropped) before the end
                stats["closed"] += 1
        finally:
            stats["received"] += received

    consumers: list[asyncio.Task[None]] = []
    await asyncio.gather(*(open_one(s) for s in symbols))
    # The clients are the measuring instrument: keep their own full collections (thousands of connections'
    # objects) out of the latencies.
    gc.collect()
    gc.freeze()
    pipe.send(("connected", len(conns)))
    loop = asyncio.get_running_loop()
    start_ns, end_ns = await loop.run_in_executor(None, pipe.recv)
    window[0], window[1] = start_ns, end_ns
    cpu0 = time.process_time()
    await asyncio.sleep(max(0.0, (end_ns - time.time_ns()) / 1e9) + 0.5)
    cpu = time.process_time() - cpu0
    for ws in conns:
        ws.transport.abort()
    await asyncio.gather(*consumers, return_exceptions=True)
    report = ClientReport(len(conns), stats["failed"], stats["closed"], latencies.tobytes(), stats["received"], cpu)
    pipe.send(("done", report))


# -- orchestration -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port} within {timeout}s")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    stats_file = Path(tempfile.mkdtemp()) / "server-stats.json"
    per_symbol = args.connections / args.symbols
    publish_rate = args.rate / per_symbol
    server = subprocess.Popen(
        [sys.executable, __file__, "_serve", kind, str(port), str(args.symbols), str(publish_rate)],
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
            "BENCH_REDIS_URL": args.redis if kind == "hub" else "",
            "BENCH_DEFLATE": "1" if args.deflate else "0",
            "BENCH_STATS": str(stats_file),
            "BENCH_GC_FREEZE": "1" if args.gc_freeze else "0",
        },
    )
    try:
        wait_listening(port)
        symbols = symbol_names(args.symbols)
        assignment = [symbols[i % args.symbols] for i in range(args.connections)]
        ctx = mp.get_context("spawn")
        pipes: list[Connection] = []
        procs = []
        for c in range(args.clients):
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=client_main,
                args=(f"ws://127.0.0.1:{port}/ws?token={TOKEN}", assignment[c :: args.clients], child, args.deflate),
                daemon=True,
            )
            p.start()
            pipes.append(parent)
            procs.append(p)
        t_connect = time.perf_counter()
        connected = sum(pipe.recv()[1] for pipe in pipes)
        connect_s = time.perf_counter() - t_connect
        if args.gc_freeze:
            server.send_signal(signal.SIGHUP)
        start_ns = time.time_ns() + int(args.warmup * 1e9)
        end_ns = start_ns + int(args.duration * 1e9)
        for pipe in pipes:
            pipe.send((start_ns, end_ns))
        time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9))
        server.send_signal(signal.SIGUSR1)
        cpu0 = proc_cpu_s(server.pid)
        profiler = None
        if args.profile:
            py_spy = Path(sys.executable).with_name("py-spy")
            out = f"{args.profile}-{kind}.txt"
            command = [str(py_spy), "record", "-p", str(server.pid), "-d", str(int(args.duration)), "-f", "raw"]
            profiler = subprocess.Popen([*command, "-o", out], stdout=subprocess.DEVNULL)
        time.sleep(args.duration)
        if profiler is not None:
            profiler.wait(30)
        server_cpu = (proc_cpu_s(server.pid) - cpu0) / args.duration
        server.send_signal(signal.SIGUSR2)
        reports: list[ClientReport] = [pipe.recv()[1] for pipe in pipes]
        for p in procs:
            p.join(10)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    gc_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    latencies: list[int] = []
    for r in reports:
        lat = array("q")
        lat.frombytes(r.latencies_ns)
        latencies.extend(lat)
    latencies.sort()
    ms = 1e6
    return {
        "server": kind,
        "connections": connected,
        "failed": sum(r.failed for r in reports),
        "closed_early": sum(r.closed for r in reports),
        "connect_s": connect_s,
        "publish_rate": publish_rate,
        "target_rate": args.rate,
        "delivered_per_s": len(latencies) / args.duration,
        "p50_ms": percentile(latencies, 0.50) / ms,
        "p99_ms": percentile(latencies, 0.99) / ms,
        "p999_ms": percentile(latencies, 0.999) / ms,
        "max_ms": (latencies[-1] / ms) if latencies else float("nan"),
        "mean_ms": (statistics.fmean(latencies) / ms) if latencies else float("nan"),
        "server_cpu": server_cpu,
        "clients_cpu": sum(r.cpu_s for r in reports) / args.duration,
        "gc": gc_stats,
    }


def gc_text(stats: dict[str, list[float]]) -> str:
    if "2" not in stats:
        return "?"
    count, longest = stats["2"]
    return f"{int(count)}" + (f" (max {longest * 1000:.0f} ms)" if count else "")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        kind, port, symbols, publish_rate = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        raise_fd_limit()
        with contextlib.suppress(KeyboardInterrupt):
            (serve_hub if kind == "hub" else serve_bare)(port, symbols, publish_rate)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=20_000, help="messages delivered per second, all clients")
    parser.add_argument("--symbols", type=int, default=100, help="instruments; connections are spread evenly")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds between all connected and measuring")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--server", choices=["hub", "bare", "both"], default="hub")
    parser.add_argument("--deflate", action="store_true", help="negotiate permessage-deflate (off by default)")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="server runs gc.collect(); gc.freeze() once all clients are connected"
    )
    parser.add_argument("--redis", default="", help="route the hub through Redis pub/sub at this URL (hub only)")
    parser.add_argument("--profile", help="record the server with py-spy into PROFILE-<server>.txt (collapsed stacks)")
    args = parser.parse_args()
    if args.connections % args.symbols:
        parser.error("--connections must be a multiple of --symbols")
    limit = raise_fd_limit()
    if limit < args.connections + 100:
        parser.error(f"open-files hard limit {limit} is below {args.connections + 100}")

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}")
    print(
        f"{args.connections} connections over {args.symbols} symbols ({args.connections // args.symbols} per symbol),"
        f" target {args.rate:,.0f} deliveries/s, {args.duration:g} s measured after {args.warmup:g} s warm-up,"
        f" {args.clients} client processes on the same machine\n"
    )
    if args.redis:
        print(f"hub server: publish through Redis pub/sub at {args.redis} (RedisBus), delivered when it comes back\n")
    kinds = ["hub", "bare"] if args.server == "both" else [args.server]
    rows = [run(kind, args) for kind in kinds]
    header = (
        "| server | conns | published/s | delivered/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU"
        " | clients CPU | closed early | server GC gen2 pauses |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        print(
            f"| {r['server']} | {r['connections']} | {r['publish_rate']:,.0f} | {r['delivered_per_s']:,.0f} |"
            f" {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['p999_ms']:.1f} | {r['max_ms']:.1f} |"
            f" {r['server_cpu']:.0%} | {r['clients_cpu']:.0%} | {r['closed_early']} | {gc_text(r['gc'])} |"
        )
    for r in rows:
        if r["failed"]:
            print(f"{r['server']}: {r['failed']} connections failed to open")
        print(f"{r['server']}: {r['connections']} connections opened and subscribed in {r['connect_s']:.1f} s")


if __name__ == "__main__":
    main()
