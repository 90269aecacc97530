"""Registration with a digital signature in a real browser (Debian's chromium through Playwright),
from the demo portal's "Đăng ký" to the portal signed in at LoA3: a citizen with the "Sim ký số"
(the sandbox SIM's page approved in a second tab while the first one waits and moves on by
itself), a citizen with the "USB ký số" (the sandbox plugin), an enterprise with the USB token
(then the organization door). Screenshots of every page go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.flows.test_registration_certificate import ADMIN_PHONE, HUONG_GIANG, HUY, HUY_PHONE, TRANG, Holder
from tests.support.browser import (
    DemoStack,
    start_demo_stack,
)
from tests.support.passwords import wait_for_sms
from tests.support.signing import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    yield from start_demo_stack(tmp_path_factory.mktemp("demo-register-certificate"))


def e164(phone: str) -> str:
    return "+84" + phone[1:]


def open_method(page: Any, stack: DemoStack, method: str) -> None:
    page.goto(stack.portal_url + "/")
    page.get_by_role("link", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register\?ix="))
    page.locator(f"a.door[data-method={method}]").click()
    page.wait_for_load_state()


def set_password(page: Any, **extra: str) -> None:
    for name, value in extra.items():
        page.fill(f"input[name={name}]", value)
    page.fill("input[name=new_password]", PASSWORD)
    page.fill("input[name=confirm_password]", PASSWORD)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/done$"))


def type_otp(page: Any, stack: DemoStack, phone: str, before: int, button: str = "Xác nhận") -> None:
    page.fill("input[name=otp]", wait_for_sms(stack.outbox, e164(phone), before + 1))
    page.get_by_role("button", name=button).click()


def use_usb_plugin(page: Any, holder: Holder) -> None:
    """The registration's plugin page -> the sandbox plugin -> back with the signature."""
    page.wait_for_url(re.compile(r"/usb$"))
    page.shots.take(page, "usb-sign")
    page.get_by_role("link", name="Ký bằng USB ký số").click()
    page.wait_for_url(re.compile(r"/sandbox/usb-token"))
    assert "Môi trường thử nghiệm (sandbox)" in page.locator("main").inner_text()
    page.locator(f"input[name=holder][value='{holder.key}']").check()
    page.fill("input[name=pin]", holder.pin)
    page.shots.take(page, "sandbox-plugin")
    page.get_by_role("button", name="Ký", exact=True).click()
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_url(re.compile(r"/certificate$"))


def citizen_signs_in(page: Any, stack: DemoStack, holder: Holder, phone: str) -> None:
    page.get_by_role("link", name="Đăng nhập", exact=True).click()
    page.wait_for_url(re.compile(r"/citizen$"))
    assert page.locator("input[name=username]").input_value() == holder.number
    page.fill("input[name=password]", PASSWORD)
    before = stack.outbox.count(e164(phone))
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    type_otp(page, stack, phone, before)
    page.wait_for_url(stack.portal_url + "/")


