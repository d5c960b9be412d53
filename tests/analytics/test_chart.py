"""Equity/drawdown chart: a real PNG of the promised size with something drawn on it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from smart_trader.analytics.chart import write_chart
from smart_trader.core.errors import InvalidInputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOUR_NS = 3600 * 10**9
T0 = 1_672_531_200 * 10**9  # 2023-01-01T00:00:00Z


def synthetic_curve(n: int = 2000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * HOUR_NS
    equity = 10_000 * np.cumprod(1 + rng.normal(0.0001, 0.004, n))
    return ts, equity


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_writes_a_1200_by_700_png_that_is_not_blank(tmp_path: Path) -> None:
    ts, equity = synthetic_curve()

    out = write_chart(tmp_path / "charts" / "equity.png", ts, equity, title="sma_cross BTC/USDT 1h")

    assert out == tmp_path / "charts" / "equity.png"
    assert png_size(out) == (1200, 700)
    pixels = imread(out)[:, :, :3]
    assert pixels.shape == (700, 1200, 3)
    assert pixels.var() > 0.01  # lines, fills and text, not a blank canvas
    # the drawdown panel is filled in red: many pixels clearly redder than they are blue
    reddish = (pixels[:, :, 0] - pixels[:, :, 2]) > 0.15
    assert reddish.mean() > 0.01


def test_a_single_point_still_renders(tmp_path: Path) -> None:
    ts, equity = synthetic_curve(1)

    out = write_chart(tmp_path / "one.png", ts, equity, title="one bar")

    assert png_size(out) == (1200, 700)


def test_overwrites_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "equity.png"
    target.write_bytes(b"old")
    ts, equity = synthetic_curve(50)

    write_chart(target, ts, equity, title="again")

    assert target.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(
    ("ts", "equity"),
    [
        (np.empty(0, dtype=np.int64), np.empty(0)),
        (np.arange(3, dtype=np.int64), np.ones(2)),
    ],
)
def test_refuses_empty_or_mismatched_curves(tmp_path: Path, ts: np.ndarray, equity: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        write_chart(tmp_path / "x.png", ts, equity, title="bad")
    assert not (tmp_path / "x.png").exists()
