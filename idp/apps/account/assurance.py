"""The account area's identity-assurance page (/account/assurance): the person's level and the
proofs behind it, and raising level 2 to level 3 with a digital signature (DESIGN §4, seed 003).

The person signs a fresh challenge with a "Sim ký số" or a "USB ký số" (the same steps as
registration, idp.flows.register.certificate); a certificate naming the account's own ID
number raises the person's level to 3 (idp.identity.registration.raise_assurance, audited); one
naming someone else is refused with its own message, and nothing is written. The level shows in
the next sign-in's ID token: acr is min(identity level, sign-in strength).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import Any

from flask import Response, abort, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import Length

from idp.apps.account import bp
from idp.apps.gate import current_person, signed_in
from idp.identity.assurance import session_acr
from idp.identity.identifiers import InvalidIdentifier, mask_phone, normalize_phone
from idp.identity.registration import IdentityMismatch, proofs_of, raise_assurance
from idp.runtime import runtime
from idp.sessions.browser import browser_id, client_address, sso_cookie
from idp.sessions.interaction import Interaction
from idp.store.models import Account, db
from idp.verifiers.base import VerifierError
from idp.verifiers.signature import MALFORMED, CertificateRefused, ChainInput
from idp.web.forms import ActionForm
from idp.web.pages import lockout_message, vietnam_time
from idp.web.signing import (
    POLL_SECONDS,
    attribute,
    confirmation_code,
    decode_signature,
    refusal_text,
    signing,
    sim_prompt,
    subject_kind,
    usb_context,
    verify_signed,
)

log = logging.getLogger("idp.assurance")

PURPOSE = "assurance"
LIFETIME = 600  # seconds to finish one signature
METHOD_NAMES = {
    "subscriber": _l("Thuê bao di động chính chủ"),
    "social_insurance": _l("Mã số bảo hiểm xã hội"),
    "population": _l("Cơ sở dữ liệu quốc gia về dân cư"),
    "sim": _l("Sim ký số"),
    "usb": _l("USB ký số"),
    "counter": _l("Đăng ký trực tiếp tại Bộ phận một cửa"),
    "post_office": _l("Đăng ký trực tiếp tại bưu điện"),
    "sandbox": _l("Dữ liệu mẫu (sandbox)"),
    "organization": _l("Tổ chức tạo tài khoản"),
    "operator": _l("Cán bộ hỗ trợ"),
}
NOTICES = {
    "raised": _l(
        "Đã nâng mức xác minh lên mức 3. Trên trình duyệt này, các cổng dịch vụ công nhận được mức xác minh 3 (LoA3) ngay từ lần đăng nhập tới; trên thiết bị khác, sau khi bạn đăng nhập lại."
    ),
    "confirmed": _l("Chữ ký số đã xác nhận lại danh tính của bạn. Tài khoản vẫn ở mức xác minh 3."),
}
MISMATCH = _l(
    "Chứng thư số này mang số định danh khác với số định danh của tài khoản bạn đang dùng, nên không nâng được mức xác minh. Hãy dùng chứng thư số của chính bạn."
)
NOT_A_PERSON = _l(
    "Chứng thư số này là của doanh nghiệp (mang mã số thuế), không dùng để xác minh danh tính của cá nhân. Hãy dùng chứng thư số cá nhân của bạn."
)


class SimForm(FlaskForm):
    phone = StringField(validators=[Length(max=20)])


# -- a signature in progress, in the short-lived store ------------------------------------------------
def _key(aid: str) -> str:
    return "assure:" + aid


def _binding(aid: str, state: dict[str, Any]) -> str:
    return f"{aid}:{state['account_id']}:{state['sid']}"


def _load(aid: str) -> dict[str, Any]:
    me = current_person()
    raw = runtime().store.get(_key(aid)) if 0 < len(aid) <= 64 else None
    state = json.loads(raw) if raw else None
    if state is None or state["account_id"] != me.account_id or state["sid"] != me.session.sid:
        abort(redirect(url_for("account.account_assurance", done="expired"), 303))
    return state


def _save(aid: str, state: dict[str, Any]) -> None:
    runtime().store.set(_key(aid), json.dumps(state), LIFETIME)


# -- the page --------------------------------------------------------------------------------------
def _page(status: int = 200, *, error: str | None = None, **context: Any) -> BaseResponse:
    me = current_person()
    account = db.session.get(Account, me.account_id)
    if account is None or account.person is None:
        abort(404)
    person = account.person
    proofs = [
        {
            "method": str(METHOD_NAMES.get(p.method, p.method)),
            "level": p.level,
            "when": vietnam_time(p.verified_at),
            "verifier": p.verifier,
            "place": p.place,
        }
        for p in proofs_of(person.id)
    ]
    if not proofs:  # accounts older than identity proofs: their summary
        proofs = [
            {
                "method": str(METHOD_NAMES.get(person.loa_method, person.loa_method)),
                "level": person.loa,
                "when": vietnam_time(person.loa_verified_at),
                "verifier": person.loa_verifier,
                "place": None,
            }
        ]
    can_raise = bool(person.id_number) and person.loa < 3 and account.kind == "citizen"
    waiting = _waiting_sign_in()
    done = request.args.get("done", "")
    notice = str(NOTICES[done]) if done in NOTICES else None
    if done == "expired":
        error = error or _("Yêu cầu ký đã hết hạn. Vui lòng bắt đầu lại.")
    body = render_template(
        "account/assurance.html",
        section="assurance",
        level=person.loa,
        proofs=proofs,
        can_raise=can_raise,
        has_id_number=bool(person.id_number),
        sim_form=context.pop("sim_form", None) or SimForm(formdata=None),
        usb_form=ActionForm(),
        error=error,
        notice=notice,
        field_errors=context.pop("field_errors", {}),
        # The portal sign-in that sent the person here, and whether the new level now meets it.
        waiting_portal=waiting.client_name if waiting else None,
        continue_url=(
            url_for("oidc.resume", ix_id=waiting.id)
            if waiting and person.loa >= int(waiting.raise_to or 0)
            else None
        ),
        **context,
    )
    db.session.rollback()
    return Response(body, status=status, mimetype="text/html")


CONTINUE_KEY = "assurance_continue"


def _waiting_sign_in() -> Interaction | None:
    """A portal's sign-in waiting for this raise (the "level too low" page links here with ?ix=)."""
    ix_id = session.get(CONTINUE_KEY)
    if not ix_id:
        return None
    ix = runtime().interactions.load(ix_id, browser_id(create=False))
    if ix is None or not ix.raise_to:
        session.pop(CONTINUE_KEY, None)
        return None
    return ix


