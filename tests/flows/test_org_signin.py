"""The organization door at the flow level: username + password, then SMS OTP or an authenticator
code (the person chooses when both exist), a recovery code once, the offer to set up an
authenticator, and counters kept apart from the citizen door's."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from tests.support.clients import PORTAL_CALLBACK
from tests.support.driver import Browser, csrf_of, query_of
from tests.support.org import LAN, MINH, OrgDoor, SandboxStaff, fresh_totp_code, totp_code
from tests.support.outbox import Outbox
from tests.support.people import AN
from tests.support.tokens import exchange, verify_jwt

GENERIC = "Tên đăng nhập hoặc mật khẩu không đúng."
LOCKED_OUT = "Bạn đã nhập sai quá nhiều lần"
REPLAYED = "Mã này đã được dùng."
WRONG_CODE = "Mã không đúng."
RECOVERY_REFUSED = "Mã khôi phục không đúng hoặc đã được dùng."
ALERT = re.compile(r'<div class="alert" role="alert" id="form-error">(.*?)</div>', re.S)


def alert(response: Any) -> str:
    match = ALERT.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:1500]
    return html.unescape(match.group(1)).strip()


def step_of(response: Any) -> str:
    assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:1500])
    return urlsplit(response.headers["Location"]).path.rsplit("/organization/", 1)[-1]


def callback_of(door: OrgDoor, response: Any) -> dict[str, str]:
    response = door.browser.follow(response)
    assert response.status_code == 302, response.get_data(as_text=True)[:1500]
    location = response.headers["Location"]
    assert location.startswith(PORTAL_CALLBACK + "?"), location
    return query_of(location)


def id_token_of(door: OrgDoor, callback: dict[str, str]) -> dict[str, Any]:
    response = exchange(door.client, callback["code"], door.auth)
    assert response.status_code == 200, response.json
    return verify_jwt(door.client, response.json["id_token"])[1]


def sms_sign_in(door: OrgDoor, outbox: Outbox, staff: SandboxStaff = LAN) -> Any:
    """Password, then the SMS OTP; returns the response to the OTP."""
    assert step_of(door.password(staff.username, staff.password)) == "sms"
    return door.post(door.path("sms"), otp=outbox.last_code(staff.phone))


def _csrf(door: OrgDoor, path: str) -> str:
    return csrf_of(door.client.get(path).get_data(as_text=True))


def _continue(door: OrgDoor) -> Any:
    """ "Để sau, tiếp tục đăng nhập" on the authenticator offer."""
    return door.client.post(
        door.path("continue"), data={"csrf_token": _csrf(door, door.path("authenticator"))}
    )


def skip_offer(door: OrgDoor, response: Any) -> Any:
    assert step_of(response) == "authenticator"
    offer = door.client.get(door.path("authenticator"))
    assert "Thiết lập ngay" in offer.get_data(as_text=True)
    return _continue(door)


def totp_sign_in(door: OrgDoor, code: str, staff: SandboxStaff = MINH) -> Any:
    assert step_of(door.password(staff.username, staff.password)) == "method"
    assert step_of(door.post(door.path("method"), method="totp")) == "app"
    return door.post(door.path("app"), otp=code)


def audit_events(app: Any, action: str) -> list[Any]:
    from idp.store.models import AuditEvent, db

    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars().all()
        return [(r.actor, r.account_id, r.detail) for r in rows]


# -- the happy paths ---------------------------------------------------------------------------------
def test_sms_only_staff_signs_in_with_an_sms_otp(app: Any, browser: Browser, outbox: Outbox) -> None:
    door = OrgDoor(browser)
    chooser = browser.client.get(door.open().rsplit("/", 1)[0])
    assert 'data-account-kind="organization"' in chooser.get_data(as_text=True)
    page = browser.client.get(door.login + "/door/organization")
    assert page.status_code == 302 and page.headers["Location"].endswith("/organization")
    form = browser.client.get(door.login + "/organization").get_data(as_text=True)
    assert 'data-account-kind="organization"' in form and 'name="username"' in form
    response = sms_sign_in(door, outbox)
    sms = outbox.last(LAN.phone)
    assert "to chuc" in sms["text"]
    claims = id_token_of(door, callback_of(door, skip_offer(door, response)))
    assert claims["acr"] == "LoA2"
    assert claims["amr"] == ["pwd", "otp", "sms", "mfa"]
    signins = audit_events(app, "signin")
    assert signins[-1][2]["door"] == "organization"


def test_staff_with_both_factors_chooses_the_authenticator(browser: Browser, outbox: Outbox) -> None:
    door = OrgDoor(browser)
    response = door.password(MINH.username, MINH.password)
    assert step_of(response) == "method"
    page = browser.client.get(door.path("method")).get_data(as_text=True)
    assert "097****444" in page and "ứng dụng xác thực" in page and "mã khôi phục" in page
    before = outbox.count(MINH.phone)
    assert step_of(door.post(door.path("method"), method="totp")) == "app"
    assert outbox.count(MINH.phone) == before  # no SMS sent when the app is chosen
    response = door.post(door.path("app"), otp=totp_code(MINH.totp_secret or ""))
    claims = id_token_of(door, callback_of(door, response))  # no offer: an authenticator exists
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "LoA2"


def test_staff_with_both_factors_may_take_the_sms(browser: Browser, outbox: Outbox) -> None:
    door = OrgDoor(browser)
    assert step_of(door.password(MINH.username, MINH.password)) == "method"
    assert step_of(door.post(door.path("method"), method="sms")) == "sms"
    response = door.post(door.path("sms"), otp=outbox.last_code(MINH.phone))
    claims = id_token_of(door, callback_of(door, response))
    assert claims["amr"] == ["pwd", "otp", "sms", "mfa"]


# -- what goes wrong, table-driven -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("username", "password"),
    [
        (LAN.username, "Wrong@Password1"),  # wrong password
        ("nobody.here", "Wrong@Password1"),  # no such account: the same answer
        (AN.username, AN.password),  # a citizen's login is not a staff account
        (LAN.username.upper(), "Wrong@Password1"),  # usernames are not case-sensitive
    ],
    ids=["wrong-password", "unknown-user", "citizen-login", "upper-case"],
)
def test_wrong_password_gets_the_same_generic_answer(browser: Browser, username: str, password: str) -> None:
    door = OrgDoor(browser)
    response = door.password(username, password)
    assert response.status_code == 401
    assert alert(response) == GENERIC


def test_username_is_not_case_sensitive(browser: Browser, outbox: Outbox) -> None:
    door = OrgDoor(browser)
    assert step_of(door.password("  " + LAN.username.upper() + " ", LAN.password)) == "sms"


@pytest.mark.parametrize("wrong_code", ["000000", "12345", "abcdef"], ids=["wrong", "short", "letters"])
def test_wrong_sms_code(browser: Browser, outbox: Outbox, wrong_code: str) -> None:
    door = OrgDoor(browser)
    assert step_of(door.password(LAN.username, LAN.password)) == "sms"
    if outbox.last_code(LAN.phone) == wrong_code:
        pytest.skip("the random OTP happens to be the wrong code of the table")
    response = door.post(door.path("sms"), otp=wrong_code)
    assert response.status_code == 401
    assert alert(response).startswith("Mã OTP không đúng. Bạn còn 4 lần thử.")


def test_wrong_totp_code_then_lockout(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_MAX_ATTEMPTS=3, LOCKOUT_BASE_SECONDS=60)
    door = OrgDoor(Browser(app.test_client(), outbox))
    assert step_of(door.password(MINH.username, MINH.password)) == "method"
    door.post(door.path("method"), method="totp")
    right = totp_code(MINH.totp_secret or "")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answers = [door.post(door.path("app"), otp=wrong) for _ in range(3)]
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert alert(answers[0]).startswith(WRONG_CODE)
    assert LOCKED_OUT in alert(answers[2])
    # Locked: even the right code waits until the lockout ends.
    response = door.post(door.path("app"), otp=right)
    assert response.status_code == 429
    assert LOCKED_OUT in alert(response)


@pytest.mark.parametrize("offset", [0, -1], ids=["same-step", "earlier-step"])
def test_a_used_totp_step_is_never_accepted_again(make_app: Any, outbox: Outbox, offset: int) -> None:
    app = make_app()
    secret = MINH.totp_secret or ""
    now = time.time()
    if now % 30 > 27:  # keep both sign-ins inside one step
        time.sleep(30 - now % 30 + 0.1)
    first = OrgDoor(Browser(app.test_client(), outbox))
    callback_of(first, totp_sign_in(first, totp_code(secret)))
    second = OrgDoor(Browser(app.test_client(), outbox))
    response = totp_sign_in(second, totp_code(secret, offset))
    assert response.status_code == 401
    assert alert(response).startswith(REPLAYED)
    # The next step's code still works (the window allows one step ahead).
    callback_of(second, second.post(second.path("app"), otp=fresh_totp_code(secret)))


@pytest.mark.parametrize(
    "typed",
    [
        MINH.recovery_codes[0],
        MINH.recovery_codes[0].lower().replace("-", ""),
        " " + MINH.recovery_codes[0] + " ",
    ],
    ids=["as-printed", "lower-case-no-hyphen", "spaces"],
)
def test_a_recovery_code_replaces_the_second_factor_once(
    app: Any, make_app: Any, outbox: Outbox, typed: str
) -> None:
    door = OrgDoor(Browser(app.test_client(), outbox))
    assert step_of(door.password(MINH.username, MINH.password)) == "method"
    response = door.post(door.path("recovery"), recovery_code=typed)
    # After a recovery code, the person is offered to set up the authenticator again.
    assert step_of(response) == "authenticator"
    offer = door.client.get(door.path("authenticator")).get_data(as_text=True)
    assert "Bạn còn 1 mã chưa dùng." in offer
    claims = id_token_of(door, callback_of(door, _continue(door)))
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    # The same code a second time, from another browser: refused.
    again = OrgDoor(Browser(app.test_client(), outbox))
    again.password(MINH.username, MINH.password)
    response = again.post(again.path("recovery"), recovery_code=MINH.recovery_codes[0])
    assert response.status_code == 401
    assert alert(response).startswith(RECOVERY_REFUSED)
    # The other code still works.
    assert (
        step_of(again.post(again.path("recovery"), recovery_code=MINH.recovery_codes[1])) == "authenticator"
    )
    assert len(audit_events(app, "recovery_code.used")) == 2


def test_wrong_recovery_codes_count_towards_the_lockout(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_MAX_ATTEMPTS=2)
    door = OrgDoor(Browser(app.test_client(), outbox))
    door.password(MINH.username, MINH.password)
    answers = [door.post(door.path("recovery"), recovery_code="AAAAA-AAAAA") for _ in range(2)]
    assert alert(answers[0]).startswith(RECOVERY_REFUSED)
    assert LOCKED_OUT in alert(answers[1])
    assert door.post(door.path("recovery"), recovery_code=MINH.recovery_codes[0]).status_code == 429


# -- counters apart from the citizen door's ---------------------------------------------------------
def citizen_password(browser: Browser, username: str, password: str) -> Any:
    door = OrgDoor(browser)
    door.open()
    return door.post(door.login + "/citizen", username=username, password=password)


@pytest.mark.parametrize("locked_door", ["organization", "citizen"])
def test_lockout_counters_are_separate_from_the_citizen_door(
    make_app: Any, outbox: Outbox, locked_door: str
) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=3, LOCKOUT_BASE_SECONDS=60)
    browser = Browser(app.test_client(), outbox)
    for _ in range(3):
        if locked_door == "organization":
            last = OrgDoor(browser).password(LAN.username, "Wrong@Password1")
        else:
            last = citizen_password(browser, AN.username, "Wrong@Password1")
    assert LOCKED_OUT in alert(last)
    # The same address, the other door: nothing counted there.
    org = OrgDoor(browser).password(LAN.username, LAN.password)
    citizen = citizen_password(browser, AN.username, AN.password)
    if locked_door == "organization":
        assert org.status_code == 429 and citizen.status_code == 302
    else:
        assert org.status_code == 302 and citizen.status_code == 429


def test_the_lockout_ends_by_itself(make_app: Any, outbox: Outbox) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=2, LOCKOUT_BASE_SECONDS=1, LOCKOUT_MAX_SECONDS=2)
    browser = Browser(app.test_client(), outbox)
    for _ in range(2):
        last = OrgDoor(browser).password(LAN.username, "Wrong@Password1")
    assert LOCKED_OUT in alert(last)
    assert OrgDoor(browser).password(LAN.username, LAN.password).status_code == 429
    time.sleep(1.2)
    assert step_of(OrgDoor(browser).password(LAN.username, LAN.password)) == "sms"


# -- state and status ------------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["account", "organization"])
def test_a_locked_account_or_organization_is_told_after_the_password(
    app: Any, browser: Browser, what: str
) -> None:
    from idp.store.models import Account, Organization, db

    with app.app_context():
        if what == "account":
            db.session.execute(
                update(Account).where(Account.username == LAN.username).values(status="locked")
            )
        else:
            db.session.execute(
                update(Organization).where(Organization.code == LAN.org_code).values(status="suspended")
            )
        db.session.commit()
    door = OrgDoor(browser)
    assert door.password(LAN.username, "Wrong@Password1").status_code == 401  # no hint before
    response = door.password(LAN.username, LAN.password)
    assert response.status_code == 403
    assert "đang bị khóa" in alert(response)


@pytest.mark.parametrize("step", ["method", "sms", "app", "recovery", "authenticator", "authenticator/setup"])
def test_later_steps_need_the_earlier_ones(browser: Browser, step: str) -> None:
    door = OrgDoor(browser)
    door.open()
    response = browser.client.get(door.path(step))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/organization")


def test_password_step_does_not_open_the_citizen_otp_page(browser: Browser, outbox: Outbox) -> None:
    door = OrgDoor(browser)
    assert step_of(door.password(LAN.username, LAN.password)) == "sms"
    response = browser.client.get(door.login + "/otp")
    assert response.status_code == 302 and response.headers["Location"].endswith("/citizen")
    # Nor does the authenticator step of the sms-only account (it has none).
    response = browser.client.get(door.path("app"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/organization")


def test_form_without_csrf_token_is_refused(browser: Browser) -> None:
    door = OrgDoor(browser)
    path = door.open()
    browser.client.get(path)
    response = browser.client.post(path, data={"username": LAN.username, "password": LAN.password})
    assert response.status_code in (400, 403)


def test_login_hint_prefills_the_username(browser: Browser) -> None:
    door = OrgDoor(browser)
    path = door.open(login_hint="SoTN.Lan")
    assert 'value="sotn.lan"' in browser.client.get(path).get_data(as_text=True)


def test_resend_at_the_organization_door(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_RESEND_COOLDOWN=1)
    door = OrgDoor(Browser(app.test_client(), outbox))
    assert step_of(door.password(LAN.username, LAN.password)) == "sms"
    first = outbox.last_code(LAN.phone)
    time.sleep(1.1)
    response = door.client.post(door.path("sms/resend"), data={"csrf_token": _csrf(door, door.path("sms"))})
    assert step_of(response) == "sms"
    assert outbox.count(LAN.phone) == 2
    second = outbox.last_code(LAN.phone)
    if first != second:
        assert door.post(door.path("sms"), otp=first).status_code == 401  # the old code is void
    assert step_of(door.post(door.path("sms"), otp=second)) == "authenticator"


def test_organization_suspended_during_the_sign_in(app: Any, browser: Browser, outbox: Outbox) -> None:
    from idp.store.models import Organization, db

    door = OrgDoor(browser)
    assert step_of(door.password(MINH.username, MINH.password)) == "method"
    door.post(door.path("method"), method="totp")
    with app.app_context():
        db.session.execute(
            update(Organization).where(Organization.code == MINH.org_code).values(status="suspended")
        )
        db.session.commit()
    response = door.post(door.path("app"), otp=totp_code(MINH.totp_secret or ""))
    assert response.status_code == 302 and response.headers["Location"].endswith("/organization")
    assert not [e for e in audit_events(app, "signin") if e[1] is not None and e[2]["door"] == "organization"]


def test_a_portal_may_open_the_organization_door_directly(browser: Browser) -> None:
    response, _ = browser.start(door="organization", login_hint="sotn.lan")
    page = browser.follow(response)
    assert page.status_code == 200 and page.request.path.endswith("/organization")
    assert 'value="sotn.lan"' in page.get_data(as_text=True)
