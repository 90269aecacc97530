"""The journeys inside an interaction through the app's test client: the doors, OTP, consent, password reset, registration by register and by certificate, abuse limits.

Every test here carries the ``flows`` marker (``pytest -m flows``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.flows)