@bp.get("/account/assurance")
@signed_in
def account_assurance() -> BaseResponse:
    ix_id = request.args.get("ix", "")[:64]
    if ix_id:
        ix = runtime().interactions.load(ix_id, browser_id(create=False))
        if ix is not None and ix.raise_to:
            session[CONTINUE_KEY] = ix.id
    return _page()


def _start(method: str, **extra: Any) -> tuple[str, dict[str, Any], Any]:
    me = current_person()
    aid = secrets.token_urlsafe(24)
    state: dict[str, Any] = {"account_id": me.account_id, "sid": me.session.sid, "method": method, **extra}
    challenge = signing().challenges.issue(PURPOSE, _binding(aid, state))
    state.update(
        challenge_id=challenge.id,
        code=confirmation_code(challenge.data),
        data_b64=base64.b64encode(challenge.data).decode(),
    )
    return aid, state, challenge


def _requests_exhausted() -> int:
    """Signing requests sent to a phone from this account, capped per hour like registration
    checks (REGISTRATION_CHECKS_PER_HOUR): nobody's phone is flooded with requests to sign. The
    seconds to wait when over the cap."""
    rt = runtime()
    hour = int(time.time()) // 3600
    count = rt.store.incr(f"assure-sim:{current_person().account_id}:{hour}", 3600)
    if count > rt.config["REGISTRATION_CHECKS_PER_HOUR"]:
        return 3600 - int(time.time()) % 3600
    return 0


