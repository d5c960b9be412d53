"""Logs: JSON lines on stderr, credentials in query strings masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from smart_trader.ops.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_tokens_in_a_logged_websocket_path_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", True)
    logger = logging.getLogger("smart_trader.test.redaction")  # any standard-library logger goes through the filter
    logger.setLevel(logging.INFO)
    logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/ws?token=eyJhbGciOi.abc.def&api_key=st_secret&x=1")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = orjson.loads(line)
    assert record["logger"] == "smart_trader.test.redaction" and record["level"] == "info"
    assert "eyJhbGciOi" not in line and "st_secret" not in line
    assert record["event"] == '127.0.0.1:5 - "WebSocket /ws?token=***&api_key=***&x=1" [accepted]'
