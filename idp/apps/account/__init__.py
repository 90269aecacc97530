"""The account area (/account), a built-in relying party of idp: sessions and devices, consents,
the identity level and its raise, the password, the authenticator app of staff accounts. Every
view sits behind the sign-in gate (idp.apps.gate.signed_in). One blueprint, ``account``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__)


def blueprint() -> Blueprint:
    """The blueprint with every route of the package (its modules add them when imported)."""
    from idp.apps.account import assurance, authenticator, home, password  # noqa: F401

    return bp
