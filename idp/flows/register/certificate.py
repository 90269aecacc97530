"""Registration with a digital-signature certificate: "Sim ký số" and "USB ký số" (seed 003, §1.3
and §1.4), for citizens and enterprises.

    /register/<kind>/<device>         who (citizen | enterprise) and how (sim | usb)
      sim: the SIM's phone number + captcha -> idp issues a challenge and asks the SIM signing
           service to have it signed -> /register/<rid>/sim (waiting page; the person confirms
           with the PIN on the phone; a script polls /register/<rid>/sim/status every 2 s, and
           a plain button does the same without script)
      usb: the "Đăng ký" button -> idp issues a challenge -> /register/<rid>/usb hands it to the
           signing plugin, which posts `signature` and `chain` back to /register/<rid>/signature
    -> the signature and the chain are verified over the challenge, which is used up (a replay is
       refused) -> /register/<rid>/certificate shows what the certificate says ("hệ thống hiển
       thị các thông tin … được lấy từ Sim/USB ký số")
    -> the phone: the SIM's own number is proven by its signature (no SMS); with a USB token the
       person types a phone that gets an SMS OTP (registration.send_first_otp)
    -> the password page (registration.register_password), with the enterprise's extra fields
       (_register_extra.html, checked by finish_checks) -> the account (finish).

Duplicate keys: the certificate's ID number for a citizen (a CMND number is normalized to the
12-digit number through the population register first), the tax code for an enterprise. A
certificate of a person on the enterprise door (or the reverse) and every refusal of the
verifier (idp.verifiers.signature.CertificateRefused) have their own message; nothing is written.
"""

from __future__ import annotations

import base64
import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from flask import abort, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import Length

from idp.flows.register import bp, methods
from idp.flows.register import steps as regflow
from idp.flows.register.steps import (
    _EMAIL,
    Registration,
    checks_exhausted,
    load,
    render,
    save,
    send_first_otp,
    start,
    verifier_failed,
)
from idp.identity.enterprise_registration import (
    EnterpriseAdmin,
    ProvenEnterprise,
    organization_registered,
    register_enterprise,
    username_taken,
)
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_birth_date,
    mask_id,
    mask_phone,
    national_phone,
    normalize_name,
    normalize_phone,
    parse_date,
)
from idp.identity.organizations import OrganizationExists, UsernameTaken, check_username
from idp.identity.registration import registered_number
from idp.runtime import runtime
from idp.sessions.browser import client_address, renew_binding
from idp.store.models import db
from idp.verifiers.base import VerifierError
from idp.verifiers.signature import (
    CHALLENGE,
    MALFORMED,
    NO_IDENTIFIER,
    CertificateRefused,
    ChainInput,
)
from idp.web import captcha
from idp.web.forms import ActionForm
from idp.web.pages import lockout_message
from idp.web.signing import (
    POLL_SECONDS,
    attribute,
    confirmation_code,
    decode_signature,
    issuer_of,
    refusal_text,
    signing,
    sim_prompt,
    subject_kind,
    usb_context,
    verify_signed,
)

log = logging.getLogger("idp.registration")

PURPOSE = "register"
DEVICES = tuple(m.key for m in methods.by_certificate())  # "sim", "usb"


def _title(kind: str, device: str) -> str:
    found = methods.method(device)
    assert found is not None
    return str(found.titles[kind])


# -- step 1: who, how --------------------------------------------------------------------------
class SimForm(FlaskForm):
    phone = StringField(validators=[Length(max=20)])


def _forget(reg: Registration) -> None:
    """The registration ends here (already registered, refused on the phone): its record goes."""
    regflow.REGISTRATIONS.forget(reg.id)


def _binding(reg: Registration) -> str:
    return f"{reg.id}:{reg.browser}"


def _stub(kind: str, device: str) -> Registration:
    return Registration(
        id="", browser="", method=device, kind=kind, ix_id=request.args.get("ix"), expires_at=0
    )


def _start_page(
    kind: str, device: str, status: int = 200, *, error: str | None = None, **context: Any
) -> BaseResponse:
    context.setdefault("form", SimForm() if device == "sim" else ActionForm())
    return render(
        "register_certificate.html",
        _stub(kind, device),
        status=status,
        title=_title(kind, device),
        device=device,
        kind=kind,
        captcha=captcha.new_challenge() if device == "sim" else None,
        error=error,
        field_errors=context.pop("field_errors", {}),
        **context,
    )


