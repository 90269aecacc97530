"""Whole deployments in real processes: several workers, faults and failovers of PostgreSQL and Redis, timeouts, outbound guards, an independent OpenID Connect client (oic), the command line and `make demo`.

Every test here carries the ``system`` marker (``pytest -m system``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