def _can_raise() -> bool:
    account = db.session.get(Account, current_person().account_id)
    ok = account is not None and account.person is not None and bool(account.person.id_number)
    db.session.rollback()
    return ok


@bp.route("/account/assurance/sim", methods=["GET", "POST"])
@signed_in
def account_assurance_sim() -> BaseResponse:
    if request.method == "GET":
        return redirect(url_for("account.account_assurance"))
    form = SimForm()
    if not form.validate_on_submit() or not _can_raise():
        return _page(400, error=_("Trang đã mở quá lâu. Vui lòng thử lại."))
    try:
        phone = normalize_phone(form.phone.data or "")
    except InvalidIdentifier:
        return _page(
            400,
            error=_("Thông tin chưa hợp lệ. Vui lòng xem các lỗi bên dưới."),
            sim_form=form,
            field_errors={
                "phone": _("Số điện thoại của Sim ký số gồm 10 chữ số, bắt đầu bằng 0 (ví dụ 0912345678).")
            },
        )
    wait = _requests_exhausted()
    if wait:
        return _page(429, error=lockout_message(wait), sim_form=form)
    aid, state, challenge = _start("sim", sim_phone=phone)
    try:
        state["transaction"] = signing().sim.request_signature(
            phone=phone,
            data=challenge.data,
            message=sim_prompt(_("nâng mức xác minh tài khoản lên mức 3"), state["code"]),
        )
    except CertificateRefused as refused:  # e.g. the phone has no signing SIM
        return _page(422, error=refusal_text(refused.reason), sim_form=form)
    except VerifierError:
        log.warning("assurance: the SIM signing service did not answer")
        return _page(
            503, error=_("Dịch vụ ký số qua Sim tạm thời chưa trả lời. Vui lòng thử lại sau ít phút.")
        )
    _save(aid, state)
    return redirect(url_for("account.account_assurance_sim_wait", aid=aid), 303)


