"""Alembic environment: runs against the engine idp hands over (see idp.store.upgrade)."""

from __future__ import annotations

from alembic import context

from idp.store.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # A migration may wait for a lock and run longer than a request is allowed to.
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
