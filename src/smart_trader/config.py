"""Where Smart Trader keeps its files on this machine.

``SMART_TRADER_HOME`` overrides the home directory; otherwise it is the per-user data directory
for ``smart-trader`` (platformdirs: ``~/.local/share/smart-trader`` on Linux).
Nothing is created here: callers create the directories they write to.

Entry points (every CLI command, the app) resolve the home through
:attr:`smart_trader.settings.Settings.home_dir`, which also reads ``.env``; :func:`home_dir` is what it falls back
to and what library code without settings uses (the environment only).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "smart-trader"


def _platform_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def home_dir(explicit: Path | str | None = None) -> Path:
    """Smart Trader's home directory: ``explicit`` when given and non-empty, else ``$SMART_TRADER_HOME`` when set
    and non-empty, else the per-user data directory (e.g. ``~/.local/share/smart-trader`` on Linux); ``~``
    expanded. Never ``$HOME`` itself."""
    for candidate in (explicit, os.environ.get("SMART_TRADER_HOME")):
        text = str(candidate).strip() if candidate is not None else ""
        if text:
            return Path(text).expanduser()
    return _platform_data_dir()


def store_dir(home: Path | None = None) -> Path:
    """Root of the local market-data store: ``<home>/market-data`` (``home`` defaults to :func:`home_dir`)."""
    return (home or home_dir()) / "market-data"
