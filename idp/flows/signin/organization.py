"""The organization door: username and password, then a second factor — an SMS OTP to the
registered phone or a code from an authenticator app (the person chooses when both exist); a
recovery code may replace the second factor once. A staff member who signed in without an
authenticator (or with a recovery code) is offered to set one up before returning to the portal.

Counters are those of the citizen door's rules (same policies) under names of their own, so a
flood of wrong citizen logins never locks staff out and the reverse.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from idp.flows.signin import bp
from idp.identity.accounts import verified_phones
from idp.identity.identifiers import InvalidIdentifier, mask_phone
from idp.identity.organizations import check_username, find_staff, is_active_staff, normalize_username
from idp.identity.totp import (
    TotpOutcome,
    confirm_totp,
    has_totp,
    new_secret,
    recovery_codes_left,
    use_recovery_code,
    verify_totp,
)
from idp.runtime import runtime
from idp.sessions.browser import client_address, renew_binding
from idp.sessions.interaction import Interaction, OrgProgress
from idp.sessions.otp import OtpSendRefused, refusal_message
from idp.sessions.throttle import LockoutPolicy, Throttle
from idp.store.models import Account, db
from idp.web.forms import ActionForm, EnrolForm
from idp.web.pages import (
    finish_login,
    load_interaction,
    lockout_message,
    minutes,
    otp_refusal,
    otp_sms,
    page,
)
from idp.web.totp import enrolment_context, second_factor_keys

DOOR = "organization"
OTP_PURPOSE = "org-login"
SMS_AMR = ["pwd", "otp", "sms", "mfa"]
TOTP_AMR = ["pwd", "otp", "mfa"]
# A recovery code is a one-time password the person printed (NIST: a look-up secret).
RECOVERY_AMR = ["pwd", "otp", "mfa"]


class OrgLoginForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(max=64)])
    password = PasswordField(validators=[DataRequired(), Length(max=128)])


class CodeForm(FlaskForm):
    otp = StringField(validators=[DataRequired(), Length(max=10)])


class RecoveryForm(FlaskForm):
    recovery_code = StringField(validators=[DataRequired(), Length(max=20)])


def _progress(ix: Interaction) -> OrgProgress | None:
    return ix.org


def _save(ix: Interaction, progress: OrgProgress) -> None:
    ix.org = progress
    runtime().interactions.save(ix)


def password_throttle() -> Throttle:
    rt = runtime()
    return Throttle(rt.store, "org-pwd", rt.password_throttle.policy)


def sms_throttle() -> Throttle:
    rt = runtime()
    return Throttle(rt.store, "org-otp", rt.otp_throttle.policy)


def code_throttle() -> Throttle:
    """Wrong authenticator or recovery codes: OTP_MAX_ATTEMPTS in a row start a lockout."""
    rt = runtime()
    policy = rt.password_throttle.policy
    return Throttle(
        rt.store,
        "org-code",
        LockoutPolicy(rt.config["OTP_MAX_ATTEMPTS"], policy.base_seconds, policy.max_seconds),
    )


def wrong_code_message(locked: int) -> str:
    if locked:
        return lockout_message(locked)
    return _("Mã không đúng. Vui lòng nhập mã đang hiển thị trên ứng dụng xác thực.")


# -- username and password ----------------------------------------------------------------------
@bp.route("/login/<ix_id>/organization", methods=["GET", "POST"])
def organization(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    form = OrgLoginForm()

    def again(status: int, error: str) -> BaseResponse:
        return page("org_login.html", ix, status=status, form=form, error=error)

    if request.method == "GET":
        if ix.login_hint:
            with contextlib.suppress(InvalidIdentifier):
                form.username.data = check_username(ix.login_hint)
        return page("org_login.html", ix, form=form, error=None)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            return again(400, _("Trang đã mở quá lâu. Vui lòng nhập lại."))
        return again(400, _("Vui lòng nhập tên đăng nhập và mật khẩu."))
    username = normalize_username(form.username.data)
    address = client_address()
    throttle = password_throttle()
    # Counted before the (slow) check: concurrent attempts never get more checks than the limit.
    with throttle.attempt(name=username, address=address) as attempt:
        if attempt.wait:
            return again(429, lockout_message(attempt.wait))
        account = find_staff(username)
        password_ok = rt.hashing.verify(account.password_hash if account else None, form.password.data)
        if not password_ok or account is None:
            locked = attempt.failed()
            db.session.rollback()
            return again(
                401, lockout_message(locked) if locked else _("Tên đăng nhập hoặc mật khẩu không đúng.")
            )
        attempt.succeeded()
    if not is_active_staff(account):
        db.session.rollback()
        return again(
            403,
            _(
                "Tài khoản này hoặc đơn vị của bạn đang bị khóa. Vui lòng liên hệ quản trị viên của đơn vị hoặc gọi tổng đài hỗ trợ %(hotline)s.",
                hotline=rt.config["SUPPORT_HOTLINE"],
            ),
        )
    phones = verified_phones(account)
    progress = OrgProgress(
        account_id=account.id,
        phone=phones[0] if phones else None,
        totp=has_totp(account.id),
        recovery=recovery_codes_left(account.id) > 0,
    )
    db.session.rollback()
    if progress.phone is None and not progress.totp:
        return again(
            409,
            _(
                "Tài khoản chưa có số điện thoại hay ứng dụng xác thực để nhận mã. Vui lòng liên hệ quản trị viên của đơn vị hoặc gọi tổng đài hỗ trợ %(hotline)s.",
                hotline=rt.config["SUPPORT_HOTLINE"],
            ),
        )
    if progress.totp and progress.phone:
        target = "signin.org_method"
    elif progress.totp:
        target = "signin.org_totp"
    else:
        try:
            progress.challenge = _send_sms(ix, progress)
        except OtpSendRefused as refused:
            return again(429, _refusal_message(refused))
        target = "signin.org_sms"
    _save(ix, progress)
    # Session fixation: a copy of this browser's cookie taken before the password is useless now.
    renew_binding()
    return redirect(url_for(target, ix_id=ix.id))


def _pending(ix: Interaction) -> OrgProgress | None:
    """The progress of a staff member whose password was accepted and second factor is due."""
    progress = _progress(ix)
    if progress is None or progress.verified_amr is not None:
        return None
    return progress


def _send_sms(ix: Interaction, progress: OrgProgress) -> str:
    rt = runtime()
    assert progress.phone is not None
    text = otp_sms("organization")
    return rt.otp.send(
        account_id=progress.account_id, phone=progress.phone, purpose=OTP_PURPOSE, text=text, scope=ix.id
    )


def _refusal_message(refused: OtpSendRefused) -> str:
    return refusal_message(refused, runtime().config["SUPPORT_HOTLINE"])


# -- choosing the second factor -----------------------------------------------------------------
@bp.route("/login/<ix_id>/organization/method", methods=["GET", "POST"])
def org_method(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _pending(ix)
    if progress is None:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    form = ActionForm()
    context: dict[str, Any] = {"form": form, "phone": mask_phone(progress.phone or ""), "progress": progress}
    if request.method == "GET":
        return page("org_method.html", ix, error=None, **context)
    if not form.validate_on_submit():
        abort(400)
    method = request.form.get("method")
    if method == "totp" and progress.totp:
        return redirect(url_for("signin.org_totp", ix_id=ix.id))
    if method == "sms" and progress.phone:
        if runtime().otp.remaining_seconds(progress.challenge) > 0:
            return redirect(url_for("signin.org_sms", ix_id=ix.id))
        try:
            progress.challenge = _send_sms(ix, progress)
        except OtpSendRefused as refused:
            return page("org_method.html", ix, status=429, error=_refusal_message(refused), **context)
        _save(ix, progress)
        return redirect(url_for("signin.org_sms", ix_id=ix.id))
    return page("org_method.html", ix, status=400, error=_("Vui lòng chọn một cách nhận mã."), **context)


def _code_page(
    ix: Interaction,
    progress: OrgProgress,
    mode: str,
    status: int = 200,
    error: str | None = None,
    **extra: Any,
) -> BaseResponse:
    rt = runtime()
    context: dict[str, Any] = {
        "mode": mode,
        "progress": progress,
        "form": RecoveryForm() if mode == "recovery" else CodeForm(),
        "resend": ActionForm(),
        "error": error,
        "notice": extra.pop("notice", None),
        "phone": mask_phone(progress.phone or ""),
    }
    if mode == "sms":
        context["lifetime_minutes"] = minutes(rt.config["OTP_LIFETIME"])
    return page("org_code.html", ix, status=status, **context, **extra)


# -- SMS OTP ------------------------------------------------------------------------------------
@bp.route("/login/<ix_id>/organization/sms", methods=["GET", "POST"])
def org_sms(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    progress = _pending(ix)
    if progress is None or not progress.phone or not progress.challenge:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if request.method == "GET":
        return _code_page(ix, progress, "sms", notice=request.args.get("sent") and _("Đã gửi mã OTP mới."))
    form = CodeForm()
    if not form.validate_on_submit():
        return _code_page(ix, progress, "sms", 400, _("Vui lòng nhập mã OTP gồm 6 chữ số."))
    address = client_address()
    throttle = sms_throttle()
    name = str(progress.account_id)
    wait = throttle.locked_for(name=name, address=address)
    if wait:
        return _code_page(ix, progress, "sms", 429, lockout_message(wait))
    check = rt.otp.verify(
        progress.challenge, form.otp.data, account_id=progress.account_id, purpose=OTP_PURPOSE
    )
    error = otp_refusal(check, throttle, name=name, address=address)
    if error is not None:
        return _code_page(ix, progress, "sms", 401, error)
    throttle.success(name=name)
    return _passed(ix, progress, SMS_AMR)


@bp.post("/login/<ix_id>/organization/sms/resend")
def org_sms_resend(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _pending(ix)
    if progress is None or not progress.phone:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        progress.challenge = _send_sms(ix, progress)
    except OtpSendRefused as refused:
        return _code_page(ix, progress, "sms", 429, _refusal_message(refused))
    _save(ix, progress)
    return redirect(url_for("signin.org_sms", ix_id=ix.id, sent=1))


# -- authenticator app and recovery code --------------------------------------------------------
@bp.route("/login/<ix_id>/organization/app", methods=["GET", "POST"])
def org_totp(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _pending(ix)
    if progress is None or not progress.totp:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if request.method == "GET":
        return _code_page(ix, progress, "totp")
    form = CodeForm()
    if not form.validate_on_submit():
        return _code_page(ix, progress, "totp", 400, _("Vui lòng nhập mã gồm 6 chữ số."))
    address, name, throttle = client_address(), str(progress.account_id), code_throttle()
    with throttle.attempt(name=name, address=address) as attempt:  # a guessable code: counted first
        if attempt.wait:
            return _code_page(ix, progress, "totp", 429, lockout_message(attempt.wait))
        outcome = verify_totp(progress.account_id, form.otp.data, second_factor_keys())
        if outcome is TotpOutcome.REPLAYED:
            return _code_page(
                ix,
                progress,
                "totp",
                401,
                _("Mã này đã được dùng. Vui lòng đợi ứng dụng hiện mã mới rồi nhập mã mới."),
            )
        if outcome is not TotpOutcome.OK:
            locked = attempt.failed()
            return _code_page(ix, progress, "totp", 401, wrong_code_message(locked))
        attempt.succeeded()
    return _passed(ix, progress, TOTP_AMR)


@bp.route("/login/<ix_id>/organization/recovery", methods=["GET", "POST"])
def org_recovery(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _pending(ix)
    if progress is None:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if request.method == "GET":
        return _code_page(ix, progress, "recovery")
    form = RecoveryForm()
    if not form.validate_on_submit():
        return _code_page(ix, progress, "recovery", 400, _("Vui lòng nhập mã khôi phục."))
    address, name, throttle = client_address(), str(progress.account_id), code_throttle()
    with throttle.attempt(name=name, address=address) as attempt:  # a guessable code: counted first
        if attempt.wait:
            return _code_page(ix, progress, "recovery", 429, lockout_message(attempt.wait))
        if not use_recovery_code(
            progress.account_id, form.recovery_code.data, second_factor_keys(), ip=address
        ):
            locked = attempt.failed()
            error = (
                lockout_message(locked)
                if locked
                else _("Mã khôi phục không đúng hoặc đã được dùng. Mỗi mã chỉ dùng được một lần.")
            )
            return _code_page(ix, progress, "recovery", 401, error)
        attempt.succeeded()
    progress.used_recovery = True
    return _passed(ix, progress, RECOVERY_AMR)


# -- after the second factor: offer an authenticator, then return to the portal ------------------
def _passed(ix: Interaction, progress: OrgProgress, amr: list[str]) -> BaseResponse:
    progress.verified_amr = amr
    progress.challenge = None
    if progress.totp and not progress.used_recovery:
        return _finish(ix, progress)
    _save(ix, progress)
    return redirect(url_for("signin.org_enrol", ix_id=ix.id))


def _finish(ix: Interaction, progress: OrgProgress) -> BaseResponse:
    assert progress.verified_amr is not None
    account = db.session.get(Account, progress.account_id)
    active = account is not None and is_active_staff(account)
    db.session.rollback()
    ix.org = None
    if not active:  # locked (or its organization suspended) since the password was checked
        runtime().interactions.save(ix)
        return redirect(url_for("signin.organization", ix_id=ix.id))
    return finish_login(ix, progress.account_id, progress.verified_amr, door=DOOR)


def _verified(ix: Interaction) -> OrgProgress | None:
    progress = _progress(ix)
    return progress if progress is not None and progress.verified_amr is not None else None


@bp.get("/login/<ix_id>/organization/authenticator")
def org_enrol(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _verified(ix)
    if progress is None:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    left = recovery_codes_left(progress.account_id) if progress.used_recovery else 0
    db.session.rollback()
    return page("org_enrol_offer.html", ix, progress=progress, form=ActionForm(), codes_left=left)


@bp.route("/login/<ix_id>/organization/authenticator/setup", methods=["GET", "POST"])
def org_enrol_setup(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _verified(ix)
    if progress is None:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    keys = second_factor_keys()
    secret = keys.decrypt(progress.enrol_secret) if progress.enrol_secret else None
    if secret is None:
        secret = new_secret()
        progress.enrol_secret = keys.encrypt(secret)
        _save(ix, progress)
    form = EnrolForm()
    account = db.session.get(Account, progress.account_id)
    username = account.username if account else ""
    db.session.rollback()
    context = {
        **enrolment_context(secret, username),
        "form": form,
        "skip": ActionForm(),
        "action": url_for("signin.org_enrol_setup", ix_id=ix.id),
        "ask_password": False,
    }
    if request.method == "GET":
        return page("org_totp_setup.html", ix, error=None, **context)
    if not form.validate_on_submit():
        return page(
            "org_totp_setup.html", ix, status=400, error=_("Vui lòng nhập mã gồm 6 chữ số."), **context
        )
    enrolment = confirm_totp(
        progress.account_id,
        secret,
        form.otp.data,
        keys,
        actor=f"account:{progress.account_id}",
        ip=client_address(),
    )
    if enrolment is None:
        return page(
            "org_totp_setup.html",
            ix,
            status=400,
            error=_(
                "Mã chưa đúng. Hãy kiểm tra giờ trên điện thoại là giờ tự động, rồi nhập mã đang hiển thị trong ứng dụng."
            ),
            **context,
        )
    progress.totp, progress.enrol_secret, progress.used_recovery, progress.recovery = True, None, False, True
    _save(ix, progress)
    return page(
        "org_recovery_codes.html",
        ix,
        codes=enrolment.recovery_codes,
        form=ActionForm(),
        action=url_for("signin.org_continue", ix_id=ix.id),
        enrolled=True,
    )


@bp.post("/login/<ix_id>/organization/continue")
def org_continue(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    progress = _verified(ix)
    if progress is None:
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if not ActionForm().validate_on_submit():
        abort(400)
    return _finish(ix, progress)
