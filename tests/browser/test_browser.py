"""The newcomer's path in a real browser: the demo portal, the sign-in pages of idp, sign-out.

Debian's chromium through Playwright (never a downloaded browser); every page is saved under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import (
    DemoStack,
    Shots,
    start_demo_stack,
)
from tests.support.people import AN, BINH

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOORS = ["national-portal", "vneid", "organization", "citizen"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    yield from start_demo_stack(tmp_path_factory.mktemp("demo"))


def alert_text(page: Any) -> str:
    return page.locator("[role=alert]").first.inner_text().strip()


def sign_in_until_otp(page: Any, stack: DemoStack, username: str, password: str) -> None:
    page.goto(stack.portal_url + "/")
    page.get_by_role("link", name="Đăng nhập").click()
    page.locator("a.door[data-account-kind=citizen]").click()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))


def test_newcomer_signs_in_to_the_demo_portal_and_out(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    page.goto(stack.portal_url + "/")
    shots.take(page, "portal-home")
    page.get_by_role("link", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/login/"))
    shots.take(page, "chooser")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Cổng Dịch vụ công (demo)" in page.locator("main").inner_text()
    kinds = page.locator("[data-account-kind]").evaluate_all("els => els.map(e => e.dataset.accountKind)")
    assert kinds == DOORS
    page.locator("a.door[data-account-kind=citizen]").click()
    page.fill("input[name=username]", AN.username)
    page.fill("input[name=password]", "Wrong@Password1")
    page.get_by_role("button", name="Đăng nhập").click()
    shots.take(page, "wrong-password")
    assert alert_text(page) == "Số định danh hoặc mật khẩu không đúng."
    assert page.locator("input[name=username]").input_value() == AN.username
    page.fill("input[name=password]", AN.password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    shots.take(page, "otp")
    assert "091****678" in page.locator("main").inner_text()
    code = stack.outbox.last_code(AN.phone)
    page.fill("input[name=otp]", f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Xác nhận").click()
    shots.take(page, "wrong-otp")
    assert alert_text(page) == "Mã OTP không đúng. Bạn còn 4 lần thử."
    page.fill("input[name=otp]", code)
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(stack.portal_url + "/")
    shots.take(page, "portal-signed-in")
    assert "Nguyễn Văn An" in page.locator("h1").inner_text()
    assert page.locator("#acr").inner_text() == "LoA2"
    amr = page.locator("#amr").inner_text().split()
    assert "pwd" in amr and "otp" in amr
    with page.expect_navigation():
        page.get_by_role("link", name="Đăng xuất").click()
    page.wait_for_load_state()
    shots.take(page, "portal-signed-out")
    assert page.url.startswith(stack.portal_url + "/?state=")  # back from idp's end_session
    assert "Bạn chưa đăng nhập" in page.locator("main, body").first.inner_text()
    # The SSO session is gone: signing in again asks for the password.
    page.get_by_role("link", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/login/"))
    assert page.locator("a.door[data-account-kind=citizen]").is_visible()


def test_level_3_citizen_reaches_loa3(page: Any, stack: DemoStack) -> None:
    sign_in_until_otp(page, stack, BINH.username, BINH.password)
    page.fill("input[name=otp]", stack.outbox.last_code(BINH.phone))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(stack.portal_url + "/")
    assert page.locator("#acr").inner_text() == "LoA3"
    page.shots.take(page, "portal-loa3")


@pytest.mark.parametrize("kind", ["national-portal", "vneid"])
def test_doors_not_connected_yet_say_so(page: Any, stack: DemoStack, kind: str) -> None:
    page.goto(stack.portal_url + "/login")
    page.locator(f"a.door[data-account-kind={kind}]").click()
    page.shots.take(page, f"door-{kind}")
    assert "chưa" in alert_text(page)  # "not … yet"
    assert "/callback" not in page.url
    page.get_by_role("link", name="Chọn loại tài khoản khác").click()
    assert page.locator("a.door").count() == 4


def test_language_switch(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/login")
    page.get_by_role("link", name="English").click()
    page.shots.take(page, "chooser-english")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Sign in"
    assert "Citizen account" in page.locator("main").inner_text()
    page.get_by_role("link", name="Tiếng Việt").click()
    assert page.locator("h1").inner_text() == "Đăng nhập"


def test_keyboard_only_sign_in(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/login")
    page.wait_for_url(re.compile(r"/login/"))
    # Tab until the citizen door has the focus, then Enter.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.accountKind") == "citizen":
            break
    else:
        pytest.fail("the citizen door is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/citizen"))
    assert page.evaluate("document.activeElement.name") == "username"  # autofocus
    page.keyboard.type(AN.username)
    page.keyboard.press("Tab")
    page.keyboard.type(AN.password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/otp"))
    assert page.evaluate("document.activeElement.name") == "otp"
    page.keyboard.type(stack.outbox.last_code(AN.phone))
    page.keyboard.press("Enter")
    page.wait_for_url(stack.portal_url + "/")
    page.shots.take(page, "keyboard-signed-in")
    assert "Nguyễn Văn An" in page.locator("h1").inner_text()


def test_phone_sized_screen(chromium: Any, stack: DemoStack, request: pytest.FixtureRequest) -> None:
    context = chromium.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    shots = Shots(request.node.name)
    try:
        page.goto(stack.portal_url + "/login")
        for step in ("chooser", "citizen"):
            if step == "citizen":
                page.locator("a.door[data-account-kind=citizen]").click()
            shots.take(page, step)
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
            heights = page.locator("main input:not([type=hidden]), main button.primary, a.door").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect().height)"
            )
            assert heights and min(heights) >= 44
    finally:
        context.close()


def test_security_headers_and_cookies_as_the_browser_sees_them(page: Any, stack: DemoStack) -> None:
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if "/login/" in r.url else None)
    sign_in_until_otp(page, stack, AN.username, AN.password)
    headers = responses[0].all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    page.fill("input[name=otp]", stack.outbox.last_code(AN.phone))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(stack.portal_url + "/")
    cookies = {c["name"]: c for c in page.context.cookies(stack.idp.base)}
    for name in ("idp_s", "idp_sso"):
        assert cookies[name]["httpOnly"] is True, name
        assert cookies[name]["sameSite"] == "Lax", name
    # No personal data in the readable session cookie.
    assert AN.username not in cookies["idp_s"]["value"]
