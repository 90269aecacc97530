"""Registration: a citizen or an enterprise proves who they are against a register or with a
certificate signature, confirms a phone and sets a password. One blueprint, ``register``; its
public URLs are /register/….
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("register", __name__)


def blueprint() -> Blueprint:
    """The blueprint with every route of the package (its modules add them when imported)."""
    from idp.flows.register import certificate, steps  # noqa: F401

    return bp
