"""Platform settings, read from the environment and a ``.env`` file (see ``.env.example``).

Every field maps to the upper-case environment variable of its name (``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY``...). Defaults make ``smart-trader up`` work on a laptop with nothing installed: an SQLite file
under ``SMART_TRADER_HOME`` and an in-process event bus.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smart_trader.config import home_dir
from smart_trader.core.errors import InvalidInputError

DEFAULT_SECRET_KEY = "dev-secret-change-me-dev-secret-change-me"


class Settings(BaseSettings):
    """Configuration of one Smart Trader process.

    Attributes:
        database_url: SQLAlchemy URL; empty means ``sqlite:///<home>/smart-trader.db`` (WAL mode).
            PostgreSQL: ``postgresql+psycopg://user@host:5432/db`` (``postgresql://`` is accepted too).
        redis_url: ``redis://host:6379/0`` to share live updates across processes (pub/sub); empty: in-process.
        secret_key: HMAC key signing the JWTs (HS256). The default is refused when ``environment`` is production.
        environment: ``development``, ``test`` or ``production``.
        access_token_seconds / refresh_token_seconds: lifetimes of the two JWTs (seconds).
        ws_queue_size: messages a WebSocket client may have waiting before it is dropped.
        log_json: JSON log lines (default) or human-readable console output.
        home: ``SMART_TRADER_HOME`` (also the init keyword: ``home=`` is not read); ``None`` or empty: the per-user
            data folder. Read from the environment and ``.env`` under that name only (never from ``HOME``).
    """

    # No populate_by_name: with it, pydantic-settings also matched the field name ``home`` to the environment,
    # so $HOME (the user's home folder itself) became Smart Trader's home folder.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = ""
    redis_url: str = ""
    secret_key: str = DEFAULT_SECRET_KEY
    environment: Literal["development", "test", "production"] = "development"
    access_token_seconds: int = Field(default=900, gt=0)
    refresh_token_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    ws_queue_size: int = Field(default=1000, gt=0)
    log_level: str = "INFO"
    log_json: bool = True
    home: Path | None = Field(default=None, validation_alias="SMART_TRADER_HOME")

    @field_validator("secret_key")
    @classmethod
    def _default_when_empty(cls, value: str) -> str:
        return value.strip() or DEFAULT_SECRET_KEY

    @field_validator("home", mode="before")
    @classmethod
    def _none_when_blank(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @cached_property
    def home_dir(self) -> Path:
        """Home folder (SQLite file, market-data store, backtest runs): ``SMART_TRADER_HOME`` from the environment
        or ``.env`` (``~`` expanded), else the per-user data folder. The one resolution every entry point uses."""
        return home_dir(self.home)

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL to connect to, with the psycopg 3 driver for PostgreSQL."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{self.home_dir / 'smart-trader.db'}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.resolved_database_url.startswith("sqlite")

    def check_production(self, exposed: bool = False) -> None:
        """Refuse to start with the default or a short secret key in production, or on a server others can reach
        (``exposed``: listening beyond loopback, or a role of a multi-process deployment): anyone could sign tokens.

        Raises:
            InvalidInputError: ``environment`` is production or ``exposed``, and ``SECRET_KEY`` is unset, the
                default, or shorter than 32 characters.
        """
        weak = self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32
        if weak and exposed and self.environment != "production":
            raise InvalidInputError(
                "refusing to serve beyond this machine with the default (or a short) SECRET_KEY: anyone could sign "
                "access tokens; set SECRET_KEY to a random string of at least 32 characters "
                "(e.g. `openssl rand -hex 32`), or listen on 127.0.0.1"
            )
        if self.environment == "production" and weak:
            raise InvalidInputError(
                "refusing to start in production with the default (or a short) SECRET_KEY: "
                "set SECRET_KEY to a random string of at least 32 characters, e.g. `openssl rand -hex 32`"
            )
