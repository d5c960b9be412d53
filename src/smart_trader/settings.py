"""Platform settings, read from the environment and a ``.env`` file (see ``.env.example``).

Every field maps to the upper-case environment variable of its name (``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY``...). Defaults make ``smart-trader up`` work on a laptop with nothing installed: an SQLite file
under ``SMART_TRADER_HOME`` and an in-process event bus.
"""

from __future__ import annotations

import os
import secrets
import stat
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smart_trader.config import home_dir
from smart_trader.core.errors import InvalidInputError

LEGACY_DEFAULT_SECRET_KEY = "dev-secret-change-me-dev-secret-change-me"  # shipped before; refused as a key
SECRET_KEY_FILE = "secret_key"  # under SMART_TRADER_HOME, mode 0600: the embedded mode's generated key
MIN_SECRET_KEY_CHARS = 32
MIN_SECRET_KEY_DISTINCT = 8
HOW_TO_SET_SECRET = "set SECRET_KEY to a random string of at least 32 characters, e.g. `openssl rand -hex 32`"


class Settings(BaseSettings):
    """Configuration of one Smart Trader process.

    Attributes:
        database_url: SQLAlchemy URL; empty means ``sqlite:///<home>/smart-trader.db`` (WAL mode).
            PostgreSQL: ``postgresql+psycopg://user@host:5432/db`` (``postgresql://`` is accepted too).
        redis_url: ``redis://host:6379/0`` to share live updates across processes (pub/sub); empty: in-process.
        secret_key: HMAC key signing the JWTs (HS256). Empty: the embedded mode (SQLite, not production) generates
            one on first start and keeps it in ``<home>/secret_key`` (mode 0600); every other mode refuses to start
            (:meth:`signing_keys`).
        secret_key_previous: the key before a rotation: tokens it signed stay valid until they expire (grace
            period); new tokens are signed with ``secret_key`` only.
        environment: ``development``, ``test`` or ``production``.
        access_token_seconds / refresh_token_seconds: lifetimes of the two JWTs (seconds).
        ws_queue_size: messages a WebSocket client may have waiting before it is dropped.
        log_json: JSON log lines (default) or human-readable console output.
        rate_limits: per route class (``auth``, ``orders``, ``reads``, ``ws``, ``webhooks``) and per client IP
            (``*_ip``) or per user / API key (``*_user``), in the ``limits`` library's notation (``"20/minute"``,
            several joined by ``;``; empty: no limit), sliding windows shared through Redis when ``redis_url`` is set
            (``docs/security.md``); ``rate_limits_enabled`` false turns them all off (benchmarks).
        login_*: failed logins per account and per IP back off exponentially after the first
            ``login_free_failures`` (per account) / ``login_free_failures_ip`` (per IP): ``login_backoff_base_seconds``
            × 2^(n-1) for the n-th failure beyond those, at most ``login_backoff_max_seconds``;
            ``login_lockout_failures`` failures in a row lock the account for ``login_lockout_seconds`` (an admin can
            lift it).
        hash_workers / hash_queue: threads hashing passwords (argon2id, ~0.1-0.2 s of CPU each; default: half the
            cores, so a login flood leaves the other half to trading), and how many hashes may wait for them before
            new logins get 503 (they never share the threads that read the database).
        password_min_score: zxcvbn strength (0-4) a new password needs.
        max_open_orders / max_orders_per_second: default risk limits of every account (a risk manager may set
            others per account); ``max_accounts_per_user``: accounts one user may open (the open-order limit is per
            account: without this, one user could park any number of orders by opening accounts).
        event_stream_retention_hours: how long the backbone's Redis streams keep events (trimmed by age at each
            append; a consumer group down longer than this misses what was trimmed: watch ``worker_queue_length``).
        event_stream_prefix: the Redis keys of the event streams (``<prefix><family>``, ``<prefix>dead-letter``).
        worker_claim_seconds / worker_max_attempts: a delivered event not acknowledged within this time is taken
            over by another worker replica; an event failing this many times goes to the dead letters.
        audit_retention_days: how long audit records stay in the database (default 7 years: 2,557 days) before
            ``smart-trader audit archive`` moves them to Parquet files with their chain heads.
        monitoring_interval_seconds / market_data_stale_seconds: the worker's scheduled monitoring cycle
            (``workers/monitoring.py``: audit verification, challenge deadlines, stale prices, ledger reconciliation)
            runs this often; prices unchanged this long are stale.
        smtp_host / smtp_port / smtp_username / smtp_password / smtp_from / smtp_starttls: where notification e-mails
            go (``notifications/email.py``); no ``smtp_host``: e-mail is off; with one, ``smtp_from`` is required.
        webhook_allow_loopback: let webhook endpoints be ``http(s)://127.0.0.1``, ``[::1]`` or ``localhost`` (tests and
            local development only; never in production: ``notifications/webhooks.py`` refuses every non-public
            address otherwise).
        stripe_webhook_secret: the signing secret (``whsec_...``) of the Stripe webhook endpoint
            ``/api/v1/webhooks/stripe``; empty: that webhook answers 503 and grants nothing.
        stripe_webhook_tolerance_seconds: a Stripe signature older than this is refused (replays).
        paypal_webhook_id: the id of the PayPal webhook ``/api/v1/webhooks/paypal`` (part of what PayPal signs);
            empty: that webhook answers 503 and grants nothing. ``paypal_webhook_tolerance_seconds``: a transmission
            time further from now than this is refused; ``paypal_cert_ca_file``: the PEM roots PayPal's signing
            certificate must chain to (empty: ``certifi``'s Mozilla roots).
        max_body_bytes: request bodies larger than this are refused (413) before they are read.
        cors_origins: origins allowed to call the API from a browser, comma-separated (empty: none).
        metrics_token: bearer token ``/metrics`` asks of clients beyond the loopback interface (empty: only
            loopback clients may scrape).
        forwarded_allow_ips: proxies whose ``X-Forwarded-For`` gives the client IP (uvicorn's option).
        home: ``SMART_TRADER_HOME`` (also the init keyword: ``home=`` is not read); ``None`` or empty: the per-user
            data folder. Read from the environment and ``.env`` under that name only (never from ``HOME``).
    """

    # No populate_by_name: with it, pydantic-settings also matched the field name ``home`` to the environment,
    # so $HOME (the user's home folder itself) became Smart Trader's home folder.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    secret_key_previous: str = ""
    environment: Literal["development", "test", "production"] = "development"
    access_token_seconds: int = Field(default=900, gt=0)
    refresh_token_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    ws_queue_size: int = Field(default=1000, gt=0)
    rate_limits_enabled: bool = True
    rate_limit_auth_ip: str = "30/minute"
    rate_limit_auth_user: str = "20/minute"
    rate_limit_orders_ip: str = "500/second"
    rate_limit_orders_user: str = "50/second"
    rate_limit_reads_ip: str = "500/second"
    rate_limit_reads_user: str = "200/second"
    rate_limit_ws_ip: str = "30/minute"
    rate_limit_ws_user: str = "30/minute"
    rate_limit_webhooks_ip: str = "100/second"  # payment providers' webhooks (no user: per address only)
    login_free_failures: int = Field(default=3, ge=0)
    login_free_failures_ip: int = Field(default=10, ge=0)
    login_backoff_base_seconds: float = Field(default=1.0, ge=0)
    login_backoff_max_seconds: float = Field(default=300.0, ge=0)
    login_lockout_failures: int = Field(default=20, gt=0)
    login_lockout_seconds: int = Field(default=900, gt=0)
    hash_workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), gt=0)
    hash_queue: int = Field(default=32, gt=0)
    password_min_score: int = Field(default=3, ge=0, le=4)
    max_open_orders: int = Field(default=500, gt=0)
    max_orders_per_second: int = Field(default=50, gt=0)
    max_accounts_per_user: int = Field(default=20, gt=0)
    # the event backbone (workers/): Redis streams kept this long (by age), a pending entry taken over by another
    # replica after this idle time, an event dead-lettered after this many failed attempts
    event_stream_retention_hours: float = Field(default=168.0, gt=0)
    event_stream_prefix: str = Field(default="smart-trader:events:", min_length=1)
    worker_claim_seconds: float = Field(default=30.0, gt=0)
    worker_max_attempts: int = Field(default=5, gt=0)
    monitoring_interval_seconds: float = Field(default=60.0, gt=0)
    audit_retention_days: int = Field(default=2557, gt=0)
    market_data_stale_seconds: float = Field(default=300.0, gt=0)
    # notifications (notifications/): e-mail through SMTP (no host: e-mail is off) and outgoing webhooks
    smtp_host: str = ""
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    webhook_allow_loopback: bool = False
    # payments (payments/): provider webhooks, shut while unset
    stripe_webhook_secret: str = ""
    stripe_webhook_tolerance_seconds: int = Field(default=300, gt=0)
    paypal_webhook_id: str = ""
    paypal_webhook_tolerance_seconds: int = Field(default=300, gt=0)
    paypal_cert_ca_file: str = ""
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    cors_origins: str = ""
    metrics_token: str = ""
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "INFO"
    log_json: bool = True
    home: Path | None = Field(default=None, validation_alias="SMART_TRADER_HOME")

    @field_validator("secret_key", "secret_key_previous", "metrics_token", "stripe_webhook_secret", "paypal_webhook_id")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

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

    @property
    def embedded(self) -> bool:
        """The embedded mode: the SQLite file, not production (``smart-trader up`` on a laptop)."""
        return self.is_sqlite and self.environment != "production"

    @property
    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` split at commas, blanks dropped."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def signing_keys(self) -> tuple[str, tuple[str, ...]]:
        """The key signing new tokens and the keys accepted when checking one (the current key first, then
        ``SECRET_KEY_PREVIOUS`` during a rotation's grace period).

        Without ``SECRET_KEY`` the embedded mode uses the key kept in ``<home>/secret_key``, creating it on first
        start (256 random bits, file mode 0600, never overwritten); every other mode refuses.

        Raises:
            InvalidInputError: ``SECRET_KEY`` (or ``SECRET_KEY_PREVIOUS``) is weak (under 32 characters, fewer than
                8 distinct characters, or the development default earlier versions shipped); or it is unset outside
                the embedded mode; or the key file is readable by other users or unreadable.
        """
        key = self.secret_key
        if key:
            _check_strong(key, "SECRET_KEY")
        elif self.embedded:
            key = _home_secret_key(self.home_dir / SECRET_KEY_FILE)
        else:
            mode = "in production" if self.environment == "production" else "on PostgreSQL"
            raise InvalidInputError(f"refusing to start {mode} without SECRET_KEY: {HOW_TO_SET_SECRET}")
        accepted = [key]
        if self.secret_key_previous:
            _check_strong(self.secret_key_previous, "SECRET_KEY_PREVIOUS")
            accepted.append(self.secret_key_previous)
        return key, tuple(accepted)


def _check_strong(key: str, name: str) -> None:
    if key == LEGACY_DEFAULT_SECRET_KEY or len(key) < MIN_SECRET_KEY_CHARS or len(set(key)) < MIN_SECRET_KEY_DISTINCT:
        raise InvalidInputError(
            f"{name} is too weak (under {MIN_SECRET_KEY_CHARS} characters, fewer than {MIN_SECRET_KEY_DISTINCT} "
            f"distinct ones, or a published default): {HOW_TO_SET_SECRET}"
        )


def _home_secret_key(path: Path) -> str:
    """The key in ``path``, created (mode 0600, 64 hex characters) when missing.

    Raises:
        InvalidInputError: the file is group- or world-accessible, unreadable, or holds a weak key.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InvalidInputError(
                f"{path} (the generated SECRET_KEY) is readable by other users (mode {mode:o}): run `chmod 600 {path}`"
            )
        key = path.read_text().strip()
    except OSError as exc:
        raise InvalidInputError(f"cannot read or create the secret key file {path}: {exc.strerror}") from None
    _check_strong(key, str(path))
    return key
