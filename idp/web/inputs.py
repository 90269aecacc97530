"""Where input enters: one check of every query, form and path field before any view runs.

A field is refused when it holds a control character (C0, DEL, C1: NUL among them, which
PostgreSQL cannot store; CR LF, which would split a header), or when it arrives as an uploaded
file instead of text (no page of idp takes uploads). Three fields hold multi-line text by nature
(a certificate chain in PEM, a signature that may be wrapped, the `claims` parameter's JSON, which
may be indented): line breaks and tabs pass there.

A refusal is answered once, here, before anything is read or written: a person gets a 400 page
that names the field as its page labels it (Vietnamese, or English on request); a machine on a
protocol endpoint gets ``invalid_request`` naming the parameter. On /authorize a bad parameter
other than ``client_id``, ``redirect_uri`` and ``state`` goes back to the relying party as
``invalid_request`` (the checks pipeline raises it, idp.oidc.authorize), because the client and
its redirect URI can still be verified; a bad one of those three is a page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, g, request
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

# C0 controls, DEL and C1 controls (Unicode category Cc).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MULTILINE_FIELDS = frozenset({"chain", "signature", "claims"})  # PEM, wrapped base64, indented JSON
# Parameters of /authorize that are answered with a page, not a redirect to the client.
_AUTHORIZE_PAGE_FIELDS = frozenset({"client_id", "redirect_uri", "state"})

# How the pages label their fields; a field with no label here is named as it is sent.
LABELS = {
    "username": _l("Số định danh"),
    "password": _l("Mật khẩu"),
    "current_password": _l("Mật khẩu hiện tại"),
    "new_password": _l("Mật khẩu mới"),
    "confirm_password": _l("Nhập lại mật khẩu mới"),
    "otp": _l("Mã OTP"),
    "recovery_code": _l("Mã khôi phục"),
    "captcha": _l("Mã kiểm tra"),
    "full_name": _l("Họ và tên"),
    "birth_date": _l("Ngày sinh"),
    "id_number": _l("Số định danh cá nhân"),
    "id_issue_date": _l("Ngày cấp"),
    "bhxh_code": _l("Mã số BHXH"),
    "phone": _l("Số điện thoại"),
    "email": _l("Thư điện tử"),
    "pin": _l("Mã PIN"),
}
# Pages whose `username` is a staff member's user name, not an ID number.
_USERNAME_IS_A_LOGIN = ("signin.org",)  # the organization door: signin.organization, signin.org_*
_LOGIN_LABEL = _l("Tên đăng nhập")


@dataclass(frozen=True)
class Refused:
    """The first field that was refused, and why ("control" or "file")."""

    field: str
    why: str

    def description(self) -> str:
        """For machines: short ASCII."""
        name = self.field if self.field.isascii() and self.field.isprintable() else "?"
        if self.why == "file":
            return f"parameter {name} must be text, not a file"
        return f"parameter {name} contains a character that is not allowed"

    def label(self) -> str:
        """For people: the field as its page labels it."""
        endpoint = request.endpoint or ""
        if self.field == "username" and endpoint.startswith(_USERNAME_IS_A_LOGIN):
            return str(_LOGIN_LABEL)
        label = LABELS.get(self.field)
        if label is not None:
            return str(label)
        return _CONTROL.sub("", self.field)[:40] or "?"


def _bad_text(name: str, value: str) -> bool:
    pattern = _CONTROL_BUT_LINES if name in MULTILINE_FIELDS else _CONTROL
    return bool(pattern.search(value))


def _first_bad(fields: Iterable[tuple[str, object]]) -> Refused | None:
    for name, value in fields:
        if not isinstance(name, str):  # a multipart part whose name could not be read
            return Refused("?", "control")
        if _CONTROL.search(name):
            return Refused(name, "control")
        if not isinstance(value, str):
            return Refused(name, "file")
        if _bad_text(name, value):
            return Refused(name, "control")
    return None


def refused_input() -> Refused | None:
    """The first refused field of this request (query, path, form, then uploads), if any."""
    found = _first_bad(request.args.items(multi=True))
    if found is None and request.view_args:
        found = _first_bad((k, v) for k, v in request.view_args.items() if isinstance(v, str))
    if found is None and request.method != "GET":  # Werkzeug reads a body for every other method
        found = _first_bad(request.form.items(multi=True))
        if found is None:
            for name in request.files:
                return Refused(name if isinstance(name, str) else "?", "file")
    return found


def deferred_refusal() -> Refused | None:
    """An /authorize parameter that the checks pipeline refuses (see the module doc)."""
    return g.get("refused_input")


def install(app: Flask) -> None:
    from idp.web import is_api_request, oauth_json_error
    from idp.web.errors import problem_page

    @app.before_request
    def refuse_bad_input() -> BaseResponse | None:
        found = refused_input()
        if found is None:
            return None
        if request.endpoint == "oidc.authorize" and found.field not in _AUTHORIZE_PAGE_FIELDS:
            g.refused_input = found  # answered to the client by the checks pipeline
            return None
        if is_api_request():
            return oauth_json_error(400, "invalid_request", found.description())
        from flask_babel import gettext as _

        if found.why == "file":
            message = _(
                "Ô “%(field)s” chỉ nhận chữ và số gõ vào, không nhận tệp đính kèm. Vui lòng quay lại, nhập lại và gửi lại. Chưa có thông tin nào được lưu.",
                field=found.label(),
            )
        else:
            message = _(
                "Ô “%(field)s” có ký tự không được phép (ký tự điều khiển hoặc xuống dòng). Vui lòng quay lại, nhập lại và gửi lại. Chưa có thông tin nào được lưu.",
                field=found.label(),
            )
        return problem_page(
            400,
            _("Thông tin nhập vào không hợp lệ"),
            message,
            retry_url=request.path if request.method != "GET" or not found.field else None,
        )
