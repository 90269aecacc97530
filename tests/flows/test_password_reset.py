"""Forgotten password (idp.flows.signin.password_reset): ID number → OTP to the registered phone → a new
password under the policy; the same answers whether or not an account exists; every other SSO
session ends with back-channel logout; audited; bound to the browser."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from idp.store.models import Account, AuditEvent, db
from tests.protocol.test_logout import claims_of, logout_tokens, sign_in_portal, still_signed_in
from tests.support.backchannel import BackchannelReceiver
from tests.support.driver import Browser, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.passwords import (
    alert,
    field_errors,
    post_page_form,
    reset_otp_path,
    start_reset,
    text_of,
    wait_for_sms,
    wrong,
)
from tests.support.people import AN, BINH, DUNG

NEW_PASSWORD = "Hoa-Sen#2027q"
UNKNOWN = "046099999999"  # a well-formed ID number nobody has in the sandbox


def new_path(otp_path: str) -> str:
    return otp_path.rsplit("/", 1)[0] + "/new"


def reset_to(browser: Browser, person: Any, password: str, *, sms_before: int | None = None) -> Any:
    """The whole reset for `person`; returns the answer to the new password's submission."""
    before = browser.outbox.count(person.phone) if sms_before is None else sms_before
    otp_path = reset_otp_path(start_reset(browser, person.username))
    code = wait_for_sms(browser.outbox, person.phone, before + 1)
    response = post_page_form(browser, otp_path, otp=code)
    assert response.status_code == 302, alert(response)
    assert urlsplit(response.headers["Location"]).path == new_path(otp_path)
    return post_page_form(browser, new_path(otp_path), new_password=password, confirm_password=password)


def normalized(response: Any) -> str:
    """A page with its per-request tokens (CSRF, reset id) blanked out, for comparing two pages."""
    body = re.sub(r'value="[^"]{20,}"', 'value="…"', text_of(response))
    return re.sub(r"/password/forgot/[\w-]+/", "/password/forgot/…/", body)


def test_forgot_page_is_reachable_from_the_citizen_sign_in_and_standalone(browser: Browser) -> None:
    response, _ = browser.start()
    login = urlsplit(response.headers["Location"]).path
    page = browser.client.get(login + "/citizen")
    ix_id = login.rsplit("/", 1)[1]
    assert f'href="/password/forgot?ix={ix_id}"' in text_of(page)
    assert "Quên mật khẩu?" in text_of(page)
    standalone = browser.client.get("/password/forgot")
    assert standalone.status_code == 200
    assert 'name="username"' in text_of(standalone)
    assert "Nhớ mật khẩu rồi?" in text_of(standalone)  # no sign-in to go back to


def test_reset_end_to_end(
    browser: Browser, app: Any, backchannel: BackchannelReceiver, outbox: Outbox
) -> None:
    # Two other browsers are signed in to the portal as An.
    others = [Browser(app.test_client(), outbox) for _ in range(2)]
    sids = [claims_of(app.test_client(), sign_in_portal(other)["id_token"])["sid"] for other in others]
    with app.app_context():
        before = db.session.execute(
            select(Account.password_changed_at).where(Account.username == AN.username)
        )
        changed_before = before.scalar_one()

    response = reset_to(browser, AN, NEW_PASSWORD)
    assert response.status_code == 302, alert(response)
    done = browser.client.get(response.headers["Location"])
    assert done.status_code == 200
    assert "Đã đặt mật khẩu mới" in text_of(done)

    # Every other session ended, and the portal heard of each over the back channel.
    for other, sid in zip(others, sids, strict=True):
        assert not still_signed_in(other)
        assert len(logout_tokens(backchannel, "/portal", sid)) == 1
    # The old password no longer works; the new one does, from the next sign-in on.
    fresh = Browser(app.test_client(), outbox)
    start, _ = fresh.start()
    refused = fresh.submit_password(fresh.follow(start).request.path, AN.username, AN.password)
    assert refused.status_code == 401
    callback, _ = fresh.sign_in(AN.username, NEW_PASSWORD, phone=AN.phone)
    assert "code" in callback
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == AN.username)).scalar_one()
        assert account.password_changed_at > changed_before
        events = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.account_id == account.id, AuditEvent.action == "password.reset"
            )
        ).scalars()
        (event,) = list(events)
        assert event.detail["sessions_ended"] == 2
        assert AN.username not in str(event.detail)


def test_unknown_number_is_answered_like_a_known_one_and_gets_no_sms(browser: Browser, app: Any) -> None:
    outbox = browser.outbox
    other = Browser(app.test_client(), outbox)
    known = start_reset(browser, AN.username)
    unknown = start_reset(other, UNKNOWN)
    assert known.status_code == unknown.status_code == 302
    known_otp, unknown_otp = reset_otp_path(known), reset_otp_path(unknown)
    assert normalized(browser.client.get(known_otp)) == normalized(other.client.get(unknown_otp))
    code = wait_for_sms(outbox, AN.phone, 1)
    time.sleep(0.2)  # the worker that sends reset SMS had its chance: still nothing else was sent
    assert outbox.count() == 1
    # Wrong codes: the same answers, the same number of tries left, then the same void code.
    for _ in range(app.config["OTP_MAX_ATTEMPTS"]):
        a = post_page_form(browser, known_otp, otp=wrong(code))
        b = post_page_form(other, unknown_otp, otp=wrong(code))
        assert a.status_code == b.status_code == 401
        assert alert(a) == alert(b)
        assert normalized(a) == normalized(b)
    assert "không còn hiệu lực" in alert(a)


