"""Change of password by a signed-in person (seed 001: "thay đổi mật khẩu tài khoản qua mã xác
thực OTP"): the current password and the new one typed twice, then an SMS OTP to the registered
phone confirms the change.

Behind the account area's gate (idp.apps.account.home.signed_in: a person who is not signed in goes
through the sign-in pages first and comes back). The current password is checked under the sign-in's
password lockout (same counters, keyed on the account's login name), so a borrowed session cannot
try more passwords than the sign-in page allows. Between the two steps the store keeps only the
argon2 hash of the new password, bound to this browser and its SSO session, for
PASSWORD_RESET_LIFETIME seconds. The change ends the person's other SSO sessions; this browser stays signed in.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from flask import Response, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField
from wtforms.validators import Length

from idp.apps.account import bp
from idp.apps.gate import current_person, signed_in
from idp.identity.accounts import verified_phones
from idp.identity.identifiers import mask_phone
from idp.runtime import runtime
from idp.sessions import remember
from idp.sessions.browser import browser_id, client_address, renew_binding
from idp.sessions.otp import OtpSendRefused, refusal_message
from idp.sessions.sso import SsoSession
from idp.store.models import Account, db
from idp.web.forms import ActionForm, OtpForm
from idp.web.pages import lockout_message, minutes, otp_refusal, otp_sms
from idp.web.passwords import NewPasswordForm, check_new_password, set_password

OTP_PURPOSE = "password_change"
PENDING = "pwchange"  # the session-cookie key of the change waiting for its OTP


class ChangeForm(NewPasswordForm):
    current_password = PasswordField(validators=[Length(max=128)])


@dataclass
class PendingChange:
    id: str
    browser: str
    sid: str
    account_id: int
    password_hash: str
    challenge: str
    phone: str
    expires_at: float


def _page(template: str, status: int = 200, **context: Any) -> BaseResponse:
    body = render_template(
        template, section="password", lifetime_minutes=minutes(runtime().config["OTP_LIFETIME"]), **context
    )
    return Response(body, status=status, mimetype="text/html")


def _load_pending(sso: SsoSession) -> PendingChange | None:
    pid = session.get(PENDING)
    raw = runtime().store.get("pwchange:" + pid) if isinstance(pid, str) and len(pid) <= 64 else None
    if raw is None:
        return None
    pending = PendingChange(**json.loads(raw))
    bid = browser_id(create=False)
    if not bid or not secrets.compare_digest(pending.browser, bid) or pending.sid != sso.sid:
        return None
    return pending


# -- step 1: current password and the new one --------------------------------------------------
@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
def change_password() -> BaseResponse:
    sso = current_person().session
    account = db.session.get(Account, sso.account_id)
    if account is None or account.password_hash is None:
        abort(404)  # an account without a password of its own (a federated link) has none to change
    rt = runtime()
    form = ChangeForm()
    phones = verified_phones(account)
    context: dict[str, Any] = {"form": form, "username": account.username}
    if request.method == "GET":
        db.session.rollback()
        return _page("password_change.html", **context, error=None)
    if not form.validate_on_submit():
        db.session.rollback()
        return _page(
            "password_change.html", 400, **context, error=_("Trang đã mở quá lâu. Vui lòng nhập lại.")
        )
    name, address = remember.throttle_name(account.username), client_address()
    with rt.password_throttle.attempt(name=name, address=address) as attempt:  # counted before the check
        if attempt.wait:
            db.session.rollback()
            return _page("password_change.html", 429, **context, error=lockout_message(attempt.wait))
        if not rt.hashing.verify(account.password_hash, form.current_password.data or ""):
            locked = attempt.failed()
            db.session.rollback()
            error = lockout_message(locked) if locked else _("Mật khẩu hiện tại không đúng.")
            return _page("password_change.html", 401, **context, error=error, current_error=True)
        attempt.succeeded()
    check = check_new_password(account, form)
    if not check.ok:
        db.session.rollback()
        return _page(
            "password_change.html",
            400,
            **context,
            error=_("Mật khẩu mới chưa đạt yêu cầu. Vui lòng xem các lỗi bên dưới."),
            password_problems=check.problems,
            confirm_error=check.confirm_error,
        )
    if not phones:
        db.session.rollback()
        return _page(
            "password_change.html",
            409,
            **context,
            error=_(
                "Tài khoản chưa có số điện thoại nhận mã OTP. Vui lòng gọi tổng đài hỗ trợ %(hotline)s.",
                hotline=rt.config["SUPPORT_HOTLINE"],
            ),
        )
    password_hash = rt.hashing.hash(form.new_password.data)
    account_id = account.id
    db.session.rollback()
    pid = secrets.token_urlsafe(24)
    try:
        challenge = rt.otp.send(
            account_id=account_id,
            phone=phones[0],
            purpose=OTP_PURPOSE,
            text=otp_sms("password_change"),
            scope=pid,
        )
    except OtpSendRefused as refused:
        return _page(
            "password_change.html",
            429,
            **context,
            error=refusal_message(refused, rt.config["SUPPORT_HOTLINE"]),
        )
    lifetime = rt.config["PASSWORD_RESET_LIFETIME"]
    pending = PendingChange(
        id=pid,
        browser=browser_id(create=True),
        sid=sso.sid,
        account_id=account_id,
        password_hash=password_hash,
        challenge=challenge,
        phone=phones[0],
        expires_at=time.time() + lifetime,
    )
    rt.store.set("pwchange:" + pid, json.dumps(asdict(pending)), lifetime)
    session[PENDING] = pid
    renew_binding()  # the current password is proven (a redirect follows: no form renders here)
    return redirect(url_for("account.change_password_otp"))


# -- step 2: the OTP confirms the change -------------------------------------------------------
def _otp_page(pending: PendingChange, status: int = 200, error: str | None = None) -> BaseResponse:
    return _page(
        "password_change_otp.html",
        status,
        form=OtpForm(formdata=None),
        resend=ActionForm(),
        phone=mask_phone(pending.phone),
        error=error,
        notice=_("Đã gửi mã OTP mới.") if request.args.get("sent") and not error else None,
    )


@bp.route("/account/password/otp", methods=["GET", "POST"])
@signed_in
def change_password_otp() -> BaseResponse:
    pending = _load_pending(current_person().session)
    if pending is None:
        return redirect(url_for("account.change_password"))
    rt = runtime()
    if request.method == "GET":
        return _otp_page(pending)
    form = OtpForm()
    if not form.validate_on_submit():
        return _otp_page(pending, 400, _("Vui lòng nhập mã OTP gồm 6 chữ số."))
    name, address = str(pending.account_id), client_address()
    wait = rt.otp_throttle.locked_for(name=name, address=address)
    if wait:
        return _otp_page(pending, 429, lockout_message(wait))
    check = rt.otp.verify(
        pending.challenge, form.otp.data, account_id=pending.account_id, purpose=OTP_PURPOSE
    )
    error = otp_refusal(check, rt.otp_throttle, name=name, address=address)
    if error is not None:
        return _otp_page(pending, 401, error)
    rt.otp_throttle.success(name=name)
    if rt.store.take("pwchange:" + pending.id) is None:
        return redirect(url_for("account.change_password"))
    session.pop(PENDING, None)
    ended = set_password(
        pending.account_id,
        pending.password_hash,
        action="password.changed",
        actor=f"account:{pending.account_id}",
    )
    return redirect(url_for("account.password_changed", ended=ended), 303)


@bp.get("/account/password/changed")
@signed_in
def password_changed() -> BaseResponse:
    """A GET page after the change, so that a reload or the language switch does not resubmit."""
    ended = request.args.get("ended", "0")
    return _page("password_changed.html", ended=int(ended) if ended.isdigit() else 0)


@bp.post("/account/password/resend")
@signed_in
def change_password_resend() -> BaseResponse:
    pending = _load_pending(current_person().session)
    if pending is None:
        return redirect(url_for("account.change_password"))
    if not ActionForm().validate_on_submit():
        abort(400)
    rt = runtime()
    try:
        pending.challenge = rt.otp.send(
            account_id=pending.account_id,
            phone=pending.phone,
            purpose=OTP_PURPOSE,
            text=otp_sms("password_change"),
            scope=pending.id,
        )
    except OtpSendRefused as refused:
        return _otp_page(pending, 429, refusal_message(refused, rt.config["SUPPORT_HOTLINE"]))
    lifetime = rt.config["PASSWORD_RESET_LIFETIME"]
    pending.expires_at = time.time() + lifetime
    rt.store.set("pwchange:" + pending.id, json.dumps(asdict(pending)), lifetime)
    return redirect(url_for("account.change_password_otp", sent=1))
