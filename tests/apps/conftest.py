"""idp's own relying parties through the app's test client: the account area (sessions, consents, password) behind its sign-in gate.

Every test here carries the ``apps`` marker (``pytest -m apps``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
