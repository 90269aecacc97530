"""Registration ("Đăng ký tài khoản") as the guides describe it (seeds 000, 002, 003, 004).

The person picks who registers (citizen or enterprise) and how (DESIGN §5). Each method has its
own check step; they all end the same way:

    check (registers / certificate) -> OTP to the phone -> password under the policy -> success

The check step has the three outcomes of seed 000: no matching record ("Không tìm thấy dữ liệu dân
cư trùng khớp…"), already registered ("Số định danh ***…*** đã được đăng ký", masked, with a pointer
to "Quên mật khẩu"), or a match, which continues. The register is asked *before* idp says whether
the number is registered, so that only someone who knows the person's name and birth date learns
that an account exists (the guides require the message; this keeps it from being a lookup
service). Every check needs the captcha and counts against REGISTRATION_CHECKS_PER_HOUR per client
address.

A registration in progress is a record in the short-lived store bound to the browser that started
it (REGISTRATION_LIFETIME). Nothing durable is written before the last step, and then everything
(person, proof, account, phone, audit) in one transaction whose unique constraints decide between
two concurrent registrations of the same person: the loser sees "already registered".
It may come from a sign-in page (``?ix=``): the success page leads back to that sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Response, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import Length

from idp.flows.register import bp, methods
from idp.identity.accounts import AlreadyRegistered
from idp.identity.assurance import LEVEL_ACR
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_bhxh_code,
    check_birth_date,
    check_id_number,
    is_legacy_id,
    mask_id,
    mask_phone,
    normalize_name,
    normalize_phone,
    parse_date,
)
from idp.identity.passwords import check_policy
from idp.identity.registration import METHOD_LEVELS, ProvenIdentity, register_citizen, registered_number
from idp.proofing.register_checks import Claimed, Refused
from idp.runtime import runtime
from idp.sessions.browser import browser_id, client_address, renew_binding
from idp.sessions.interaction import Interaction
from idp.sessions.otp import OtpSendRefused, refusal_message
from idp.sessions.records import BrowserRecords
from idp.store.models import utcnow
from idp.verifiers.base import (
    Verification,
    VerifierError,
    VerifierRejected,
    VerifierUnavailable,
)
from idp.web import captcha
from idp.web.errors import (
    RegisterRefusedRequest,
    RegisterUnavailable,
    RegistrationExpired,
    RegistrationPaused,
)
from idp.web.forms import ActionForm, OtpForm
from idp.web.pages import client_name_of, lockout_message, minutes, otp_refusal, otp_sms
from idp.web.passwords import POLICY_TEXTS, NewPasswordForm

log = logging.getLogger("idp.registration")

OTP_PURPOSE = "registration"


@dataclass
class CertificateProgress:
    """How far a registration by certificate signature got (idp.flows.register.certificate)."""

    device: str | None = None  # "sim" | "usb"
    challenge_id: str | None = None  # single use; None once the signature was accepted
    code: str | None = None  # the confirmation code the page and the SIM's prompt show
    data_b64: str | None = None  # what the USB plugin signs
    sim_phone: str | None = None  # E.164 of the signing SIM
    transaction: str | None = None  # the SIM service's request
    verified: bool = False  # the signature and the chain were accepted
    needs_birth_date: bool | None = None  # a certificate naming only the old CMND
    tax_code: str | None = None  # an enterprise's, from its certificate
    organization_name: str | None = None
    suggested_username: str | None = None
    username: str | None = None  # the enterprise administrator's, once registered
    level: int | None = None


@dataclass
class Registration:
    id: str
    browser: str
    method: str
    kind: str  # "citizen" or "enterprise"
    ix_id: str | None
    expires_at: float
    # What the check step proved.
    id_number: str | None = None
    legacy_id_number: str | None = None
    full_name: str | None = None
    birth_date: str | None = None  # ISO
    gender: str | None = None
    phone: str | None = None  # E.164: where the OTP goes, the account's first verified phone
    email: str | None = None
    verifier: str | None = None
    evidence_id: str | None = None
    verified_at: str | None = None  # ISO, UTC
    # Progress.
    challenge: str | None = None
    phone_verified: bool = False
    account_id: int | None = None
    done: bool = False
    # What a certificate method keeps between its steps (idp.flows.register.certificate).
    cert: CertificateProgress = field(default_factory=lambda: CertificateProgress())

    def __post_init__(self) -> None:
        if isinstance(self.cert, dict):  # read back from the store
            self.cert = CertificateProgress(**self.cert)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Registration:
        """A stored registration; one saved before typed progress kept it in `extra`."""
        extra = data.pop("extra", None)
        if extra and "cert" not in data:
            known = CertificateProgress.__dataclass_fields__
            data["cert"] = {k: v for k, v in extra.items() if k in known}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def otp_subject(self) -> int:
        """OtpService counts per account; a registration has none yet, so a stand-in per phone
        (negative: no account has it) keeps the daily cap per phone across registrations."""
        digest = hashlib.sha256(f"register:{self.phone}".encode()).hexdigest()
        return -int(digest[:12], 16) - 1

    def identity(self) -> ProvenIdentity:
        assert self.id_number and self.full_name and self.verifier and self.verified_at
        return ProvenIdentity(
            id_number=self.id_number,
            legacy_id_number=self.legacy_id_number,
            full_name=self.full_name,
            birth_date=dt.date.fromisoformat(self.birth_date) if self.birth_date else None,
            gender=self.gender,
            method=self.method,
            verifier=self.verifier,
            evidence_id=self.evidence_id,
            verified_at=dt.datetime.fromisoformat(self.verified_at),
        )


# -- the record --------------------------------------------------------------------------------
REGISTRATIONS = BrowserRecords("register:", Registration)
save = REGISTRATIONS.save


def load(rid: str) -> Registration:
    """The registration of this browser, or an expiry page."""
    reg = REGISTRATIONS.load(rid)
    if reg is None:
        raise RegistrationExpired()
    interaction(reg.ix_id)  # the sign-in's language, when there is one
    return reg


def start(method: str, kind: str) -> Registration:
    ix = interaction(request.args.get("ix"))
    return Registration(
        id=secrets.token_urlsafe(24),
        browser=browser_id(create=True),
        method=method,
        kind=kind,
        ix_id=ix.id if ix else None,
        expires_at=time.time() + runtime().config["REGISTRATION_LIFETIME"],
    )


def interaction(ix_id: str | None) -> Interaction | None:
    """The sign-in this registration came from, if it is still open in this browser."""
    if not ix_id:
        return None
    ix = runtime().interactions.load(ix_id, browser_id(create=False))
    if ix is not None:
        g.ui_locales = ix.ui_locales
    return ix


def _title(reg: Registration | None) -> str | None:
    found = methods.method(reg.method) if reg else None
    title = found.titles.get(reg.kind) if found is not None and reg is not None else None
    return str(title) if title is not None else None


def render(template: str, reg: Registration | None, status: int = 200, **context: Any) -> BaseResponse:
    ix = interaction(reg.ix_id if reg else request.args.get("ix"))
    body = render_template(
        template,
        reg=reg,
        ix=ix,
        client_name=client_name_of(ix) if ix else None,
        method_title=_title(reg),
        method=methods.method(reg.method) if reg else None,
        methods=methods,
        lifetime_minutes=minutes(runtime().config["OTP_LIFETIME"]),
        registering=True,
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


# -- outcomes a person can act on ----------------------------------------------------------------
def already_registered(reg: Registration | None, number: str, status: int = 409) -> BaseResponse:
    """Seed 000, case 1: the number is registered; masked, with a way forward."""
    return render("register_exists.html", reg, status=status, masked=mask_id(number))


def verifier_failed(reg: Registration | None, error: VerifierError, retry: str) -> BaseResponse:
    """A register could not answer: nothing was written; say so and what to do, with an error id
    that is in the operator's log line."""
    if isinstance(error, VerifierUnavailable):
        return RegisterUnavailable(str(error), retry_url=retry).response()
    if isinstance(error, VerifierRejected):
        return RegisterRefusedRequest(str(error), retry_url=retry).response()
    return RegistrationPaused(f"({type(error).__name__}): {error}").response()


