"""Exceptions grouped by what the caller must do.

- :class:`InvalidInputError` — the request or file is wrong; fix it (HTTP 4xx, CLI exit 2).
- :class:`RejectedByRulesError` — the input was well formed, but a rule refuses it
  (an order off the tick size, under the lot size, beyond buying power).
- :class:`NotFoundError` — the thing named does not exist (unknown symbol, order id).
- :class:`TemporaryError` — retry later (rate limit, network).
"""

from __future__ import annotations


class SmartTraderError(Exception):
    """Base class of every error Smart Trader raises on purpose."""


class InvalidInputError(SmartTraderError, ValueError):
    """Input is malformed; the message says what and where (file, row, field, rule)."""


class DataValidationError(InvalidInputError):
    """A market-data file breaks a rule.

    Attributes:
        file: path of the file (or a description of the source).
        row: 1-based data row (header excluded), or ``None`` when the rule is about the whole file.
        rule: short name of the broken rule, e.g. ``"timestamps-sorted"``.
    """

    def __init__(self, file: str, rule: str, detail: str, row: int | None = None) -> None:
        self.file = file
        self.row = row
        self.rule = rule
        self.detail = detail
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {detail} (rule: {rule})")


class RejectedByRulesError(SmartTraderError, ValueError):
    """Well-formed input refused by a rule (tick size, lot size, buying power, state)."""


class NotFoundError(SmartTraderError, LookupError):
    """The named thing (instrument, dataset, order) does not exist."""


class TemporaryError(SmartTraderError):
    """A transient failure (network, rate limit); the same call may succeed later."""


class InvalidStateTransitionError(RejectedByRulesError):
    """An order event does not apply in the order's current status."""