def register_certificate(kind: str, device: str) -> BaseResponse:
    if request.method == "GET" or captcha.wants_new():
        return _start_page(kind, device)
    form = SimForm() if device == "sim" else ActionForm()
    if not form.validate_on_submit():
        return _start_page(kind, device, 400, error=_("Trang đã mở quá lâu. Vui lòng thử lại."))
    phone = None
    phone_typed = (request.form.get("phone") or "").strip()
    if device == "sim":
        try:
            phone = normalize_phone(phone_typed)
        except InvalidIdentifier:
            message = _("Số điện thoại của Sim ký số gồm 10 chữ số, bắt đầu bằng 0 (ví dụ 0912345678).")
            return _start_page(
                kind, device, 400, error=_("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."),
                field_errors={"phone": message},
            )  # fmt: skip
        if not captcha.answered():
            return _start_page(
                kind, device, 400, error=_("Mã xác thực chưa đúng."),
                captcha_error=_("Mã xác thực không đúng hoặc đã hết hạn. Vui lòng nhập mã trong hình mới."),
            )  # fmt: skip
    wait = checks_exhausted()
    if wait:
        return _start_page(kind, device, 429, error=lockout_message(wait))
    reg = start(device, kind)
    s = signing()
    challenge = s.challenges.issue(PURPOSE, _binding(reg))
    code = confirmation_code(challenge.data)
    reg.cert.device, reg.cert.challenge_id, reg.cert.code = device, challenge.id, code
    reg.cert.data_b64 = base64.b64encode(challenge.data).decode()
    if device == "sim":
        assert phone is not None
        action = (
            _("đăng ký tài khoản doanh nghiệp") if kind == "enterprise" else _("đăng ký tài khoản công dân")
        )
        try:
            transaction = s.sim.request_signature(
                phone=phone, data=challenge.data, message=sim_prompt(action, code)
            )
        except CertificateRefused as refused:  # e.g. the phone has no signing SIM
            return _start_page(
                kind,
                device,
                422,
                error=refusal_text(refused.reason),
                form=SimForm(formdata=None, phone=phone_typed),
            )
        except VerifierError as error:
            return verifier_failed(
                reg, error, url_for("register.register_certificate", kind=kind, device=device, ix=reg.ix_id)
            )
        reg.cert.sim_phone, reg.cert.transaction = phone, transaction
        save(reg)
        log.info("registration %s by %s sim: signature requested", reg.id[:8], kind)
        return redirect(url_for("register.register_sim", rid=reg.id))
    save(reg)
    log.info("registration %s by %s usb: challenge issued", reg.id[:8], kind)
    return redirect(url_for("register.register_usb", rid=reg.id))


# /register/citizen/sim etc.: static rules, so that they win over /register/citizen/<method> of
# the register-based methods.
for _method in methods.by_certificate():
    for _kind in _method.kinds:
        _device = _method.key
        bp.add_url_rule(
            f"/register/{_kind}/{_device}",
            endpoint="register_certificate",
            view_func=register_certificate,
            methods=["GET", "POST"],
            defaults={"kind": _kind, "device": _device},
        )


def _certificate_reg(rid: str, device: str | None = None) -> Registration:
    reg = load(rid)
    if reg.method not in DEVICES or (device is not None and reg.method != device):
        abort(404)
    return reg


def _after_verified(reg: Registration) -> BaseResponse:
    if reg.done or reg.account_id:
        return regflow.next_step(reg)
    return redirect(url_for("register.register_certificate_info", rid=reg.id))


def _again(reg: Registration, status: int, message: str, **context: Any) -> BaseResponse:
    """An outcome said on the method's first page, with its form to start again (a new challenge)."""
    form: FlaskForm = ActionForm()
    if reg.method == "sim":
        phone = reg.cert.sim_phone
        form = SimForm(formdata=None, phone=national_phone(phone) if phone else "")
    return render(
        "register_certificate.html",
        reg,
        status=status,
        title=_title(reg.kind, reg.method),
        device=reg.method,
        kind=reg.kind,
        captcha=captcha.new_challenge() if reg.method == "sim" else None,
        error=message,
        field_errors={},
        form=form,
        **context,
    )


