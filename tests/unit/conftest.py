"""Unit tests: one module's rules without an app, a server process or a browser (identifiers, the interaction
policy, the registration registry, certificates and signatures, adapters against local stub servers,
the direction of imports). A few (SMS caps, signing challenges) use the test PostgreSQL and Redis.

Every test here carries the ``unit`` marker (``pytest -m unit``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