def checks_exhausted() -> int:
    """Count one register check for this client address; the seconds to wait when over the cap."""
    rt = runtime()
    hour = int(time.time()) // 3600
    address = hashlib.sha256(client_address().encode()).hexdigest()[:32]
    key = f"regcheck:{address}:{hour}"
    count = rt.store.incr(key, 3600)
    if count > rt.config["REGISTRATION_CHECKS_PER_HOUR"]:
        return 3600 - int(time.time()) % 3600
    return 0


def proven(reg: Registration, check: Verification, **attributes: str | None) -> None:
    """Copy what a register proved into the registration (its canonical values win)."""
    values = dict(attributes)
    for name in ("id_number", "legacy_id_number", "full_name", "birth_date", "gender"):
        if check.attributes.get(name):
            values[name] = check.attributes[name]
    for name, value in values.items():
        setattr(reg, name, value)
    reg.verifier = check.verifier
    reg.evidence_id = check.evidence_id
    reg.verified_at = check.verified_at.isoformat()


# -- step 0: who registers, and how ------------------------------------------------------------
@bp.get("/register")
def register() -> BaseResponse:
    return render("register_start.html", None, hotline=runtime().config["SUPPORT_HOTLINE"])


# -- step 1: the form and the register check ---------------------------------------------------
class RegisterForm(FlaskForm):
    id_number = StringField(validators=[Length(max=20)])
    bhxh_code = StringField(validators=[Length(max=20)])
    full_name = StringField(validators=[Length(max=200)])
    birth_date = StringField(validators=[Length(max=20)])
    id_issue_date = StringField(validators=[Length(max=20)])
    phone = StringField(validators=[Length(max=20)])
    email = StringField(validators=[Length(max=254)])


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


