"""idp's own relying parties through the app's test client: the account area (sessions, consents, password) behind its sign-in gate.

Every test here carries the ``apps`` marker (``pytest -m apps``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.apps)
