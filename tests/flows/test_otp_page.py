"""The OTP page of the citizen door: resend with a visible cooldown and the daily allowance,
"Chọn phương thức nhận OTP khác" (another verified phone of the account), and "Ghi nhớ thiết bị
này" (a remembered browser skips the OTP, and that sign-in is honestly LoA1 with amr ["pwd"]).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from tests.flows.test_signin_citizen import (
    alert,
    allow_next_otp,
    browser_for,
    citizen_page,
    otp_page,
    post_otp,
    post_password,
    resend,
    signed_in,
)
from tests.support.driver import Browser, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH, CUC, DUNG, SandboxPerson
from tests.support.tokens import CALLBACKS, exchange, verify_jwt

AN_SHARED = "+84912345678"  # An's phone, also Cúc's second phone
COUNTDOWN = re.compile(r"<span data-countdown>(\d+)</span>")


def html_of(response: Any) -> str:
    return response.get_data(as_text=True)


def other_phones(page: str) -> dict[str, str]:
    """masked number -> value of its radio button in "Chọn phương thức nhận OTP khác"."""
    return dict(
        (label, value)
        for value, label in re.findall(
            r'<input type="radio" name="phone" id="phone-\d+" value="(\d+)"[^>]*>\s*<label[^>]*>([^<]+)</label>',
            page,
        )
    )


def choose_phone(browser: Browser, path: str, value: str, token: str | None = None) -> Any:
    page = html_of(browser.client.get(path))
    data = {"phone": value}
    if token != "":
        data["csrf_token"] = token or csrf_of(page)
    return browser.client.post(path + "/phone", data=data)


def tokens_of(
    browser: Browser, callback: dict[str, str], auth: Any, client_id: str = "portal"
) -> dict[str, Any]:
    response = exchange(browser.client, callback["code"], auth, client_id)
    assert response.status_code == 200, response.json
    _, claims = verify_jwt(browser.client, response.json["id_token"])
    return claims


# -- resend: the cooldown is shown, and so is what is left for the day ------------------------------
def test_otp_page_shows_the_cooldown_and_the_daily_allowance(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser)
    page = html_of(browser.client.get(path))
    seconds = int(COUNTDOWN.search(page).group(1))  # type: ignore[union-attr]
    assert 55 <= seconds <= 60
    assert "Bạn có thể yêu cầu mã mới sau" in page
    assert "Hôm nay bạn còn được gửi thêm 9 mã OTP (tối đa 10 mã mỗi ngày)." in page
    # Without JavaScript the buttons work (the server refuses an early resend and says why); the
    # self-hosted script only counts down and disables them meanwhile.
    assert re.search(r"<button[^>]*data-cooldown[^>]*>Gửi lại OTP</button>", page)
    assert "disabled" not in page
    assert '<script src="/static/otp.js" defer></script>' in page
    with browser.client.get("/static/otp.js") as script:
        assert script.status_code == 200 and "data-countdown" in script.get_data(as_text=True)


def test_countdown_disappears_when_another_code_may_be_sent(
    browser: Browser, app: Any, outbox: Outbox
) -> None:
    path = otp_page(browser)
    allow_next_otp(app)
    page = html_of(browser.client.get(path))
    assert "data-countdown" not in page and "Bạn có thể yêu cầu mã mới sau" not in page
    response = resend(browser, path)
    assert response.status_code == 302
    page = html_of(browser.client.get(response.headers["Location"]))
    assert "Đã gửi mã OTP mới tới số 091****678." in page
    assert COUNTDOWN.search(page) and "còn được gửi thêm 8 mã OTP" in page


def test_daily_cap_hides_the_resend_button_and_says_why(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_DAILY_LIMIT=1)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    page = html_of(browser.client.get(path))
    assert "Gửi lại OTP</button>" not in page and "Chọn phương thức nhận OTP khác" not in page
    assert "Hôm nay tài khoản đã nhận đủ 1 mã OTP nên không thể gửi thêm." in page and "1022" in page
    # The code already sent still works.
    assert "code" in signed_in(browser, post_otp(browser, path, outbox.last_code(AN.phone)))


def test_otp_lifetime_is_configurable_and_said_on_the_page(make_app: Any, outbox: Outbox) -> None:
    app = make_app(OTP_LIFETIME=180)
    browser = browser_for(app, outbox)
    page = html_of(browser.client.get(otp_page(browser)))
    assert "Mã có hiệu lực trong 3 phút." in page
    assert "hieu luc 3 phut" in outbox.last(AN.phone)["text"]


@pytest.mark.parametrize(
    ("action", "marked"),
    [("wrong-code", True), ("malformed-code", True), ("resend-too-early", False)],
)
def test_only_errors_about_the_code_mark_the_field_invalid(
    browser: Browser, outbox: Outbox, action: str, marked: bool
) -> None:
    path = otp_page(browser)
    if action == "resend-too-early":
        response = resend(browser, path)
    else:
        code = outbox.last_code(AN.phone)
        response = post_otp(
            browser, path, f"{(int(code) + 1) % 1_000_000:06d}" if action == "wrong-code" else "12"
        )
    field = re.search(r'<input id="otp"[^>]*>', html_of(response)).group(0)  # type: ignore[union-attr]
    assert ('aria-invalid="true"' in field) is marked
    assert ("form-error" in field) is marked


# -- another phone ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("person", "current", "others"),
    [
        pytest.param(CUC, "093****456", ["091****678"], id="cuc-two-phones"),
        pytest.param(AN, "091****678", [], id="an-one-phone"),
    ],
)
def test_other_phones_are_listed_masked(
    browser: Browser, outbox: Outbox, person: SandboxPerson, current: str, others: list[str]
) -> None:
    page = html_of(browser.client.get(otp_page(browser, person)))
    assert "Chọn phương thức nhận OTP khác" in page
    assert list(other_phones(page)) == others
    assert current in page
    assert "0912345678" not in page and "0935123456" not in page and "+84" not in page
    if not others:
        assert "Tài khoản chỉ có một số điện thoại nhận mã OTP." in page


def test_choosing_another_phone_sends_a_new_code_there(browser: Browser, app: Any, outbox: Outbox) -> None:
    path = otp_page(browser, CUC)
    first = outbox.last_code(CUC.phone)
    value = other_phones(html_of(browser.client.get(path)))["091****678"]
    allow_next_otp(app)
    response = choose_phone(browser, path, value)
    assert response.status_code == 302 and "sent=1" in response.headers["Location"]
    assert outbox.count() == 2 and outbox.last()["to"] == AN_SHARED
    page = html_of(browser.client.get(response.headers["Location"]))
    assert "Đã gửi mã OTP mới tới số 091****678." in page
    assert "tới số điện thoại 091****678" in page
    assert list(other_phones(page)) == ["093****456"]  # the primary phone is now the other one
    if first != outbox.last_code(AN_SHARED):
        assert post_otp(browser, path, first).status_code == 401  # the earlier code is replaced
    # A resend now goes to the chosen phone.
    allow_next_otp(app)
    assert resend(browser, path).status_code == 302
    assert outbox.last()["to"] == AN_SHARED and outbox.count(CUC.phone) == 1
    assert "code" in signed_in(browser, post_otp(browser, path, outbox.last_code(AN_SHARED)))


def test_another_phone_waits_for_the_same_cooldown(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser, CUC)
    value = other_phones(html_of(browser.client.get(path)))["091****678"]
    response = choose_phone(browser, path, value)
    assert response.status_code == 429 and re.search(r"đợi \d+ giây", alert(response))
    assert outbox.count() == 1
    assert "code" in signed_in(browser, post_otp(browser, path, outbox.last_code(CUC.phone)))


@pytest.mark.parametrize("value", ["", "abc", "999999", "own-primary", "someone-elses"])
def test_only_the_accounts_other_verified_phones_can_be_chosen(
    browser: Browser, app: Any, outbox: Outbox, value: str
) -> None:
    from idp.store.models import Phone, db

    with app.app_context():
        numbers = dict(db.session.execute(select(Phone.number, Phone.id)).all())
    if value == "own-primary":
        value = str(numbers[CUC.phone])
    elif value == "someone-elses":
        value = str(numbers[BINH.phone])
    path = otp_page(browser, CUC)
    allow_next_otp(app)
    response = choose_phone(browser, path, value)
    assert response.status_code == 400
    assert alert(response) == "Vui lòng chọn một số điện thoại trong danh sách."
    assert outbox.count() == 1


@pytest.mark.parametrize("token", ["", "forged"])
def test_choosing_a_phone_needs_the_csrf_token(
    browser: Browser, app: Any, outbox: Outbox, token: str
) -> None:
    path = otp_page(browser, CUC)
    value = other_phones(html_of(browser.client.get(path)))["091****678"]
    allow_next_otp(app)
    assert choose_phone(browser, path, value, token=token).status_code == 400
    assert outbox.count() == 1


def test_one_phone_receives_codes_for_two_accounts(app: Any, outbox: Outbox) -> None:
    an, cuc = browser_for(app, outbox), browser_for(app, outbox)
    an_path = otp_page(an, AN)
    an_code = outbox.last_code(AN_SHARED)
    cuc_path = otp_page(cuc, CUC)
    value = other_phones(html_of(cuc.client.get(cuc_path)))["091****678"]
    allow_next_otp(app)
    assert choose_phone(cuc, cuc_path, value).status_code == 302
    cuc_code = outbox.last_code(AN_SHARED)
    assert outbox.count(AN_SHARED) == 2
    # Each code opens its own account only.
    if an_code != cuc_code:
        assert post_otp(an, an_path, cuc_code).status_code == 401
    assert "code" in signed_in(cuc, post_otp(cuc, cuc_path, cuc_code))
    assert "code" in signed_in(an, post_otp(an, an_path, an_code))


def test_a_capped_primary_phone_leaves_the_other_phone_open(make_app: Any, outbox: Outbox) -> None:
    """The first code cannot be sent (the primary phone's hourly cap): the OTP page says why and
    offers the other phone at once."""
    app = make_app(OTP_PHONE_HOURLY_LIMIT=1)
    first = browser_for(app, outbox)
    otp_page(first, CUC)
    second = browser_for(app, outbox)
    response = post_password(second, citizen_page(second), CUC.username, CUC.password)
    assert response.status_code == 429
    page = html_of(response)
    assert alert(response).startswith("Số điện thoại này đã nhận quá nhiều mã OTP trong một giờ.")
    assert "Chưa gửi được mã OTP tới số điện thoại 093****456." in page
    assert '<details class="other-phones" open>' in page
    path = urlsplit(response.request.path).path.replace("/citizen", "/otp")
    value = other_phones(page)["091****678"]
    assert choose_phone(second, path, value).status_code == 302
    assert outbox.count(CUC.phone) == 1 and outbox.count(AN_SHARED) == 1
    assert "code" in signed_in(second, post_otp(second, path, outbox.last_code(AN_SHARED)))


# -- remember this device ---------------------------------------------------------------------------
def remember_otp(browser: Browser, path: str, code: str, remember: bool = True) -> Any:
    page = html_of(browser.client.get(path))
    data = {"csrf_token": csrf_of(page), "otp": code}
    if remember:
        data["remember"] = "y"
    return browser.client.post(path, data=data)


def device_cookie(browser: Browser) -> Any:
    return browser.client.get_cookie("__Host-idp_device")


def sign_in_remembering(browser: Browser, person: SandboxPerson) -> dict[str, Any]:
    """A whole sign-in ticking "Ghi nhớ thiết bị này"; returns the ID token's claims."""
    response, auth = browser.start(prompt="login")
    login = urlsplit(response.headers["Location"]).path
    response = post_password(browser, login + "/citizen", person.username, person.password)
    assert response.status_code == 302
    path = urlsplit(response.headers["Location"]).path
    callback = signed_in(browser, remember_otp(browser, path, browser.outbox.last_code(person.phone)))
    return tokens_of(browser, callback, auth)


def sign_in_again(
    browser: Browser, person: SandboxPerson, client_id: str = "portal", **start: Any
) -> tuple[Any, Any]:
    """A new sign-in (prompt=login) up to the answer to the password: (that response, the authorization)."""
    response, auth = browser.start(
        client_id=client_id, redirect_uri=CALLBACKS[client_id], prompt="login", **start
    )
    login = urlsplit(response.headers["Location"]).path
    return post_password(browser, login + "/citizen", person.username, person.password), auth


def finish(browser: Browser, response: Any, auth: Any, client_id: str = "portal") -> dict[str, Any]:
    """Follow the authorization back to the relying party; returns the ID token's claims."""
    response = browser.follow(response)
    assert response.status_code == 302, html_of(response)[:800]
    location = response.headers["Location"]
    assert location.startswith(CALLBACKS[client_id] + "?"), location
    return tokens_of(browser, query_of(location), auth, client_id)


def skipped_the_otp(response: Any) -> bool:
    assert response.status_code == 302, html_of(response)[:800]
    location = response.headers["Location"]
    assert "/authorize/resume/" in location or location.endswith("/otp"), location
    return "/authorize/resume/" in location


@pytest.mark.parametrize(
    ("person", "first_acr"), [pytest.param(AN, "LoA2", id="loa2"), pytest.param(BINH, "LoA3", id="loa3")]
)
def test_a_remembered_browser_skips_the_otp_and_the_sign_in_is_loa1(
    browser: Browser, outbox: Outbox, person: SandboxPerson, first_acr: str
) -> None:
    claims = sign_in_remembering(browser, person)
    assert claims["acr"] == first_acr and "otp" in claims["amr"]
    cookie = device_cookie(browser)
    assert cookie is not None and cookie.http_only and cookie.secure and cookie.same_site == "Lax"
    assert cookie.path == "/" and 29 * 86400 < cookie.max_age <= 30 * 86400
    sent = outbox.count()
    response, auth = sign_in_again(browser, person)
    assert skipped_the_otp(response)  # straight back to the authorization: no OTP page, no SMS
    assert outbox.count() == sent
    claims = finish(browser, response, auth)
    assert claims["acr"] == "LoA1" and claims["amr"] == ["pwd"]


def test_without_the_box_ticked_nothing_is_remembered(browser: Browser, outbox: Outbox) -> None:
    path = otp_page(browser)
    signed_in(browser, remember_otp(browser, path, outbox.last_code(AN.phone), remember=False))
    assert device_cookie(browser) is None
    response, _ = sign_in_again(browser, AN)
    assert not skipped_the_otp(response)


@pytest.mark.parametrize(
    ("client_id", "extra"),
    [
        pytest.param("strict-portal", {}, id="client-require_acr-LoA3"),
        pytest.param(
            "portal",
            {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA2"]}}})},
            id="essential-acr-LoA2",
        ),
        pytest.param("portal", {"acr_values": "LoA2"}, id="acr_values-LoA2"),
        pytest.param("portal", {"acr_values": "urn:unknown"}, id="acr_values-unknown"),
    ],
)
def test_a_relying_party_that_needs_more_gets_the_otp_asked_anyway(
    browser: Browser, outbox: Outbox, client_id: str, extra: dict[str, str]
) -> None:
    sign_in_remembering(browser, BINH)
    response, auth = sign_in_again(browser, BINH, client_id, **extra)
    assert not skipped_the_otp(response)  # a step-up, not unmet_authentication_requirements
    path = urlsplit(response.headers["Location"]).path
    page = html_of(browser.client.get(path))
    assert "Thiết bị này đã được ghi nhớ, nhưng cổng dịch vụ này cần mức bảo đảm cao hơn" in page
    assert 'name="remember"' not in page
    claims = finish(browser, post_otp(browser, path, outbox.last_code(BINH.phone)), auth, client_id)
    assert claims["acr"] == "LoA3" and "otp" in claims["amr"]


@pytest.mark.parametrize("acr_values", ["LoA1", "LoA1 LoA2", "LoA2 LoA1"])
def test_a_relying_party_that_accepts_loa1_lets_the_otp_be_skipped(
    browser: Browser, outbox: Outbox, acr_values: str
) -> None:
    sign_in_remembering(browser, AN)
    response, auth = sign_in_again(browser, AN, acr_values=acr_values)
    assert skipped_the_otp(response)
    assert finish(browser, response, auth)["acr"] == "LoA1"


def test_an_loa1_session_is_stepped_up_when_another_portal_needs_more(
    browser: Browser, outbox: Outbox
) -> None:
    """SSO: a portal demanding LoA3 after a remembered-device sign-in (password alone, LoA1) asks
    only for what is missing — the OTP, sent at once to the same person's phone, no password page —
    and the SSO session is LoA3 afterwards, for every portal."""
    from idp.store.models import AuditEvent, db

    sign_in_remembering(browser, BINH)
    response, auth = sign_in_again(browser, BINH)
    first = finish(browser, response, auth)
    assert first["acr"] == "LoA1" and first["amr"] == ["pwd"]
    sent = outbox.count(BINH.phone)
    response, auth = browser.start(client_id="strict-portal", redirect_uri=CALLBACKS["strict-portal"])
    assert response.status_code == 302
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/login/") and path.endswith("/otp"), path  # straight to the OTP page
    # Opening it sends nothing (any site can open an authorization): the person asks for the code.
    page = html_of(browser.client.get(path))
    assert outbox.count(BINH.phone) == sent
    assert "Cổng dịch vụ này cần mức bảo đảm cao hơn lần đăng nhập trước của bạn" in page
    assert "không cần nhập lại mật khẩu" in page and "Đăng nhập bằng tài khoản khác" in page
    assert 'name="otp"' not in page and 'name="password"' not in page
    asked = resend(browser, path)
    assert asked.status_code == 302 and outbox.count(BINH.phone) == sent + 1
    page = html_of(browser.client.get(asked.headers["Location"]))
    assert 'name="otp"' in page and "Thiết bị này đã được ghi nhớ, nhưng cổng dịch vụ này cần" in page
    claims = finish(browser, post_otp(browser, path, outbox.last_code(BINH.phone)), auth, "strict-portal")
    assert claims["acr"] == "LoA3" and "otp" in claims["amr"] and claims["sub"] == first["sub"]
    assert claims["sid"] == first["sid"]  # the same SSO session, stronger now
    # The portal that took LoA1 now gets the stronger session by SSO, without signing in.
    response, auth = browser.start()
    callback = query_of(browser.follow(response).headers["Location"])
    assert tokens_of(browser, callback, auth)["acr"] == "LoA3"
    app = browser.client.application
    with app.app_context():
        event = (
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "signin").order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert event is not None and event.detail.get("step_up") is True and event.detail["acr"] == "LoA3"


def test_a_wrong_otp_at_a_step_up_changes_nothing(browser: Browser, outbox: Outbox) -> None:
    """The step-up's OTP follows the OTP rules; until it is right the session stays LoA1, and a
    portal that asks with prompt=none is told login_required, not given the weaker session."""
    sign_in_remembering(browser, BINH)
    finish(browser, *sign_in_again(browser, BINH))
    response, _ = browser.start(client_id="strict-portal", redirect_uri=CALLBACKS["strict-portal"])
    path = urlsplit(response.headers["Location"]).path
    assert resend(browser, path).status_code == 302
    wrong = post_otp(browser, path, "000000" if outbox.last_code(BINH.phone) != "000000" else "111111")
    assert wrong.status_code == 401
    response, _ = browser.start(
        client_id="strict-portal", redirect_uri=CALLBACKS["strict-portal"], prompt="none"
    )
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_someone_else_can_sign_in_instead_of_the_step_up(browser: Browser, outbox: Outbox) -> None:
    """On a shared browser the step-up's OTP page offers another account: the whole sign-in, and
    the portal receives that person."""
    sign_in_remembering(browser, BINH)
    binh = finish(browser, *sign_in_again(browser, BINH))
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA2"]}}})
    response, auth = browser.start(claims=essential)
    otp_path = urlsplit(response.headers["Location"]).path
    assert otp_path.endswith("/otp")
    response = post_password(browser, otp_path.rsplit("/", 1)[0] + "/citizen", CUC.username, CUC.password)
    path = urlsplit(response.headers["Location"]).path
    assert path == otp_path
    claims = finish(browser, post_otp(browser, path, outbox.last_code(CUC.phone)), auth)
    assert claims["acr"] == "LoA2" and claims["sub"] != binh["sub"]
    from idp.store.models import AuditEvent, db

    with browser.client.application.app_context():
        event = (
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "signin").order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert event is not None and "step_up" not in event.detail  # Cúc signed in, nothing stepped up


def test_a_remembered_browser_still_needs_the_right_password(browser: Browser, outbox: Outbox) -> None:
    sign_in_remembering(browser, AN)
    response = post_password(browser, citizen_page(browser, prompt="login"), AN.username, "Wrong@2026x")
    assert response.status_code == 401 and alert(response) == "Số định danh hoặc mật khẩu không đúng."


def test_the_device_is_remembered_for_that_account_only(app: Any, outbox: Outbox) -> None:
    browser = browser_for(app, outbox)
    sign_in_remembering(browser, AN)
    assert not skipped_the_otp(sign_in_again(browser, CUC)[0])
    # The same secret in another browser skips nothing for an account it does not remember.
    other = browser_for(app, outbox)
    other.client.set_cookie("__Host-idp_device", device_cookie(browser).value, domain="localhost")
    assert not skipped_the_otp(sign_in_again(other, DUNG)[0])


def test_two_people_on_one_browser_are_both_remembered(browser: Browser, outbox: Outbox) -> None:
    sign_in_remembering(browser, AN)
    first = device_cookie(browser).value
    sign_in_remembering(browser, CUC)
    assert device_cookie(browser).value != first  # remembering again rotates the secret
    for person in (AN, CUC):
        assert skipped_the_otp(sign_in_again(browser, person)[0]), person.username


def test_a_planted_secret_never_becomes_a_remembered_device(
    app: Any, browser: Browser, outbox: Outbox
) -> None:
    from idp.identity.remembered_devices import hash_secret
    from idp.store.models import RememberedDevice, db

    planted = "p" * 43
    browser.client.set_cookie("__Host-idp_device", planted, domain="localhost")
    sign_in_remembering(browser, AN)
    secret = device_cookie(browser).value
    assert secret != planted
    with app.app_context():
        hashes = set(db.session.execute(select(RememberedDevice.secret_hash)).scalars())
    assert hashes == {hash_secret(secret)}


@pytest.mark.parametrize("how", ["expired", "forget_all", "forget_one", "switched_off"])
def test_a_forgotten_or_expired_device_asks_for_the_otp_again(
    make_app: Any, outbox: Outbox, how: str
) -> None:
    from idp.identity import remembered_devices
    from idp.store.models import AuditEvent, RememberedDevice, db

    app = make_app()
    browser = browser_for(app, outbox)
    sign_in_remembering(browser, AN)
    assert skipped_the_otp(sign_in_again(browser, AN)[0])
    with app.app_context():
        account_id, device_id = db.session.execute(
            select(RememberedDevice.account_id, RememberedDevice.id)
        ).one()
        if how == "expired":
            db.session.execute(update(RememberedDevice).values(expires_at=dt.datetime(2000, 1, 1)))
        elif how == "forget_all":
            assert remembered_devices.forget_all(account_id, actor="test", reason="password_changed") == 1
        elif how == "forget_one":
            assert not remembered_devices.forget(account_id + 1000, device_id, actor="test")
            assert remembered_devices.forget(account_id, device_id, actor="test")
        db.session.commit()
        actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    expected = {"forget_all": "device.forgotten_all", "forget_one": "device.forgotten"}.get(how)
    assert expected is None or expected in actions
    if how == "switched_off":
        secret = device_cookie(browser).value
        browser = Browser(make_app(REMEMBER_DEVICE_DAYS=0).test_client(), outbox)
        browser.client.set_cookie("__Host-idp_device", secret, domain="localhost")
    assert not skipped_the_otp(sign_in_again(browser, AN)[0])


def test_switched_off_there_is_no_box_and_nothing_is_remembered(make_app: Any, outbox: Outbox) -> None:
    app = make_app(REMEMBER_DEVICE_DAYS=0)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    assert 'name="remember"' not in html_of(browser.client.get(path))
    signed_in(browser, remember_otp(browser, path, outbox.last_code(AN.phone)))
    assert device_cookie(browser) is None


def test_remembering_and_using_a_device_is_audited(app: Any, browser: Browser, outbox: Outbox) -> None:
    from idp.store.models import AuditEvent, RememberedDevice, db

    browser.client.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    sign_in_remembering(browser, AN)
    response, auth = sign_in_again(browser, AN)
    finish(browser, response, auth)
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent.action, AuditEvent.detail).order_by(AuditEvent.id)
        ).all()
        device = db.session.execute(select(RememberedDevice)).scalar_one()
        count = db.session.execute(select(func.count()).select_from(RememberedDevice)).scalar()
    actions = [action for action, _ in events]
    assert count == 1 and actions.count("device.remembered") == 1 and actions.count("device.used") == 1
    signins = [detail for action, detail in events if action == "signin"]
    assert signins[-1]["amr"] == ["pwd"] and signins[-1]["acr"] == "LoA1"
    assert (device.browser, device.platform) == ("Chrome", "Windows")


def test_a_password_reset_forgets_every_remembered_browser(
    browser: Browser, app: Any, outbox: Outbox
) -> None:
    """A remembered browser must not skip the OTP with a password that has changed since."""
    from tests.flows.test_password_reset import NEW_PASSWORD, reset_to

    sign_in_remembering(browser, AN)
    elsewhere = Browser(app.test_client(), outbox)
    assert reset_to(elsewhere, AN, NEW_PASSWORD).status_code == 302
    response, _ = browser.start(prompt="login")
    login = urlsplit(response.headers["Location"]).path
    response = post_password(browser, login + "/citizen", AN.username, NEW_PASSWORD)
    assert not skipped_the_otp(response)
