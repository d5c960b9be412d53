"""The one SQLAlchemy ``MetaData`` every service's tables register on (one set of Alembic migrations).

Each service owns its tables in its own ``tables.py`` (gateway, portfolio, execution) and no service
queries another's tables; :func:`all_tables` imports them all (for Alembic and tests).
"""

from __future__ import annotations

from sqlalchemy import MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def all_tables() -> MetaData:
    """The metadata with every service's tables imported onto it."""
    from smart_trader.analytics import tables as _analytics  # noqa: F401
    from smart_trader.challenges import tables as _challenges  # noqa: F401
    from smart_trader.compliance import tables as _compliance  # noqa: F401
    from smart_trader.db import outbox  # noqa: F401
    from smart_trader.execution import tables as _execution  # noqa: F401
    from smart_trader.gateway import tables as _gateway  # noqa: F401
    from smart_trader.notifications import tables as _notifications  # noqa: F401
    from smart_trader.payments import tables as _payments  # noqa: F401
    from smart_trader.portfolio import tables as _portfolio  # noqa: F401
    from smart_trader.risk import tables as _risk  # noqa: F401
    from smart_trader.workers import tables as _workers  # noqa: F401

    return metadata
