"""Unit tests: one module's rules with no server, database or browser (identifiers, the interaction policy, certificates and signatures, adapters against local stub servers, configuration, translations).

Every test here carries the ``unit`` marker (``pytest -m unit``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.unit)