def test_citizen_registers_with_the_sim(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    phone = TRANG.phone or ""
    open_method(page, stack, "sim")
    shots.take(page, "sim-form")
    page.fill("input[name=phone]", phone)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register/[\w-]+/sim$"))
    shots.take(page, "waiting")
    code = page.locator("#confirmation-code").inner_text()
    # The SIM's "phone", in a second tab.
    phone_tab = page.context.new_page()
    phone_tab.goto(stack.idp.base + "/sandbox/sim")
    phone_tab.fill("input[name=phone]", phone)
    phone_tab.get_by_role("button", name="Xem yêu cầu ký").click()
    phone_tab.wait_for_load_state()
    assert code in phone_tab.locator("li.sim-request").inner_text()
    phone_tab.fill("input[name=pin]", TRANG.pin)
    page.shots.take(phone_tab, "sandbox-sim")
    phone_tab.get_by_role("button", name="Xác nhận").click()
    phone_tab.wait_for_url(re.compile(r"done=approved"))
    page.shots.take(phone_tab, "sandbox-sim-approved")
    phone_tab.close()
    # The waiting page polls and moves on by itself.
    page.wait_for_url(re.compile(r"/certificate$"), timeout=20000)
    shots.take(page, "certificate")
    assert TRANG.name in page.locator("main").inner_text()
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/password$"))
    shots.take(page, "password")
    set_password(page)
    shots.take(page, "done")
    assert "mức xác minh 3" in page.locator("main").inner_text()
    citizen_signs_in(page, stack, TRANG, phone)
    shots.take(page, "portal")
    assert page.locator("#acr").inner_text() == "LoA3"


def test_citizen_registers_with_the_usb_token(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    open_method(page, stack, "usb")
    shots.take(page, "usb-start")
    page.get_by_role("button", name="Đăng ký").click()
    use_usb_plugin(page, HUY)
    shots.take(page, "certificate")
    assert HUY.name in page.locator("main").inner_text()
    page.fill("input[name=phone]", HUY_PHONE)
    before = stack.outbox.count(e164(HUY_PHONE))
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/otp$"))
    type_otp(page, stack, HUY_PHONE, before)
    page.wait_for_url(re.compile(r"/password$"))
    shots.take(page, "password")
    set_password(page)
    shots.take(page, "done")
    citizen_signs_in(page, stack, HUY, HUY_PHONE)
    shots.take(page, "portal")
    assert page.locator("#acr").inner_text() == "LoA3"


def test_enterprise_registers_with_the_usb_token(page: Any, stack: DemoStack) -> None:
    shots = page.shots
    open_method(page, stack, "enterprise-usb")
    page.get_by_role("button", name="Đăng ký").click()
    use_usb_plugin(page, HUONG_GIANG)
    shots.take(page, "certificate")
    assert HUONG_GIANG.number in page.locator("main").inner_text()
    page.fill("input[name=phone]", ADMIN_PHONE)
    before = stack.outbox.count(e164(ADMIN_PHONE))
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/otp$"))
    type_otp(page, stack, ADMIN_PHONE, before)
    page.wait_for_url(re.compile(r"/password$"))
    shots.take(page, "password")
    assert page.locator("input[name=username]").input_value() == "huonggiangso.admin"
    set_password(page, admin_name="Trần Văn Quản", email="info@huonggiangso.example.vn")
    shots.take(page, "done")
    # The organization door, with the username chosen at registration.
    page.get_by_role("link", name="Đăng nhập", exact=True).click()
    page.wait_for_url(re.compile(r"/organization$"))
    page.fill("input[name=username]", "huonggiangso.admin")
    page.fill("input[name=password]", PASSWORD)
    before = stack.outbox.count(e164(ADMIN_PHONE))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/organization/sms$"))
    type_otp(page, stack, ADMIN_PHONE, before)
    page.wait_for_url(re.compile(r"/organization/authenticator$"))
    page.locator("form[action$='/continue'] button").click()
    page.wait_for_url(stack.portal_url + "/")
    shots.take(page, "portal")
    assert page.locator("#acr").inner_text() == "LoA3"
    assert HUONG_GIANG.name in page.locator("#userinfo").inner_text()  # the organization claim


def test_a_portal_demanding_level_3_offers_the_raise(page: Any, stack: DemoStack) -> None:
    """An (LoA2) signed in at the demo portal asks it for LoA3 (an essential acr): idp's page offers
    to raise his level, he signs with his USB token in the account area, continues, and the portal
    shows LoA3 — one SSO session, no second sign-in."""
    import json
    from urllib.parse import quote

    from tests.flows.test_registration_certificate import AN_TOKEN
    from tests.support.pages import sign_in_at_portal
    from tests.support.people import AN

    shots = page.shots
    sign_in_at_portal(page, stack, AN)
    assert page.locator("#acr").inner_text() == "LoA2"
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA3"]}}})
    page.goto(stack.portal_url + "/login?claims=" + quote(claims))
    page.wait_for_selector("#raise-level")
    shots.take(page, "level-required")
    assert "Tài khoản của bạn đang ở mức 2" in page.locator("main").inner_text()
    page.get_by_role("link", name="Nâng mức xác minh").click()
    page.wait_for_url(re.compile(r"/account/assurance\?ix="))
    assert "tiếp tục đăng nhập vào Cổng Dịch vụ công (demo)" in page.locator("#waiting-portal").inner_text()
    page.locator("form[data-raise=usb] button").click()
    page.get_by_role("link", name="Ký bằng USB ký số").click()
    page.wait_for_url(re.compile(r"/sandbox/usb-token"))
    page.locator(f"input[name=holder][value='{AN_TOKEN.key}']").check()
    page.fill("input[name=pin]", AN_TOKEN.pin)
    page.get_by_role("button", name="Ký", exact=True).click()
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_url(re.compile(r"/account/assurance\?done=raised"))
    shots.take(page, "level-raised-continue")
    page.get_by_role("link", name=re.compile("Tiếp tục đăng nhập vào")).click()
    page.wait_for_url(stack.portal_url + "/")
    shots.take(page, "portal-loa3")
    assert page.locator("#acr").inner_text() == "LoA3"
