"""PostgreSQL and Redis for tests: a fresh database and a fresh key prefix per test session.

Under CI=true a missing service fails the test (never skips it); on a developer machine the
test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets

import psycopg
import pytest
import redis

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(name: str, exc: BaseException) -> None:
    message = f"{name} is not reachable ({exc.__class__.__name__}: {exc})"
    if CI:
        pytest.fail(message + " - CI requires it", pytrace=False)
    pytest.skip(message)


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def create_database() -> str:
    """Create an empty database; returns its libpq URL."""
    name = "idp_t_" + secrets.token_hex(6)
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        pass


def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return client


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