def _refused_page(reg: Registration, reason: str, status: int = 422) -> BaseResponse:
    """A refusal of the verifier (CertificateRefused): its own message; nothing was written."""
    log.info("registration %s by %s %s: certificate refused (%s)", reg.id[:8], reg.kind, reg.method, reason)
    return _again(reg, status, refusal_text(reason))


# -- step 2 (sim): the waiting page ------------------------------------------------------------
def _sim_page(reg: Registration, status: int = 200, notice: str | None = None) -> BaseResponse:
    return render(
        "register_sim_wait.html",
        reg,
        status=status,
        title=_title(reg.kind, "sim"),
        form=ActionForm(),
        notice=notice,
        masked_phone=mask_phone(reg.cert.sim_phone or ""),
        code=reg.cert.code,
        action=url_for("register.register_sim", rid=reg.id),
        status_url=url_for("register.register_sim_status", rid=reg.id),
        restart_url=url_for("register.register_certificate", kind=reg.kind, device="sim", ix=reg.ix_id),
        poll_seconds=POLL_SECONDS,
    )


@bp.route("/register/<rid>/sim", methods=["GET", "POST"])
def register_sim(rid: str) -> BaseResponse:
    reg = _certificate_reg(rid, "sim")
    if reg.cert.verified:
        return _after_verified(reg)
    if request.method == "GET":
        return _sim_page(reg)
    if not ActionForm().validate_on_submit():
        return _sim_page(reg, 400, _("Trang đã mở quá lâu. Vui lòng bấm lại."))
    try:
        found = signing().sim.poll(reg.cert.transaction or "")
    except VerifierError as error:
        return verifier_failed(reg, error, url_for("register.register_sim", rid=reg.id))
    if found.state == "pending":
        return _sim_page(
            reg,
            notice=_(
                "Chưa nhận được xác nhận từ Sim ký số. Hãy xem điện thoại, chọn Xác nhận và nhập mã PIN, rồi bấm lại nút bên dưới."
            ),
        )
    if found.state != "signed":
        signing().challenges.consume(reg.cert.challenge_id or "", PURPOSE, _binding(reg))
        return _sim_ended(reg, found.state)
    return _accept(reg, found.signature or b"", found.chain)


def _sim_ended(reg: Registration, state: str) -> BaseResponse:
    """The person refused on the phone, or nobody answered in time: nothing was written."""
    message = (
        _(
            "Yêu cầu ký đã bị từ chối trên điện thoại nên chưa đăng ký được. Nếu bạn muốn đăng ký, hãy gửi lại yêu cầu."
        )
        if state == "refused"
        else _("Yêu cầu ký đã hết hạn trước khi được xác nhận trên điện thoại. Vui lòng gửi lại yêu cầu.")
    )
    _forget(reg)
    return _again(reg, 409, message)


@bp.get("/register/<rid>/sim/status")
def register_sim_status(rid: str) -> BaseResponse:
    """For the waiting page's script: "pending", or the state to submit the page for."""
    reg = _certificate_reg(rid, "sim")
    if reg.cert.verified:
        state = "signed"
    else:
        try:
            state = signing().sim.poll(reg.cert.transaction or "").state
        except VerifierError:
            state = "pending"
    response = jsonify({"state": state})
    response.headers["Cache-Control"] = "no-store"
    return response


# -- step 2 (usb): the plugin ------------------------------------------------------------------
@bp.get("/register/<rid>/usb")
def register_usb(rid: str) -> BaseResponse:
    reg = _certificate_reg(rid, "usb")
    if reg.cert.verified:
        return _after_verified(reg)
    return render(
        "register_usb_sign.html",
        reg,
        **usb_context(reg.cert.data_b64, reg.cert.code, url_for("register.register_signature", rid=reg.id)),
        title=_title(reg.kind, "usb"),
    )


@bp.post("/register/<rid>/signature")
def register_signature(rid: str) -> BaseResponse:
    """The plugin's answer: the signature over the challenge and the certificate chain."""
    reg = _certificate_reg(rid, "usb")
    if not ActionForm().validate_on_submit():
        abort(400)
    submitted = decode_signature(request.form)
    if submitted is None:
        return _refused_page(reg, MALFORMED, 400)
    signature, chain = submitted
    return _accept(reg, signature, chain)


