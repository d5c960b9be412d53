"""Column types shared by the services' tables.

:class:`ExactDecimal` stores a ``Decimal`` exactly on every backend: PostgreSQL ``NUMERIC`` (no precision
limit, scale kept) and, on SQLite, which has no decimal type, its canonical text (``str(Decimal)``).
Floats are refused on the way in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal column (money, prices, quantities). Python side: ``Decimal`` or ``None``.

    Raises:
        TypeError: a bound value that is not a ``Decimal`` (a float would already have lost digits).
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if type(value) is not Decimal:
            raise TypeError(f"exact decimal columns take Decimal, not {type(value).__name__}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if type(value) is Decimal else Decimal(value)
