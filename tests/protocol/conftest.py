"""The OpenID Connect and OAuth endpoints through the app's test client, on PostgreSQL and Redis: authorize, token, refresh, userinfo, introspection, discovery, logout, SSO, bad input and fuzzing, storage and migrations.

Every test here carries the ``protocol`` marker (``pytest -m protocol``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.protocol)
