"""The citizen door: ID number (or old CMND) and password, then an SMS OTP to a verified phone."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from idp.flows.signin import bp
from idp.identity import remembered_devices
from idp.identity.accounts import find_citizen, verified_phones
from idp.identity.identifiers import is_id_number, is_legacy_id, mask_phone
from idp.runtime import runtime
from idp.sessions import remember
from idp.sessions.browser import client_address, renew_binding
from idp.sessions.interaction import Interaction
from idp.sessions.otp import OtpSendRefused, refusal_message
from idp.store.models import Phone, db
from idp.web import captcha
from idp.web.forms import ActionForm, OtpForm
from idp.web.pages import (
    finish_login,
    load_interaction,
    lockout_message,
    minutes,
    otp_refusal,
    otp_sms,
    page,
)

OTP_PURPOSE = "login"
LOGIN_AMR = ["pwd", "otp", "sms", "mfa"]


class CitizenLoginForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(max=20)])
    password = PasswordField(validators=[DataRequired(), Length(max=128)])


# -- citizen door: ID number + password -------------------------------------------------------
@bp.route("/login/<ix_id>/citizen", methods=["GET", "POST"])
def citizen(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    form = CitizenLoginForm()
    if request.method == "GET":
        if ix.login_hint and (is_id_number(ix.login_hint) or is_legacy_id(ix.login_hint)):
            form.username.data = ix.login_hint
        return page("citizen_login.html", ix, form=form, error=None)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            return page(
                "citizen_login.html",
                ix,
                status=400,
                form=form,
                error=_("Trang đã mở quá lâu. Vui lòng nhập lại."),
            )
        return page(
            "citizen_login.html",
            ix,
            status=400,
            form=form,
            error=_("Vui lòng nhập số định danh và mật khẩu."),
        )
    username = form.username.data.strip()
    address = client_address()
    if not (is_id_number(username) or is_legacy_id(username)):
        return page(
            "citizen_login.html",
            ix,
            status=400,
            form=form,
            error=_("Số định danh cá nhân gồm 12 chữ số (hoặc số CMND cũ gồm 9 chữ số)."),
        )
    lock_name = remember.throttle_name(username)
    wait = rt.password_throttle.locked_for(name=lock_name, address=address)
    if wait:
        return page("citizen_login.html", ix, status=429, form=form, error=lockout_message(wait))
    refused = captcha.check_sign_in(ix, username)
    if refused:
        return page("citizen_login.html", ix, status=refused[0], form=form, error=refused[1])
    # Counted before the (slow) check: concurrent attempts never get more checks than the limit.
    with rt.password_throttle.attempt(name=lock_name, address=address) as attempt:
        if attempt.wait:
            return page("citizen_login.html", ix, status=429, form=form, error=lockout_message(attempt.wait))
        account = find_citizen(username)
        password_ok = rt.hashing.verify(account.password_hash if account else None, form.password.data)
        if not password_ok or account is None:
            locked = attempt.failed()
            captcha.sign_in_failed(ix, username)
            db.session.rollback()
            error = lockout_message(locked) if locked else _("Số định danh hoặc mật khẩu không đúng.")
            return page("citizen_login.html", ix, status=401, form=form, error=error)
        attempt.succeeded()
    captcha.sign_in_succeeded(username)
    ix.step_up = False  # a whole sign-in now, not the step-up this interaction began with
    if account.status != "active":
        db.session.rollback()
        return page(
            "citizen_login.html",
            ix,
            status=403,
            form=form,
            error=_(
                "Tài khoản này đang bị khóa. Vui lòng gọi tổng đài hỗ trợ %(hotline)s.",
                hotline=rt.config["SUPPORT_HOTLINE"],
            ),
        )
    device = remember.remembered(account.id) if remember.otp_may_be_skipped(ix) else None
    if device is not None:
        # This browser is remembered for the account: no OTP, a level-1 sign-in (amr ["pwd"]).
        remembered_devices.touch(device, ip=address)
        return finish_login(ix, account.id, remember.SKIPPED_OTP_AMR)
    phones = verified_phones(account)
    account_id = account.id
    db.session.rollback()
    if not phones:
        return page(
            "citizen_login.html",
            ix,
            status=409,
            form=form,
            error=_(
                "Tài khoản chưa có số điện thoại nhận mã OTP. Vui lòng gọi tổng đài hỗ trợ %(hotline)s.",
                hotline=rt.config["SUPPORT_HOTLINE"],
            ),
        )
    # Session fixation: a copy of this browser's cookie taken before the password is useless now.
    # (After the pages above, whose form was built with the page session's current CSRF token;
    # the OTP page builds its form afresh.)
    renew_binding()
    if ix.pending_account_id == account_id and rt.otp.remaining_seconds(ix.otp_challenge) > 0:
        return redirect(url_for("signin.otp", ix_id=ix.id))
    return start_otp(ix, account_id, phones[0])


def _send_otp(ix: Interaction, account_id: int, phone: str) -> str:
    rt = runtime()
    text = otp_sms("signin")
    return rt.otp.send(
        account_id=account_id,
        phone=phone,
        purpose=OTP_PURPOSE,
        text=text,
        scope=ix.id,
        address=client_address(),
    )


def _send_or_refuse(ix: Interaction, phone: str) -> str | None:
    """Send a new code for the pending account to `phone` (one of its verified phones).

    On success the interaction holds the new challenge and phone (the caller saves it); otherwise
    nothing was sent, the earlier code still stands, and the message says why.
    """
    rt = runtime()
    assert ix.pending_account_id is not None
    # No new code while the OTP entry is locked: it could not be used, and SMS cost money.
    wait = rt.otp_throttle.locked_for(name=str(ix.pending_account_id), address=client_address())
    if wait:
        return lockout_message(wait)
    try:
        ix.otp_challenge = _send_otp(ix, ix.pending_account_id, phone)
    except OtpSendRefused as refused:
        return refusal_message(refused, rt.config["SUPPORT_HOTLINE"])
    ix.otp_phone = phone
    return None


def start_otp(ix: Interaction, account_id: int, phone: str) -> BaseResponse:
    """After the password: send the first code to the primary phone and open the OTP page. When
    no code can be sent (a cap, an OTP lockout) the OTP page says why and offers the other phones."""
    ix.pending_account_id, ix.otp_phone, ix.otp_challenge = account_id, phone, None
    error = _send_or_refuse(ix, phone)
    runtime().interactions.save(ix)
    if error:
        return _otp_page(ix, status=429, error=error)
    return redirect(url_for("signin.otp", ix_id=ix.id))


# -- citizen door: OTP -------------------------------------------------------------------------
class PhoneChoiceForm(FlaskForm):
    phone = StringField(validators=[DataRequired(), Length(max=12)])


def _phones(ix: Interaction) -> list[tuple[int, str]]:
    """(id, number) of the pending account's verified phones, primary first."""
    stmt = (
        select(Phone.id, Phone.number)
        .where(Phone.account_id == ix.pending_account_id, Phone.verified_at.is_not(None))
        .order_by(Phone.is_primary.desc(), Phone.id)
    )
    rows = [(row.id, row.number) for row in db.session.execute(stmt)]
    db.session.rollback()
    return rows


