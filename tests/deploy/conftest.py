"""Shared helpers for the deployment kit's tests: where the kit lives and where its check tools are.

The tools come from ``deploy/tools/install.sh`` (``make deploy-tools``) into ``.deploy-tools/bin``; a test that needs
one skips with the reason when it is missing, and fails instead when ``CI`` is set (CI installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / ".deploy-tools" / "bin"


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
