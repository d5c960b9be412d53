"""A challenge on an account trading two instruments in a backtest: a bar's path of one instrument runs up to just
before its close, then the other instrument's bar fills an order with an earlier timestamp — the rules take events in
the order they reach the account, judged at the latest time seen, instead of refusing an input "earlier than the last
one" (which live would have stopped the feed). And the halt sources: a challenge's daily unlock never lifts a risk
manager's halt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.monitor import CHALLENGE_HALT, ChallengeMonitor
from smart_trader.challenges.program import get_program
from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import AccountId
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.model import Bar
from smart_trader.data.readers import read_file
from smart_trader.data.schema import ts_ns
from smart_trader.data.timeframes import Timeframe
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.trading.session import AccountSession, SessionFactory, TradingState


class BuyEach(Strategy):
    """On the first bar of each instrument, buy a little of it."""

    name = "buy_each"

    def on_start(self) -> None:
        self.bought: set[str] = set()

    def on_bar(self, bar: Bar) -> None:
        if bar.instrument_id not in self.bought:
            self.bought.add(bar.instrument_id)
            self.submit(OrderSide.BUY, Decimal("1"), instrument_id=bar.instrument_id)


def test_two_instruments_reach_the_rules_in_the_order_they_happen_to_the_account(shared_data: Path) -> None:
    engine = BacktestEngine(
        starting_cash=Decimal("100000"),
        account_type=AccountType.MARGIN,
        sessions=SessionFactory(checks=lambda _a: [monitor], monitors=lambda _a: [monitor]),
    )
    starts = []
    for name, symbol in (("ETH-BTC_2018-01_5m.binance.feather", "ETH/BTC"), ("LTC-BTC_2018-01_5m.binance.feather",
                                                                             "LTC/BTC")):  # fmt: skip
        r = read_file(shared_data / "bars" / name)
        inst = infer_instrument(symbol, "BINANCE", r.price_precision, r.size_precision)
        engine.add_bars(inst, r.table, r.timeframe or Timeframe.parse("5m"))
        starts.append(int(ts_ns(r.table)[0]))
    monitor = ChallengeMonitor(ChallengeEvaluator(get_program("ftmo-2step"), 0, Decimal("100000"), min(starts)))
    result = engine.run(BuyEach())
    assert len(result.fills) == 2  # both instruments bought; the rules judged every fill and path point
    verdict = monitor.finish()
    assert verdict["status"] == "active" and verdict["trading_days"] >= 1


def test_a_challenges_daily_unlock_does_not_lift_a_risk_managers_halt() -> None:
    account = Account(AccountId("A"), "USD", AccountType.MARGIN)
    account.deposit(0, Decimal(1000))
    session = AccountSession(account, PaperBroker(account, {}), MarketClock())
    session.halt("risk", "margin call")
    session.halt(CHALLENGE_HALT, "locked by daily_loss until the reset")
    session.release(CHALLENGE_HALT)
    assert session.state is TradingState.HALTED and session.state_reason == "margin call"
    session.release("risk")
    assert session.state is TradingState.ACTIVE and session.state_reason == ""