def _otp_page(
    ix: Interaction,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    form: OtpForm | None = None,
    code_error: bool = False,
) -> BaseResponse:
    """The OTP page; `code_error` when the error is about the code typed (it marks the field)."""
    rt = runtime()
    assert ix.pending_account_id is not None
    daily = rt.config["OTP_DAILY_LIMIT"]
    return page(
        "otp.html",
        ix,
        status=status,
        error=error,
        code_error=code_error,
        notice=notice,
        form=form or OtpForm(formdata=None),
        # Remembered already, yet asked for the OTP: the relying party needs more than LoA1.
        device_remembered=remember.remembered(ix.pending_account_id) is not None,
        phone=mask_phone(ix.otp_phone or ""),
        code_sent=bool(ix.otp_challenge),
        # A step-up sends nothing until the person asks (see begin_step_up).
        step_up_unsent=ix.step_up and not ix.otp_challenge,
        lifetime_minutes=minutes(rt.config["OTP_LIFETIME"]),
        resend_wait=rt.otp.cooldown_left(ix.pending_account_id, ix.id),
        sends_left=max(0, daily - rt.otp.sent_today(ix.pending_account_id)),
        daily_limit=daily,
        other_phones=[(pid, mask_phone(number)) for pid, number in _phones(ix) if number != ix.otp_phone],
        remember_days=rt.config["REMEMBER_DEVICE_DAYS"],
    )


