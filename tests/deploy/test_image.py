"""The image (deploy/docker/Dockerfile): lint, the mypyc build route, and (marked ``deploy``) the real thing: built by
a local Docker engine from the stand-in base, run read-only and non-root until its HEALTHCHECK says healthy, in the
embedded mode (``up``) and as one role (``serve --role api``) against the machine's PostgreSQL and Redis.

The engine is started with ``deploy/tools/dockerd.sh`` (no init system here); the base image ``python:3.11-slim`` is
the local stand-in of ``deploy/docker/stand-ins/build.sh`` where no registry is reachable.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from .conftest import DEPLOY, IMAGE, ROOT, docker, run, tool

DOCKER_DIR = DEPLOY / "docker"
STAND_INS = DOCKER_DIR / "stand-ins"
UID = 10001
SCRIPTS = [
    DEPLOY / "tools" / "dockerd.sh",
    STAND_INS / "build.sh",
    STAND_INS / "postgres" / "docker-entrypoint.sh",
    STAND_INS / "redis" / "docker-entrypoint.sh",
]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_wheel = _load(DOCKER_DIR / "build_wheel.py")


# --- fast, static ---


def test_dockerfiles_pass_hadolint() -> None:
    files = [DOCKER_DIR / "Dockerfile", *sorted(STAND_INS.glob("*/Dockerfile"))]
    result = run([tool("hadolint"), "--failure-threshold", "info", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_pass_shellcheck() -> None:
    result = run([tool("shellcheck"), *map(str, SCRIPTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_compiles_exactly_the_makefiles_mypyc_modules() -> None:
    modules = build_wheel.mypyc_modules(ROOT / "Makefile")
    assert "strategy/engine.py" in modules and "execution/paper_broker.py" in modules
    assert len(modules) == len(set(modules)) >= 10
    for m in modules:
        assert (ROOT / "src" / "smart_trader" / m).is_file(), m


def test_the_compiled_wheel_lists_every_added_file_in_record(tmp_path: Path) -> None:
    """The wheel rewrite: platform tag, not purelib, each added file in RECORD with its sha256 (pip checks them)."""
    import zipfile

    pure = tmp_path / "smart_trader-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(pure, "w") as z:
        z.writestr("smart_trader/__init__.py", "")
        z.writestr(
            "smart_trader-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr("smart_trader-0.1.0.dist-info/RECORD", "smart_trader/__init__.py,,\n")
    out = build_wheel.add_to_wheel(pure, {"smart_trader/engine.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"}, tmp_path)
    assert out.name.startswith("smart_trader-0.1.0-cp") and "none-any" not in out.name
    with zipfile.ZipFile(out) as z:
        wheel_meta = z.read("smart_trader-0.1.0.dist-info/WHEEL").decode()
        record = z.read("smart_trader-0.1.0.dist-info/RECORD").decode()
    assert "Root-Is-Purelib: false" in wheel_meta and "py3-none-any" not in wheel_meta
    so_line = next(line for line in record.splitlines() if line.startswith("smart_trader/engine."))
    assert so_line.split(",")[1].startswith("sha256=") and so_line.endswith(",4")


def test_dockerignore_keeps_the_context_to_what_the_build_needs() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    assert lines[0] == "*", "allow-list: everything is excluded first"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "Makefile", "src", "deploy/docker/build_wheel.py"}
    copied = {
        part.rstrip("/")
        for line in (DOCKER_DIR / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    }
    assert copied <= allowed, f"the Dockerfile copies what .dockerignore leaves out: {copied - allowed}"


def test_the_runtime_stage_is_non_root_with_a_healthcheck_and_one_entrypoint() -> None:
    text = (DOCKER_DIR / "Dockerfile").read_text()
    runtime = text.split("\nFROM ")[-1]
    assert f"USER {UID}:{UID}" in runtime
    assert 'ENTRYPOINT ["smart-trader"]' in runtime and "HEALTHCHECK" in runtime and "/health" in runtime
    assert "apt-get" not in runtime and "gcc" not in runtime, "no build tools in the runtime stage"
    assert 'VOLUME ["/var/lib/smart-trader"]' in runtime and "SMART_TRADER_HOME=/var/lib/smart-trader" in runtime


def test_grafana_stand_in_rejects_a_dashboard_whose_data_source_is_not_provisioned(tmp_path: Path) -> None:
    standin = _load(STAND_INS / "grafana" / "grafana_standin.py")
    prov, dashboards = tmp_path / "provisioning", tmp_path / "dashboards"
    (prov / "datasources").mkdir(parents=True)
    (prov / "dashboards").mkdir()
    dashboards.mkdir()
    (prov / "datasources" / "ds.yaml").write_text(
        "apiVersion: 1\ndatasources:\n  - {name: Prometheus, type: prometheus, uid: prom, url: http://prometheus:9090}\n"
    )
    (prov / "dashboards" / "d.yaml").write_text(
        f"apiVersion: 1\nproviders:\n  - {{name: st, type: file, options: {{path: {dashboards}}}}}\n"
    )
    good = {"uid": "ops", "title": "Ops", "panels": [{"datasource": {"type": "prometheus", "uid": "prom"}}]}
    (dashboards / "ops.json").write_text(json.dumps(good))
    sources = standin.load_datasources(prov)
    assert set(standin.load_dashboards(prov, sources)) == {"ops"}
    bad = {"uid": "sec", "title": "Sec", "panels": [{"targets": [{"datasource": {"uid": "loki"}}]}]}
    (dashboards / "sec.json").write_text(json.dumps(bad))
    with pytest.raises(standin.ProvisioningError, match="loki"):
        standin.load_dashboards(prov, sources)
    (dashboards / "sec.json").write_text("{not json")
    with pytest.raises(standin.ProvisioningError, match=r"sec\.json"):
        standin.load_dashboards(prov, sources)


# --- real: the engine, the image, containers ---


def _in_image(env: dict[str, str], image: str, script: str) -> str:
    result = docker(["run", "--rm", "--entrypoint", "python", image, "-c", script], env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def container(image: str, stand_ins: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A unique container name; the container is removed afterwards whatever happened."""
    name = f"st-test-{uuid.uuid4().hex[:8]}"
    yield name, stand_ins
    docker(["rm", "-f", "-v", name], stand_ins, timeout=60)


