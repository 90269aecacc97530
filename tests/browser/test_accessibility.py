"""Automated accessibility check: every page a person can reach is loaded in Debian's chromium and
checked with axe-core (from the npm registry, pinned in package-lock.json; `npm ci` installs it)
against WCAG 2.1 A and AA (tags wcag2a, wcag2aa, wcag21a, wcag21aa). No violation is allowed.

axe is injected into the page, which the pages' Content-Security-Policy (script-src 'self')
forbids; so these contexts — and only these — are created with bypass_csp=True. The headers
themselves are checked by tests/test_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DemoStack,
    Shots,
    require_chromium,
    start_demo_stack,
)
from tests.support.live import run_cli
from tests.support.org import LAN, MINH, SandboxStaff, totp_code
from tests.support.pages import (
    choose_citizen_door,
    describe_violations,
    open_account,
    require_axe,
    run_axe,
    sign_in_at_portal,
    sign_in_from_chooser,
    submit_otp,
    submit_password,
)
from tests.support.passwords import wait_for_sms
from tests.support.people import AN, BINH, CUC, DUNG, SandboxPerson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_PASSWORD = "Cau-Truong#Tien8472"  # meets the policy
# Many sign-ins with the same few sandbox phones in one stack: lift the SMS-pumping caps.
GENEROUS_CAPS = {
    "OTP_PHONE_HOURLY_LIMIT": 1000,
    "OTP_PHONE_DAILY_LIMIT": 1000,
    "OTP_ADDRESS_HOURLY_LIMIT": 10000,
    "OTP_GLOBAL_PER_MINUTE": 10000,
    "REGISTRATION_CHECKS_PER_HOUR": 1000,
}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_chromium()
    require_axe()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    yield from start_demo_stack(tmp_path_factory.mktemp("a11y"), partner=True, settings=GENEROUS_CAPS)


@pytest.fixture(scope="module")
def captcha_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """The same with the captcha on, as in production (its pages cannot be gone past)."""
    yield from start_demo_stack(
        tmp_path_factory.mktemp("a11y-captcha"), settings={**GENEROUS_CAPS, "CAPTCHA_ENABLED": "true"}
    )


def new_page(chromium: Any, locale: str = "vi-VN") -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale=locale, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    return page


# -- how to reach each page --------------------------------------------------------------------
def chooser(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/login")
    page.wait_for_url(re.compile(r"/login/"))


def citizen(page: Any, stack: DemoStack) -> None:
    chooser(page, stack)
    choose_citizen_door(page)


def citizen_wrong_password(page: Any, stack: DemoStack) -> None:
    citizen(page, stack)
    submit_password(page, AN, "Wrong@Password1")
    assert page.locator("[role=alert]").count() == 1


def otp(page: Any, stack: DemoStack) -> None:
    citizen(page, stack)
    submit_password(page, AN)
    page.wait_for_url(re.compile(r"/otp"))


def otp_wrong(page: Any, stack: DemoStack) -> None:
    otp(page, stack)
    code = stack.outbox.last_code(AN.phone)
    page.fill("input[name=otp]", f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_load_state()
    assert page.locator("[role=alert]").count() == 1


def otp_step_up(page: Any, stack: DemoStack) -> None:
    """A remembered browser's password-only session (LoA1) meets a portal that needs LoA2: the OTP
    page asks the person to request the code (opening it sends nothing)."""
    otp(page, stack)
    page.fill("input[name=otp]", stack.outbox.last_code(AN.phone))
    page.get_by_label(re.compile("Ghi nhớ thiết bị này")).check()
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile("^" + re.escape(stack.portal_url) + "/"))
    with page.expect_navigation():
        page.get_by_role("link", name="Đăng xuất").click()
    page.get_by_role("link", name="Đăng nhập").click()
    choose_citizen_door(page)
    submit_password(page, AN)  # the remembered browser: no OTP, LoA1
    page.wait_for_url(re.compile("^" + re.escape(stack.portal_url) + "/"))
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA2"]}}})
    page.goto(stack.portal_url + "/login?claims=" + quote(claims))
    page.wait_for_url(re.compile(r"/otp$"))
    assert page.get_by_role("button", name="Gửi mã OTP").count() == 1


def level_required(page: Any, stack: DemoStack) -> None:
    """An (LoA2) signed in meets a portal demanding LoA3: the page offering to raise the level."""
    sign_in_at_portal(page, stack, AN)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA3"]}}})
    page.goto(stack.portal_url + "/login?claims=" + quote(claims))
    page.wait_for_selector("#raise-level")


def otp_two_phones(page: Any, stack: DemoStack) -> None:
    """Cúc has two phones: the page offers the other one."""
    citizen(page, stack)
    submit_password(page, CUC)
    page.wait_for_url(re.compile(r"/otp"))


def door(kind: str) -> Callable[[Any, DemoStack], None]:
    def go(page: Any, stack: DemoStack) -> None:
        chooser(page, stack)
        page.locator(f"a.door[data-account-kind={kind}]").click()
        page.wait_for_load_state()

    return go


def organization_wrong_password(page: Any, stack: DemoStack) -> None:
    door("organization")(page, stack)
    page.fill("input[name=username]", "sotn.lan")
    page.fill("input[name=password]", "Wrong@Password1")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()


def consent(page: Any, stack: DemoStack) -> None:
    assert stack.partner_url
    page.goto(stack.partner_url + "/login")
    page.wait_for_url(re.compile(r"/login/"))
    sign_in_from_chooser(page, stack, DUNG)
    page.wait_for_url(re.compile(r"/consent/"))


def logout_confirm(page: Any, stack: DemoStack) -> None:
    sign_in_at_portal(page, stack, AN)
    page.goto(stack.idp.base + "/logout")
    page.wait_for_load_state()


def logged_out(page: Any, stack: DemoStack) -> None:
    logout_confirm(page, stack)
    page.locator("button[value=logout]").click()
    page.wait_for_load_state()


def error_page(path: str) -> Callable[[Any, DemoStack], None]:
    def go(page: Any, stack: DemoStack) -> None:
        page.goto(stack.idp.base + path)

    return go


def account(path: str, person: Any = AN) -> Callable[[Any, DemoStack], None]:
    def go(page: Any, stack: DemoStack) -> None:
        open_account(page, stack, person, path)

    return go


def account_sessions_two_devices(page: Any, stack: DemoStack) -> None:
    other = page.context.browser.new_context()
    try:
        sign_in_at_portal(other.new_page(), stack, BINH)
    finally:
        other.close()
    sign_in_at_portal(page, stack, BINH)
    open_account(page, stack, BINH, "/account/sessions")
    assert page.locator("li.session").count() >= 2


def account_consents(page: Any, stack: DemoStack) -> None:
    assert stack.partner_url
    sign_in_at_portal(page, stack, CUC, stack.partner_url)
    open_account(page, stack, CUC, "/account/consents")
    assert page.locator("li.consent").count() >= 1


def account_signed_out(page: Any, stack: DemoStack) -> None:
    open_account(page, stack, AN)
    page.locator("form.signout button").click()
    page.wait_for_load_state()


def account_cancelled(page: Any, stack: DemoStack) -> None:
    page.goto(stack.idp.base + "/account")
    page.wait_for_url(re.compile(r"/login/"))
    page.locator("form[action$='/cancel'] button").click()
    page.wait_for_url(re.compile(r"/account/signed-out"))


def password_change(page: Any, stack: DemoStack) -> None:
    open_account(page, stack, AN, "/account/password")


def password_change_wrong(page: Any, stack: DemoStack) -> None:
    password_change(page, stack)
    page.fill("input[name=current_password]", "Wrong@Password1")
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def forgot(page: Any, stack: DemoStack) -> None:
    page.goto(stack.idp.base + "/password/forgot")


def forgot_otp(page: Any, stack: DemoStack) -> int:
    """Up to the reset's OTP page; returns how many SMS Dũng's phone had received before."""
    before = stack.outbox.count(DUNG.phone)
    forgot(page, stack)
    page.fill("input[name=username]", DUNG.username)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/otp"))
    return before


def forgot_new(page: Any, stack: DemoStack) -> None:
    before = forgot_otp(page, stack)
    # The reset SMS leaves from a background worker: wait for it, not an older code of this phone.
    page.fill("input[name=otp]", wait_for_sms(stack.outbox, DUNG.phone, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/new"))


def new_citizen(stack: DemoStack, id_number: str, phone: str) -> SandboxPerson:
    """A citizen added by an operator for one page whose way there changes the account."""
    password = "Kiem-Thu#5831z"
    env = dict(stack.idp.env, IDP_NEW_PASSWORD=password)
    run_cli(
        env, "accounts", "add-citizen", "--id-number", id_number, "--name", "Hồ Văn Thử",
        "--birth-date", "01/02/1995", "--phone", phone, "--gender", "male", cwd=stack.idp.cwd,
    )  # fmt: skip
    return SandboxPerson(id_number, password, "+84" + phone[1:], "Hồ Văn Thử", 2)


def password_change_otp(page: Any, stack: DemoStack) -> None:
    password_change(page, stack)
    page.fill("input[name=current_password]", AN.password)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/account/password/otp$"))


def password_changed(page: Any, stack: DemoStack) -> None:
    person = new_citizen(stack, "046095012301", "0912000301")
    open_account(page, stack, person, "/account/password")
    page.fill("input[name=current_password]", person.password)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/account/password/otp$"))
    submit_otp(page, stack, person, button="Đổi mật khẩu")
    assert page.locator("h1").inner_text() == "Đã đổi mật khẩu"


def forgot_done(page: Any, stack: DemoStack) -> None:
    person = new_citizen(stack, "046095012302", "0912000302")
    forgot(page, stack)
    page.fill("input[name=username]", person.username)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/otp"))
    submit_otp(page, stack, person)
    page.wait_for_url(re.compile(r"/new$"))
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm_password]", NEW_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/done$"))


def organization_password(page: Any, stack: DemoStack, staff: SandboxStaff) -> None:
    door("organization")(page, stack)
    page.fill("input[name=username]", staff.username)
    page.fill("input[name=password]", staff.password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def organization_sms(page: Any, stack: DemoStack) -> None:
    organization_password(page, stack, LAN)
    page.wait_for_url(re.compile(r"/organization/sms$"))


def organization_offer(page: Any, stack: DemoStack) -> None:
    organization_sms(page, stack)
    submit_otp(page, stack, LAN)
    page.wait_for_url(re.compile(r"/organization/authenticator$"))


def organization_setup(page: Any, stack: DemoStack) -> None:
    organization_offer(page, stack)
    page.locator("main a[href$='/authenticator/setup']").click()
    page.wait_for_url(re.compile(r"/authenticator/setup$"))


def organization_method(page: Any, stack: DemoStack) -> None:
    organization_password(page, stack, MINH)
    page.wait_for_url(re.compile(r"/organization/method$"))


def organization_app(page: Any, stack: DemoStack) -> None:
    organization_method(page, stack)
    page.get_by_role("button", name="Nhập mã trên ứng dụng xác thực").click()
    page.wait_for_url(re.compile(r"/organization/app$"))


def organization_recovery(page: Any, stack: DemoStack) -> None:
    organization_app(page, stack)
    page.get_by_role("link", name="Dùng mã khôi phục").click()
    page.wait_for_url(re.compile(r"/organization/recovery$"))


def organization_recovery_codes(page: Any, stack: DemoStack) -> None:
    """A new staff member sets up an authenticator: the page of recovery codes."""
    password = "Kiem-Thu#5831z"
    env = dict(stack.idp.env, IDP_NEW_PASSWORD=password)
    run_cli(
        env, "accounts", "add-staff", "--org", LAN.org_code, "--username", "a11y.staff",
        "--name", "Phan Văn Thử", "--phone", "0905000303", "--operator", "a11y-test", cwd=stack.idp.cwd,
    )  # fmt: skip
    staff = SandboxStaff(
        "a11y.staff", password, "+84905000303", "Phan Văn Thử",
        LAN.org_code, LAN.org_code_type, LAN.org_name, LAN.org_kind, ("staff",),
    )  # fmt: skip
    organization_password(page, stack, staff)
    page.wait_for_url(re.compile(r"/organization/sms$"))
    submit_otp(page, stack, staff)
    page.locator("main a[href$='/authenticator/setup']").click()
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.fill("input[name=otp]", totp_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_selector("ol.recovery-codes")


def account_authenticator(page: Any, stack: DemoStack) -> None:
    page.goto(stack.idp.base + "/account/authenticator")
    page.wait_for_url(re.compile(r"/login/"))
    organization_password_here(page, MINH)
    page.get_by_role("button", name="Nhập mã trên ứng dụng xác thực").click()
    page.wait_for_url(re.compile(r"/organization/app$"))
    page.fill("input[name=otp]", totp_code(MINH.totp_secret or "", 1))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/account/authenticator$"))


def organization_password_here(page: Any, staff: SandboxStaff) -> None:
    page.locator("a.door[data-account-kind=organization]").click()
    page.fill("input[name=username]", staff.username)
    page.fill("input[name=password]", staff.password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/organization/method$"))


def captcha_after_failures(page: Any, stack: DemoStack) -> None:
    citizen(page, stack)
    for _ in range(6):
        if page.locator("img[src*='/captcha/']").count():
            return
        submit_password(page, AN, "Wrong@Password1")
    raise AssertionError("no captcha after repeated failures")


# -- registration with a digital signature (idp.flows.register.certificate), sandbox signers --------
SIM_PHONE, SIM_PIN = "0767890123", "246810"  # Đặng Thu Trang's sandbox SIM
USB_HOLDER, USB_PIN = "3301234568", "445566"  # Công ty Cổ phần Hương Giang Số's sandbox USB token


def register_certificate(kind: str, device: str) -> Callable[[Any, DemoStack], None]:
    def go(page: Any, stack: DemoStack) -> None:
        page.goto(stack.idp.base + f"/register/{kind}/{device}")

    return go


def register_sim_wait(page: Any, stack: DemoStack) -> None:
    register_certificate("citizen", "sim")(page, stack)
    page.fill("input[name=phone]", SIM_PHONE)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register/[\w-]+/sim$"))


def sandbox_sim(page: Any, stack: DemoStack) -> None:
    """The sandbox SIM's "phone" with a request waiting."""
    register_sim_wait(page, stack)
    page.goto(stack.idp.base + "/sandbox/sim?phone=" + SIM_PHONE)
    assert page.locator("li.sim-request").count() >= 1


