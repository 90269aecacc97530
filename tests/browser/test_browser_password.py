"""The password life cycle in a real browser (Debian's chromium through Playwright): forgotten
password from the demo portal's sign-in, change of password in the account area, and the captcha
as a person meets it (image, spoken alternative, after repeated failures). Screenshots of every
page go to test-artifacts/screenshots/.

The stack runs with the captcha on and Redis as its short-lived store, so that the test can read a
challenge's answer from the store (tests.support.passwords.stored_answer) — never from the pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import (
    CaptchaStack,
    Shots,
    start_captcha_stack,
)
from tests.support.passwords import wait_for_sms
from tests.support.people import AN, CUC

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_PASSWORD = "Hoa-Sen#2027q"


Stack = CaptchaStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_captcha_stack(tmp_path_factory.mktemp("demo-passwords"))


def alert_text(page: Any) -> str:
    return page.locator("[role=alert]").first.inner_text().strip()


def sign_in(page: Any, stack: Stack, username: str, password: str, phone: str) -> None:
    """From the portal's home to signed in there (no captcha: no failures yet)."""
    demo = stack.demo
    page.goto(demo.portal_url + "/")
    page.get_by_role("link", name="Đăng nhập").click()
    page.locator("a.door[data-account-kind=citizen]").click()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    before = demo.outbox.count(phone)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    page.fill("input[name=otp]", wait_for_sms(demo.outbox, phone, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(demo.portal_url + "/")


def test_forgotten_password_from_the_portal_sign_in(chromium: Any, page: Any, stack: Stack) -> None:
    demo, shots = stack.demo, page.shots
    # Another browser is signed in as An at the portal: the reset will sign it out.
    elsewhere = chromium.new_context(locale="vi-VN")
    other = elsewhere.new_page()
    sign_in(other, stack, AN.username, AN.password, AN.phone)
    assert "Nguyễn Văn An" in other.locator("h1").inner_text()

    page.goto(demo.portal_url + "/")
    page.get_by_role("link", name="Đăng nhập").click()
    page.locator("a.door[data-account-kind=citizen]").click()
    page.get_by_role("link", name="Quên mật khẩu?").click()
    page.wait_for_url(re.compile(r"/password/forgot\?ix="))
    shots.take(page, "forgot")
    assert page.locator("h1").inner_text() == "Quên mật khẩu"
    image = page.locator("img.captcha-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 220
    assert "5 chữ số" in image.get_attribute("alt")
    assert page.locator("audio[controls]").count() == 1
    # A wrong captcha: said next to the field, a new image, the number kept.
    page.fill("input[name=username]", AN.username)
    page.fill("input[name=captcha]", "00000")
    page.get_by_role("button", name="Gửi mã OTP").click()
    shots.take(page, "forgot-wrong-captcha")
    assert "Mã xác thực không đúng" in page.locator("#captcha-error").inner_text()
    assert page.locator("input[name=username]").input_value() == AN.username
    # "Đổi mã khác" draws another image and keeps the number.
    first = page.locator("input[name=captcha_id]").get_attribute("value")
    page.get_by_role("button", name="Đổi mã khác").click()
    assert page.locator("input[name=captcha_id]").get_attribute("value") != first
    page.fill("input[name=captcha]", stack.answer(page))
    before = demo.outbox.count(AN.phone)
    page.get_by_role("button", name="Gửi mã OTP").click()
    page.wait_for_url(re.compile(r"/password/forgot/[\w-]+/otp"))
    shots.take(page, "forgot-otp")
    assert "Nếu số định danh bạn nhập có tài khoản" in page.locator("main").inner_text()
    code = wait_for_sms(demo.outbox, AN.phone, before + 1)
    page.fill("input[name=otp]", f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Xác nhận").click()
    shots.take(page, "forgot-wrong-otp")
    assert alert_text(page) == "Mã OTP không đúng. Bạn còn 4 lần thử."
    page.fill("input[name=otp]", code)
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/new$"))
    shots.take(page, "forgot-new-password")
    assert "có ít nhất 8 ký tự" in page.locator("#password-policy").inner_text()
    # A weak password: each unmet rule next to the field.
    page.fill("input[name=new_password]", "matkhau123")
    page.fill("input[name=confirm_password]", "matkhau123")
    page.get_by_role("button", name="Đặt mật khẩu mới").click()
    shots.take(page, "forgot-weak-password")
    problems = page.locator("#new-password-errors li").all_inner_texts()
    assert "Mật khẩu phải có chữ hoa." in problems and "Mật khẩu phải có ký tự đặc biệt." in problems
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.get_by_role("button", name="Đặt mật khẩu mới").click()
    page.wait_for_url(re.compile(r"/done$"))
    shots.take(page, "forgot-done")
    # Back to the sign-in it came from, with the new password, to the portal.
    page.get_by_role("link", name=re.compile("Đăng nhập vào")).click()
    page.wait_for_url(re.compile(r"/citizen$"))
    page.fill("input[name=username]", AN.username)
    page.fill("input[name=password]", NEW_PASSWORD)
    before = demo.outbox.count(AN.phone)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    page.fill("input[name=otp]", wait_for_sms(demo.outbox, AN.phone, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(demo.portal_url + "/")
    shots.take(page, "portal-signed-in-with-new-password")
    assert "Nguyễn Văn An" in page.locator("h1").inner_text()
    # The other browser was signed out (back-channel logout reached the portal).
    other.reload()
    Shots(page.shots.prefix + "-other").take(other, "other-browser-signed-out")
    assert "Bạn chưa đăng nhập" in other.locator("main, body").first.inner_text()
    elsewhere.close()


def test_change_password_in_the_account_area(chromium: Any, page: Any, stack: Stack) -> None:
    demo, shots = stack.demo, page.shots
    elsewhere = chromium.new_context(locale="vi-VN")
    other = elsewhere.new_page()
    sign_in(other, stack, CUC.username, CUC.password, CUC.phone)
    sign_in(page, stack, CUC.username, CUC.password, CUC.phone)
    # Signed in at the portal: the account area opens without asking again.
    page.goto(demo.idp.base + "/account/password")
    page.wait_for_url(re.compile(r"/account/password$"))
    shots.take(page, "change")
    assert page.locator("h1").inner_text() == "Đổi mật khẩu"
    assert page.locator("nav.account-nav [aria-current=page]").inner_text() == "Đổi mật khẩu"
    page.fill("input[name=current_password]", "Wrong#Password1")
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.get_by_role("button", name="Tiếp tục").click()
    shots.take(page, "change-wrong-current")
    assert alert_text(page) == "Mật khẩu hiện tại không đúng."
    page.fill("input[name=current_password]", CUC.password)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD + "x")
    page.get_by_role("button", name="Tiếp tục").click()
    shots.take(page, "change-mismatch")
    assert page.locator("#confirm-error").inner_text() == "Hai lần nhập mật khẩu mới chưa giống nhau."
    page.fill("input[name=current_password]", CUC.password)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    before = demo.outbox.count(CUC.phone)
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_url(re.compile(r"/account/password/otp$"))
    shots.take(page, "change-otp")
    assert "093****456" in page.locator("main").inner_text()
    page.fill("input[name=otp]", wait_for_sms(demo.outbox, CUC.phone, before + 1))
    page.get_by_role("button", name="Đổi mật khẩu").click()
    shots.take(page, "change-done")
    assert page.locator("h1").inner_text() == "Đã đổi mật khẩu"
    assert "Đã đăng xuất 1 phiên đăng nhập khác" in page.locator("main").inner_text()
    other.reload()
    assert "Bạn chưa đăng nhập" in other.locator("main, body").first.inner_text()
    elsewhere.close()
    # This browser is still signed in to the portal.
    page.goto(demo.portal_url + "/")
    assert "Lê Hoàng Cúc" in page.locator("h1").inner_text()


def test_sign_in_asks_a_captcha_after_failures(page: Any, stack: Stack) -> None:
    demo, shots = stack.demo, page.shots
    page.goto(demo.portal_url + "/login")
    page.locator("a.door[data-account-kind=citizen]").click()
    for attempt in (1, 2):
        page.fill("input[name=username]", AN.username)
        page.fill("input[name=password]", f"Wrong#Password{attempt}")
        page.get_by_role("button", name="Đăng nhập").click()
    shots.take(page, "sign-in-captcha")
    assert page.locator("img.captcha-image").is_visible()
    assert page.locator("audio[controls]").get_attribute("aria-labelledby") == "captcha-audio-label"
    # The spoken alternative is a real sound file the browser can load.
    src = page.locator("audio[controls]").get_attribute("src")
    response = page.request.get(demo.idp.base + src)
    assert response.status == 200 and response.headers["content-type"] == "audio/wav"
    # Enter in the captcha field submits the sign-in (not "Đổi mã khác").
    page.fill("input[name=password]", "Wrong#Password3")
    page.fill("input[name=captcha]", stack.answer(page))
    page.locator("input[name=captcha]").press("Enter")
    page.wait_for_load_state()
    assert alert_text(page) == "Số định danh hoặc mật khẩu không đúng."


def test_forgot_page_on_a_phone(chromium: Any, stack: Stack, request: pytest.FixtureRequest) -> None:
    context = chromium.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(stack.demo.idp.base + "/password/forgot")
        Shots(request.node.name).take(page, "forgot-phone")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
        heights = page.locator("main input:not([type=hidden]), main button.primary").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 44
    finally:
        context.close()
