"""The OTP page, lockout, remembered devices and door skipping in a real browser (Debian's chromium
through Playwright), from the demo portal to its callback; screenshots of every page.

The demo stack runs with a short resend cooldown and short lockouts so that their ends can be
seen without waiting minutes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.browser.test_browser import alert_text, sign_in_until_otp
from tests.support.browser import DemoStack, Shots, start_demo_stack
from tests.support.people import AN, BINH, CUC, DUNG

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COOLDOWN = 5
LOCKOUT = 4
AN_SHARED = "+84912345678"  # An's phone and Cúc's second phone


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    settings = {
        "OTP_RESEND_COOLDOWN": COOLDOWN,
        "PASSWORD_MAX_FAILURES": 3,
        "LOCKOUT_BASE_SECONDS": LOCKOUT,
        "LOCKOUT_MAX_SECONDS": 2 * LOCKOUT,
    }
    yield from start_demo_stack(tmp_path_factory.mktemp("demo-otp"), settings=settings)


def new_page(chromium: Any, request: pytest.FixtureRequest, **options: Any) -> Any:
    context = chromium.new_context(
        **{"viewport": {"width": 1280, "height": 900}, "locale": "vi-VN", **options}
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    page.shots = Shots(request.node.name)
    return page


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = new_page(chromium, request)
    yield page
    page.context.close()


def main_text(page: Any) -> str:
    return page.locator("main").inner_text()


def enter_otp(page: Any, code: str, remember: bool = False) -> None:
    page.fill("input[name=otp]", code)
    if remember:
        page.get_by_label(re.compile("Ghi nhớ thiết bị này")).check()
    page.get_by_role("button", name="Xác nhận").click()


def signed_in_at_portal(page: Any, stack: DemoStack, name: str) -> tuple[str, list[str]]:
    page.wait_for_url(stack.portal_url + "/")
    assert name in page.locator("h1").inner_text()
    return page.locator("#acr").inner_text(), page.locator("#amr").inner_text().split()


def citizen_password(page: Any, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Đăng nhập").click()


# -- resend with a visible cooldown -----------------------------------------------------------------
def test_resend_with_a_visible_cooldown(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    sign_in_until_otp(page, stack, AN.username, AN.password)
    resend = page.get_by_role("button", name="Gửi lại OTP")
    wait = page.locator("#resend-wait")
    assert wait.is_visible() and re.fullmatch(r"Bạn có thể yêu cầu mã mới sau \d+ giây\.", wait.inner_text())
    assert resend.is_disabled()
    assert "Hôm nay bạn còn được gửi thêm" in main_text(page)
    shots.take(page, "otp-cooldown")
    first = int(page.locator("[data-countdown]").inner_text())
    time.sleep(1.5)
    assert int(page.locator("[data-countdown]").inner_text()) < first  # it counts down
    expect(resend).to_be_enabled(timeout=(COOLDOWN + 3) * 1000)
    assert not wait.is_visible()
    assert page.locator("#resend-ready").inner_text() == "Bạn có thể yêu cầu mã mới ngay bây giờ."
    shots.take(page, "otp-resend-ready")
    sent = stack.outbox.count(AN.phone)
    resend.click()
    page.wait_for_url(re.compile(r"sent=1"))
    shots.take(page, "otp-resent")
    assert "Đã gửi mã OTP mới tới số 091****678." in page.locator("[role=status]").first.inner_text()
    assert stack.outbox.count(AN.phone) == sent + 1
    assert page.get_by_role("button", name="Gửi lại OTP").is_disabled()  # the next wait begins
    enter_otp(page, stack.outbox.last_code(AN.phone))
    acr, amr = signed_in_at_portal(page, stack, AN.name)
    assert acr == "LoA2" and "otp" in amr


def test_resend_works_without_javascript(
    chromium: Any,
    stack: DemoStack,
    request: pytest.FixtureRequest,
) -> None:
    page = new_page(chromium, request, java_script_enabled=False)
    try:
        sign_in_until_otp(page, stack, DUNG.username, DUNG.password)
        resend = page.get_by_role("button", name="Gửi lại OTP")
        assert resend.is_enabled()  # nothing disables it without the script
        sent = stack.outbox.count(DUNG.phone)
        resend.click()
        page.shots.take(page, "otp-resend-too-early")
        assert re.fullmatch(r"Vui lòng đợi \d+ giây rồi bấm Gửi lại OTP\.", alert_text(page))
        assert stack.outbox.count(DUNG.phone) == sent
        time.sleep(COOLDOWN + 0.5)
        page.get_by_role("button", name="Gửi lại OTP").click()
        page.shots.take(page, "otp-resent")
        assert stack.outbox.count(DUNG.phone) == sent + 1
        enter_otp(page, stack.outbox.last_code(DUNG.phone))
        signed_in_at_portal(page, stack, DUNG.name)
    finally:
        page.context.close()


# -- another phone ------------------------------------------------------------------------------------
def test_another_phone_receives_the_code(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    sign_in_until_otp(page, stack, CUC.username, CUC.password)
    assert "093****456" in page.locator("#otp-help").inner_text()
    page.get_by_text("Chọn phương thức nhận OTP khác").click()
    choices = page.locator("input[name=phone]")
    assert choices.count() == 1
    assert page.get_by_label("091****678").is_checked()
    assert "0912345678" not in page.content()
    shots.take(page, "otp-other-phones")
    send = page.get_by_role("button", name="Gửi mã tới số đã chọn")
    expect(send).to_be_enabled(timeout=(COOLDOWN + 3) * 1000)
    sent = stack.outbox.count(AN_SHARED)
    send.click()
    page.wait_for_url(re.compile(r"sent=1"))
    shots.take(page, "otp-sent-to-other-phone")
    assert "091****678" in page.locator("#otp-help").inner_text()
    assert stack.outbox.count(AN_SHARED) == sent + 1
    page.get_by_text("Chọn phương thức nhận OTP khác").click()
    assert page.get_by_label("093****456").count() == 1  # the first phone is now the other one
    enter_otp(page, stack.outbox.last_code(AN_SHARED))
    acr, _ = signed_in_at_portal(page, stack, CUC.name)
    assert acr == "LoA2"


def test_otp_page_on_a_phone_screen(chromium: Any, stack: DemoStack, request: pytest.FixtureRequest) -> None:
    page = new_page(chromium, request, viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    try:
        sign_in_until_otp(page, stack, CUC.username, CUC.password)
        page.get_by_text("Chọn phương thức nhận OTP khác").click()
        page.shots.take(page, "otp-phone-screen")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
        targets = page.locator("main button, main summary, .choice, main input[name=otp]")
        heights = targets.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
        assert len(heights) >= 6 and min(heights) >= 44
    finally:
        page.context.close()


# -- lockout and its end --------------------------------------------------------------------------------
def test_lockout_and_its_end(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    page.goto(stack.portal_url + "/login?door=citizen")
    page.wait_for_url(re.compile(r"/citizen$"))
    for attempt in range(1, 4):
        citizen_password(page, BINH.username, f"Wrong@2026-{attempt}")
        if attempt < 3:
            assert alert_text(page) == "Số định danh hoặc mật khẩu không đúng."
    shots.take(page, "locked-out")
    assert alert_text(page) == "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau 1 phút."
    citizen_password(page, BINH.username, BINH.password)  # the right password waits too
    assert alert_text(page).startswith("Bạn đã nhập sai quá nhiều lần.")
    assert "/otp" not in page.url
    time.sleep(LOCKOUT + 0.5)
    citizen_password(page, BINH.username, BINH.password)
    page.wait_for_url(re.compile(r"/otp"))
    shots.take(page, "lockout-ended")
    enter_otp(page, stack.outbox.last_code(BINH.phone))
    acr, _ = signed_in_at_portal(page, stack, BINH.name)
    assert acr == "LoA3"


# -- remember this device ------------------------------------------------------------------------------
def test_a_remembered_device_skips_the_otp_at_loa1_and_steps_up(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    sign_in_until_otp(page, stack, BINH.username, BINH.password)
    page.get_by_label(re.compile("Ghi nhớ thiết bị này")).check()
    shots.take(page, "otp-remember-ticked")
    enter_otp(page, stack.outbox.last_code(BINH.phone))
    acr, amr = signed_in_at_portal(page, stack, BINH.name)
    assert acr == "LoA3" and "otp" in amr
    cookie = next(c for c in page.context.cookies(stack.idp.base) if c["name"] == "idp_device")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time() + 29 * 86400
    # Sign out at the portal (the SSO session ends) and in again: the password alone, LoA1.
    with page.expect_navigation():
        page.get_by_role("link", name="Đăng xuất").click()
    sent = stack.outbox.count(BINH.phone)
    page.get_by_role("link", name="Đăng nhập").click()
    page.locator("a.door[data-account-kind=citizen]").click()
    citizen_password(page, BINH.username, BINH.password)
    acr, amr = signed_in_at_portal(page, stack, BINH.name)
    shots.take(page, "portal-loa1-remembered-device")
    assert (acr, amr) == ("LoA1", ["pwd"])
    assert stack.outbox.count(BINH.phone) == sent
    # A portal demanding LoA3 (an essential acr): a step-up, only the OTP is asked (no password
    # page: the SSO session has it), then LoA3.
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA3"]}}})
    page.goto(stack.portal_url + "/login?door=citizen&claims=" + quote(claims))
    page.wait_for_url(re.compile(r"/otp"))
    shots.take(page, "step-up-ask-for-the-code")
    assert stack.outbox.count(BINH.phone) == sent  # nothing sent before the person asks
    page.get_by_role("button", name="Gửi mã OTP").click()
    page.wait_for_url(re.compile(r"/otp\?sent=1"))
    assert stack.outbox.count(BINH.phone) == sent + 1
    shots.take(page, "step-up-otp")
    assert "Thiết bị này đã được ghi nhớ" in page.locator("#remembered-note").inner_text()
    enter_otp(page, stack.outbox.last_code(BINH.phone))
    acr, amr = signed_in_at_portal(page, stack, BINH.name)
    shots.take(page, "portal-loa3-after-step-up")
    assert acr == "LoA3" and "otp" in amr


# -- door skipping -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "lands_on", "check"),
    [
        ("door=citizen", r"/citizen$", "Đăng nhập bằng tài khoản công dân"),
        (f"login_hint={AN.username}", r"/citizen$", "Đăng nhập bằng tài khoản công dân"),
        ("door=vneid", r"/door/vneid$", "Hình thức đăng nhập này chưa sẵn sàng"),
        ("door=no-such-door", r"/login/[\w-]+$", "Chọn loại tài khoản bạn dùng để đăng nhập"),
    ],
    ids=["door-citizen", "login-hint", "door-vneid", "unknown-door"],
)
def test_door_skipping(page: Any, stack: DemoStack, query: str, lands_on: str, check: str) -> None:
    page.goto(stack.portal_url + "/login?" + query)
    page.wait_for_url(re.compile(lands_on))
    page.shots.take(page, "landed")
    assert check in main_text(page)
    if "login_hint" in query:
        assert page.locator("input[name=username]").input_value() == AN.username
    if "citizen" in lands_on:
        page.get_by_role("link", name="Chọn loại tài khoản khác").click()
        page.wait_for_url(re.compile(r"/login/[\w-]+$"))
        assert page.locator("a.door").count() == 4  # the chooser comes back
