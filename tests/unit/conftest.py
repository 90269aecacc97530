"""Unit tests: one module's rules with no server, database or browser (identifiers, the interaction policy, certificates and signatures, adapters against local stub servers, configuration, translations).

Every test here carries the ``unit`` marker (``pytest -m unit``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