@dataclass
class Entered:
    """The form's values once each has the right format (errors: field -> message)."""

    errors: dict[str, str] = field(default_factory=dict)
    id_number: str | None = None
    legacy_id_number: str | None = None
    bhxh_code: str | None = None
    full_name: str = ""
    birth_date: dt.date | None = None
    id_issue_date: dt.date | None = None
    phone: str | None = None
    email: str | None = None


def _date(text: str, field_name: str, entered: Entered, required_message: str) -> dt.date | None:
    """A date of the past (a birth, an ID card's issue): not after today in Vietnam, not before 1900."""
    text = text.strip()
    if not text:
        entered.errors[field_name] = required_message
        return None
    try:
        return check_birth_date(parse_date(text))
    except InvalidIdentifier as exc:
        entered.errors[field_name] = (
            _("Vui lòng nhập ngày theo dạng ngày/tháng/năm, ví dụ 15/03/1990.")
            if exc.code in ("date.format", "date.impossible")
            else _("Ngày đã nhập không hợp lệ.")
        )
        return None


def read_form(form: RegisterForm, found: methods.RegistrationMethod) -> Entered:
    """Check the format of every field the method asks before any register is asked."""
    asks = set(found.fields)
    legacy_allowed = "id_number_or_cmnd" in asks
    entered = Entered()
    errors = entered.errors
    name = normalize_name(form.full_name.data or "")
    if not name:
        errors["full_name"] = _("Vui lòng nhập họ và tên.")
    elif len(name) < 2 or any(ch.isdigit() for ch in name):
        errors["full_name"] = _("Họ và tên chỉ gồm chữ cái, như trên căn cước công dân.")
    entered.full_name = name
    entered.birth_date = _date(
        form.birth_date.data or "", "birth_date", entered, _("Vui lòng nhập ngày sinh.")
    )
    if "bhxh_code" in asks:
        try:
            entered.bhxh_code = check_bhxh_code(form.bhxh_code.data or "")
        except InvalidIdentifier:
            errors["bhxh_code"] = _(
                "Mã số bảo hiểm xã hội gồm 10 chữ số (10 số cuối trên thẻ bảo hiểm y tế)."
            )
    else:
        number = re.sub(r"\s", "", form.id_number.data or "")
        if legacy_allowed and is_legacy_id(number):
            entered.legacy_id_number = number
        elif not re.fullmatch(r"\d{12}", number):
            errors["id_number"] = (
                _("Số định danh cá nhân gồm 12 chữ số (hoặc số CMND cũ gồm 9 chữ số).")
                if legacy_allowed
                else _("Số định danh cá nhân gồm 12 chữ số.")
            )
        else:
            try:
                entered.id_number = check_id_number(number, entered.birth_date)
            except InvalidIdentifier as exc:
                errors["id_number"] = (
                    _("Số định danh không khớp với năm sinh đã nhập. Vui lòng kiểm tra lại.")
                    if exc.code == "id_number.birth_year"
                    else _("Số định danh không hợp lệ: ba chữ số đầu không phải mã tỉnh, thành phố.")
                )
    if "id_issue_date" in asks:
        entered.id_issue_date = _date(
            form.id_issue_date.data or "", "id_issue_date", entered, _("Vui lòng nhập ngày cấp căn cước.")
        )
    try:
        entered.phone = normalize_phone(form.phone.data or "")
    except InvalidIdentifier:
        errors["phone"] = _("Số điện thoại di động gồm 10 chữ số, bắt đầu bằng 0 (ví dụ 0912345678).")
    email = (form.email.data or "").strip()
    if email and not _EMAIL.match(email):
        errors["email"] = _("Địa chỉ thư điện tử chưa đúng.")
    entered.email = email or None
    return entered