def register_usb_sign(page: Any, stack: DemoStack) -> None:
    register_certificate("enterprise", "usb")(page, stack)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register/[\w-]+/usb$"))


def sandbox_usb_token(page: Any, stack: DemoStack) -> None:
    register_usb_sign(page, stack)
    page.get_by_role("link", name="Ký bằng USB ký số").click()
    page.wait_for_url(re.compile(r"/sandbox/usb-token"))


def sandbox_usb_signed(page: Any, stack: DemoStack) -> None:
    sandbox_usb_token(page, stack)
    page.locator(f"input[name=holder][value='{USB_HOLDER}']").check()
    page.fill("input[name=pin]", USB_PIN)
    page.get_by_role("button", name="Ký", exact=True).click()
    page.wait_for_selector("form[data-plugin-return]")


def register_certificate_info(page: Any, stack: DemoStack) -> None:
    sandbox_usb_signed(page, stack)
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_url(re.compile(r"/certificate$"))


def register_enterprise_password(page: Any, stack: DemoStack) -> None:
    register_certificate_info(page, stack)
    page.fill("input[name=phone]", "0905000404")
    before = stack.outbox.count("+84905000404")
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/otp$"))
    page.fill("input[name=otp]", wait_for_sms(stack.outbox, "+84905000404", before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/password$"))
    page.fill("input[name=email]", "")
    page.get_by_role("button", name="Đăng ký").click()  # errors next to the fields
    page.wait_for_selector("#email-error")


def register_certificate_refused(page: Any, stack: DemoStack) -> None:
    """A person's certificate on the enterprise door: the refusal on the method's page."""
    register_usb_sign(page, stack)
    page.get_by_role("link", name="Ký bằng USB ký số").click()
    page.wait_for_url(re.compile(r"/sandbox/usb-token"))
    page.locator("input[name=holder][value='046083056789']").check()
    page.fill("input[name=pin]", "135790")
    page.get_by_role("button", name="Ký", exact=True).click()
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_selector("[role=alert]")


def account_assurance_usb(page: Any, stack: DemoStack) -> None:
    open_account(page, stack, AN, "/account/assurance")
    page.get_by_role("button", name="Ký bằng USB ký số").click()
    page.wait_for_url(re.compile(r"/account/assurance/[\w-]+/usb$"))


# -- registration against the registers (idp.flows.register.steps) -------------------------------
REGISTERING = ("046088012345", "Phạm Minh Đức", "12/07/1988", "0903111222")  # the sandbox's newcomer


def register_start(page: Any, stack: DemoStack) -> None:
    page.goto(stack.portal_url + "/login?prompt=create")
    page.wait_for_url(re.compile(r"/register\?ix="))


def register_form(method: str) -> Callable[[Any, DemoStack], None]:
    def go(page: Any, stack: DemoStack) -> None:
        register_start(page, stack)
        page.locator(f"a.door[data-method={method}]").click()
        page.wait_for_url(re.compile(rf"/register/citizen/{method}"))

    return go


def fill_registration(page: Any, id_number: str, name: str, birth: str, phone: str) -> None:
    page.fill("input[name=id_number]", id_number)
    page.fill("input[name=full_name]", name)
    page.fill("input[name=birth_date]", birth)
    page.fill("input[name=phone]", phone)
    page.get_by_role("button", name="Đăng ký").click()


def register_form_errors(page: Any, stack: DemoStack) -> None:
    register_form("subscriber")(page, stack)
    fill_registration(page, "04608801234", "", "31/02/1988", "0123")
    page.wait_for_selector("#id_number-error")


def register_no_match(page: Any, stack: DemoStack) -> None:
    register_form("subscriber")(page, stack)
    fill_registration(page, REGISTERING[0], REGISTERING[1], "13/07/1988", REGISTERING[3])
    page.wait_for_selector("[role=alert]")


def register_exists(page: Any, stack: DemoStack) -> None:
    register_form("subscriber")(page, stack)
    fill_registration(page, AN.username, AN.name, "15/03/1990", "0912345678")
    page.wait_for_selector("[role=alert]")


def register_otp(page: Any, stack: DemoStack) -> None:
    register_form("subscriber")(page, stack)
    fill_registration(page, *REGISTERING)
    page.wait_for_url(re.compile(r"/register/[\w-]+/otp$"))


def register_password(page: Any, stack: DemoStack) -> None:
    before = stack.outbox.count("+84903111222")
    register_otp(page, stack)
    page.fill("input[name=otp]", wait_for_sms(stack.outbox, "+84903111222", before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/password$"))
    page.fill("input[name=new_password]", "matkhau123")
    page.fill("input[name=confirm_password]", "matkhau")
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_selector("#new-password-errors")


PAGES: list[tuple[str, Callable[[Any, DemoStack], None]]] = [
    ("chooser", chooser),
    ("citizen", citizen),
    ("citizen-wrong-password", citizen_wrong_password),
    ("otp", otp),
    ("otp-wrong", otp_wrong),
    ("otp-two-phones", otp_two_phones),
    ("otp-step-up", otp_step_up),
    ("level-required", level_required),
    ("door-national-portal", door("national-portal")),
    ("door-vneid", door("vneid")),
    ("organization", door("organization")),
    ("organization-wrong-password", organization_wrong_password),
    ("consent", consent),
    ("logout-confirm", logout_confirm),
    ("logged-out", logged_out),
    ("error-not-found", error_page("/no-such-page")),
    ("error-expired", error_page("/login/unknown-interaction")),
    ("error-bad-request", error_page("/authorize?client_id=nobody&response_type=code")),
    ("account", account("/account")),
    ("account-sessions", account_sessions_two_devices),
    ("account-consents", account_consents),
    ("account-consents-empty", account("/account/consents")),
    ("account-signed-out", account_signed_out),
    ("account-cancelled", account_cancelled),
    ("password-change", password_change),
    ("password-change-wrong", password_change_wrong),
    ("password-change-otp", password_change_otp),
    ("password-changed", password_changed),
    ("forgot-otp", forgot_otp),
    ("forgot-new", forgot_new),
    ("forgot-done", forgot_done),
    ("organization-sms", organization_sms),
    ("organization-authenticator-offer", organization_offer),
    ("organization-authenticator-setup", organization_setup),
    ("organization-method", organization_method),
    ("organization-app", organization_app),
    ("organization-recovery", organization_recovery),
    ("organization-recovery-codes", organization_recovery_codes),
    ("account-authenticator", account_authenticator),
    ("register", register_start),
    ("register-subscriber", register_form("subscriber")),
    ("register-social-insurance", register_form("social_insurance")),
    ("register-population", register_form("population")),
    ("register-form-errors", register_form_errors),
    ("register-no-match", register_no_match),
    ("register-exists", register_exists),
    ("register-otp", register_otp),
    ("register-password-errors", register_password),
    ("register-citizen-sim", register_certificate("citizen", "sim")),
    ("register-enterprise-usb", register_certificate("enterprise", "usb")),
    ("register-sim-wait", register_sim_wait),
    ("sandbox-sim", sandbox_sim),
    ("register-usb-sign", register_usb_sign),
    ("sandbox-usb-token", sandbox_usb_token),
    ("sandbox-usb-signed", sandbox_usb_signed),
    ("register-certificate-info", register_certificate_info),
    ("register-enterprise-password", register_enterprise_password),
    ("register-certificate-refused", register_certificate_refused),
    ("account-assurance", account("/account/assurance")),
    ("account-assurance-usb", account_assurance_usb),
]
CAPTCHA_PAGES: list[tuple[str, Callable[[Any, DemoStack], None]]] = [
    ("forgot", forgot),
    ("citizen-captcha", captcha_after_failures),
    ("register-subscriber-captcha", register_form("subscriber")),
]
ENGLISH_PAGES: list[tuple[str, Callable[[Any, DemoStack], None]]] = [
    ("chooser", chooser),
    ("account-sessions", account("/account/sessions")),
    ("register-en", register_start),
]


def reach_or_show(
    page: Any, stack: DemoStack, reach: Callable[..., None], request: pytest.FixtureRequest
) -> None:
    """Go to the page; when the way there fails, keep a screenshot of where it stopped."""
    try:
        reach(page, stack)
    except Exception:
        Shots(request.node.name).take(page, "way-there-failed")
        raise


def check(page: Any, name: str, request: pytest.FixtureRequest) -> None:
    Shots(request.node.name).take(page, name)
    violations = run_axe(page)
    assert violations == [], f"{name} ({page.url}):\n{describe_violations(violations)}"


@pytest.mark.parametrize(("name", "reach"), PAGES, ids=[name for name, _ in PAGES])
def test_page_meets_wcag_21_aa(
    chromium: Any, stack: DemoStack, request: pytest.FixtureRequest, name: str, reach: Callable[..., None]
) -> None:
    page = new_page(chromium)
    try:
        reach_or_show(page, stack, reach, request)
        assert page.locator("html").get_attribute("lang") == "vi"
        check(page, name, request)
    finally:
        page.context.close()


@pytest.mark.parametrize(("name", "reach"), CAPTCHA_PAGES, ids=[name for name, _ in CAPTCHA_PAGES])
def test_captcha_pages_meet_wcag_21_aa(
    chromium: Any,
    captcha_stack: DemoStack,
    request: pytest.FixtureRequest,
    name: str,
    reach: Callable[..., None],
) -> None:
    page = new_page(chromium)
    try:
        reach_or_show(page, captcha_stack, reach, request)
        check(page, name, request)
    finally:
        page.context.close()


@pytest.mark.parametrize(("name", "reach"), ENGLISH_PAGES, ids=[name for name, _ in ENGLISH_PAGES])
def test_english_pages_meet_wcag_21_aa(
    chromium: Any, stack: DemoStack, request: pytest.FixtureRequest, name: str, reach: Callable[..., None]
) -> None:
    page = new_page(chromium, locale="en-GB")
    try:
        reach_or_show(page, stack, reach, request)
        page.goto(page.url + ("&" if "?" in page.url else "?") + "lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
        check(page, name + "-en", request)
    finally:
        page.context.close()


def test_the_check_finds_violations(chromium: Any, stack: DemoStack) -> None:
    """The check itself works: a page with an unlabelled field and low contrast fails it."""
    page = new_page(chromium)
    try:
        chooser(page, stack)
        page.evaluate(
            """() => {
                const input = document.createElement('input');
                input.type = 'text';
                document.querySelector('main').appendChild(input);
                document.querySelector('h1').style.color = '#ddd';
            }"""
        )
        found = {v["id"] for v in run_axe(page)}
        assert {"label", "color-contrast"} <= found
    finally:
        page.context.close()
