"""Whole deployments in real processes: several workers, faults and failovers of PostgreSQL and Redis, timeouts, outbound guards, an independent OpenID Connect client (oic), the command line and `make demo`.

Every test here carries the ``system`` marker (``pytest -m system``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.system)
