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


@pytest.mark.parametrize(
    "revision", ["0004_identity_proofs", "0003_remembered_devices", "0002_organizations"]
)
def test_downgrade_and_upgrade_again(tmp_path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'steps.sqlite3'}")
    upgrade(engine)
    command.downgrade(alembic_config(engine), revision)
    upgrade(engine)
    assert differences(engine) == []
    engine.dispose()


def test_consents_given_before_claims_were_recorded_cover_their_scopes_claims(tmp_path: Path) -> None:
    """0005: a consent to "openid profile" given earlier covers name, birthdate, gender, updated_at
    (and nothing more), so nobody is asked again for what they already agreed to."""
    from sqlalchemy import text

    engine = create_engine(f"sqlite:///{tmp_path / 'consents.sqlite3'}")
    upgrade(engine, "0004_identity_proofs")
    with engine.begin() as conn:
        # SQLite checks no foreign keys here: the consent row alone is enough.
        conn.execute(
            text(
                "INSERT INTO consents (account_id, client_id, scope, granted_at) "
                "VALUES (1, 'partner', 'openid profile offline_access', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        claims = conn.execute(text("SELECT claims FROM consents")).scalar_one()
    assert claims.split() == ["birthdate", "gender", "name", "updated_at"]
    engine.dispose()
