"""Pages in a real browser (Debian's chromium through Playwright): every door from the demo portal to its callback, registration, accessibility (axe-core).

Every test here carries the ``browser`` marker (``pytest -m browser``); the shared fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
