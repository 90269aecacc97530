"""Pages in a real browser (Debian's chromium through Playwright): every door from the demo portal to its callback, registration, accessibility (axe-core).

Every test here carries the ``browser`` marker (``pytest -m browser``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
