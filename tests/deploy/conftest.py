"""Shared helpers for the deployment kit's tests: where the kit lives and where its check tools are.

The tools come from ``deploy/tools/install.sh`` (``make deploy-tools``) into ``.deploy-tools/bin``; a test that needs
one skips with the reason when it is missing, and fails instead when ``CI`` is set (CI installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / ".deploy-tools" / "bin"
DOCKER_DIR = DEPLOY / "docker"
STAND_INS = DOCKER_DIR / "stand-ins"
IMAGE = os.environ.get("SMART_TRADER_IMAGE", "smart-trader:dev")


def _missing(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def tool(name: str) -> str:
    """Absolute path of check tool ``name`` (``.deploy-tools/bin`` first, then PATH).

    Skips the calling test when it is not installed (fails under ``CI``)."""
    found = shutil.which(name, path=f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        _missing(f"{name} not installed: run `make deploy-tools` (deploy/tools/install.sh)")
    assert found is not None
    return found


def run(
    args: list[str], cwd: Path = ROOT, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a check tool and capture its output (text); the tools folder is first on PATH (checkov and trivy render
    the chart with helm, actionlint runs shellcheck). ``env`` adds to the environment. Never raises on exit codes."""
    full = {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout, check=False)


# --- the real Docker engine, the stand-in images and the image (session fixtures: every real check uses them) ---


def _docker_env() -> dict[str, str]:
    out = subprocess.run(
        [str(DEPLOY / "tools" / "dockerd.sh"), "env"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return {"DOCKER_HOST": out.strip().split("=", 1)[1]}


@pytest.fixture(scope="session")
def docker_engine() -> dict[str, str]:
    """A running Docker engine (started by ``deploy/tools/dockerd.sh`` when none answers); the env that reaches it."""
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        if os.environ.get("CI"):
            pytest.fail("docker.io not installed: run deploy/tools/install.sh")
        pytest.skip("docker.io not installed: run deploy/tools/install.sh")
    started = time.monotonic()
    result = subprocess.run(
        [str(DEPLOY / "tools" / "dockerd.sh"), "start"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    print(f"\n[timing] docker engine up: {time.monotonic() - started:.1f} s")
    return _docker_env()


def docker(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], env=env, timeout=timeout)


@pytest.fixture(scope="session")
def stand_ins(docker_engine: dict[str, str]) -> dict[str, str]:
    """Every stand-in image built (skipped when its tag exists: a registry machine can pull the real ones instead)."""
    started = time.monotonic()
    result = run([str(STAND_INS / "build.sh"), "all"], env=docker_engine, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\n[timing] stand-in images: {time.monotonic() - started:.1f} s")
    return docker_engine


@pytest.fixture(scope="session")
def image(stand_ins: dict[str, str]) -> str:
    """``smart-trader:dev`` built from the repository with the real Dockerfile (layers cached between runs)."""
    started = time.monotonic()
    result = docker(
        ["build", "-q", "-f", str(DOCKER_DIR / "Dockerfile"), "-t", IMAGE, str(ROOT)],
        {**stand_ins, "DOCKER_BUILDKIT": "0"},
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"\n[timing] image build: {time.monotonic() - started:.1f} s")
    return IMAGE
