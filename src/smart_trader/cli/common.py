"""What every CLI command shares: the console, the settings and home directory, error reporting and option parsing.

Kept light on imports (no pyarrow, polars, FastAPI...): ``smart-trader --help`` imports this module, and every
command imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from decimal import Decimal, DecimalException, InvalidOperation
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from smart_trader.core.clock import parse_utc
from smart_trader.core.errors import InvalidInputError, NotFoundError, SmartTraderError, TemporaryError
from smart_trader.settings import Settings

if TYPE_CHECKING:
    from smart_trader.data.service import MarketDataService

# Piped or captured output is not cut to 80 columns: tables keep every character.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_TEMPORARY = 4
EXIT_REJECTED = 5


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn Smart Trader errors into a one-line message on stderr and a non-zero exit (no traceback).

    Exit codes: 2 invalid input (also numbers out of range), 3 not found, 4 temporary (retry), 5 refused by
    a rule, 1 other (including unreadable stored files).
    """
    try:
        yield
    except NotFoundError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except InvalidInputError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_INVALID) from None
    except TemporaryError as exc:
        _error(f"{exc} (temporary: try again later)")
        raise typer.Exit(EXIT_TEMPORARY) from None
    except SmartTraderError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_REJECTED if isinstance(exc, ValueError) else 1) from None
    except FileNotFoundError as exc:
        _error(f"no such file: {exc.filename}")
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except DecimalException as exc:
        _error(f"a number is out of the range Smart Trader handles ({exc!r})")
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as exc:
        arrow = sys.modules.get("pyarrow")  # an Arrow error can only come from an imported pyarrow
        if arrow is None or not isinstance(exc, arrow.ArrowException):
            raise
        _error(
            f"could not read stored market data ({exc}); a damaged file in the store? "
            "`smart-trader data list` shows the datasets"
        )
        raise typer.Exit(1) from None


def _error(message: str) -> None:
    """One line on stderr, however long (never wrapped at the console's width); the message's own brackets
    (``prices[usd].csv``, ``smart-trader[databento]``) stay text."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def settings() -> Settings:
    """The settings of this process (environment and ``.env``): the one place every command reads them, so the
    home folder (``SMART_TRADER_HOME``) resolves the same for ``data``, ``backtest``, ``demo``, ``up`` and ``serve``.

    Raises:
        InvalidInputError: a setting has an invalid value (names the variable).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"invalid setting in the environment or .env: {problems}") from None


def start_logging(config: Settings) -> None:
    """Configure logging from the settings (``LOG_LEVEL``, ``LOG_JSON``) for a server command.

    Raises:
        InvalidInputError: ``LOG_LEVEL`` is not a level name.
    """
    from smart_trader.ops.logging import configure_logging

    try:
        configure_logging(config.log_level, config.log_json)
    except KeyError:
        raise InvalidInputError(
            f"invalid setting in the environment or .env: LOG_LEVEL: {config.log_level!r} is not one of DEBUG, INFO, "
            "WARNING, ERROR, CRITICAL"
        ) from None


def service() -> MarketDataService:
    """The market-data service of the home folder (``Settings.home_dir``: ``SMART_TRADER_HOME`` from the
    environment or ``.env``, else the per-user data folder).

    Raises:
        InvalidInputError: an invalid setting.
    """
    from smart_trader.data.service import MarketDataService  # pyarrow and polars load only when data is used

    return MarketDataService(settings().home_dir)


def parse_time(text: str | None, what: str) -> int | None:
    """ns UTC of an ISO 8601 date/date-time option, or ``None``.

    Raises:
        InvalidInputError: not an ISO 8601 date or date-time.
    """
    if text is None:
        return None
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise InvalidInputError(f"--{what}: {exc}") from None


def parse_decimal(text: str | None, what: str) -> Decimal | None:
    """Decimal of a numeric option (never through float), or ``None``.

    Raises:
        InvalidInputError: not a finite decimal number.
    """
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(f"--{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise InvalidInputError(f"--{what}: {text!r} is not a finite number")
    return value
