"""Program loading: presets, sources, and validation messages that name the field path."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from smart_trader.challenges import get_program, load_program, program_from_dict, programs
from smart_trader.core.errors import InvalidInputError, NotFoundError

EXPECTED_PRESETS = {
    "ftmo-2step",
    "ftmo-1step",
    "topstep-combine",
    "apex-eod",
    "apex-intraday",
    "fundednext-stellar-2step",
    "the5ers-high-stakes",
}

MINIMAL = """
firm: Test
id: test-prog
name: Test program
currency: USD
sizes: [100000]
tz: Europe/Prague
reset_time: "00:00"
verified_on: 2026-12-02
sources: [{id: S1, url: "https://academy.ftmo.com/lesson/maximum-daily-loss"}]
phases:
  - name: Phase 1
    profit_target: {pct: 10}
    daily_loss: {amount: {pct: 5}, reference: balance}
    max_loss: {amount: {pct: 10}}
"""


def test_every_preset_loads_and_cites_a_source_url_and_verified_on() -> None:
    loaded = programs()
    assert set(loaded) == EXPECTED_PRESETS
    for program in loaded.values():
        assert program.sources, program.id
        assert all(s.url.startswith("https://") for s in program.sources), program.id
        assert program.verified_on == dt.date(2026, 12, 2), program.id
        assert program.unconfirmed, program.id  # each preset lists the §11 items that affect it


def test_ftmo_2step_preset_matches_the_documented_rules() -> None:
    """FTMO 2-Step [S1][S2][S4]: 10 %/5 % targets, D1 5 % of initial on SOD balance, static 10 %, 4 days,
    Europe/Prague 00:00, equality is not a breach."""
    program = get_program("ftmo-2step")
    assert (program.tz, program.reset_time, program.breach_on_equal) == ("Europe/Prague", dt.time(0), False)
    first, second, funded = program.phases
    assert first.profit_target is not None and first.profit_target.pct == Decimal(10)
    assert second.profit_target is not None and second.profit_target.pct == Decimal(5)
    assert funded.profit_target is None
    assert first.min_trading_days == 4 and first.target_basis == "balance_flat"
    assert first.daily_loss is not None and first.daily_loss.reference == "balance"
    assert first.daily_loss.amount_base == "initial" and first.daily_loss.amount.pct == Decimal(5)
    assert first.max_loss is not None and first.max_loss.mode == "static"


def test_per_size_amount_table_resolves_topstep_mll_by_account_size() -> None:
    """Topstep MLL $2,000 / $3,000 / $4,500 on 50K/100K/150K [S19][R1]."""
    mll = get_program("topstep-combine").phases[0].max_loss
    assert mll is not None
    assert [mll.amount.resolve(Decimal(s), Decimal(s)) for s in (50000, 100000, 150000)] == [
        Decimal("2000.00"),
        Decimal("3000.00"),
        Decimal("4500.00"),
    ]


def test_minimal_program_loads_from_text_and_path(tmp_path: Path) -> None:
    from_text = load_program(MINIMAL)
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_program(path) == from_text
    assert from_text.phases[0].warnings == (Decimal("0.8"), Decimal("0.9"), Decimal("0.95"))


def test_a_bad_literal_names_its_field_path_and_the_choices() -> None:
    text = MINIMAL.replace("reference: balance", "reference: peak")
    with pytest.raises(InvalidInputError) as info:
        load_program(text)
    assert "phases[0].daily_loss.reference: must be one of balance, equity, max" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tz: Europe/Prague", "tz: Mars/Olympus", "tz: unknown IANA time zone 'Mars/Olympus'"),
        ("tz: Europe/Prague", "tz: Etc/GMT-2", "tz: use a named IANA zone"),
        ('reset_time: "00:00"', "reset_time: 17:00", "reset_time: must be a quoted 'HH:MM' string"),
        ('reset_time: "00:00"', 'reset_time: "25:00"', "reset_time: must be 'HH:MM'"),
        ("{pct: 10}}", "{pct: 10, amount: 5000}}", "phases[0].max_loss.amount: give exactly one of pct, amount"),
        ("profit_target: {pct: 10}", "profit_target: {pct: 10}\n    colour: red", "phases[0].colour: unknown field"),
        ("name: Phase 1", "name: Phase 1\n    warnings: [0.8, 1.5]", "phases[0].warnings: levels must be fractions"),
        ('url: "https://academy', 'url: "ftp://academy', "sources[0].url: must be an http(s) URL"),
    ],
)
def test_validation_errors_name_the_field(old: str, new: str, expected: str) -> None:
    assert old in MINIMAL
    with pytest.raises(InvalidInputError) as info:
        load_program(MINIMAL.replace(old, new, 1))
    assert expected in str(info.value)


def test_a_per_size_table_must_cover_every_offered_size() -> None:
    text = MINIMAL.replace("sizes: [100000]", "sizes: [50000, 100000]").replace(
        "max_loss: {amount: {pct: 10}}", "max_loss: {amount: {by_size: {50000: 2000}}}"
    )
    with pytest.raises(InvalidInputError, match=r"phases\[0\]\.max_loss\.amount\.by_size: no entry for size"):
        load_program(text)


def test_missing_fields_and_non_mapping_yaml_are_reported() -> None:
    with pytest.raises(InvalidInputError, match="phases: required field missing"):
        program_from_dict({"firm": "x"})
    with pytest.raises(InvalidInputError, match="must be a YAML mapping"):
        load_program("- just\n- a list\n")


def test_unknown_preset_id_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="known: apex-eod"):
        get_program("nope")
