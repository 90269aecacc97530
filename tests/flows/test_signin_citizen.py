"""The citizen door: ID number (12-digit, or legacy 9-digit CMND) and password, then an SMS OTP.

Generic answers that do not tell who has an account, separate counters with incremental,
temporary lockout, OTP attempts / lifetime / resend rules, binding to the browser, CSRF.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from tests.support.clients import PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH, CUC, DUNG

GENERIC = "Số định danh hoặc mật khẩu không đúng."
LOCKED_OUT = "Bạn đã nhập sai quá nhiều lần"
EXPIRED_OTP = "Mã OTP đã hết hiệu lực"
ALERT = re.compile(r'<div class="alert" role="alert" id="form-error">(.*?)</div>', re.S)
E164_VN = re.compile(r"^\+84\d{9}$")


def alert(response: Any) -> str:
    match = ALERT.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:1500]
    return html.unescape(match.group(1)).strip()


def citizen_page(browser: Browser, **start: Any) -> str:
    """Start an authorization at the portal; returns the path of the citizen door."""
    response, _ = browser.start(**start)
    assert response.status_code == 302
    login = urlsplit(response.headers["Location"]).path
    assert login.startswith("/login/")
    return login + "/citizen"


def post_password(browser: Browser, path: str, username: str, password: str) -> Any:
    page = browser.client.get(path)
    assert page.status_code == 200, page.status_code
    token = csrf_of(page.get_data(as_text=True))
    return browser.client.post(path, data={"csrf_token": token, "username": username, "password": password})


def otp_page(browser: Browser, person: Any = AN) -> str:
    response = post_password(browser, citizen_page(browser), person.username, person.password)
    assert response.status_code == 302, alert(response)
    path = urlsplit(response.headers["Location"]).path
    assert path.endswith("/otp")
    return path


def post_otp(browser: Browser, path: str, code: str) -> Any:
    page = browser.client.get(path)
    return browser.client.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)), "otp": code})


def resend(browser: Browser, path: str) -> Any:
    page = browser.client.get(path)
    return browser.client.post(path + "/resend", data={"csrf_token": csrf_of(page.get_data(as_text=True))})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def signed_in(browser: Browser, response: Any) -> dict[str, str]:
    """After the OTP: the authorization resumes and the portal gets its code."""
    assert response.status_code == 302, alert(response)
    response = browser.follow(response)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(PORTAL_CALLBACK + "?"), location
    return query_of(location)


def allow_next_otp(app: Any) -> None:
    """End the per-account OTP send cooldown instead of waiting for it."""
    store = app.extensions["idp"].store
    for key in store.client.scan_iter(match=store.prefix + "otp_cool:*"):
        store.client.delete(key)


def browser_for(app: Any, outbox: Outbox) -> Browser:
    return Browser(app.test_client(), outbox)


# -- passwords: generic answers ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(AN.username, "Wrong@2026x", id="wrong-password"),
        pytest.param(AN.username, AN.password.lower(), id="password-case"),
        pytest.param("046090009999", AN.password, id="unknown-id-number"),
        pytest.param("191111111", DUNG.password, id="unknown-legacy-cmnd"),
    ],
)
def test_wrong_password_or_unknown_account_get_the_same_answer(
    browser: Browser, outbox: Outbox, username: str, password: str
) -> None:
    response = post_password(browser, citizen_page(browser), username, password)
    assert response.status_code == 401
    assert alert(response) == GENERIC
    assert outbox.count() == 0


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("12345", "x", "Số định danh cá nhân gồm 12 chữ số"),
        ("04609000123", AN.password, "Số định danh cá nhân gồm 12 chữ số"),
        ("999090001234", AN.password, "Số định danh cá nhân gồm 12 chữ số"),
        ("abcdefghijkl", AN.password, "Số định danh cá nhân gồm 12 chữ số"),
        ("", AN.password, "Vui lòng nhập số định danh và mật khẩu."),
        (AN.username, "", "Vui lòng nhập số định danh và mật khẩu."),
        ("0" * 30, AN.password, "Vui lòng nhập số định danh và mật khẩu."),
    ],
)
def test_malformed_input_is_explained(
    browser: Browser, outbox: Outbox, username: str, password: str, message: str
) -> None:
    response = post_password(browser, citizen_page(browser), username, password)
    assert response.status_code == 400
    assert alert(response).startswith(message)
    assert outbox.count() == 0


@pytest.mark.parametrize("token", [None, "", "forged.token.value"])
def test_password_form_without_csrf_token_is_refused(
    browser: Browser, outbox: Outbox, token: str | None
) -> None:
    path = citizen_page(browser)
    browser.client.get(path)
    data = {"username": AN.username, "password": AN.password}
    if token is not None:
        data["csrf_token"] = token
    response = browser.client.post(path, data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert outbox.count() == 0


@pytest.mark.parametrize(("password", "status"), [(AN.password, 403), ("Wrong@2026x", 401)])
def test_locked_account_cannot_sign_in(
    browser: Browser, app: Any, outbox: Outbox, password: str, status: int
) -> None:
    from idp.store.models import Account, db

    with app.app_context():
        db.session.execute(update(Account).where(Account.username == AN.username).values(status="locked"))
        db.session.commit()
    response = post_password(browser, citizen_page(browser), AN.username, password)
    assert response.status_code == status
    if status == 403:
        assert "đang bị khóa" in alert(response) and "1022" in alert(response)
    else:
        assert alert(response) == GENERIC  # a wrong password tells nothing about the account
    assert outbox.count() == 0


# -- lockout -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("username", "max_failures", "failures", "locked"),
    [
        (AN.username, 3, 2, False),
        (AN.username, 3, 3, True),
        (AN.username, 1, 1, True),
        (AN.username, 5, 4, False),
        ("046090009999", 3, 3, True),  # an unknown name locks the same way: nothing to learn
    ],
)
def test_password_failure_counter(
    make_app: Any, outbox: Outbox, username: str, max_failures: int, failures: int, locked: bool
) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=max_failures)
    browser = browser_for(app, outbox)
    path = citizen_page(browser)
    for attempt in range(1, failures + 1):
        response = post_password(browser, path, username, "Wrong@2026x")
        assert response.status_code == 401
        if attempt < max_failures:
            assert alert(response) == GENERIC
        else:
            assert alert(response).startswith(LOCKED_OUT)
    # Now even the right password is refused while the lock lasts (a wrong one stays generic).
    response = post_password(browser, path, username, AN.password)
    if locked:
        assert response.status_code == 429
        assert alert(response).startswith(LOCKED_OUT) and "phút" in alert(response)
    else:
        assert response.status_code == 302


def test_lockout_is_temporary_and_grows(make_app: Any, outbox: Outbox) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=3, LOCKOUT_BASE_SECONDS=1, LOCKOUT_MAX_SECONDS=60)
    throttle = app.extensions["idp"].password_throttle
    browser = browser_for(app, outbox)
    path = citizen_page(browser)
    for _ in range(3):
        post_password(browser, path, AN.username, "Wrong@2026x")
    first = throttle.locked_for(name=AN.username)
    assert first == 1
    assert post_password(browser, path, AN.username, AN.password).status_code == 429
    # Other people are not locked out with AN.
    other = browser_for(app, outbox)
    assert post_password(other, citizen_page(other), BINH.username, BINH.password).status_code == 302

    time.sleep(1.2)  # the lock ends by itself
    assert throttle.locked_for(name=AN.username) == 0
    response = post_password(browser, path, AN.username, AN.password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/otp")

    # The next lockout the same day lasts longer.
    path = citizen_page(browser)
    for _ in range(3):
        response = post_password(browser, path, AN.username, "Wrong@2026x")
    assert alert(response).startswith(LOCKED_OUT)
    assert throttle.locked_for(name=AN.username) == 2 * first


# -- OTP -----------------------------------------------------------------------------------------
def test_otp_goes_to_the_primary_phone_as_six_digits(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser, CUC)
    assert outbox.count() == 1
    sms = outbox.last()
    assert sms["to"] == CUC.phone and E164_VN.match(sms["to"])
    codes = re.findall(r"(?<!\d)\d{6}(?!\d)", sms["text"])
    assert len(codes) == 1
    page = browser.client.get(path).get_data(as_text=True)
    assert "093****456" in page and "0935123456" not in page and CUC.phone not in page
    assert 'name="otp"' in page and 'data-account-kind="citizen"' in page
    assert "code" in signed_in(browser, post_otp(browser, path, codes[0]))


def test_wrong_otp_shows_attempts_left(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser)
    code = outbox.last_code(AN.phone)
    for left in (4, 3, 2, 1):
        response = post_otp(browser, path, wrong(code))
        assert response.status_code == 401
        assert alert(response) == f"Mã OTP không đúng. Bạn còn {left} lần thử."
    assert "code" in signed_in(browser, post_otp(browser, path, code))


def test_starting_over_is_not_held_back_by_the_resend_cooldown(app: Any, outbox: Outbox) -> None:
    """A person who abandons a sign-in and starts again at once gets a new code, not a wait."""
    otp_page(browser_for(app, outbox))
    again = browser_for(app, outbox)
    path = otp_page(again)
    assert outbox.count(AN.phone) == 2
    assert "code" in signed_in(again, post_otp(again, path, outbox.last_code(AN.phone)))


def test_otp_is_void_after_five_wrong_entries(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser)
    code = outbox.last_code(AN.phone)
    for _ in range(5):
        response = post_otp(browser, path, wrong(code))
    assert response.status_code == 401
    assert "5 lần" in alert(response) and "không còn hiệu lực" in alert(response)
    # The right code no longer works either; a new one must be sent.
    response = post_otp(browser, path, code)
    assert response.status_code == 401
    assert alert(response).startswith(EXPIRED_OTP)


def test_repeatedly_voided_codes_lock_the_otp_entry(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_MAX_VOIDED=2)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    for round_ in range(2):
        if round_:
            allow_next_otp(app)
            assert resend(browser, path).status_code == 302
        code = outbox.last_code(AN.phone)
        for _ in range(5):
            response = post_otp(browser, path, wrong(code))
    # The second voided code starts a temporary lockout of the OTP entry.
    assert response.status_code == 401 and alert(response).startswith(LOCKED_OUT)
    allow_next_otp(app)
    resend(browser, path)
    response = post_otp(browser, path, outbox.last_code(AN.phone))
    assert response.status_code == 429 and alert(response).startswith(LOCKED_OUT)


@pytest.mark.parametrize("entry", ["", "12345", "1234567", "abcdef", "１２３４５６"])
def test_malformed_otp_is_not_accepted(browser: Browser, outbox: Outbox, entry: str) -> None:
    path = otp_page(browser)
    response = post_otp(browser, path, entry)
    assert response.status_code in (400, 401)
    assert "Location" not in response.headers


def test_expired_otp_is_refused(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_LIFETIME=1)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    code = outbox.last_code(AN.phone)
    time.sleep(1.2)
    response = post_otp(browser, path, code)
    assert response.status_code == 401
    assert alert(response).startswith(EXPIRED_OTP)


def test_resend_waits_for_the_cooldown(browser: Browser, app: Any, outbox: Outbox) -> None:
    path = otp_page(browser)
    old = outbox.last_code(AN.phone)
    response = resend(browser, path)
    assert response.status_code == 429
    seconds = int(re.search(r"đợi (\d+) giây", alert(response)).group(1))  # type: ignore[union-attr]
    assert 50 <= seconds <= 60
    assert outbox.count() == 1

    allow_next_otp(app)
    response = resend(browser, path)
    assert response.status_code == 302 and "sent=1" in response.headers["Location"]
    assert outbox.count() == 2
    new = outbox.last_code(AN.phone)
    # Straight away, a second resend is refused with the seconds to wait.
    response = resend(browser, path)
    assert response.status_code == 429 and re.search(r"đợi \d+ giây", alert(response))
    assert outbox.count() == 2
    if new != old:
        assert post_otp(browser, path, old).status_code == 401  # the earlier code is replaced
    assert "code" in signed_in(browser, post_otp(browser, path, new))


def test_resend_stops_at_the_daily_limit(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_DAILY_LIMIT=2)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    allow_next_otp(app)
    assert resend(browser, path).status_code == 302
    allow_next_otp(app)
    response = resend(browser, path)
    assert response.status_code == 429
    assert "quá số mã OTP cho phép trong ngày" in alert(response)
    assert outbox.count() == 2


# -- accounts and browsers -------------------------------------------------------------------
def test_legacy_cmnd_signs_in(browser: Browser, client: Any, outbox: Outbox) -> None:
    callback, auth = browser.sign_in(
        DUNG.username, DUNG.password, phone=DUNG.phone, scope="openid profile citizen"
    )
    assert outbox.last()["to"] == DUNG.phone
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": PORTAL_CALLBACK,
        "code_verifier": auth.verifier,
    }
    body = client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET)).json
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).json
    assert userinfo["legacy_citizen_id"] == DUNG.username and "citizen_id" not in userinfo
    assert userinfo["name"] == DUNG.name


def test_interaction_is_bound_to_its_browser(browser: Browser, app: Any, outbox: Outbox) -> None:
    path = citizen_page(browser)
    stranger = browser_for(app, outbox)
    own = citizen_page(stranger)  # the stranger's own CSRF token, from its own sign-in page
    token = csrf_of(stranger.client.get(own).get_data(as_text=True))

    page = stranger.client.get(path)
    assert page.status_code == 400 and "Phiên đăng nhập đã hết hạn" in page.get_data(as_text=True)
    response = stranger.client.post(
        path, data={"csrf_token": token, "username": AN.username, "password": AN.password}
    )
    assert response.status_code == 400 and outbox.count() == 0

    response = post_password(browser, path, AN.username, AN.password)
    otp = urlsplit(response.headers["Location"]).path
    code = outbox.last_code(AN.phone)
    assert stranger.client.get(otp).status_code == 400
    response = stranger.client.post(otp, data={"csrf_token": token, "otp": code})
    assert response.status_code == 400
    # The person's own browser is unaffected.
    assert "code" in signed_in(browser, post_otp(browser, otp, code))