# -- step 3: accept what the certificate proves ------------------------------------------------
WRONG_DOOR = {
    "citizen": _l(
        "Chứng thư số này là của doanh nghiệp (mang mã số thuế), không phải của cá nhân. Để đăng ký tài khoản doanh nghiệp, hãy chọn Đăng ký doanh nghiệp bằng Sim ký số hoặc USB ký số."
    ),
    "enterprise": _l(
        "Chứng thư số này là của cá nhân, không mang mã số thuế của doanh nghiệp. Doanh nghiệp cần đăng ký bằng chứng thư số của doanh nghiệp; nếu bạn đăng ký cho bản thân, hãy chọn Đăng ký của Công dân."
    ),
}


def _accept(reg: Registration, signature: bytes, chain: ChainInput) -> BaseResponse:
    try:
        found = verify_signed(reg.cert.challenge_id, _binding(reg), signature, chain, PURPOSE)
    except CertificateRefused as refused:
        return _refused_page(reg, refused.reason)
    except VerifierError as error:  # a revocation list or responder could not be read
        return verifier_failed(
            reg,
            error,
            url_for("register.register_certificate", kind=reg.kind, device=reg.method, ix=reg.ix_id),
        )
    if reg.cert.verified:  # a second answer for a challenge already used: never here
        return _refused_page(reg, CHALLENGE)
    kind = subject_kind(found)
    if (kind == "enterprise") != (reg.kind == "enterprise"):
        log.info("registration %s: a %s certificate on the %s door", reg.id[:8], kind, reg.kind)
        other = "enterprise" if reg.kind == "citizen" else "citizen"
        return _again(
            reg,
            422,
            str(WRONG_DOOR[reg.kind]),
            other_door=url_for("register.register_certificate", kind=other, device=reg.method, ix=reg.ix_id),
        )
    reg.verifier = found.verifier
    reg.evidence_id = found.evidence_id
    reg.verified_at = found.verified_at.isoformat()
    reg.email = attribute(found, "email")
    if reg.kind == "enterprise":
        tax_code = attribute(found, "tax_code") or ""
        if organization_registered(tax_code):
            db.session.rollback()
            log.info("registration of an already registered tax code %s", mask_id(tax_code))
            return enterprise_exists(reg, tax_code)
        name = attribute(found, "organization_name") or ""
        reg.cert.tax_code, reg.cert.organization_name = tax_code, name
        reg.cert.suggested_username = suggest_username(name)
        reg.full_name = attribute(found, "full_name")  # the representative, when the certificate names one
    else:
        reg.id_number = attribute(found, "id_number")
        reg.legacy_id_number = attribute(found, "legacy_id_number")
        reg.full_name = attribute(found, "full_name")
        reg.birth_date = attribute(found, "birth_date")
        reg.gender = attribute(found, "gender")
        if not reg.full_name or not (reg.id_number or reg.legacy_id_number):
            return _refused_page(reg, NO_IDENTIFIER)
        number = registered_number(reg.id_number, reg.legacy_id_number)
        db.session.rollback()
        if number is not None:
            log.info("registration of an already registered number %s", mask_id(number))
            _forget(reg)
            return regflow.already_registered(reg, number)
        if not reg.id_number:
            reg.cert.needs_birth_date = not reg.birth_date
    if reg.method == "sim":
        # The SIM's signature proves that the person holds this SIM: it is the verified phone.
        reg.phone = reg.cert.sim_phone
        reg.phone_verified = True
    reg.cert.verified = True
    reg.cert.challenge_id = None
    renew_binding()  # the certificate is proven: a copy of the cookie taken before cannot finish this
    save(reg)
    log.info(
        "registration %s by %s %s: certificate verified (%s)",
        reg.id[:8], reg.kind, reg.method, mask_id(reg.id_number or reg.legacy_id_number or reg.cert.tax_code),
    )  # fmt: skip
    if reg.cert.needs_birth_date is False and not reg.id_number:
        problem = _normalize_legacy(reg)
        if problem is not None:
            return problem
    return redirect(url_for("register.register_certificate_info", rid=reg.id))


def enterprise_exists(reg: Registration | None, tax_code: str, status: int = 409) -> BaseResponse:
    """Seed 003: the tax code is registered already ("Mã số thuế ***… đã được đăng ký")."""
    if reg is not None:
        _forget(reg)
    return render("register_exists.html", reg, status=status, masked=mask_id(tax_code), enterprise=True)


