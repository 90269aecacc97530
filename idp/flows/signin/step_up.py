"""Step-up: the SSO session's sign-in was a remembered device's password alone (acr LoA1) and a
portal needs more; only the OTP is asked, on the same person's phone (the policy's `step_up` prompt)."""

from __future__ import annotations

from flask import redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from idp.identity.accounts import CITIZEN, verified_phones
from idp.runtime import runtime
from idp.sessions import remember
from idp.sessions.interaction import Interaction
from idp.store.models import Account, db


def begin_step_up(ix: Interaction, account_id: int, amr: list[str]) -> BaseResponse | None:
    """The SSO session's sign-in was the password alone (a remembered browser: LoA1) and this portal
    needs more: ask only for the OTP, on the same person's phone, instead of the whole sign-in again.
    None when that does not apply (another kind of account, no phone): the caller opens the sign-in.

    This runs on GET /authorize, which any site can make a browser open: so nothing is sent here.
    The OTP page asks the person to press "Gửi mã OTP" (a POST with its CSRF token), and keeps
    "Đăng nhập bằng tài khoản khác" for whoever is not that person."""
    if list(amr) != remember.SKIPPED_OTP_AMR:
        return None
    account = db.session.get(Account, account_id)
    eligible = account is not None and account.kind == CITIZEN and account.status == "active"
    phones = verified_phones(account) if account is not None and eligible else []
    db.session.rollback()
    if not phones:
        return None
    ix.step_up = True
    ix.pending_account_id, ix.otp_phone, ix.otp_challenge = account_id, phones[0], None
    runtime().interactions.save(ix)
    return redirect(url_for("signin.otp", ix_id=ix.id))