@bp.route("/register/citizen/<method>", methods=["GET", "POST"])
def register_form(method: str) -> BaseResponse:
    found = methods.method(method)
    if found is None or not found.by_register:
        abort(404)
    form = RegisterForm()
    reg_stub = Registration(
        id="", browser="", method=method, kind="citizen", ix_id=request.args.get("ix"), expires_at=0
    )

    def again(status: int, error: str | None = None, **context: Any) -> BaseResponse:
        return render(
            "register_form.html",
            reg_stub,
            status=status,
            form=form,
            captcha=captcha.new_challenge(),
            error=error,
            **context,
        )

    if request.method == "GET" or captcha.wants_new():
        return again(200, field_errors={})
    if not form.validate_on_submit():
        return again(400, _("Trang đã mở quá lâu. Vui lòng nhập lại."), field_errors={})
    entered = read_form(form, found)
    if entered.errors:
        return again(
            400, _("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."), field_errors=entered.errors
        )
    if not captcha.answered():
        return again(
            400,
            _("Mã xác thực chưa đúng."),
            field_errors={},
            captcha_error=_("Mã xác thực không đúng hoặc đã hết hạn. Vui lòng nhập mã trong hình mới."),
        )
    wait = checks_exhausted()
    if wait:
        return again(429, lockout_message(wait), field_errors={})
    reg = start(method, "citizen")
    retry = url_for("register.register_form", method=method, ix=reg.ix_id)
    try:
        outcome = run_check(found, reg, entered)
    except VerifierError as error:
        return verifier_failed(reg, error, retry)
    if outcome is not None:
        status, message = outcome
        return again(status, message, field_errors={})
    number = registered_number(reg.id_number, reg.legacy_id_number)
    if number is not None:
        log.info("registration of an already registered number %s", mask_id(number))
        return already_registered(reg, number)
    reg.email = entered.email
    log.info("registration %s by %s: identity checked (%s)", reg.id[:8], method, mask_id(reg.id_number))
    return send_first_otp(reg)