@pytest.mark.parametrize("who", ["known", "unknown"])
def test_resend_waits_for_the_cooldown_then_sends(browser: Browser, who: str) -> None:
    person = AN if who == "known" else None
    otp_path = reset_otp_path(start_reset(browser, person.username if person else UNKNOWN))
    resend_path = otp_path.rsplit("/", 1)[0] + "/resend"
    page = browser.client.get(otp_path)
    response = browser.client.post(resend_path, data={"csrf_token": csrf_of(text_of(page))})
    assert response.status_code == 429
    assert re.match(r"Vui lòng đợi \d+ giây rồi bấm Gửi lại OTP\.", alert(response))


@pytest.mark.parametrize("person", [AN, DUNG], ids=["12-digit", "legacy-cmnd"])
def test_wrong_then_right_code(browser: Browser, person: Any) -> None:
    otp_path = reset_otp_path(start_reset(browser, person.username))
    code = wait_for_sms(browser.outbox, person.phone, 1)
    assert "lay lai mat khau" in browser.outbox.last(person.phone)["text"]
    response = post_page_form(browser, otp_path, otp=wrong(code))
    assert response.status_code == 401
    assert alert(response) == "Mã OTP không đúng. Bạn còn 4 lần thử."
    # Until the code is right, the new-password page is out of reach.
    assert urlsplit(browser.client.get(new_path(otp_path)).headers["Location"]).path == otp_path
    response = post_page_form(browser, otp_path, otp=code)
    assert response.status_code == 302


def test_expired_code(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_LIFETIME=1)
    browser = Browser(app.test_client(), outbox)
    otp_path = reset_otp_path(start_reset(browser, AN.username))
    code = wait_for_sms(outbox, AN.phone, 1)
    time.sleep(1.3)
    response = post_page_form(browser, otp_path, otp=code)
    assert response.status_code == 401
    assert alert(response) == "Mã OTP đã hết hiệu lực. Bấm Gửi lại OTP để nhận mã mới."


def test_login_otp_does_not_open_a_reset(browser: Browser) -> None:
    """A code sent for signing in is no use on the reset page (its own purpose)."""
    otp_path = reset_otp_path(start_reset(browser, AN.username))
    wait_for_sms(browser.outbox, AN.phone, 1)
    login_browser = Browser(browser.client.application.test_client(), browser.outbox)
    start, _ = login_browser.start()
    login_browser.submit_password(login_browser.follow(start).request.path, AN.username, AN.password)
    login_code = browser.outbox.last_code(AN.phone)
    response = post_page_form(browser, otp_path, otp=login_code)
    assert response.status_code == 401


WEAK = [
    ("short", "Ab#1", ["Mật khẩu phải có ít nhất 8 ký tự."]),
    (
        "no upper, no special",
        "hoasen2027x",
        ["Mật khẩu phải có chữ hoa.", "Mật khẩu phải có ký tự đặc biệt."],
    ),
    ("common", "Matkhau@2024", ["Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác."]),
    (
        "phone inside",
        "Sen#0912345678",
        ["Mật khẩu không được chứa số định danh, số điện thoại hay ngày sinh."],
    ),
    (
        "ID number inside",
        "Sen#046090001234",
        ["Mật khẩu không được chứa số định danh, số điện thoại hay ngày sinh."],
    ),
    ("the current password", AN.password, ["Mật khẩu mới phải khác mật khẩu đang dùng."]),
]


@pytest.mark.parametrize(("case", "password", "problems"), WEAK, ids=[w[0] for w in WEAK])
def test_weak_password_is_refused_with_each_rule(
    browser: Browser, app: Any, case: str, password: str, problems: list[str]
) -> None:
    response = reset_to(browser, AN, password)
    assert response.status_code == 400
    assert field_errors(response) == problems
    assert 'aria-invalid="true"' in text_of(response)
    with app.app_context():
        hashed = db.session.execute(select(Account.password_hash).where(Account.username == AN.username))
        assert app.extensions["idp"].hashing.verify(hashed.scalar_one(), AN.password)


def test_the_two_entries_must_match(browser: Browser) -> None:
    otp_path = reset_otp_path(start_reset(browser, AN.username))
    post_page_form(browser, otp_path, otp=wait_for_sms(browser.outbox, AN.phone, 1))
    response = post_page_form(
        browser, new_path(otp_path), new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD + "x"
    )
    assert response.status_code == 400
    assert "Hai lần nhập mật khẩu mới chưa giống nhau." in text_of(response)


