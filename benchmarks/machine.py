"""What machine a benchmark ran on, for the reports in docs/benchmarks.md: date, cores and CPU, memory, Python, the
commit (with the count of uncommitted changes under ``src/``), one place for every benchmark script."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine(libs: tuple[str, ...] = ()) -> dict[str, str]:
    """``{"date" (UTC), "machine", "python" (with the versions of ``libs``), "commit"}``."""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    )
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    if dirty:
        commit += f" + {len(dirty.splitlines())} uncommitted change(s) under src/"
    python = platform.python_version() + "".join(f"; {lib} {version(lib)}" for lib in libs)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{len(os.sched_getaffinity(0))} cores ({cpu}), {mem_kb / 2**20:.1f} GiB RAM, {platform.system()}",
        "python": python,
        "commit": commit,
    }