def run_check(
    found: methods.RegistrationMethod, reg: Registration, entered: Entered
) -> tuple[int, str] | None:
    """The method's register check; a match is copied into the registration, a refusal worded."""
    assert found.check is not None and entered.birth_date is not None and entered.phone is not None
    claimed = Claimed(
        full_name=entered.full_name,
        birth_date=entered.birth_date,
        phone=entered.phone,
        id_number=entered.id_number,
        legacy_id_number=entered.legacy_id_number,
        bhxh_code=entered.bhxh_code,
        id_issue_date=entered.id_issue_date,
    )
    outcome = found.check(runtime().registers, claimed)
    if isinstance(outcome, Refused):
        return 422, str(found.refusals[outcome.reason]) % {"phone": mask_phone(entered.phone)}
    proven(reg, outcome.verification, **outcome.identity)
    return None


# -- step 2: the OTP to the phone --------------------------------------------------------------
def send_otp(reg: Registration) -> None:
    """Send a code to the registration's phone under OtpService's caps (raises OtpSendRefused)."""
    assert reg.phone is not None
    reg.challenge = runtime().otp.send(
        account_id=reg.otp_subject,
        phone=reg.phone,
        purpose=OTP_PURPOSE,
        text=otp_sms("registration"),
        scope=reg.id,
    )


def send_first_otp(reg: Registration) -> BaseResponse:
    """After a successful check: the first code, then the OTP page (a refusal is shown there)."""
    notice = None
    try:
        send_otp(reg)
    except OtpSendRefused as refused:
        notice = refused
    save(reg)
    if notice is not None:
        return otp_page(reg, 429, refusal_message(notice, runtime().config["SUPPORT_HOTLINE"]))
    return redirect(url_for("register.register_otp", rid=reg.id))


def otp_page(
    reg: Registration, status: int = 200, error: str | None = None, notice: str | None = None
) -> BaseResponse:
    rt = runtime()
    return render(
        "register_otp.html",
        reg,
        status=status,
        form=OtpForm(formdata=None),
        resend=ActionForm(),
        error=error,
        notice=notice,
        masked_phone=mask_phone(reg.phone) if reg.phone else "",
        cooldown=rt.otp.cooldown_left(reg.otp_subject, reg.id),
        hotline=rt.config["SUPPORT_HOTLINE"],
    )


def next_step(reg: Registration) -> BaseResponse:
    if reg.done:
        return redirect(url_for("register.register_done", rid=reg.id))
    if reg.phone_verified:
        return redirect(url_for("register.register_password", rid=reg.id))
    return redirect(url_for("register.register_otp", rid=reg.id))


@bp.route("/register/<rid>/otp", methods=["GET", "POST"])
def register_otp(rid: str) -> BaseResponse:
    reg = load(rid)
    rt = runtime()
    if reg.done or reg.phone_verified or reg.phone is None:
        if not reg.phone:
            raise RegistrationExpired()
        return next_step(reg)
    if request.method == "GET":
        return otp_page(reg, notice=_("Đã gửi mã OTP mới.") if request.args.get("sent") else None)
    form = OtpForm()
    if not form.validate_on_submit():
        return otp_page(reg, 400, _("Vui lòng nhập mã OTP gồm 6 chữ số."))
    name, address = "register:" + reg.phone, client_address()
    wait = rt.otp_throttle.locked_for(name=name, address=address)
    if wait:
        return otp_page(reg, 429, lockout_message(wait))
    check = rt.otp.verify(reg.challenge, form.otp.data, account_id=reg.otp_subject, purpose=OTP_PURPOSE)
    error = otp_refusal(check, rt.otp_throttle, name=name, address=address)
    if error is not None:
        return otp_page(reg, 401, error)
    rt.otp_throttle.success(name=name)
    renew_binding()  # the phone is proven: a copy of the cookie taken before cannot finish this
    reg.phone_verified = True
    save(reg)
    return redirect(url_for("register.register_password", rid=reg.id))


@bp.post("/register/<rid>/resend")
def register_resend(rid: str) -> BaseResponse:
    reg = load(rid)
    if reg.phone_verified or reg.done or reg.phone is None:
        return next_step(reg)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        send_otp(reg)
    except OtpSendRefused as refused:
        return otp_page(reg, 429, refusal_message(refused, runtime().config["SUPPORT_HOTLINE"]))
    save(reg)
    return redirect(url_for("register.register_otp", rid=reg.id, sent=1))