def _sim_page(aid: str, state: dict[str, Any], status: int = 200, notice: str | None = None) -> BaseResponse:
    body = render_template(
        "account/assurance_sim.html",
        section="assurance",
        form=ActionForm(),
        notice=notice,
        error=None,
        masked_phone=mask_phone(state["sim_phone"]),
        code=state["code"],
        action=url_for("account.account_assurance_sim_wait", aid=aid),
        status_url=url_for("account.account_assurance_sim_status", aid=aid),
        restart_url=url_for("account.account_assurance"),
        poll_seconds=POLL_SECONDS,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.route("/account/assurance/<aid>/sim", methods=["GET", "POST"])
@signed_in
def account_assurance_sim_wait(aid: str) -> BaseResponse:
    state = _load(aid)
    if state.get("method") != "sim":
        abort(404)
    if request.method == "GET":
        return _sim_page(aid, state)
    if not ActionForm().validate_on_submit():
        return _sim_page(aid, state, 400)
    try:
        found = signing().sim.poll(state["transaction"])
    except VerifierError:
        return _sim_page(
            aid, state, 503, _("Dịch vụ ký số qua Sim tạm thời chưa trả lời. Vui lòng bấm lại sau ít phút.")
        )
    if found.state == "pending":
        return _sim_page(
            aid,
            state,
            notice=_(
                "Chưa nhận được xác nhận từ Sim ký số. Hãy xem điện thoại, chọn Xác nhận và nhập mã PIN, rồi bấm lại nút bên dưới."
            ),
        )
    if found.state != "signed":
        runtime().store.delete(_key(aid))
        signing().challenges.consume(state["challenge_id"], PURPOSE, _binding(aid, state))
        message = (
            _("Yêu cầu ký đã bị từ chối trên điện thoại. Mức xác minh chưa thay đổi.")
            if found.state == "refused"
            else _(
                "Yêu cầu ký đã hết hạn trước khi được xác nhận trên điện thoại. Mức xác minh chưa thay đổi."
            )
        )
        return _page(409, error=message)
    return _accept(aid, state, found.signature or b"", found.chain)


@bp.get("/account/assurance/<aid>/sim/status")
@signed_in
def account_assurance_sim_status(aid: str) -> BaseResponse:
    state = _load(aid)
    try:
        value = signing().sim.poll(state["transaction"]).state if state.get("transaction") else "expired"
    except VerifierError:
        value = "pending"
    response = jsonify({"state": value})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/assurance/usb", methods=["GET", "POST"])
@signed_in
def account_assurance_usb() -> BaseResponse:
    if request.method == "GET":
        return redirect(url_for("account.account_assurance"))
    if not ActionForm().validate_on_submit() or not _can_raise():
        return _page(400, error=_("Trang đã mở quá lâu. Vui lòng thử lại."))
    aid, state, _challenge = _start("usb")
    _save(aid, state)
    return redirect(url_for("account.account_assurance_usb_sign", aid=aid), 303)


@bp.get("/account/assurance/<aid>/usb")
@signed_in
def account_assurance_usb_sign(aid: str) -> BaseResponse:
    state = _load(aid)
    if state.get("method") != "usb":
        abort(404)
    body = render_template(
        "account/assurance_usb.html",
        section="assurance",
        error=None,
        notice=None,
        **usb_context(
            state.get("data_b64"), state.get("code"), url_for("account.account_assurance_signature", aid=aid)
        ),
    )
    return Response(body, mimetype="text/html")


@bp.post("/account/assurance/<aid>/signature")
@signed_in
def account_assurance_signature(aid: str) -> BaseResponse:
    if not ActionForm().validate_on_submit():
        abort(400)
    state = _load(aid)
    submitted = decode_signature(request.form)
    if submitted is None:
        runtime().store.delete(_key(aid))
        return _page(400, error=refusal_text(MALFORMED))
    return _accept(aid, state, *submitted)


def _accept(aid: str, state: dict[str, Any], signature: bytes, chain: ChainInput) -> BaseResponse:
    me = current_person()
    # The record stays until it expires: a second answer finds its challenge used up (replay).
    try:
        found = verify_signed(state.get("challenge_id"), _binding(aid, state), signature, chain, PURPOSE)
    except CertificateRefused as refused:
        log.info("assurance for account %s: certificate refused (%s)", me.account_id, refused.reason)
        return _page(422, error=refusal_text(refused.reason))
    except VerifierError:  # a revocation list or responder could not be read
        log.warning("assurance for account %s: the certificate could not be checked", me.account_id)
        return _page(
            503,
            error=_(
                "Chưa kiểm tra được chứng thư số lúc này. Mức xác minh chưa thay đổi; vui lòng thử lại sau ít phút."
            ),
        )
    if subject_kind(found) != "person":
        return _page(422, error=str(NOT_A_PERSON))
    account = db.session.get(Account, me.account_id)
    if account is None or account.person is None:
        abort(404)
    person = account.person
    id_number = attribute(found, "id_number")
    legacy = attribute(found, "legacy_id_number")
    if not id_number and legacy and legacy == person.legacy_id_number and person.id_number:
        id_number = person.id_number  # the same person: the old CMND of this record
    if not id_number:
        db.session.rollback()
        return _page(422, error=str(MISMATCH))
    person_id, before = person.id, person.loa
    try:
        level = raise_assurance(
            person_id,
            id_number=id_number,
            method=state["method"],
            verifier=found.verifier,
            evidence_id=found.evidence_id,
            actor=f"account:{me.account_id}",
            ip=client_address(),
        )
    except IdentityMismatch:
        log.info("assurance for account %s: the certificate names another ID number", me.account_id)
        return _page(422, error=str(MISMATCH))
    log.info("assurance for account %s: level %s -> %s by %s", me.account_id, before, level, state["method"])
    if level > before:
        # This session's acr is the lower of the identity's level and its sign-in's strength
        # (DESIGN §4): the identity just rose, so does the session, for every portal it serves next.
        cookie, sso = sso_cookie(), me.session
        if cookie:
            runtime().sessions.reauthenticate(
                cookie, sso, auth_time=sso.auth_time, acr=session_acr(level, sso.amr), amr=sso.amr, loa=level
            )
    return redirect(
        url_for("account.account_assurance", done="raised" if level > before else "confirmed"), 303
    )
