"""The authenticator page of a staff account in the account area (/account/authenticator).

A signed-in staff member sees whether an authenticator app is active and how many recovery codes
are left, sets up (or replaces) the authenticator with a QR code, and draws new recovery codes.
Changing a second factor is a sensitive action: the account area's gate demands a recent sign-in
(ACCOUNT_RECENT_SIGNIN) and sends the person through the sign-in pages again otherwise. The new
secret waits in the short-lived store, encrypted, until a first valid code confirms it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from idp.apps.account import bp
from idp.apps.gate import current_person, signed_in
from idp.identity.organizations import ORGANIZATION, role_names
from idp.identity.totp import (
    confirm_totp,
    new_secret,
    recovery_codes_left,
    regenerate_recovery_codes,
    totp_confirmed_at,
)
from idp.runtime import runtime
from idp.sessions.browser import client_address
from idp.store.models import Account, db
from idp.web.forms import ActionForm, EnrolForm
from idp.web.totp import enrolment_context, second_factor_keys

PENDING_TTL = 900  # seconds a new secret waits for its first code
ROLE_NAMES = {"admin": _l("Quản trị viên"), "staff": _l("Cán bộ")}


def _render(template: str, status: int = 200, **context: Any) -> BaseResponse:
    body = render_template(template, section="authenticator", client_name=None, **context)
    return Response(body, status=status, mimetype="text/html")


def _staff() -> Account:
    account = db.session.get(Account, current_person().account_id)
    if account is None or account.kind != ORGANIZATION:
        abort(404)
    return account


def _pending_key() -> str:
    return "org_enrol:" + current_person().session.sid


@bp.get("/account/authenticator")
@signed_in
def account_authenticator() -> BaseResponse:
    account = _staff()
    org = account.organization
    context: dict[str, Any] = {
        "username": account.username,
        "organization": org.name if org else "",
        "roles": [str(ROLE_NAMES.get(r, r)) for r in role_names(account)],
        "confirmed_at": totp_confirmed_at(account.id),
        "codes_left": recovery_codes_left(account.id),
        "form": ActionForm(),
        "notice": {"enrolled": _("Đã bật ứng dụng xác thực.")}.get(request.args.get("done", "")),
    }
    db.session.rollback()
    return _render("account/authenticator.html", **context)


@bp.route("/account/authenticator/setup", methods=["GET", "POST"])
@signed_in(recent=True)
def account_authenticator_setup() -> BaseResponse:
    rt = runtime()
    account = _staff()
    account_id, username = account.id, account.username
    db.session.rollback()
    keys = second_factor_keys()
    stored = rt.store.get(_pending_key())
    secret = keys.decrypt(stored) if stored else None
    if secret is None:
        secret = new_secret()
        rt.store.set(_pending_key(), keys.encrypt(secret), PENDING_TTL)
    form = EnrolForm()
    context = {
        **enrolment_context(secret, username),
        "form": form,
        "action": url_for("account.account_authenticator_setup"),
        "ask_password": False,
        "back": url_for("account.account_authenticator"),
        "skip": None,
        "ix": None,
    }
    if request.method == "GET":
        return _render("org_totp_setup.html", error=None, **context)
    if not form.validate_on_submit():
        return _render("org_totp_setup.html", 400, error=_("Vui lòng nhập mã gồm 6 chữ số."), **context)
    enrolment = confirm_totp(
        account_id, secret, form.otp.data, keys, actor=f"account:{account_id}", ip=client_address()
    )
    if enrolment is None:
        return _render(
            "org_totp_setup.html",
            400,
            error=_(
                "Mã chưa đúng. Hãy kiểm tra giờ trên điện thoại là giờ tự động, rồi nhập mã đang hiển thị trong ứng dụng."
            ),
            **context,
        )
    rt.store.delete(_pending_key())
    return _render(
        "org_recovery_codes.html",
        codes=enrolment.recovery_codes,
        enrolled=True,
        action=None,
        back=url_for("account.account_authenticator", done="enrolled"),
    )


@bp.route("/account/authenticator/recovery-codes", methods=["GET", "POST"])
@signed_in(recent=True)
def account_recovery_codes() -> BaseResponse:
    account = _staff()
    account_id = account.id
    if request.method == "GET" or totp_confirmed_at(account_id) is None:
        db.session.rollback()
        return redirect(url_for("account.account_authenticator"), 303)
    if not ActionForm().validate_on_submit():
        abort(400)
    codes = regenerate_recovery_codes(
        account_id, second_factor_keys(), actor=f"account:{account_id}", ip=client_address()
    )
    return _render(
        "org_recovery_codes.html",
        codes=codes,
        enrolled=False,
        action=None,
        back=url_for("account.account_authenticator"),
    )
