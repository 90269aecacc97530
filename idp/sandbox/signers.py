"""The sandbox's signing devices, as pages (registered only when signing runs in sandbox mode).

- /sandbox/sim: the "phone" of a digital-signature SIM. Type the SIM's number, see the signing
  requests waiting for it with the message the SIM would show, approve one with the PIN or
  refuse it. (A real SIM shows the prompt on the handset; the carrier's service signs.)
- /sandbox/usb-token: the "USB plugin". Shows the data a page asked to sign, lets the person
  pick a sandbox token (its holder) and type its PIN, then posts `signature` and `chain` back
  to the page that asked, with that page's CSRF token, as a real plugin's page script would.

The holders, their certificates and PINs are the sandbox PKI's (idp/verifiers/sandbox_data,
listed in the README); nothing here is reachable when signing is configured for real CAs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField
from wtforms.validators import Length

from idp.identity.identifiers import InvalidIdentifier, mask_id, national_phone, normalize_phone
from idp.runtime import runtime
from idp.verifiers.sandbox_pki import UnknownToken, WrongPin, sign_with_sandbox_token

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")

# Where the sandbox plugin may post a signature: the pages that ask for one, nothing else.
RETURN_TO = re.compile(r"^/(register|account/assurance)/[A-Za-z0-9_-]{1,64}/signature$")
MAX_DATA = 4096


class AnswerForm(FlaskForm):
    transaction = StringField(validators=[Length(max=200)])
    phone = StringField(validators=[Length(max=20)])
    pin = PasswordField(validators=[Length(max=20)])


class TokenForm(FlaskForm):
    holder = StringField(validators=[Length(max=64)])
    pin = PasswordField(validators=[Length(max=20)])
    data = StringField(validators=[Length(max=MAX_DATA * 2)])
    return_to = StringField(validators=[Length(max=200)])


def _signing() -> Any:
    found = runtime().signing
    if found is None or getattr(found, "sandbox", None) is None:
        abort(404)
    return found


def _page(template: str, status: int = 200, **context: Any) -> BaseResponse:
    return Response(render_template(template, **context), status=status, mimetype="text/html")


# -- the SIM ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingRow:
    transaction: str
    message: str
    expires: str


def _pending_rows(phone: str) -> list[PendingRow]:
    from idp.web.pages import vietnam_time

    return [
        PendingRow(
            transaction=item.transaction_id,
            message=item.message,
            expires=vietnam_time(item.expires_at.astimezone(dt.UTC).replace(tzinfo=None)),
        )
        for item in _signing().sim.pending_for(phone)
    ]


@bp.get("/sim")
def sim() -> BaseResponse:
    _signing()
    typed = (request.args.get("phone") or "").strip()
    phone, error, rows = None, None, []
    if typed:
        try:
            phone = normalize_phone(typed)
        except InvalidIdentifier:
            error = _("Số điện thoại gồm 10 chữ số, bắt đầu bằng 0 (ví dụ 0767890123).")
        else:
            rows = _pending_rows(phone)
    done = request.args.get("done")
    notice = {
        "approved": _("Đã xác nhận và ký. Trang web đang chờ sẽ tự chuyển tiếp."),
        "refused": _("Đã từ chối yêu cầu ký."),
    }.get(done or "")
    return _page(
        "sandbox/sim.html",
        typed=national_phone(phone) if phone else typed,
        phone=phone,
        rows=rows,
        form=AnswerForm(formdata=None),
        error=error,
        notice=notice,
        holders=_holders("sim"),
    )


@bp.post("/sim/answer")
def sim_answer() -> BaseResponse:
    service = _signing().sim
    form = AnswerForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        phone = normalize_phone(form.phone.data or "")
    except InvalidIdentifier:
        abort(400)
    transaction = form.transaction.data or ""
    if transaction not in {r.transaction for r in _pending_rows(phone)}:
        return redirect(url_for("sandbox.sim", phone=national_phone(phone)), 303)
    if request.form.get("decision") == "refuse":
        service.refuse(transaction)
        return redirect(url_for("sandbox.sim", phone=national_phone(phone), done="refused"), 303)
    try:
        status = service.approve(transaction, form.pin.data or "")
    except WrongPin as wrong:
        if wrong.tries_left == 0:
            message = _("Mã PIN không đúng. Đã nhập sai quá số lần cho phép nên yêu cầu ký bị từ chối.")
        else:
            message = _(
                "Mã PIN không đúng. Yêu cầu ký vẫn đang chờ; bạn còn %(num)s lần nhập.", num=wrong.tries_left
            )
        return _page(
            "sandbox/sim.html",
            403,
            typed=national_phone(phone),
            phone=phone,
            rows=_pending_rows(phone),
            form=AnswerForm(formdata=None),
            error=message,
            notice=None,
            holders=_holders("sim"),
            wrong_pin_for=transaction,
        )
    if status.state != "signed":
        return redirect(url_for("sandbox.sim", phone=national_phone(phone)), 303)
    return redirect(url_for("sandbox.sim", phone=national_phone(phone), done="approved"), 303)


# -- the USB token ------------------------------------------------------------------------------------
# Like a real token, the sandbox token locks after consecutive wrong PINs (a real one stays locked
# until its CA unlocks it; this one opens again by itself, so that a demo is never stuck).
TOKEN_PIN_TRIES = 5
TOKEN_LOCK_SECONDS = 900


@dataclass(frozen=True)
class Holder:
    key: str
    label: str


def _holders(device: str) -> list[Holder]:
    """The sandbox PKI's holders of that device, as the pages list them (never their PINs: the
    README and the demo console say them)."""
    pki = _signing().sandbox
    found = []
    for holder in sorted(pki.holders.values(), key=lambda h: (h.kind, h.revoked, h.name)):
        if holder.device != device:
            continue
        number = holder.identifier if holder.kind == "enterprise" else mask_id(holder.identifier)
        kind = _("MST") if holder.kind == "enterprise" else (_("CMND") if holder.legacy else _("CCCD"))
        label = f"{holder.name} ({kind} {number})"
        if holder.revoked:
            label += " – " + _("chứng thư số đã bị thu hồi")
        found.append(Holder(holder.key, label))
    return found


def _data_of(text: str) -> bytes | None:
    try:
        data = base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if 0 < len(data) <= MAX_DATA else None


def _shown(data: bytes) -> str:
    """The data to sign as the plugin shows it: the text when it is text, else its base64."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()
    return text if text.isprintable() else base64.b64encode(data).decode()