# -- step 3: the password, twice; the account ----------------------------------------------------
def password_problems(reg: Registration, password: str) -> list[str]:
    birth = dt.date.fromisoformat(reg.birth_date) if reg.birth_date else None
    found: dict[str, str] = {}
    for number in [reg.id_number, reg.legacy_id_number, reg.cert.tax_code]:
        if number is None and found:
            continue
        for violation in check_policy(password, id_number=number, phone=reg.phone, birth_date=birth):
            found.setdefault(violation.code, str(POLICY_TEXTS.get(violation.code, violation.message)))
    return list(found.values())


def create_account(reg: Registration, password_hash: str) -> BaseResponse | None:
    """Write the citizen account (one transaction); a page when someone won the race."""
    from idp.store.models import db

    try:
        account = register_citizen(
            reg.identity(),
            phone=reg.phone or "",
            password_hash=password_hash,
            email=reg.email,
            actor="self:registration",
        )
    except AlreadyRegistered:
        db.session.rollback()
        REGISTRATIONS.forget(reg.id)
        return already_registered(None, reg.id_number or "")
    reg.account_id = account.id
    return None


@bp.route("/register/<rid>/password", methods=["GET", "POST"])
def register_password(rid: str) -> BaseResponse:
    reg = load(rid)
    if reg.done or not reg.phone_verified:
        return next_step(reg)
    form = NewPasswordForm()
    template = "register_password.html"
    if request.method == "GET":
        return render(template, reg, form=form, error=None)
    if not form.validate_on_submit():
        return render(template, reg, 400, form=form, error=_("Trang đã mở quá lâu. Vui lòng nhập lại."))
    new = form.new_password.data or ""
    problems = password_problems(reg, new) if new else [_("Vui lòng nhập mật khẩu mới.")]
    confirm_error = None
    if new != (form.confirm_password.data or ""):
        confirm_error = _("Hai lần nhập mật khẩu mới chưa giống nhau.")
    finish_checks, finish = _finishing(reg)
    extra_errors = finish_checks(reg, request.form)
    if problems or confirm_error or extra_errors:
        return render(
            template,
            reg,
            400,
            form=form,
            error=_("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."),
            password_problems=problems,
            confirm_error=confirm_error,
            field_errors=extra_errors,
        )
    password_hash = runtime().hashing.hash(new)
    # Used up before the account is written, so that a second submission cannot register twice.
    held = REGISTRATIONS.take(reg.id)
    if held is None or held["done"]:
        raise RegistrationExpired()
    refused = finish(reg, password_hash)
    if refused is not None:
        return refused
    reg.done = True
    reg.expires_at = time.time() + 900
    save(reg)
    log.info("registration %s by %s done: account %s", reg.id[:8], reg.method, reg.account_id)
    return redirect(url_for("register.register_done", rid=reg.id))


def _finishing(reg: Registration) -> tuple[Any, Any]:
    """(checks of the password page's extra fields, the writer of the account) for the method.
    A certificate method finishes its own way (an enterprise, a username): see
    idp.flows.register.certificate."""
    found = methods.method(reg.method)
    if found is not None and found.by_register:
        return (lambda reg, form: {}), create_account
    from idp.flows.register import certificate

    return certificate.finish_checks, certificate.finish


@bp.get("/register/<rid>/done")
def register_done(rid: str) -> BaseResponse:
    reg = load(rid)
    if not reg.done:
        return next_step(reg)
    ix = interaction(reg.ix_id)
    if ix is not None and reg.kind == "citizen" and reg.id_number:
        # Back to the same sign-in, the new ID number already in the box.
        ix.login_hint = reg.id_number
        runtime().interactions.save(ix)
    level = LEVEL_ACR[reg.cert.level or METHOD_LEVELS[reg.method]]
    return render("register_done.html", reg, level=level, registered_at=utcnow())
