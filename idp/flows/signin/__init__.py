"""The sign-in journey inside an interaction: the door chooser, the citizen door (password, SMS OTP,
remembered devices, step-up), the organization door (password, SMS or authenticator code, TOTP
enrolment), consent, and the forgotten password. One blueprint, ``signin``; its public URLs are
/login/…, /consent/… and /password/forgot….
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, redirect, url_for

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

    from idp.runtime import PromptPage
    from idp.sessions.interaction import Interaction
    from idp.sessions.sso import SsoSession

bp = Blueprint("signin", __name__)


def blueprint() -> Blueprint:
    """The blueprint with every route of the package (its modules add them when imported)."""
    from idp.flows.signin import chooser, citizen, consent, organization, password_reset  # noqa: F401

    return bp


def _login_page(ix: Interaction, session: SsoSession | None) -> BaseResponse:
    return redirect(url_for("signin.login", ix_id=ix.id), 302)


def _step_up_page(ix: Interaction, session: SsoSession | None) -> BaseResponse:
    """Only what is missing (the OTP of a remembered-device sign-in), else the whole sign-in."""
    from idp.flows.signin.step_up import begin_step_up

    stepped = None
    if session is not None and ix.pending_account_id is None:
        stepped = begin_step_up(ix, session.account_id, session.amr)
    return stepped or _login_page(ix, session)


def _consent_page(ix: Interaction, session: SsoSession | None) -> BaseResponse:
    return redirect(url_for("signin.consent", ix_id=ix.id), 302)


def prompt_pages() -> dict[str, PromptPage]:
    """The pages this journey opens for the prompts of the interaction policy (idp.oidc.policy)."""
    return {"login": _login_page, "step_up": _step_up_page, "consent": _consent_page}