def _normalize_legacy(reg: Registration) -> BaseResponse | None:
    """A certificate naming an old 9-digit CMND: the 12-digit number through the population
    register (then the duplicate check again, on both numbers)."""
    import datetime as dt

    registers = runtime().registers
    assert reg.legacy_id_number and reg.full_name and reg.birth_date
    if registers is None:
        return _info_page(
            reg,
            503,
            _("Chưa kiểm tra được số chứng minh nhân dân với cơ sở dữ liệu dân cư. Vui lòng thử lại sau."),
        )
    try:
        found = registers.population.find_by_legacy_id(
            legacy_id_number=reg.legacy_id_number,
            full_name=reg.full_name,
            birth_date=dt.date.fromisoformat(reg.birth_date),
        )
    except VerifierError as error:
        return verifier_failed(reg, error, url_for("register.register_certificate_info", rid=reg.id))
    if not found.verified or not found.attributes.get("id_number"):
        reg.birth_date = None
        reg.cert.needs_birth_date = True
        save(reg)
        return _info_page(
            reg,
            422,
            _(
                "Không tìm thấy dữ liệu dân cư trùng khớp với số chứng minh nhân dân, họ tên trên chứng thư số và ngày sinh đã nhập. Vui lòng kiểm tra lại ngày sinh."
            ),
        )
    reg.id_number = found.attributes["id_number"]
    reg.gender = reg.gender or found.attributes.get("gender")
    reg.cert.needs_birth_date = False
    number = registered_number(reg.id_number, reg.legacy_id_number)
    db.session.rollback()
    if number is not None:
        _forget(reg)
        return regflow.already_registered(reg, number)
    save(reg)
    return None


# -- step 4: what the certificate says; the phone --------------------------------------------------
class InfoForm(FlaskForm):
    phone = StringField(validators=[Length(max=20)])
    birth_date = StringField(validators=[Length(max=20)])


def _info_page(
    reg: Registration, status: int = 200, error: str | None = None, **context: Any
) -> BaseResponse:
    return render(
        "register_certificate_info.html",
        reg,
        status=status,
        title=_title(reg.kind, reg.method),
        form=context.pop("form", None) or InfoForm(formdata=None),
        error=error,
        field_errors=context.pop("field_errors", {}),
        issuer=issuer_of(reg.verifier),
        masked_phone=mask_phone(reg.phone) if reg.phone else None,
        **context,
    )


@bp.route("/register/<rid>/certificate", methods=["GET", "POST"])
def register_certificate_info(rid: str) -> BaseResponse:
    reg = _certificate_reg(rid)
    if not reg.cert.verified:
        return redirect(url_for(f"register.register_{reg.method}", rid=reg.id))
    if reg.done or reg.account_id:
        return regflow.next_step(reg)
    if request.method == "GET":
        return _info_page(reg)
    form = InfoForm()
    if not form.validate_on_submit():
        return _info_page(reg, 400, _("Trang đã mở quá lâu. Vui lòng nhập lại."), form=form)
    errors: dict[str, str] = {}
    phone = None
    if reg.method == "usb":
        try:
            phone = normalize_phone(form.phone.data or "")
        except InvalidIdentifier:
            errors["phone"] = _("Số điện thoại di động gồm 10 chữ số, bắt đầu bằng 0 (ví dụ 0912345678).")
    if reg.cert.needs_birth_date:
        try:
            birth = check_birth_date(parse_date(form.birth_date.data or ""))
            reg.birth_date = birth.isoformat()
        except InvalidIdentifier:
            errors["birth_date"] = _("Vui lòng nhập ngày sinh theo dạng ngày/tháng/năm, ví dụ 15/03/1990.")
    if errors:
        return _info_page(
            reg,
            400,
            _("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."),
            form=form,
            field_errors=errors,
        )
    if reg.cert.needs_birth_date:
        problem = _normalize_legacy(reg)
        if problem is not None:
            return problem
    if reg.phone_verified:  # the SIM's own number
        save(reg)
        return redirect(url_for("register.register_password", rid=reg.id))
    assert phone is not None
    if reg.phone != phone:
        reg.phone, reg.challenge = phone, None
    return send_first_otp(reg)


# -- step 5: the password page's extra fields and the account --------------------------------------
# Words of enterprise names that say nothing about which enterprise it is.
_NOISE = frozenset(
    ["cong", "ty", "co", "phan", "tnhh", "mtv", "trach", "nhiem", "huu", "han"]
    + ["doanh", "nghiep", "tu", "nhan", "dich", "vu"]
)


