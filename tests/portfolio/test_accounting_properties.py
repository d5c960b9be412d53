"""The accounting invariants over random fills, checked against an independent model kept in the test.

Random fills (both sides, quantities on each instrument's lot grid, prices on its tick grid, several
commission schemes, multipliers 50, 0.1 and 100 beside 1) go into an :class:`Account`. After every fill:

(a) the ledger balances to the last unit: balance == net deposits + Σ sell value − Σ buy value − Σ commissions
    (summed here in a 200-digit context that traps any rounding), each new entry carries the right amount
    and running balance; at the end, balance == Σ entries and every running balance is rechecked;
(b) each position's quantity == Σ signed fill quantities of its instrument;
(c) realized + unrealized P&L (at the marks of the moment) − Σ commissions == equity − net deposits, exactly;
(d) cost basis and average entry price agree with an average-cost model kept in exact fractions. The code
    takes the closed share of a partial close exactly when it terminates, else to 28 digits
    (``portfolio/exact.py``), so after such a partial close the two may differ in the 28th significant digit;
(e) round trips rebuilt from the same fills match the closed episodes of the model (side, size, times),
    the code's realized P&L of each closed episode is exactly the model's, and Σ round-trip pnl == realized
    P&L − commissions of the closed episodes (a flipping fill's commission split pro rata). A pro-rata share
    is in general not a terminating decimal, so per round trip that is held to 1e-18 relative; the exact
    form — sums conserved once everything is flat — is ``test_round_trips_sum_exactly_...``.

Hypothesis runs short books; one seeded stream of 100,000 fills (``slow``, in the default suite) runs long.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_trader.core.ids import AccountId, FillId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution.enums import LiquiditySide, OrderSide
from smart_trader.execution.events import Fill
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.portfolio.ledger import EntryKind, LedgerEntry
from smart_trader.strategy.round_trips import build_round_trips
from tests.portfolio.kit import SECOND, T0, D, make_instrument

EXACT_TEST = Context(prec=200, traps=[Inexact, Rounded, Overflow, Underflow, InvalidOperation])
"""The test's own context: 200 digits, and any rounding raises."""

ZERO = Decimal(0)
OPENING_DEPOSIT = Decimal("1000000")
TOLERANCE = Fraction(1, 10**18)
"""Relative bound on cost-basis and round-trip differences that come from 28-digit rounding in the code."""


@dataclass(frozen=True)
class Market:
    """One instrument of the random book: its price band in ticks, size band in lots and commission scheme."""

    instrument: Instrument
    ticks: tuple[int, int]
    lots: tuple[int, int]
    rate: Decimal = ZERO  # commission per unit of notional
    per_unit: Decimal = ZERO  # commission per base unit / contract


BOOK: tuple[Market, ...] = (
    Market(make_instrument(), (2_000_000, 7_000_000), (1, 200_000), rate=D("0.0006")),
    Market(
        make_instrument("ESZ4", "CME", asset_class="future", base="ES", tick="0.25", lot="1", multiplier="50"),
        (16_000, 22_000),
        (1, 30),
        per_unit=D("1.18"),
    ),
    Market(
        make_instrument("MBTZ4", "CME", asset_class="future", base="MBT", tick="5", lot="1", multiplier="0.1"),
        (4_000, 14_000),
        (1, 60),
        per_unit=D("2.02"),
    ),
    Market(
        make_instrument("EUR/USD", "FXCM", asset_class="fx", base="EUR", tick="0.00001", lot="1000"),
        (100_000, 120_000),
        (1, 500),
        rate=D("0.00002"),
    ),
    Market(
        make_instrument(
            "SPY 241220C500", "OPRA", asset_class="equity", base="SPYC", tick="0.01", lot="1", multiplier="100"
        ),
        (5, 3_000),
        (1, 50),
        per_unit=D("0.65"),
    ),
    Market(
        make_instrument("SHIB/USD", "COINBASE", base="SHIB", tick="0.00000001", lot="1"),
        (500, 3_000),
        (1, 10**8),
        rate=D("0.001"),
    ),
)
MULTIPLIERS = {m.instrument.id: m.instrument.multiplier for m in BOOK}

BUY_, SELL_, CLOSE, FLIP, DEPOSIT, WITHDRAW = range(6)
Action = tuple[int, int, int, int, int, int, int | None]
"""(kind, market index, size, price, commission scheme, cents, mark) — raw integers mapped onto each market's grids."""


def _pick(raw: int, band: tuple[int, int]) -> int:
    lo, hi = band
    return lo + raw % (hi - lo + 1)


