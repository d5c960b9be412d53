"""The market-data sample shipped inside the package: what ``smart-trader up`` replays when it is given no source.

A fresh clone (or an installed wheel) has nothing else beside it, so the platform brings a small, real recording
of its own. ``README.md`` in this folder says where each file comes from (source, licence, period, rows) and
how it was checked; ``smart-trader up`` imports the files into the store (idempotent) and replays them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Sample:
    """A packaged recording and the instrument it is stored as.

    Attributes:
        files: the recording's files (any format ``data import`` reads), in time order.
        symbol: instrument symbol, e.g. ``BTC/USDT:USDT`` (ccxt's name of the USDT-margined perpetual).
        venue: venue code, e.g. ``BINANCE``.
        kind: what the files hold (``bars``, ``trades``, ``quotes``).
        timeframe: bars: their length (``1m``); ``None`` for ticks.
        speed: the replay pace ``up`` uses by default (× real time): 60 for one-minute bars is a bar a second.
        description: one line for the start-up message.
    """

    files: tuple[Path, ...]
    symbol: str
    venue: str
    kind: str
    timeframe: str | None
    speed: str
    description: str


DEFAULT_SAMPLE = Sample(
    (SAMPLES_DIR / "BTCUSDT-1m-2022-05-04.csv.gz", SAMPLES_DIR / "BTCUSDT-1m-2022-05-05.csv.gz"),
    "BTC/USDT:USDT",
    "BINANCE",
    "bars",
    "1m",
    "60",
    "the packaged sample: 2 days of real Binance BTC/USDT perpetual 1-minute bars (2022-05-04/05), a minute a second",
)


def default_sample() -> Sample | None:
    """The sample ``up`` replays by default, or ``None`` when this build ships none (its files are missing)."""
    return DEFAULT_SAMPLE if all(f.is_file() for f in DEFAULT_SAMPLE.files) else None