@bp.route("/usb-token", methods=["GET", "POST"])
def usb_token() -> BaseResponse:
    _signing()
    source = request.form if request.method == "POST" else request.args
    data_b64 = (source.get("data") or "").strip()
    return_to = (source.get("return_to") or "").strip()
    data = _data_of(data_b64)
    if data is None or not RETURN_TO.match(return_to):
        return _page(
            "sandbox/usb_token.html",
            400,
            form=TokenForm(formdata=None),
            holders=[],
            data_b64="",
            shown="",
            return_to="",
            error=_(
                "Trang đã mở công cụ ký không gửi kèm dữ liệu cần ký hợp lệ. Hãy quay lại trang đó và bấm Ký bằng USB ký số."
            ),
            chosen=None,
        )
    holders = _holders("usb")
    context: dict[str, Any] = {
        "holders": holders,
        "data_b64": data_b64,
        "shown": _shown(data),
        "return_to": return_to,
    }
    if request.method == "GET":
        return _page(
            "sandbox/usb_token.html", form=TokenForm(formdata=None), error=None, chosen=None, **context
        )
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(
            "sandbox/usb_token.html",
            400,
            form=form,
            error=_("Trang đã mở quá lâu. Vui lòng thử lại."),
            chosen=None,
            **context,
        )
    holder = form.holder.data or ""
    if holder not in {h.key for h in holders}:
        return _page(
            "sandbox/usb_token.html",
            400,
            form=form,
            error=_("Hãy chọn một chứng thư số."),
            chosen=None,
            **context,
        )
    store = runtime().store
    tries_key = f"sandbox-usb-pin:{holder}"
    if int(store.get(tries_key) or 0) >= TOKEN_PIN_TRIES:
        return _page(
            "sandbox/usb_token.html",
            423,
            form=form,
            error=_(
                "USB ký số đã bị khóa vì nhập sai mã PIN %(num)d lần liên tiếp. USB thật cần đơn vị cấp chứng thư số mở khóa; USB mô phỏng này tự mở lại sau %(minutes)d phút.",
                num=TOKEN_PIN_TRIES,
                minutes=TOKEN_LOCK_SECONDS // 60,
            ),
            chosen=holder,
            **context,
        )
    try:
        signature, chain = sign_with_sandbox_token(_signing().sandbox, holder, form.pin.data or "", data)
    except (WrongPin, UnknownToken):
        left = TOKEN_PIN_TRIES - store.incr(tries_key, TOKEN_LOCK_SECONDS)
        return _page(
            "sandbox/usb_token.html",
            403,
            form=form,
            error=ngettext(
                "Mã PIN của USB ký số không đúng. Bạn còn %(num)d lần nhập trước khi USB bị khóa.",
                "Mã PIN của USB ký số không đúng. Bạn còn %(num)d lần nhập trước khi USB bị khóa.",
                max(0, left),
            ),
            chosen=holder,
            pin_error=True,
            **context,
        )
    store.delete(tries_key)  # a right PIN starts the count again, as on a real token
    return _page(
        "sandbox/usb_signed.html",
        return_to=return_to,
        signature=base64.b64encode(signature).decode(),
        chain=_pem(chain),
    )


def _pem(chain: Any) -> str:
    """The chain as PEM text, whatever the sandbox PKI returns (PEM text, bytes, certificates)."""
    if isinstance(chain, str):
        return chain
    if isinstance(chain, bytes):
        return chain.decode()
    from cryptography.hazmat.primitives.serialization import Encoding

    parts = []
    for cert in chain:
        if isinstance(cert, bytes):
            parts.append(cert.decode() if cert.startswith(b"-----") else _der_to_pem(cert))
        elif isinstance(cert, str):
            parts.append(cert)
        else:
            parts.append(cert.public_bytes(Encoding.PEM).decode())
    return "".join(parts)


def _der_to_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"