def _ex(x: Decimal) -> Fraction:
    return Fraction(x)


# --- the independent model ------------------------------------------------------------------------


@dataclass
class Episode:
    """One round trip of the model: from leaving flat to coming back (or flipping)."""

    long: bool
    entry_ts: int
    entry_qty: Decimal = ZERO
    entry_value: Fraction = Fraction(0)
    exit_value: Fraction = Fraction(0)
    realized_code: Decimal = ZERO  # Σ of what the code's apply_fill returned for this episode
    realized_model: Fraction = Fraction(0)
    commission: Fraction = Fraction(0)
    exit_ts: int = 0


@dataclass
class ModelPosition:
    """Average-cost position in exact fractions, kept apart from the code under test."""

    multiplier: Decimal
    qty: Decimal = ZERO
    last_price: Decimal = ZERO
    cost: Fraction = Fraction(0)
    realized: Fraction = Fraction(0)
    partially_closed: bool = False  # a partial close happened since the position last left flat or flipped
    episode: Episode | None = None


@dataclass
class Model:
    net_deposits: Decimal = ZERO
    buys: Decimal = ZERO
    sells: Decimal = ZERO
    commissions: Decimal = ZERO
    positions: dict[InstrumentId, ModelPosition] = field(default_factory=dict)
    closed: list[Episode] = field(default_factory=list)

    @property
    def cash(self) -> Decimal:
        return EXACT_TEST.subtract(
            EXACT_TEST.add(self.net_deposits, self.sells), EXACT_TEST.add(self.buys, self.commissions)
        )

    def apply(self, fill: Fill, multiplier: Decimal, realized_code: Decimal) -> None:
        value = EXACT_TEST.multiply(EXACT_TEST.multiply(fill.quantity, fill.price), multiplier)
        if fill.side is OrderSide.BUY:
            self.buys = EXACT_TEST.add(self.buys, value)
        else:
            self.sells = EXACT_TEST.add(self.sells, value)
        self.commissions = EXACT_TEST.add(self.commissions, fill.commission)

        pos = self.positions.setdefault(fill.instrument_id, ModelPosition(multiplier))
        signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
        price_m = _ex(fill.price) * _ex(multiplier)
        pos.last_price = fill.price
        q, rest, commission = pos.qty, fill.quantity, _ex(fill.commission)
        if q != 0 and (q > 0) != (signed > 0):  # reducing: realize against the average
            closed = min(abs(q), fill.quantity)
            removed = pos.cost * _ex(closed) / _ex(abs(q))
            proceeds = _ex(closed if q > 0 else -closed) * price_m
            realized = proceeds - removed
            share = commission * _ex(closed) / _ex(fill.quantity)
            pos.cost -= removed
            pos.realized += realized
            ep = pos.episode
            assert ep is not None
            ep.exit_value += _ex(closed) * _ex(fill.price)
            ep.realized_model += realized
            ep.commission += share
            ep.realized_code = EXACT_TEST.add(ep.realized_code, realized_code)
            rest, commission = fill.quantity - closed, commission - share
            if closed == abs(q):
                ep.exit_ts = fill.ts_event
                self.closed.append(ep)
                pos.episode = None
                pos.partially_closed = False
            else:
                pos.partially_closed = True
        if rest > 0:  # opening or adding
            if pos.episode is None:
                pos.episode = Episode(signed > 0, fill.ts_event)
            pos.episode.entry_qty = EXACT_TEST.add(pos.episode.entry_qty, rest)
            pos.episode.entry_value += _ex(rest) * _ex(fill.price)
            pos.episode.commission += commission
            pos.cost += _ex(rest if signed > 0 else -rest) * price_m
        pos.qty = EXACT_TEST.add(q, signed)


# --- the audit: apply actions to an Account and the model, check after every fill ----------------


def _close_enough(got: Decimal | Fraction, want: Fraction) -> bool:
    return abs(Fraction(got) - want) <= TOLERANCE * max(Fraction(1), abs(want))


