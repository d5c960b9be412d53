"""The strategy example in the README runs as written."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.data.timeframes import Timeframe
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.engine import BacktestEngine

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_strategy_example_trades_on_real_data(shared_data: Path) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    cls = namespace["Breakout"]
    assert isinstance(cls, type) and issubclass(cls, Strategy)
    r = read_file(shared_data / "bars" / "ORCL_1995-2014_1d.yahoo.csv")
    engine = BacktestEngine(starting_cash=Decimal(100_000))
    engine.add_bars(infer_instrument("ORCL", "NASDAQ", r.price_precision, 0), r.table, Timeframe.parse("1d"))
    result = engine.run(cls())
    assert result.stats.number_of_trades > 10