@bp.route("/login/<ix_id>/otp", methods=["GET", "POST"])
def otp(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    if not ix.pending_account_id or not ix.otp_phone:
        return redirect(url_for("signin.citizen", ix_id=ix.id))
    form = OtpForm()
    if request.method == "GET":
        sent = request.args.get("sent") and ix.otp_challenge
        notice = _("Đã gửi mã OTP mới tới số %(phone)s.", phone=mask_phone(ix.otp_phone)) if sent else None
        return _otp_page(ix, notice=notice)
    if not form.validate_on_submit():
        error = _("Vui lòng nhập mã OTP gồm 6 chữ số.")
        return _otp_page(ix, status=400, error=error, form=form, code_error=True)
    account_id = ix.pending_account_id
    address = client_address()
    wait = rt.otp_throttle.locked_for(name=str(account_id), address=address)
    if wait:
        return _otp_page(ix, status=429, error=lockout_message(wait), form=form)
    check = rt.otp.verify(ix.otp_challenge, form.otp.data, account_id=account_id, purpose=OTP_PURPOSE)
    error = otp_refusal(check, rt.otp_throttle, name=str(account_id), address=address)
    if error is not None:
        return _otp_page(ix, status=401, error=error, form=form, code_error=True)
    rt.otp_throttle.success(name=str(account_id))
    secret = remember.remember_browser(account_id) if form.remember.data and remember.enabled() else None
    response = finish_login(ix, account_id, LOGIN_AMR)  # commits the remembered device too
    if secret and response.status_code == 302:
        remember.set_device_cookie(response, secret)
    return response


@bp.post("/login/<ix_id>/otp/resend")
def otp_resend(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    if not ix.pending_account_id or not ix.otp_phone:
        return redirect(url_for("signin.citizen", ix_id=ix.id))
    if not ActionForm().validate_on_submit():
        abort(400)
    error = _send_or_refuse(ix, ix.otp_phone)
    if error:
        return _otp_page(ix, status=429, error=error)
    runtime().interactions.save(ix)
    return redirect(url_for("signin.otp", ix_id=ix.id, sent=1))


@bp.post("/login/<ix_id>/otp/phone")
def otp_phone(ix_id: str) -> BaseResponse:
    """Chọn phương thức nhận OTP khác: a new code to another verified phone of the account."""
    ix = load_interaction(ix_id)
    if not ix.pending_account_id or not ix.otp_phone:
        return redirect(url_for("signin.citizen", ix_id=ix.id))
    form = PhoneChoiceForm()
    valid = form.validate_on_submit()
    if form.csrf_token.errors:
        abort(400)
    numbers = {str(pid): number for pid, number in _phones(ix)}
    number = numbers.get((form.phone.data or "").strip()) if valid else None
    if number is None or number == ix.otp_phone:
        return _otp_page(ix, status=400, error=_("Vui lòng chọn một số điện thoại trong danh sách."))
    error = _send_or_refuse(ix, number)
    if error:
        return _otp_page(ix, status=429, error=error)
    runtime().interactions.save(ix)
    return redirect(url_for("signin.otp", ix_id=ix.id, sent=1))
