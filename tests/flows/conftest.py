"""The journeys inside an interaction through the app's test client: the doors, OTP, consent, password reset, registration by register and by certificate, abuse limits.

Every test here carries the ``flows`` marker (``pytest -m flows``, added by tests/conftest.py); the
shared fixtures are in tests/conftest.py.
"""
