"""Flow outcomes a person sees as a page, one class each, rendered in one place.

After Werkzeug's exceptions: a flow raises the outcome (``raise SignInExpired()``) or returns its
response (``SignInExpired().response()``); ``idp.web.install`` renders every FlowProblem the same
way — a Vietnamese page (English on request) with what happened, what to do, the hotline, and an
error id when the outcome is worth an operator's look (the same id is in the log line).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, ClassVar

from flask import Response, current_app, render_template
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l


def new_error_id() -> str:
    return "E-" + secrets.token_hex(4).upper()


def problem_page(
    status: int,
    title: str,
    message: str,
    *,
    error_id: str | None = None,
    hint: str | None = None,
    retry_url: str | None = None,
) -> Response:
    body = render_template(
        "error.html",
        status=status,
        title=title,
        message=message,
        error_id=error_id,
        hint=hint,
        retry_url=retry_url,
    )
    response = Response(body, status=status, mimetype="text/html")
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


class FlowProblem(Exception):
    """An outcome of a flow that ends on a page of its own (not a form's error)."""

    status: ClassVar[int] = 400
    title: ClassVar[LazyString]
    message: ClassVar[LazyString]
    # Log the outcome with an error id shown on the page ("warning" or "error"); None: no id.
    log_level: ClassVar[str | None] = None
    # The log line: logger and text ({id}: the error id, {detail}: what the raiser said).
    logger: ClassVar[str] = "idp.web"
    log_line: ClassVar[str] = "{name} error_id={id}: {detail}"

    def __init__(self, detail: str = "", *, retry_url: str | None = None) -> None:
        super().__init__(detail or type(self).__name__)
        self.detail = detail  # for the log, never shown
        self.retry_url = retry_url

    def message_text(self) -> str:
        return str(self.message) % {"hotline": current_app.config["SUPPORT_HOTLINE"]}

    def response(self) -> Response:
        error_id = None
        if self.log_level is not None:
            error_id = new_error_id()
            line = self.log_line.format(name=type(self).__name__, id=error_id, detail=self.detail)
            getattr(logging.getLogger(self.logger), self.log_level)("%s", line)
        return problem_page(
            self.status, str(self.title), self.message_text(), error_id=error_id, retry_url=self.retry_url
        )


# -- expired: the record a page needs is gone, or belongs to another browser -----------------------
class SignInExpired(FlowProblem):
    title = _l("Phiên đăng nhập đã hết hạn")
    message = _l(
        "Phiên đăng nhập này đã hết hạn hoặc được mở trên trình duyệt khác. Vui lòng quay lại trang dịch vụ công và bấm Đăng nhập lại."
    )


class RegistrationExpired(FlowProblem):
    title = _l("Phiên đăng ký đã hết hạn")
    message = _l(
        "Phiên đăng ký này đã hết hạn hoặc được mở trên trình duyệt khác. Thông tin bạn nhập chưa được lưu. Vui lòng bấm Đăng ký để làm lại từ đầu."
    )


class PasswordResetExpired(FlowProblem):
    title = _l("Yêu cầu lấy lại mật khẩu đã hết hạn")
    message = _l(
        "Yêu cầu lấy lại mật khẩu này đã hết hạn hoặc được mở trên trình duyệt khác. Vui lòng bấm Quên mật khẩu để làm lại từ đầu."
    )


class AccountSignInExpired(FlowProblem):
    title = _l("Chưa vào được trang quản lý tài khoản")
    message = _l(
        "Lần đăng nhập này đã hết hạn hoặc được mở trên trình duyệt khác. Vui lòng mở lại trang quản lý tài khoản và đăng nhập."
    )


# -- a register (or another system idp asks) did not answer as it should ------------------------
class RegisterUnavailable(FlowProblem):
    status = 503
    log_level = "warning"
    logger = "idp.registration"
    log_line = "registration check unavailable error_id={id}: {detail}"
    title = _l("Chưa kiểm tra được thông tin")
    message = _l(
        "Hệ thống cơ sở dữ liệu cần để kiểm tra thông tin tạm thời chưa trả lời. Thông tin bạn nhập chưa được lưu. Vui lòng thử lại sau ít phút."
    )


class RegisterRefusedRequest(FlowProblem):
    log_level = "warning"
    logger = "idp.registration"
    log_line = "registration check rejected error_id={id}: {detail}"
    title = _l("Chưa kiểm tra được thông tin")
    message = _l(
        "Cơ sở dữ liệu không nhận yêu cầu kiểm tra với thông tin đã nhập. Vui lòng kiểm tra lại thông tin, hoặc gọi tổng đài hỗ trợ %(hotline)s."
    )


class RegistrationPaused(FlowProblem):
    status = 503
    log_level = "error"
    logger = "idp.registration"
    log_line = "registration check failed error_id={id} {detail}"
    title = _l("Chức năng đăng ký đang tạm dừng")
    message = _l(
        "Chức năng đăng ký đang tạm dừng để khắc phục sự cố. Vui lòng thử lại sau hoặc gọi tổng đài hỗ trợ %(hotline)s."
    )


# -- the person may not do this --------------------------------------------------------------------
class NotAllowed(FlowProblem):
    status = 403
    title = _l("Bạn không có quyền xem trang này")
    message = _l(
        "Tài khoản của bạn chưa được giao vai trò cần cho trang này. Vui lòng liên hệ quản trị viên."
    )


def install(app: Any) -> None:
    @app.errorhandler(FlowProblem)
    def flow_problem(exc: FlowProblem) -> Response:
        return exc.response()