def ascii_fold(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def suggest_username(organization_name: str) -> str:
    """A username for the enterprise's administrator: the distinctive words of its name
    ("Công ty Cổ phần Hương Giang Số" -> "huonggiangso.admin"), free at the time of the
    suggestion."""
    words = [w for w in re.findall(r"[a-z0-9]+", ascii_fold(organization_name).lower()) if w not in _NOISE]
    stem = "".join(words)[:24] or "doanhnghiep"
    if not stem[0].isalpha():
        stem = "dn" + stem
    base = f"{stem}.admin"
    candidate, n = base, 1
    while username_taken(candidate) and n < 50:
        n += 1
        candidate = f"{base}{n}"
    db.session.rollback()
    return candidate


def finish_checks(reg: Registration, form: Mapping[str, str]) -> dict[str, str]:
    """The fields of _register_extra.html (the password page)."""
    errors: dict[str, str] = {}
    email = (form.get("email") or "").strip()
    if reg.kind == "enterprise":
        if not email:
            errors["email"] = _("Doanh nghiệp phải có địa chỉ thư điện tử.")
        try:
            username = check_username(form.get("username") or "")
        except InvalidIdentifier:
            errors["username"] = _(
                "Tên đăng nhập gồm 3 đến 64 ký tự: chữ thường không dấu, chữ số, dấu chấm, gạch dưới hoặc gạch ngang, bắt đầu bằng chữ cái."
            )
        else:
            if username_taken(username):
                errors["username"] = _("Tên đăng nhập này đã có người dùng. Vui lòng chọn tên khác.")
            elif username in (form.get("new_password") or "").lower():
                errors["username"] = _("Mật khẩu không được chứa tên đăng nhập.")
            db.session.rollback()
        name = normalize_name(form.get("admin_name") or "")
        if not name:
            errors["admin_name"] = _("Vui lòng nhập họ và tên người quản trị.")
        elif len(name) < 2 or any(ch.isdigit() for ch in name):
            errors["admin_name"] = _("Họ và tên chỉ gồm chữ cái, như trên căn cước công dân.")
    if email and not _EMAIL.match(email):
        errors["email"] = _("Địa chỉ thư điện tử chưa đúng.")
    return errors


def finish(reg: Registration, password_hash: str) -> BaseResponse | None:
    """Write the account: a citizen as the register-based methods do, an enterprise with its
    administrator's staff account (one transaction)."""
    form = request.form
    email = (form.get("email") or "").strip() or None
    if reg.kind == "citizen":
        reg.email = email
        reg.cert.level = 3
        return regflow.create_account(reg, password_hash)
    assert reg.phone and reg.verified_at and email and reg.cert.tax_code and reg.cert.organization_name
    enterprise = ProvenEnterprise(
        tax_code=reg.cert.tax_code,
        name=reg.cert.organization_name,
        method=reg.method,
        verifier=reg.verifier or "signature",
        evidence_id=reg.evidence_id,
        verified_at=_naive(reg.verified_at),
    )
    admin = EnterpriseAdmin(
        username=check_username(form.get("username") or ""),
        full_name=normalize_name(form.get("admin_name") or ""),
        phone=reg.phone,
        email=email,
    )
    try:
        account = register_enterprise(
            enterprise, admin, password_hash=password_hash, actor="self:registration", ip=client_address()
        )
    except OrganizationExists:
        log.info(
            "registration %s: tax code %s registered meanwhile", reg.id[:8], mask_id(enterprise.tax_code)
        )
        return enterprise_exists(None, enterprise.tax_code)
    except UsernameTaken:
        save(reg)  # taken meanwhile: the person picks another name on the same page
        from idp.web.passwords import NewPasswordForm

        return render(
            "register_password.html",
            reg,
            409,
            form=NewPasswordForm(),
            error=_("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."),
            field_errors={"username": _("Tên đăng nhập này đã có người dùng. Vui lòng chọn tên khác.")},
        )
    reg.account_id = account.id
    reg.email = email
    reg.cert.username, reg.cert.level = admin.username, enterprise.level
    return None


def _naive(iso: str) -> Any:
    import datetime as dt

    value = dt.datetime.fromisoformat(iso)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
