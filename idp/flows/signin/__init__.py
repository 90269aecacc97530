"""The sign-in journey inside an interaction: the door chooser, the citizen door (password, SMS OTP,
remembered devices, step-up), the organization door (password, SMS or authenticator code, TOTP
enrolment), consent, and the forgotten password. One blueprint, ``signin``; its public URLs are
/login/…, /consent/… and /password/forgot….
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("signin", __name__)


def blueprint() -> Blueprint:
    """The blueprint with every route of the package (its modules add them when imported)."""
    from idp.flows.signin import chooser, citizen, consent, organization, password_reset  # noqa: F401

    return bp
