"""The organization door in a real browser (Debian's chromium through Playwright), from the demo
portal: password, SMS OTP, setting up an authenticator with its QR code, recovery codes, signing
in with the app, a recovery code, the account area's authenticator page and a phone-sized screen.
Every page is saved under test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from tests.support.browser import (
    DemoStack,
    Shots,
    start_demo_stack,
)
from tests.support.live import run_cli
from tests.support.org import LAN, MINH, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    yield from start_demo_stack(tmp_path_factory.mktemp("demo-org"))


def alert_text(page: Any) -> str:
    return page.locator("[role=alert]").first.inner_text().strip()


def open_org_door(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/")
    page.get_by_role("link", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.locator("a.door[data-account-kind=organization]").click()
    page.wait_for_url(re.compile(r"/organization$"))


def password(page: Any, username: str, secret: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", secret)
    page.get_by_role("button", name="Đăng nhập").click()


def back_at_portal(page: Any, stack: DemoStack) -> str:
    page.wait_for_url(stack.portal_url + "/")
    return page.locator("#userinfo").inner_text()


def new_staff(stack: DemoStack, username: str, phone: str) -> str:
    """An operator adds a staff account (SMS only) with the command line; returns its password."""
    secret = "Kiem-Thu#5831z"
    env = dict(stack.idp.env, IDP_NEW_PASSWORD=secret)
    run_cli(
        env, "accounts", "add-staff", "--org", LAN.org_code, "--username", username,
        "--name", "Phan Văn Thử", "--phone", phone, "--operator", "browser-test", cwd=stack.idp.cwd,
    )  # fmt: skip
    return secret


def sign_out(page: Any, stack: DemoStack) -> None:
    with page.expect_navigation():
        page.get_by_role("link", name="Đăng xuất").click()
    page.wait_for_load_state()
    assert page.url.startswith(stack.portal_url + "/")


def test_sms_sign_in_then_authenticator_set_up_and_used(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    open_org_door(page, stack)
    shots.take(page, "org-login")
    assert page.locator("form[data-account-kind=organization]").count() == 1
    assert page.evaluate("document.activeElement.name") == "username"
    password(page, LAN.username, "Wrong@Password1")
    shots.take(page, "wrong-password")
    assert alert_text(page) == "Tên đăng nhập hoặc mật khẩu không đúng."
    assert page.locator("input[name=username]").input_value() == LAN.username
    page.fill("input[name=password]", LAN.password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/organization/sms$"))
    shots.take(page, "sms-otp")
    assert "090****222" in page.locator("main").inner_text()
    page.fill("input[name=otp]", stack.outbox.last_code(LAN.phone))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/organization/authenticator$"))
    shots.take(page, "authenticator-offer")
    page.get_by_role("link", name="Thiết lập ngay").click()
    page.wait_for_url(re.compile(r"/authenticator/setup$"))
    shots.take(page, "authenticator-setup")
    qr = page.get_by_role("img", name=re.compile("Mã QR"))
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    shown = page.locator("#totp-secret").inner_text()
    assert shown.replace(" ", "") == secret and len(secret) == 32
    page.fill("input[name=otp]", "000000" if totp_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Xác nhận và bật").click()
    shots.take(page, "authenticator-wrong-code")
    assert alert_text(page).startswith("Mã chưa đúng.")
    page.fill("input[name=otp]", totp_code(secret))
    page.get_by_role("button", name="Xác nhận và bật").click()
    page.wait_for_selector("ol.recovery-codes")
    shots.take(page, "recovery-codes")
    codes = page.locator("ol.recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", c) for c in codes)
    page.get_by_role("button", name="Tôi đã lưu mã, tiếp tục").click()
    info = back_at_portal(page, stack)
    shots.take(page, "portal-signed-in")
    assert LAN.org_name in info and LAN.org_code in info and LAN.username in info
    assert page.locator("#acr").inner_text() == "LoA2"
    assert page.locator("#amr").inner_text().split() == ["pwd", "otp", "sms", "mfa"]
    sign_out(page, stack)

    # Next time: the choice between the phone and the app, then the app's code.
    open_org_door(page, stack)
    password(page, LAN.username, LAN.password)
    page.wait_for_url(re.compile(r"/organization/method$"))
    shots.take(page, "choose-method")
    page.get_by_role("button", name="Nhập mã trên ứng dụng xác thực").click()
    page.wait_for_url(re.compile(r"/organization/app$"))
    shots.take(page, "authenticator-code")
    page.fill("input[name=otp]", totp_code(secret, 1))  # the set-up used the current step
    page.get_by_role("button", name="Xác nhận").click()
    back_at_portal(page, stack)
    assert page.locator("#amr").inner_text().split() == ["pwd", "otp", "mfa"]
    shots.take(page, "portal-signed-in-with-app")
    sign_out(page, stack)


def test_sandbox_authenticator_wrong_code_then_recovery_code(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    secret = MINH.totp_secret or ""
    open_org_door(page, stack)
    password(page, MINH.username, MINH.password)
    page.wait_for_url(re.compile(r"/organization/method$"))
    page.get_by_role("button", name="Nhập mã trên ứng dụng xác thực").click()
    right = pyotp.TOTP(secret).now()
    page.fill("input[name=otp]", f"{(int(right) + 500_000) % 1_000_000:06d}")
    page.get_by_role("button", name="Xác nhận").click()
    shots.take(page, "authenticator-wrong-code")
    assert alert_text(page).startswith("Mã không đúng.")
    page.get_by_role("link", name="Dùng mã khôi phục").click()
    page.wait_for_url(re.compile(r"/organization/recovery$"))
    shots.take(page, "recovery-code")
    page.fill("input[name=recovery_code]", MINH.recovery_codes[1].lower())
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/organization/authenticator$"))
    shots.take(page, "after-recovery-offer")
    assert "Bạn còn 1 mã chưa dùng." in page.locator("main").inner_text()
    page.get_by_role("button", name="Để sau, tiếp tục đăng nhập").click()
    info = back_at_portal(page, stack)
    shots.take(page, "portal-signed-in")
    assert MINH.org_code in info and '"enterprise"' in info and MINH.name in info

    # The account area: the staff member's authenticator page, reached with the SSO session.
    page.goto(stack.idp.base + "/account")
    page.wait_for_url(re.compile(r"/account$"))
    shots.take(page, "account-home")
    page.get_by_role("link", name=re.compile("Ứng dụng xác thực và mã khôi phục")).click()
    page.wait_for_url(re.compile(r"/account/authenticator$"))
    shots.take(page, "account-authenticator")
    assert "Đang bật" in page.locator("#totp-status").inner_text()
    assert page.locator("#codes-left").inner_text() == "1"
    page.get_by_role("button", name="Tạo bộ mã khôi phục mới").click()
    page.wait_for_selector("ol.recovery-codes")
    shots.take(page, "account-new-recovery-codes")
    assert page.locator("ol.recovery-codes code").count() == 10
    page.get_by_role("link", name="Tôi đã lưu mã, quay lại").click()
    assert page.locator("#codes-left").inner_text() == "10"


def test_keyboard_only_at_the_organization_door(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/login")
    page.wait_for_url(re.compile(r"/login/"))
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.accountKind") == "organization":
            break
    else:
        pytest.fail("the organization door is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/organization$"))
    assert page.evaluate("document.activeElement.name") == "username"
    page.keyboard.type(MINH.username)
    page.keyboard.press("Tab")
    page.keyboard.type(MINH.password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/organization/method$"))
    page.keyboard.press("Tab")  # skip link, then the first control in order
    for _ in range(12):
        if page.evaluate("document.activeElement.value") == "totp":
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("the authenticator choice is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/organization/app$"))
    assert page.evaluate("document.activeElement.name") == "otp"
    page.keyboard.type(totp_code(MINH.totp_secret or "", 1))
    page.keyboard.press("Enter")
    back_at_portal(page, stack)
    page.shots.take(page, "keyboard-signed-in")


def test_organization_pages_on_a_phone_sized_screen(
    chromium: Any, stack: DemoStack, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    shots = Shots(request.node.name)
    try:
        secret = new_staff(stack, "sotn.dienthoai", "0905111333")
        open_org_door(page, stack)
        steps = ["org-login", "sms-otp", "authenticator-offer", "authenticator-setup"]
        for step in steps:
            if step == "sms-otp":
                password(page, "sotn.dienthoai", secret)
                page.wait_for_url(re.compile(r"/organization/sms$"))
            elif step == "authenticator-offer":
                page.fill("input[name=otp]", stack.outbox.last_code("+84905111333"))
                page.get_by_role("button", name="Xác nhận").click()
                page.wait_for_url(re.compile(r"/organization/authenticator$"))
            elif step == "authenticator-setup":
                page.get_by_role("link", name="Thiết lập ngay").click()
                page.wait_for_url(re.compile(r"/setup$"))
            shots.take(page, step)
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 375, step
            heights = page.locator(
                "main input:not([type=hidden]), main button.primary, main a.button"
            ).evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
            assert heights and min(heights) >= 44, (step, heights)
    finally:
        context.close()


def test_organization_pages_pass_axe(chromium: Any, stack: DemoStack, request: pytest.FixtureRequest) -> None:
    """axe-core (WCAG 2.1 A and AA) on every page of the organization door and its account page.

    axe is injected, so this context alone bypasses the pages' Content-Security-Policy."""
    from tests.support.pages import describe_violations, require_axe, run_axe

    require_axe()
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN", bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    shots = Shots(request.node.name)
    found: dict[str, list[dict[str, Any]]] = {}

    def check(step: str) -> None:
        shots.take(page, step)
        violations = run_axe(page)
        if violations:
            found[step] = violations

    try:
        secret = new_staff(stack, "sotn.axe", "0905111444")
        open_org_door(page, stack)
        check("org-login")
        password(page, "sotn.axe", "Wrong@Password1")
        check("org-login-error")
        password(page, "sotn.axe", secret)
        page.wait_for_url(re.compile(r"/organization/sms$"))
        check("sms-otp")
        page.fill("input[name=otp]", stack.outbox.last_code("+84905111444"))
        page.get_by_role("button", name="Xác nhận").click()
        page.wait_for_url(re.compile(r"/organization/authenticator$"))
        check("authenticator-offer")
        page.get_by_role("link", name="Thiết lập ngay").click()
        check("authenticator-setup")
        key = page.locator("#totp-secret").get_attribute("data-secret")
        page.fill("input[name=otp]", totp_code(key))
        page.get_by_role("button", name="Xác nhận và bật").click()
        page.wait_for_selector("ol.recovery-codes")
        check("recovery-codes")
        page.get_by_role("button", name="Tôi đã lưu mã, tiếp tục").click()
        back_at_portal(page, stack)
        page.goto(stack.idp.base + "/account/authenticator")
        page.wait_for_url(re.compile(r"/account/authenticator$"))
        check("account-authenticator")
        page.goto(stack.portal_url + "/")
        sign_out(page, stack)
        open_org_door(page, stack)
        password(page, "sotn.axe", secret)
        page.wait_for_url(re.compile(r"/organization/method$"))
        check("choose-method")
        page.get_by_role("button", name="Nhập mã trên ứng dụng xác thực").click()
        page.fill("input[name=otp]", "000000" if totp_code(key, 1) != "000000" else "111111")
        page.get_by_role("button", name="Xác nhận").click()
        check("authenticator-code-error")
        page.get_by_role("link", name="Dùng mã khôi phục").click()
        check("recovery-code")
    finally:
        context.close()
    assert not found, "\n".join(f"{step}: {describe_violations(v)}" for step, v in found.items())