class Audit:
    """Feeds fills to an Account and to the model, checking (a)–(d) after every one."""

    def __init__(self, opening_deposit: Decimal = OPENING_DEPOSIT) -> None:
        self.marks: dict[InstrumentId, Decimal] = {}
        self.account = Account(AccountId("PROP-1"), "USD", AccountType.MARGIN, self.marks.get)
        self.model = Model()
        self.fills: list[Fill] = []
        self.checked_entries = 0
        self.ts = T0
        self._deposit(opening_deposit)

    # actions

    def run(self, actions: Iterable[Action]) -> None:
        for action in actions:
            self.step(action)

    def step(self, action: Action) -> None:
        kind, idx, size, price, scheme, cents, mark = action
        self.ts += SECOND
        if kind == DEPOSIT:
            self._deposit(Decimal(1 + cents).scaleb(-2))
            return
        if kind == WITHDRAW:
            if self.account.cash > 0:
                self._withdraw(min(Decimal(1 + cents).scaleb(-2), self.account.cash))
            return
        market = BOOK[idx]
        inst = market.instrument
        q = self.account.quantity(inst.id)
        lots = _pick(size, market.lots) * inst.lot_size
        if kind == CLOSE and q != 0:
            side, qty = (OrderSide.SELL if q > 0 else OrderSide.BUY), abs(q)
        elif kind == FLIP and q != 0:
            side, qty = (OrderSide.SELL if q > 0 else OrderSide.BUY), abs(q) + lots
        else:
            side, qty = (OrderSide.BUY if kind in (BUY_, CLOSE) else OrderSide.SELL), lots
        px = _pick(price, market.ticks) * inst.tick_size
        self.fill(inst, side, qty, px, self._commission(market, scheme, cents, qty, px))
        if mark is not None:
            self.marks[inst.id] = _pick(mark, market.ticks) * inst.tick_size
            self.check_pnl_identity()

    def flatten(self) -> None:
        """Close every open position at its current mark (so every episode is a closed round trip)."""
        for market in BOOK:
            inst = market.instrument
            q = self.account.quantity(inst.id)
            if q != 0:
                self.ts += SECOND
                mark = self.account.mark(inst.id)
                assert mark is not None
                side = OrderSide.SELL if q > 0 else OrderSide.BUY
                self.fill(inst, side, abs(q), mark, D("0.01"))

    def fill(
        self,
        inst: Instrument,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> None:
        n = len(self.fills) + 1
        fill = Fill(
            FillId(f"F-{n}"),
            OrderId(f"O-{n}"),
            None,
            inst.id,
            side,
            qty,
            price,
            commission,
            "USD",
            LiquiditySide.TAKER,
            self.ts,
        )
        self.fills.append(fill)
        realized = self.account.apply_fill(fill, inst)
        self.model.apply(fill, inst.multiplier, realized)
        self.check_new_entries(fill, inst.multiplier)
        self.check_position(inst)
        self.check_pnl_identity()

    def _commission(self, market: Market, scheme: int, cents: int, qty: Decimal, px: Decimal) -> Decimal:
        if scheme == 0:
            return ZERO
        if scheme == 1 and market.rate:  # a rate of the notional: exact, often with many decimals
            return qty * px * market.instrument.multiplier * market.rate
        if scheme == 2 and market.per_unit:
            return qty * market.per_unit
        return Decimal(cents % 5_000).scaleb(-2)  # a flat fee, 0.00 … 49.99

    def _deposit(self, amount: Decimal) -> None:
        entry = self.account.ledger.deposit(self.ts, amount)
        self.model.net_deposits = EXACT_TEST.add(self.model.net_deposits, amount)
        assert (entry.kind, entry.amount) == (EntryKind.DEPOSIT, amount)
        self._check_entries_up_to_date()

    def _withdraw(self, amount: Decimal) -> None:
        entry = self.account.ledger.withdraw(self.ts, amount)
        self.model.net_deposits = EXACT_TEST.subtract(self.model.net_deposits, amount)
        assert (entry.kind, entry.amount) == (EntryKind.WITHDRAWAL, -amount)
        self._check_entries_up_to_date()

    # checks

    def _check_entries_up_to_date(self) -> list[LedgerEntry]:
        """(a) for the entries posted since the last look: ids, running balance; and the balance itself."""
        entries = self.account.ledger.entries
        new = entries[self.checked_entries :]
        before = entries[self.checked_entries - 1].balance if self.checked_entries else ZERO
        for i, e in enumerate(new, self.checked_entries + 1):
            assert e.entry_id == i
            assert e.currency == "USD"
            assert e.balance == EXACT_TEST.add(before, e.amount)
            before = e.balance
        self.checked_entries = len(entries)
        assert self.account.cash == self.account.ledger.balance == before == self.model.cash
        return new

    def check_new_entries(self, fill: Fill, multiplier: Decimal) -> None:
        """(a): one TRADE entry of ∓ quantity × price × multiplier, then a COMMISSION entry unless it is zero."""
        new = self._check_entries_up_to_date()
        value = EXACT_TEST.multiply(EXACT_TEST.multiply(fill.quantity, fill.price), multiplier)
        want = [(EntryKind.TRADE, -value if fill.side is OrderSide.BUY else value)]
        if fill.commission != 0:
            want.append((EntryKind.COMMISSION, -fill.commission))
        assert [(e.kind, e.amount) for e in new] == want
        assert {(e.ts, e.ref) for e in new} == {(fill.ts_event, fill.fill_id)}

    def check_position(self, inst: Instrument) -> None:
        """(b) quantity, (d) cost basis and average entry price against the model."""
        pos = self.account.position(inst.id)
        mp = self.model.positions[inst.id]
        assert pos is not None
        assert pos.quantity == mp.qty
        assert pos.multiplier == inst.multiplier
        if mp.qty == 0:
            assert pos.cost_basis == 0
            assert pos.avg_entry_price is None
            assert mp.cost == 0
            return
        if not mp.partially_closed:
            assert pos.cost_basis == mp.cost  # only adds since the position opened or flipped: exact
        assert _close_enough(pos.cost_basis, mp.cost)
        avg = pos.avg_entry_price
        assert avg is not None
        assert _close_enough(avg, mp.cost / (_ex(mp.qty) * _ex(mp.multiplier)))
        assert _close_enough(pos.realized_pnl, mp.realized)

    def check_pnl_identity(self) -> None:
        """(c) realized + unrealized − commissions == equity − net deposits, exactly, at the current marks."""
        account = self.account
        realized = ZERO
        for pos in account.positions.values():
            realized = EXACT_TEST.add(realized, pos.realized_pnl)
        market_value = ZERO
        for iid, mp in self.model.positions.items():
            mark = self.marks.get(iid, mp.last_price)  # no mark yet: the last fill price
            market_value = EXACT_TEST.add(
                market_value, EXACT_TEST.multiply(EXACT_TEST.multiply(mp.qty, mark), mp.multiplier)
            )
        assert account.market_value() == market_value
        assert account.equity == EXACT_TEST.add(self.model.cash, market_value)
        lhs = EXACT_TEST.subtract(EXACT_TEST.add(realized, account.unrealized_pnl), self.model.commissions)
        assert lhs == EXACT_TEST.subtract(account.equity, self.model.net_deposits)

    def check_at_marks(self, marks: Sequence[int]) -> None:
        """(c) once more with a fresh mark for every instrument."""
        for market, raw in zip(BOOK, marks, strict=True):
            self.marks[market.instrument.id] = _pick(raw, market.ticks) * market.instrument.tick_size
        self.check_pnl_identity()

    def check_ledger_totals(self) -> None:
        """(a) at the end: balance == Σ entries == the model's cash; commissions == Σ fill commissions."""
        ledger = self.account.ledger
        running = ZERO
        for e in ledger.entries:
            running = EXACT_TEST.add(running, e.amount)
            assert e.balance == running
        assert ledger.balance == running == ledger.total() == self.model.cash
        assert self.account.commissions == self.model.commissions
        assert ledger.total(EntryKind.TRADE) == EXACT_TEST.subtract(self.model.sells, self.model.buys)

    def check_round_trips(self) -> None:
        """(e) round trips rebuilt from the fills against the model's closed episodes.

        A flipping fill's commission split pro rata is in general not a terminating decimal, so each round trip's
        commission and pnl are held to :data:`TOLERANCE`; :meth:`check_round_trips_conserve` asks for exact sums.
        """
        trips = build_round_trips(self.fills, MULTIPLIERS)
        episodes = sorted(self.model.closed, key=lambda e: e.exit_ts)
        assert len(trips) == len(episodes)
        want_total = Fraction(0)
        got_total = ZERO
        for rt, ep in zip(trips, episodes, strict=True):
            assert (rt.side, rt.quantity, rt.entry_ts, rt.exit_ts) == (
                "long" if ep.long else "short",
                ep.entry_qty,
                ep.entry_ts,
                ep.exit_ts,
            )
            # the code's realized P&L over a closed episode telescopes to exactly exit − entry value
            assert _ex(ep.realized_code) == ep.realized_model
            want = ep.realized_model - ep.commission
            assert _close_enough(rt.entry_price, ep.entry_value / _ex(ep.entry_qty))
            assert _close_enough(rt.exit_price, ep.exit_value / _ex(ep.entry_qty))
            assert _close_enough(rt.commission, ep.commission)
            assert _close_enough(rt.pnl, want)
            want_total += want
            got_total = EXACT_TEST.add(got_total, rt.pnl)
        assert _close_enough(got_total, want_total)

    def check_round_trips_conserve(self) -> None:
        """(e) exactly, once every position is flat: each round trip's pnl + commission is exactly the realized
        P&L of its episode, Σ commission is exactly Σ fill commissions, Σ pnl exactly realized − commissions."""
        assert all(mp.qty == 0 for mp in self.model.positions.values())
        trips = build_round_trips(self.fills, MULTIPLIERS)
        episodes = sorted(self.model.closed, key=lambda e: e.exit_ts)
        pnl = commission = realized = ZERO
        for rt, ep in zip(trips, episodes, strict=True):
            assert EXACT_TEST.add(rt.pnl, rt.commission) == ep.realized_code
            pnl = EXACT_TEST.add(pnl, rt.pnl)
            commission = EXACT_TEST.add(commission, rt.commission)
            realized = EXACT_TEST.add(realized, ep.realized_code)
        assert commission == self.model.commissions
        assert pnl == EXACT_TEST.subtract(realized, self.model.commissions)


# --- action streams ---------------------------------------------------------------------------------

_KIND_WEIGHTS = ((BUY_, 36), (SELL_, 36), (CLOSE, 10), (FLIP, 14), (DEPOSIT, 2), (WITHDRAW, 2))


def seeded_actions(n: int, seed: int) -> list[Action]:
    """A reproducible stream of ``n`` actions (a ``random.Random`` seeded with ``seed``)."""
    rng = random.Random(seed)
    kinds, weights = zip(*_KIND_WEIGHTS, strict=True)
    out: list[Action] = []
    for kind in rng.choices(kinds, weights, k=n):
        out.append(
            (
                kind,
                rng.randrange(len(BOOK)),
                rng.getrandbits(32),
                rng.getrandbits(32),
                rng.randrange(4),
                rng.getrandbits(16),
                rng.getrandbits(32) if rng.random() < 0.2 else None,
            )
        )
    return out


raw = st.integers(0, 2**32 - 1)
actions = st.tuples(
    st.sampled_from([k for k, w in _KIND_WEIGHTS for _ in range(w // 2)]),
    st.integers(0, len(BOOK) - 1),
    raw,
    raw,
    st.integers(0, 3),
    st.integers(0, 2**16 - 1),
    st.none() | raw,
)
marks = st.lists(raw, min_size=len(BOOK), max_size=len(BOOK))


# --- the tests ---------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=400), marks, st.booleans())
def test_accounting_invariants_hold_over_random_fills(stream: list[Action], final_marks: list[int], flat: bool) -> None:
    audit = Audit()

    audit.run(stream)
    if flat:
        audit.flatten()

    audit.check_at_marks(final_marks)
    audit.check_ledger_totals()
    audit.check_round_trips()


@pytest.mark.slow
def test_accounting_invariants_hold_over_100k_seeded_fills() -> None:
    stream = seeded_actions(104_500, seed=20_240_601)  # ~4 % are deposits and withdrawals
    audit = Audit()

    audit.run(stream)
    audit.check_at_marks([7, 11, 13, 17, 19, 23])
    audit.check_ledger_totals()
    audit.check_round_trips()
    audit.flatten()
    audit.check_ledger_totals()
    audit.check_round_trips()

    assert len(audit.fills) >= 100_000
    assert len(audit.model.closed) > 10_000
    assert all(p.quantity == 0 for p in audit.account.positions.values())
    # everything closed: realized P&L is exactly the trade cash, equity is exactly cash
    realized = ZERO
    for pos in audit.account.positions.values():
        realized = EXACT_TEST.add(realized, pos.realized_pnl)
    assert realized == EXACT_TEST.subtract(audit.model.sells, audit.model.buys)
    assert audit.account.equity == audit.account.cash


def test_round_trips_sum_exactly_to_realized_minus_commissions_when_all_is_closed() -> None:
    audit = Audit()
    audit.run(seeded_actions(3_000, seed=7))
    audit.flatten()

    audit.check_round_trips_conserve()


def test_account_realized_pnl_keeps_the_pnl_identity_exactly() -> None:
    audit = Audit()
    for action in seeded_actions(500, seed=11):
        audit.step(action)
        account = audit.account

        lhs = EXACT_TEST.subtract(EXACT_TEST.add(account.realized_pnl, account.unrealized_pnl), account.commissions)

        assert lhs == EXACT_TEST.subtract(account.equity, audit.model.net_deposits)
