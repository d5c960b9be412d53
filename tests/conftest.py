"""Shared fixtures: the real recorded market data in ../shared/data and an isolated SMART_TRADER_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real recorded market data (``../shared/data`` beside the repository).

    Skips with a reason when absent; fails instead when ``CI`` is set, since CI always has it.
    """
    if not SHARED_DATA.is_dir():
        msg = f"real market data not found at {SHARED_DATA} (expected ../shared/data beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty SMART_TRADER_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("SMART_TRADER_HOME", str(path))
    return path
