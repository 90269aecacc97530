"""The web tier's shared behaviour: security headers, language, error pages and error ids.

One place maps failures to responses: a person sees a Vietnamese page (English on request) that
says what happened, what to do next, the support hotline and an error id; a machine on a protocol
endpoint gets an OAuth error in JSON. The error id is in the log line an operator reads.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from idp.messaging.sms import SmsUnavailable
from idp.sessions.browser import LANG_COOKIE, cookie_name
from idp.store.ephemeral import StoreUnavailable
from idp.store.models import db
from idp.web import errors
from idp.web.errors import new_error_id, problem_page

log = logging.getLogger("idp.web")

LOCALES = ("vi", "en")
# Paths answered to machines (JSON), never with an HTML page.
API_PREFIXES = ("/token", "/userinfo", "/revoke", "/introspect", "/jwks.json", "/.well-known/", "/health")


class PageSessionInterface(SecureCookieSessionInterface):
    """The signed session cookie serves pages (CSRF, browser binding); protocol endpoints that
    machines call never read or write it, which spares them its cost."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if request.path.startswith(API_PREFIXES):
            return self.null_session_class()
        return super().open_session(app, request)


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES)


def select_locale() -> str:
    chosen = request.args.get("lang")
    if chosen in LOCALES:
        return chosen
    cookie = request.cookies.get(cookie_name(LANG_COOKIE))
    if cookie in LOCALES:
        return cookie
    for tag in (getattr(g, "ui_locales", None) or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    return current_app.config["DEFAULT_LOCALE"]


def oauth_json_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def _unavailable(exc: Exception) -> Response:
    error_id = new_error_id()
    log.warning("dependency unavailable error_id=%s: %s", error_id, exc.__class__.__name__)
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()
    if is_api_request():
        return oauth_json_error(
            503, "temporarily_unavailable", "the service is temporarily unavailable, retry later"
        )
    return problem_page(
        503,
        _("Hệ thống tạm thời gián đoạn"),
        _("Hệ thống đang tạm thời gián đoạn. Vui lòng thử lại sau ít phút; thông tin của bạn không bị mất."),
        error_id=error_id,
    )


def install(app: Flask) -> None:
    from idp.web.pages import vietnam_time

    errors.install(app)
    Babel(app, locale_selector=select_locale)
    app.session_interface = PageSessionInterface()
    app.add_template_filter(vietnam_time, "vietnam_time")

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        from flask_babel import get_locale

        return {
            "hotline": current_app.config["SUPPORT_HOTLINE"],
            "province": current_app.config["PROVINCE_NAME"],
            "current_locale": str(get_locale()),
        }

    @app.after_request
    def security_headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            h.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            )
            h.setdefault("Cache-Control", "no-store")
        if current_app.config["ISSUER"].startswith("https://"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        chosen = request.args.get("lang")
        if chosen in LOCALES and request.cookies.get(cookie_name(LANG_COOKIE)) != chosen:
            response.set_cookie(
                cookie_name(LANG_COOKIE),
                chosen,
                max_age=365 * 86400,
                httponly=True,
                samesite="Lax",
                secure=current_app.config["SESSION_COOKIE_SECURE"],
            )
        return response

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        return _unavailable(exc)

    # Registered last, so that it runs first among the after_request functions (the security
    # headers then apply to whatever it answers).
    @app.after_request
    def settle_short_lived_writes(response: Response) -> Response:
        """Answer only once the request's Redis writes are on a replica (RedisStore.settle): a code
        or token handed out must survive the primary's failover. If the primary is gone meanwhile,
        a page answers the outage (the person tries again). A machine's answer stands: what it
        reports may already be committed in SQL (a rotated refresh token, a grant), and a 503
        would make the client retry with what it holds, which then reads as a replay."""
        try:
            current_app.extensions["idp"].store.settle()
        except StoreUnavailable as exc:
            if is_api_request():
                log.warning("replication of %s not confirmed: %s", request.path, exc.__class__.__name__)
                return response
            return _unavailable(exc)
        return response

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> Response:
        if (
            exc.connection_invalidated
            or isinstance(exc.orig, OSError)
            or exc.__class__.__name__
            in (
                "OperationalError",
                "InterfaceError",
            )
        ):
            return _unavailable(exc)
        return internal_error(exc)

    @app.errorhandler(SmsUnavailable)
    def sms_unavailable(exc: SmsUnavailable) -> Response:
        error_id = new_error_id()
        log.warning("sms unavailable error_id=%s: %s", error_id, exc)
        return problem_page(
            503,
            _("Chưa gửi được tin nhắn"),
            _("Chưa gửi được mã OTP tới điện thoại của bạn. Vui lòng thử lại sau ít phút."),
            error_id=error_id,
        )

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response:
        return problem_page(
            400,
            _("Phiên làm việc đã hết hạn"),
            _(
                "Trang này đã mở quá lâu hoặc được gửi từ nơi khác. Vui lòng quay lại trang dịch vụ công và đăng nhập lại."
            ),
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if is_api_request():
            error = "invalid_request" if status < 500 else "server_error"
            return oauth_json_error(status, error, exc.name.lower())
        if status == 404:
            return problem_page(
                404,
                _("Không tìm thấy trang"),
                _("Địa chỉ này không tồn tại. Vui lòng kiểm tra lại đường dẫn."),
            )
        if status == 405:
            return problem_page(
                405, _("Yêu cầu không hợp lệ"), _("Trang này không nhận loại yêu cầu vừa gửi.")
            )
        return problem_page(
            status, _("Yêu cầu không hợp lệ"), _("Yêu cầu không hợp lệ. Vui lòng quay lại và thử lại.")
        )

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        error_id = new_error_id()
        log.exception("unhandled error error_id=%s", error_id)
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()
        if is_api_request():
            return oauth_json_error(500, "server_error", f"internal error {error_id}")
        return problem_page(
            500,
            _("Đã xảy ra lỗi"),
            _(
                "Hệ thống gặp lỗi khi xử lý yêu cầu của bạn. Vui lòng thử lại; nếu lỗi lặp lại, hãy gọi tổng đài hỗ trợ và đọc mã lỗi."
            ),
            error_id=error_id,
        )
