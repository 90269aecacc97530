"""Forgotten password ("Quên mật khẩu"): ID number + captcha, an SMS OTP to the account's
registered phone, then a new password under the policy, typed twice.

The answers never tell whether an account exists for the number: an unknown number (or a locked
account, or one without a phone) gets the same pages, in the same time, as a known one, and no SMS:
it gets a real OTP challenge (same store work, same attempts, cooldown and daily cap) whose code
goes nowhere, under a made-up negative account id that no account has.
So the OTP page does not show the masked phone either: the guides do not require it here, and ID
numbers are widely known, so showing it would confirm the account and leak most of a phone number.
For the same reason the SMS leaves from a background worker (a slow gateway must not make a known
number's answer slower) and refusals to send (daily cap) are silent; the person can resend.

A reset is a record in the short-lived store bound to the browser that started it, living
PASSWORD_RESET_LIFETIME seconds; the OTP follows OtpService's rules under its own purpose, wrong
codes count towards the OTP lockout per ID number and per address, and the record is used up once
the password is set. It may come from a sign-in page (``?ix=``): the last page leads back there.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import Length

from idp.flows.signin import bp
from idp.identity.accounts import find_citizen
from idp.identity.identifiers import is_id_number, is_legacy_id, mask_id
from idp.messaging.sms import SmsSender
from idp.runtime import runtime
from idp.sessions.browser import browser_id, client_address, renew_binding
from idp.sessions.interaction import Interaction
from idp.sessions.otp import OtpSendRefused, refusal_message
from idp.sessions.records import BrowserRecords
from idp.store.models import Account, Person, Phone, db
from idp.web import captcha
from idp.web.errors import PasswordResetExpired
from idp.web.forms import ActionForm, OtpForm
from idp.web.pages import client_name_of, lockout_message, minutes, otp_refusal, otp_sms
from idp.web.passwords import NewPasswordForm, check_new_password, set_password

log = logging.getLogger("idp.password")

OTP_PURPOSE = "password_reset"
_sms_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="reset-sms")


class DeferredSms:
    """Hands each message to a background worker, so the page answers before the gateway does."""

    def __init__(self, sms: SmsSender) -> None:
        self.sms = sms

    def send(self, to: str, text: str) -> None:
        _sms_pool.submit(self._send, to, text)

    def _send(self, to: str, text: str) -> None:
        try:
            self.sms.send(to, text)
        except Exception as exc:  # the person sees no error either way; they can resend
            log.warning("password reset SMS not sent: %s", exc.__class__.__name__)


@dataclass
class Reset:
    id: str
    browser: str
    name: str  # SHA-256 of the ID number typed: the lockout subject, never the number itself
    account_id: int | None  # None: no usable account; every page behaves the same
    otp_subject: int  # the account id for OtpService, or a negative stand-in when there is none
    ix_id: str | None
    challenge: str | None
    phone: str | None
    expires_at: float
    verified: bool = False
    done: bool = False


class ForgotForm(FlaskForm):
    username = StringField(validators=[Length(max=20)])


RESETS = BrowserRecords("pwreset:", Reset)
_save = RESETS.save


def _load(rid: str) -> Reset:
    """The reset of this browser, or an expiry page."""
    reset = RESETS.load(rid)
    if reset is None:
        raise PasswordResetExpired()
    return reset


def _interaction(ix_id: str | None) -> Interaction | None:
    """The sign-in this reset came from, if it is still open in this browser."""
    if not ix_id:
        return None
    return runtime().interactions.load(ix_id, browser_id(create=False))


def _page(template: str, reset: Reset | None, status: int = 200, **context: Any) -> BaseResponse:
    from flask import Response, render_template

    ix = _interaction(reset.ix_id if reset else request.args.get("ix"))
    body = render_template(
        template,
        reset=reset,
        ix=ix,
        client_name=client_name_of(ix) if ix else None,
        lifetime_minutes=minutes(runtime().config["OTP_LIFETIME"]),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


class NoSms:
    """Where the codes of a number without a usable account go: nowhere."""

    def send(self, to: str, text: str) -> None:
        return None


def _send(reset: Reset) -> None:
    """Send a code (to nobody when there is no account). The daily cap refuses silently; the
    cooldown between resends raises OtpSendRefused, the same for every number."""
    rt = runtime()
    otp = copy.copy(rt.otp)
    otp.sms = DeferredSms(rt.otp.sms) if reset.account_id is not None else NoSms()
    try:
        reset.challenge = otp.send(
            account_id=reset.otp_subject,
            # Per-phone caps count per number typed when there is no phone to count.
            phone=reset.phone or "none:" + reset.name[:32],
            purpose=OTP_PURPOSE,
            text=otp_sms("password_reset"),
            scope=reset.id,
        )
    except OtpSendRefused as refused:
        if refused.reason == "cooldown":
            raise
        log.info("password reset OTP refused: %s", refused.reason)
        reset.challenge = None


def _usable(account: Account | None) -> tuple[int | None, str | None]:
    """The account and its first verified phone, when a reset may go ahead (one query either way)."""
    phones = db.session.execute(
        select(Phone.number, Phone.is_primary, Phone.id, Phone.verified_at).where(
            Phone.account_id == (account.id if account is not None else -1)
        )
    ).all()
    usable = sorted((not p.is_primary, p.id, p.number) for p in phones if p.verified_at is not None)
    if account is None or account.status != "active" or account.person_id is None or not usable:
        return None, None
    return account.id, usable[0][2]


def _stand_in(name: str) -> int:
    """A negative account id for OtpService when the number has no usable account."""
    return -int(name[:12], 16) - 1


# -- step 1: the ID number and the captcha ---------------------------------------------------
@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot() -> BaseResponse:
    form = ForgotForm()
    if request.method == "GET" or captcha.wants_new():
        return _page("forgot.html", None, form=form, captcha=captcha.new_challenge(), error=None)

    def again(status: int, error: str | None = None, captcha_error: str | None = None) -> BaseResponse:
        return _page(
            "forgot.html",
            None,
            status=status,
            form=form,
            captcha=captcha.new_challenge(),
            error=error,
            captcha_error=captcha_error,
        )

    if not form.validate_on_submit():
        return again(400, _("Trang đã mở quá lâu. Vui lòng nhập lại."))
    username = (form.username.data or "").strip()
    if not (is_id_number(username) or is_legacy_id(username)):
        return again(400, _("Số định danh cá nhân gồm 12 chữ số (hoặc số CMND cũ gồm 9 chữ số)."))
    if not captcha.answered():
        return again(
            400,
            _("Mã xác thực chưa đúng."),
            _("Mã xác thực không đúng hoặc đã hết hạn. Vui lòng nhập mã trong hình mới."),
        )
    rt = runtime()
    account_id, phone = _usable(find_citizen(username))
    db.session.rollback()
    now = time.time()
    ix = _interaction(request.args.get("ix"))
    name = hashlib.sha256(username.encode()).hexdigest()
    reset = Reset(
        id=secrets.token_urlsafe(24),
        browser=browser_id(create=True),
        name=name,
        account_id=account_id,
        otp_subject=account_id if account_id is not None else _stand_in(name),
        ix_id=ix.id if ix else None,
        challenge=None,
        phone=phone,
        expires_at=now + rt.config["PASSWORD_RESET_LIFETIME"],
    )
    _send(reset)
    _save(reset)
    log.info("password reset started for %s (account found: %s)", mask_id(username), account_id is not None)
    return redirect(url_for("signin.forgot_otp", rid=reset.id))


# -- step 2: the OTP ---------------------------------------------------------------------------
def _otp_page(
    reset: Reset, status: int = 200, error: str | None = None, notice: str | None = None
) -> BaseResponse:
    return _page(
        "forgot_otp.html",
        reset,
        status=status,
        form=OtpForm(formdata=None),
        resend=ActionForm(),
        error=error,
        notice=notice,
    )


@bp.route("/password/forgot/<rid>/otp", methods=["GET", "POST"])
def forgot_otp(rid: str) -> BaseResponse:
    reset = _load(rid)
    rt = runtime()
    if reset.done:
        return redirect(url_for("signin.forgot_done", rid=reset.id))
    if reset.verified:
        return redirect(url_for("signin.forgot_new", rid=reset.id))
    if request.method == "GET":
        return _otp_page(reset, notice=_("Đã gửi mã OTP mới.") if request.args.get("sent") else None)
    form = OtpForm()
    if not form.validate_on_submit():
        return _otp_page(reset, 400, _("Vui lòng nhập mã OTP gồm 6 chữ số."))
    name, address = "reset:" + reset.name, client_address()
    wait = rt.otp_throttle.locked_for(name=name, address=address)
    if wait:
        return _otp_page(reset, 429, lockout_message(wait))
    check = rt.otp.verify(reset.challenge, form.otp.data, account_id=reset.otp_subject, purpose=OTP_PURPOSE)
    error = otp_refusal(check, rt.otp_throttle, name=name, address=address)
    if error is None and reset.account_id is None:  # a stand-in's code is never right
        error = _("Mã OTP đã hết hiệu lực. Bấm Gửi lại OTP để nhận mã mới.")
    if error is not None:
        return _otp_page(reset, 401, error)
    rt.otp_throttle.success(name=name)
    renew_binding()  # the phone is proven: a copy of the cookie taken before cannot set the password
    reset.verified = True
    _save(reset)
    return redirect(url_for("signin.forgot_new", rid=reset.id))


@bp.post("/password/forgot/<rid>/resend")
def forgot_resend(rid: str) -> BaseResponse:
    reset = _load(rid)
    if reset.verified or reset.done:
        return redirect(url_for("signin.forgot_otp", rid=reset.id))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        _send(reset)
    except OtpSendRefused as refused:
        return _otp_page(reset, 429, refusal_message(refused, runtime().config["SUPPORT_HOTLINE"]))
    _save(reset)
    return redirect(url_for("signin.forgot_otp", rid=reset.id, sent=1))


# -- step 3: the new password, twice -----------------------------------------------------------
@bp.route("/password/forgot/<rid>/new", methods=["GET", "POST"])
def forgot_new(rid: str) -> BaseResponse:
    reset = _load(rid)
    if reset.done:
        return redirect(url_for("signin.forgot_done", rid=reset.id))
    if not reset.verified or reset.account_id is None:
        return redirect(url_for("signin.forgot_otp", rid=reset.id))
    form = NewPasswordForm()
    if request.method == "GET":
        return _page("forgot_new.html", reset, form=form, error=None)
    if not form.validate_on_submit():
        return _page(
            "forgot_new.html", reset, 400, form=form, error=_("Trang đã mở quá lâu. Vui lòng nhập lại.")
        )
    account = db.session.get(Account, reset.account_id)
    if account is None or account.status != "active":
        db.session.rollback()
        raise PasswordResetExpired()
    check = check_new_password(account, form)
    if not check.ok:
        db.session.rollback()
        return _page(
            "forgot_new.html",
            reset,
            400,
            form=form,
            error=_("Mật khẩu mới chưa đạt yêu cầu. Vui lòng xem các lỗi bên dưới."),
            password_problems=check.problems,
            confirm_error=check.confirm_error,
        )
    password_hash = runtime().hashing.hash(form.new_password.data)
    db.session.rollback()
    # Used up before the change, so that a second submission cannot set the password again.
    held = RESETS.take(reset.id)
    if held is None or not held["verified"] or held["done"]:
        raise PasswordResetExpired()
    set_password(
        reset.account_id, password_hash, action="password.reset", actor=f"account:{reset.account_id}"
    )
    reset.done = True
    reset.expires_at = time.time() + 600
    _save(reset)
    # The person proved the registered phone and chose a new password: a lockout earned by wrong
    # guesses of the old one no longer protects anything, and would keep them out for no reason.
    # The client address's own lockout stays.
    for login in _login_names(reset.account_id):
        runtime().password_throttle.release(login)
    return redirect(url_for("signin.forgot_done", rid=reset.id))


def _login_names(account_id: int) -> list[str]:
    """What a citizen may type to sign in: the 12-digit ID number and a legacy 9-digit CMND."""
    row = db.session.execute(
        select(Person.id_number, Person.legacy_id_number)
        .join(Account, Account.person_id == Person.id)
        .where(Account.id == account_id)
    ).one_or_none()
    db.session.rollback()
    return [name for name in (row or ()) if name]


@bp.get("/password/forgot/<rid>/done")
def forgot_done(rid: str) -> BaseResponse:
    reset = _load(rid)
    if not reset.done:
        return redirect(url_for("signin.forgot_otp", rid=reset.id))
    return _page("forgot_done.html", reset)
