"""Alembic environment: runs the migrations on the connection :mod:`smart_trader.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

from smart_trader.db.metadata import all_tables

target_metadata = all_tables()
connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` command line: build an engine from the URL in the config
    from smart_trader.db.engine import make_engine

    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