def test_policy_is_shown_before_typing(browser: Browser) -> None:
    otp_path = reset_otp_path(start_reset(browser, AN.username))
    post_page_form(browser, otp_path, otp=wait_for_sms(browser.outbox, AN.phone, 1))
    page = text_of(browser.client.get(new_path(otp_path)))
    assert page.index('id="password-policy"') < page.index('id="new_password"')
    assert 'aria-describedby="password-policy"' in page
    assert "có ít nhất 8 ký tự" in page and "không phải mật khẩu phổ biến" in page


def test_each_reset_is_used_once(browser: Browser) -> None:
    response = reset_to(browser, AN, NEW_PASSWORD)
    assert response.status_code == 302
    done = response.headers["Location"]
    otp_path = done.rsplit("/", 1)[0] + "/otp"
    # The finished reset only shows its last page.
    for path in (otp_path, new_path(otp_path)):
        assert browser.client.get(path).headers["Location"].endswith("/done")
    response = browser.client.post(new_path(otp_path), data={"new_password": "X", "confirm_password": "X"})
    assert response.status_code in (302, 400)


def test_reset_is_bound_to_the_browser(browser: Browser, app: Any, outbox: Outbox) -> None:
    otp_path = reset_otp_path(start_reset(browser, AN.username))
    stranger = Browser(app.test_client(), outbox)
    page = stranger.client.get(otp_path)
    assert page.status_code == 400
    assert "Yêu cầu lấy lại mật khẩu đã hết hạn" in text_of(page)


def test_forms_need_their_csrf_token(browser: Browser) -> None:
    browser.client.get("/password/forgot")
    response = browser.client.post("/password/forgot", data={"username": AN.username})
    assert response.status_code == 400
    assert browser.outbox.count() == 0


@pytest.mark.parametrize("username", ["12345", "04609000123a", "0460900012345"])
def test_malformed_numbers_are_refused_before_anything_is_looked_up(browser: Browser, username: str) -> None:
    response = start_reset(browser, username)
    assert response.status_code == 400
    assert alert(response) == "Số định danh cá nhân gồm 12 chữ số (hoặc số CMND cũ gồm 9 chữ số)."


def test_locked_account_is_answered_like_an_unknown_number(browser: Browser, app: Any) -> None:
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == BINH.username).values(status="locked"))
        db.session.commit()
    otp_path = reset_otp_path(start_reset(browser, BINH.username))
    time.sleep(0.2)
    assert browser.outbox.count() == 0
    assert browser.client.get(otp_path).status_code == 200


def test_reset_from_a_sign_in_leads_back_to_it(browser: Browser, outbox: Outbox) -> None:
    start, _ = browser.start()
    ix_id = urlsplit(start.headers["Location"]).path.rsplit("/", 1)[1]
    otp_path = reset_otp_path(start_reset(browser, AN.username, f"?ix={ix_id}"))
    post_page_form(browser, otp_path, otp=wait_for_sms(outbox, AN.phone, 1))
    response = post_page_form(
        browser, new_path(otp_path), new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD
    )
    done = browser.client.get(response.headers["Location"])
    assert f'href="/login/{ix_id}/citizen"' in text_of(done)
    # ... and the sign-in there works with the new password and reaches the portal.
    response = browser.submit_password(f"/login/{ix_id}/citizen", AN.username, NEW_PASSWORD)
    response = browser.submit_otp(response.headers["Location"], outbox.last_code(AN.phone))
    callback = query_of(browser.follow(response).headers["Location"])
    assert "code" in callback


def test_a_completed_reset_ends_the_lockout_of_the_number(browser: Browser, app: Any, outbox: Outbox) -> None:
    """Locked out after wrong passwords, the person resets the password by SMS and can sign in at
    once; wrong guesses afterwards lock the number again."""
    start, _ = browser.start()
    login = start.headers["Location"]
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        browser.submit_password(login, AN.username, "Wrong-password-1")
    locked = browser.submit_password(login, AN.username, AN.password)
    assert locked.status_code == 429 and "quá nhiều lần" in normalized(locked)

    response = reset_to(browser, AN, NEW_PASSWORD)
    assert response.status_code == 302, alert(response)

    signed = browser.submit_password(login, AN.username, NEW_PASSWORD)
    assert signed.status_code == 302 and urlsplit(signed.headers["Location"]).path.endswith("/otp")
    browser.submit_otp(signed.headers["Location"], outbox.last_code(AN.phone))
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        browser.submit_password(login, AN.username, "Wrong-password-1")
    again = browser.submit_password(login, AN.username, NEW_PASSWORD)
    assert again.status_code == 429


def test_a_completed_reset_keeps_the_lockout_of_the_address(make_app: Any, outbox: Outbox) -> None:
    """A lockout earned by one client address guessing many numbers is not lifted by one reset."""
    app = make_app(PASSWORD_MAX_FAILURES=1)
    browser = Browser(app.test_client(), outbox)
    start, _ = browser.start()
    login = start.headers["Location"]
    for number in ("046090009991", "046090009992", "046090009993", "046090009994"):
        browser.submit_password(login, number, "Wrong-password-1")
    assert browser.submit_password(login, AN.username, AN.password).status_code == 429
    reset_to(browser, AN, NEW_PASSWORD)
    assert browser.submit_password(login, AN.username, NEW_PASSWORD).status_code == 429
