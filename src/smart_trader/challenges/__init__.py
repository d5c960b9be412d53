"""Prop-firm challenge rules as a pure domain package (CHALLENGES.md).

- :mod:`.program` — programs as validated data, YAML loading, built-in presets (:func:`programs`).
- :mod:`.days` — firm trading days and DST-correct reset instants.
- :mod:`.evaluator` — the streaming exact evaluator of one account in one phase.
- :mod:`.events` — the typed events it emits.
- :mod:`.replay` — batch replay of historical fills and marks to a verdict.

No I/O besides reading the packaged preset YAML files; no database, web or cache imports.
"""

from smart_trader.challenges.days import DayClock
from smart_trader.challenges.evaluator import ChallengeEvaluator, Floor, FloorsView
from smart_trader.challenges.events import (
    ChallengeBreached,
    ChallengeEvent,
    ChallengeLocked,
    ChallengePassed,
    ChallengeUnlocked,
    ChallengeWarning,
    DayClosed,
)
from smart_trader.challenges.program import Program, get_program, load_program, program_from_dict, programs
from smart_trader.challenges.replay import Mark, ReplayFill, replay
from smart_trader.challenges.state import Breach, DayRecord, Status

__all__ = [
    "Breach",
    "ChallengeBreached",
    "ChallengeEvaluator",
    "ChallengeEvent",
    "ChallengeLocked",
    "ChallengePassed",
    "ChallengeUnlocked",
    "ChallengeWarning",
    "DayClock",
    "DayClosed",
    "DayRecord",
    "Floor",
    "FloorsView",
    "Mark",
    "Program",
    "ReplayFill",
    "Status",
    "get_program",
    "load_program",
    "program_from_dict",
    "programs",
    "replay",
]
