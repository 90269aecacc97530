"""Fixtures: PostgreSQL and Redis (fresh database and key prefix per session), keys, the test
relying parties, an app per test with the sandbox people, and a browser-like driver."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from idp import create_app
from idp.oidc.keys import ensure_keys, ensure_secret
from idp.store import upgrade
from tests.support import services
from tests.support.backchannel import BackchannelReceiver
from tests.support.clients import jwt_client_key, test_clients, write_clients_file
from tests.support.driver import Browser
from tests.support.outbox import Outbox

# Every table, children before the tables they refer to.
TABLE_LIST = (
    "audit_events", "consents", "refresh_tokens", "grants", "phones", "account_roles", "totp_credentials",
    "recovery_codes", "remembered_devices", "identity_proofs", "accounts", "organizations", "persons",
)  # fmt: skip
TABLES = ", ".join(TABLE_LIST)


# The kinds of tests, one folder each (tests/<kind>/); every test carries its folder's marker.
KINDS = ("unit", "protocol", "flows", "apps", "browser", "system")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(HERE).parts
        if len(parts) > 1 and parts[0] in KINDS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = services.create_database()
    engine = create_engine(services.sqlalchemy_url(url))
    upgrade(engine)
    engine.dispose()
    yield url
    services.drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.redis_client()
    return services.REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"idptest:{secrets.token_hex(4)}:"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    ensure_keys(directory)
    ensure_secret(directory)
    return directory


@pytest.fixture(scope="session")
def backchannel() -> Iterator[BackchannelReceiver]:
    receiver = BackchannelReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def jwt_key() -> Any:
    return jwt_client_key()


@pytest.fixture(scope="session")
def clients_file(
    tmp_path_factory: pytest.TempPathFactory, backchannel: BackchannelReceiver, jwt_key: Any
) -> Path:
    path = tmp_path_factory.mktemp("clients") / "clients.yaml"
    return write_clients_file(path, test_clients(backchannel.base, jwt_key))


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "sms-outbox.jsonl")


@pytest.fixture
def base_config(keys_dir: Path, clients_file: Path, outbox: Outbox) -> dict[str, Any]:
    """Settings every test app shares; cheap argon2 so that a test is not a benchmark."""
    return {
        "ISSUER": "https://idp.example.vn",
        "KEYS_DIR": str(keys_dir),
        "CLIENTS_FILE": str(clients_file),
        "SMS_OUTBOX": str(outbox.path),
        "CAPTCHA_ENABLED": False,
        "SANDBOX_VERIFIERS_ALLOWED": True,
        "ARGON2_MEMORY_KIB": 1024,
        "ARGON2_TIME_COST": 1,
        "BACKCHANNEL_TIMEOUT": 2.0,
        "TESTING": True,
    }


@pytest.fixture
def app_config(base_config: dict[str, Any], pg_url: str, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {
        **base_config,
        "DATABASE_URL": services.sqlalchemy_url(pg_url),
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
    }


SNAPSHOT_SCHEMA = "idp_test_snapshot"  # outside the public schema: the migrations test ignores it
# What the sandbox rows were loaded with, per database: the snapshot is reused only for the same.
_snapshots: dict[str, tuple[Any, ...]] = {}


def _sandbox_key(app: Any) -> tuple[Any, ...]:
    config = app.config
    return (config["SECRET_KEY"], config["ARGON2_MEMORY_KIB"], config["ARGON2_TIME_COST"])


def _take_snapshot(conn: Any) -> None:
    """Copy every table and sequence as load_sandbox left them (once per session and key)."""
    statements = [f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE", f"CREATE SCHEMA {SNAPSHOT_SCHEMA}"]
    # The names are this module's constants, never input.
    statements += [f"CREATE TABLE {SNAPSHOT_SCHEMA}.{t} AS SELECT * FROM public.{t}" for t in TABLE_LIST]  # noqa: S608
    statements.append(
        f"CREATE TABLE {SNAPSHOT_SCHEMA}.sequences AS SELECT sequencename AS name, last_value, "  # noqa: S608
        "last_value IS NOT NULL AS called FROM pg_sequences WHERE schemaname = 'public'"
    )
    conn.exec_driver_sql(";\n".join(statements))


# Children first to delete, parents first to insert back; then every sequence where it was.
_RESTORE = ";\n".join(
    [f"DELETE FROM public.{t}" for t in TABLE_LIST]  # noqa: S608 - constants
    + [f"INSERT INTO public.{t} SELECT * FROM {SNAPSHOT_SCHEMA}.{t}" for t in reversed(TABLE_LIST)]  # noqa: S608
    + [f"SELECT setval(quote_ident(name), coalesce(last_value, 1), called) FROM {SNAPSHOT_SCHEMA}.sequences"]  # noqa: S608
)


def _reset(app: Any, redis_prefix: str | None) -> None:
    """The sandbox people and nothing else, in PostgreSQL and under the Redis prefix.

    PostgreSQL: the first reset of a session truncates and loads the sandbox (argon2 hashes, audit
    rows, encrypted authenticator secrets), then copies the result aside; later ones put that copy
    back in one round trip, several times faster than TRUNCATE and a new load_sandbox."""
    from idp.sandbox import load_sandbox
    from idp.store.models import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            database, key = str(db.engine.url.database), _sandbox_key(app)
            if _snapshots.get(database) == key:
                with db.engine.begin() as conn:
                    conn.exec_driver_sql(_RESTORE)
            else:
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
                load_sandbox(app.extensions["idp"].hashing)
                with db.engine.begin() as conn:
                    _take_snapshot(conn)
                _snapshots[database] = key
        else:
            load_sandbox(app.extensions["idp"].hashing)
    if redis_prefix:
        services.clear_prefix(services.redis_client(), redis_prefix)


@pytest.fixture
def make_app(app_config: dict[str, Any], redis_prefix: str) -> Iterator[Any]:
    """Build an app (with overrides); the database and Redis are reset once per test."""
    built: list[Any] = []

    def build(**overrides: Any) -> Any:
        app = create_app({**app_config, **overrides})
        if not built:
            _reset(app, redis_prefix)
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            from idp.store.models import db

            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def browser(client: Any, outbox: Outbox) -> Browser:
    return Browser(client, outbox)


# -- a real browser (Debian's chromium driven by Playwright; it never downloads one) ------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One chromium per test module; browser tests skip (fail under CI) when it is missing."""
    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context at desktop size in Vietnamese; ``page.shots`` saves screenshots."""
    from tests.support.browser import Shots

    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15000)
    page.shots = Shots(request.node.name)
    yield page
    context.close()
