"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and
can be undone: a model change without its migration fails here, not in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from idp.store import alembic_config, upgrade
from idp.store.models import Base
from tests.support import services


def differences(engine) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.sqlite3'}")
    upgrade(engine)
    assert differences(engine) == []
    command.downgrade(alembic_config(engine), "base")
    upgrade(engine)
    assert differences(engine) == []
    engine.dispose()


def test_postgresql_migrations_match_the_models(pg_url: str) -> None:
    # pg_url's database was migrated to head by the session fixture.
    engine = create_engine(services.sqlalchemy_url(pg_url))
    try:
        assert differences(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", ["0003_remembered_devices", "0002_organizations"])
def test_downgrade_and_upgrade_again(tmp_path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'steps.sqlite3'}")
    upgrade(engine)
    command.downgrade(alembic_config(engine), revision)
    upgrade(engine)
    assert differences(engine) == []
    engine.dispose()