def _wait_healthy(name: str, env: dict[str, str], timeout: float = 120) -> float:
    started = time.monotonic()
    status = ""
    while time.monotonic() - started < timeout:
        status = docker(["inspect", "-f", "{{.State.Health.Status}}", name], env, timeout=30).stdout.strip()
        if status == "healthy":
            return time.monotonic() - started
        assert status in ("starting", ""), f"{name} is {status}:\n" + docker(["logs", name], env).stderr[-3000:]
        time.sleep(1)
    raise AssertionError(
        f"{name} not healthy after {timeout} s ({status}):\n" + docker(["logs", name], env).stderr[-3000:]
    )


@pytest.mark.deploy
def test_the_hot_path_in_the_image_is_compiled_and_nothing_can_compile(image: str, stand_ins: dict[str, str]) -> None:
    modules = build_wheel.mypyc_modules(ROOT / "Makefile")
    names = [f"smart_trader.{m.removesuffix('.py').replace('/', '.')}" for m in modules]
    out = _in_image(
        stand_ins,
        image,
        "import importlib, json, os, shutil, sysconfig; "
        f"print(json.dumps({{'files': [importlib.import_module(n).__file__ for n in {names!r}], "
        "'uid': os.getuid(), 'gid': os.getgid(), "
        "'compilers': [c for c in ('gcc', 'cc', 'g++', 'clang', 'make', 'x86_64-linux-gnu-gcc-12') "
        "if shutil.which(c)], "
        "'headers': os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))}))",
    )
    facts = json.loads(out)
    assert all(f.endswith(".so") for f in facts["files"]), facts["files"]
    assert len(facts["files"]) == len(modules)
    assert (facts["uid"], facts["gid"]) == (UID, UID)
    assert facts["compilers"] == [] and facts["headers"] is False
    labels = json.loads(docker(["inspect", "-f", "{{json .Config.Labels}}", image], stand_ins).stdout)
    assert labels["org.opencontainers.image.title"] == "smart-trader" and labels["org.opencontainers.image.version"]


@pytest.mark.deploy
def test_up_runs_healthy_read_only_non_root_without_capabilities(container: tuple[str, dict[str, str]]) -> None:
    """The embedded mode (every role, SQLite in the volume) as Kubernetes runs it: read-only root, /tmp a tmpfs."""
    name, env = container
    port = _free_port()
    result = docker(
        ["run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
         "--security-opt", "no-new-privileges", "-p", f"127.0.0.1:{port}:8000", IMAGE],
        env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    took = _wait_healthy(name, env)
    print(f"\n[timing] `up` container healthy: {took:.1f} s")
    ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["migrations"]["at_head"] is True
    writes = docker(["exec", name, "sh", "-c", "touch /opt/smart-trader/x /etc/x 2>&1; id -u"], env).stdout
    assert writes.count("Read-only file system") == 2 and writes.strip().endswith(str(UID))


@pytest.mark.deploy
def test_serve_api_against_the_machines_postgresql_and_redis(container: tuple[str, dict[str, str]]) -> None:
    """One role, as Compose and Kubernetes run it: ``serve --role api`` on PostgreSQL (a fresh database) + Redis."""
    name, env = container
    if shutil.which("psql") is None:
        pytest.skip("needs psql and the machine's PostgreSQL on 127.0.0.1:5432")
    db = f"st_image_{uuid.uuid4().hex[:8]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*psql, f"CREATE DATABASE {db}"], check=True, capture_output=True, timeout=60)
    port = _free_port()
    try:
        result = docker(
            ["run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
             "-e", f"DATABASE_URL=postgresql://postgres@127.0.0.1:5432/{db}", "-e", "REDIS_URL=redis://127.0.0.1:6379/14",
             "-e", f"SECRET_KEY={uuid.uuid4().hex}{uuid.uuid4().hex}", IMAGE,
             "serve", "--role", "api", "--host", "127.0.0.1", "--port", str(port)],
            env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 90
        ready: httpx.Response | None = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, docker(["logs", name], env).stderr[-3000:]
        body = ready.json()
        assert body["role"] == "api" and body["checks"]["redis"] == "ok" and body["checks"]["migrations"]["at_head"]
    finally:
        docker(["rm", "-f", "-v", name], env, timeout=60)
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True, timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
