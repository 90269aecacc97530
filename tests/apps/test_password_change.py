"""Change of password by a signed-in person (idp.apps.account.password): the current password, the
new one twice under the policy, then an OTP to the registered phone; the other SSO sessions end
with back-channel logout; this browser stays signed in; audited."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from idp.store.models import Account, AuditEvent, db
from tests.protocol.test_logout import claims_of, logout_tokens, sign_in_portal, still_signed_in
from tests.support.account import open_account
from tests.support.backchannel import BackchannelReceiver
from tests.support.driver import Browser, csrf_of
from tests.support.outbox import Outbox
from tests.support.passwords import alert, field_errors, text_of, wrong
from tests.support.people import AN, CUC

NEW_PASSWORD = "Bach-Ma#Hue2027"


def change_page(browser: Browser, person: Any = AN) -> Any:
    page = open_account(browser, person, "/account/password")
    assert page.status_code == 200, text_of(page)[:1000]
    assert page.request.path == "/account/password"
    return page


def submit_change(browser: Browser, current: str, new: str, confirm: str | None = None) -> Any:
    page = browser.client.get("/account/password")
    return browser.client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(text_of(page)),
            "current_password": current,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
        },
    )


def submit_code(browser: Browser, code: str) -> Any:
    page = browser.client.get("/account/password/otp")
    assert page.status_code == 200, text_of(page)[:800]
    return browser.client.post(
        "/account/password/otp", data={"csrf_token": csrf_of(text_of(page)), "otp": code}
    )


def test_without_a_session_the_page_asks_to_sign_in_first(browser: Browser) -> None:
    response = browser.client.get("/account/password")
    assert response.status_code in (302, 303)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["client_id"] == ["idp-account"]  # the account area's own sign-in


def test_change_end_to_end(
    browser: Browser, app: Any, backchannel: BackchannelReceiver, outbox: Outbox
) -> None:
    other = Browser(app.test_client(), outbox)
    other_sid = claims_of(app.test_client(), sign_in_portal(other)["id_token"])["sid"]
    page = change_page(browser)
    assert 'id="password-policy"' in text_of(page)
    sent = outbox.count(AN.phone)
    response = submit_change(browser, AN.password, NEW_PASSWORD)
    assert response.status_code == 302, alert(response)
    assert outbox.count(AN.phone) == sent + 1
    assert "doi mat khau" in outbox.last(AN.phone)["text"]
    otp_page = browser.client.get(response.headers["Location"])
    assert "091****678" in text_of(otp_page)
    # Nothing changes before the code is right.
    assert submit_code(browser, wrong(outbox.last_code(AN.phone))).status_code == 401
    done = submit_code(browser, outbox.last_code(AN.phone))
    assert done.status_code == 303, alert(done)  # then a GET page: a reload does not resubmit
    done = browser.client.get(done.headers["Location"])
    assert "Đã đổi mật khẩu" in text_of(done)
    assert "Đã đăng xuất 1 phiên đăng nhập khác" in text_of(done)
    # The other browser is signed out (and its portal told); this one stays signed in.
    assert not still_signed_in(other)
    assert len(logout_tokens(backchannel, "/portal", other_sid)) == 1
    assert browser.client.get("/account/password").status_code == 200
    # The next sign-in needs the new password.
    fresh = Browser(app.test_client(), outbox)
    start, _ = fresh.start()
    assert (
        fresh.submit_password(fresh.follow(start).request.path, AN.username, AN.password).status_code == 401
    )
    callback, _ = fresh.sign_in(AN.username, NEW_PASSWORD, phone=AN.phone)
    assert "code" in callback
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == AN.username)).scalar_one()
        (event,) = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.account_id == account.id, AuditEvent.action == "password.changed"
            )
        ).scalars()
        assert event.detail["sessions_ended"] == 1
        assert time.time() - account.password_changed_at.timestamp() < 3600 * 24  # set just now (UTC)


def test_wrong_current_password_counts_towards_the_lockout(make_app: Any, outbox: Outbox) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=2)
    browser = Browser(app.test_client(), outbox)
    change_page(browser)
    sent = outbox.count(AN.phone)
    first = submit_change(browser, "Wrong#Password1", NEW_PASSWORD)
    assert first.status_code == 401
    assert alert(first) == "Mật khẩu hiện tại không đúng."
    second = submit_change(browser, "Wrong#Password2", NEW_PASSWORD)
    assert second.status_code == 401
    assert "Bạn đã nhập sai quá nhiều lần" in alert(second)
    # Locked: even the right password waits, and no SMS was sent.
    assert submit_change(browser, AN.password, NEW_PASSWORD).status_code == 429
    assert outbox.count(AN.phone) == sent


WEAK = [
    ("short", "Ab#1xyz", None, ["Mật khẩu phải có ít nhất 8 ký tự."]),
    ("no digit", "Bach-Ma#Hue", None, ["Mật khẩu phải có chữ số."]),
    ("common", "P@ssw0rd2024", None, ["Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác."]),
    (
        "birth date",
        "Sen#01011990",
        None,
        ["Mật khẩu không được chứa số định danh, số điện thoại hay ngày sinh."],
    ),
    ("same as now", CUC.password, None, ["Mật khẩu mới phải khác mật khẩu đang dùng."]),
    ("mismatch", NEW_PASSWORD, NEW_PASSWORD + "!", []),
]


@pytest.mark.parametrize(("case", "new", "confirm", "problems"), WEAK, ids=[w[0] for w in WEAK])
def test_new_password_must_meet_the_policy(
    browser: Browser, app: Any, case: str, new: str, confirm: str | None, problems: list[str]
) -> None:
    if case == "birth date":
        with app.app_context():
            account = db.session.execute(select(Account).where(Account.username == CUC.username)).scalar_one()
            birth = account.person.birth_date.strftime("%d%m%Y")
        new = "Sen#" + birth
    change_page(browser, CUC)
    sent = browser.outbox.count(CUC.phone)
    response = submit_change(browser, CUC.password, new, confirm)
    assert response.status_code == 400
    assert field_errors(response) == problems
    if case == "mismatch":
        assert "Hai lần nhập mật khẩu mới chưa giống nhau." in text_of(response)
    assert browser.outbox.count(CUC.phone) == sent


def test_otp_step_is_bound_to_the_browser_and_session(browser: Browser, app: Any, outbox: Outbox) -> None:
    change_page(browser)
    assert submit_change(browser, AN.password, NEW_PASSWORD).status_code == 302
    # Another browser of the same person (signed in too) has no pending change of its own.
    other = Browser(app.test_client(), outbox)
    change_page(other)
    response = other.client.get("/account/password/otp")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/account/password"


def test_resend_waits_for_the_cooldown(browser: Browser) -> None:
    change_page(browser)
    submit_change(browser, AN.password, NEW_PASSWORD)
    page = browser.client.get("/account/password/otp")
    response = browser.client.post("/account/password/resend", data={"csrf_token": csrf_of(text_of(page))})
    assert response.status_code == 429
    assert "Vui lòng đợi" in alert(response)


def test_expired_code_changes_nothing(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_LIFETIME=1)
    browser = Browser(app.test_client(), outbox)
    change_page(browser)
    submit_change(browser, AN.password, NEW_PASSWORD)
    code = outbox.last_code(AN.phone)
    time.sleep(1.3)
    response = submit_code(browser, code)
    assert response.status_code == 401
    assert alert(response) == "Mã OTP đã hết hiệu lực. Bấm Gửi lại OTP để nhận mã mới."
    with app.app_context():
        hashed = db.session.execute(select(Account.password_hash).where(Account.username == AN.username))
        assert app.extensions["idp"].hashing.verify(hashed.scalar_one(), AN.password)
