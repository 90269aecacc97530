"""The OpenID Connect and OAuth endpoints through the app's test client, on PostgreSQL and Redis: authorize, token, refresh, userinfo, introspection, discovery, logout, SSO, bad input and fuzzing, storage and migrations.

Every test here carries the ``protocol`` marker (``pytest -m protocol``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
