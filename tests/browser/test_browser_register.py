"""Registration in a real browser (Debian's chromium through Playwright), from the demo portal's
"Đăng ký" button (prompt=create) to the portal signed in at the level the method gives: mobile
subscriber, social-insurance code, population-register check, each with the captcha as a person
meets it; the three outcomes of the check; a counter registration by an operator followed by the
citizen setting a password. Screenshots of every page go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import (
    CaptchaStack,
    start_captcha_stack,
)
from tests.support.live import run_cli
from tests.support.passwords import wait_for_sms
from tests.support.registration import DUC, HOA, LOC, MAI, PASSWORD, Newcomer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


Stack = CaptchaStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_captcha_stack(tmp_path_factory.mktemp("demo-register"))


def alert_text(page: Any) -> str:
    return page.locator("[role=alert]").first.inner_text().strip()


def fill_form(page: Any, person: Newcomer, method: str, **changes: str) -> None:
    values = {"full_name": person.name, "birth_date": person.birth_date, "phone": person.phone}
    if method == "social_insurance":
        values["bhxh_code"] = person.bhxh_code or ""
    else:
        values["id_number"] = person.id_number
    if method == "population":
        values["id_issue_date"] = person.id_issue_date or ""
    values.update(changes)
    for name, value in values.items():
        page.fill(f"input[name={name}]", value)


def open_registration(page: Any, stack: Stack, method: str) -> None:
    page.goto(stack.demo.portal_url + "/")
    page.get_by_role("link", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register\?ix="))
    page.locator(f"a.door[data-method={method}]").click()
    page.wait_for_url(re.compile(rf"/register/citizen/{method}\?ix="))


def sign_in_after(page: Any, stack: Stack, person: Newcomer) -> None:
    """From the success page's "Đăng nhập" to the portal, signed in."""
    page.get_by_role("link", name="Đăng nhập", exact=True).click()
    page.wait_for_url(re.compile(r"/citizen$"))
    assert page.locator("input[name=username]").input_value() == person.id_number
    page.fill("input[name=password]", PASSWORD)
    before = stack.demo.outbox.count(person.e164)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    page.fill("input[name=otp]", wait_for_sms(stack.demo.outbox, person.e164, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(stack.demo.portal_url + "/")


@pytest.mark.parametrize(
    ("person", "method"), [(DUC, "subscriber"), (HOA, "social_insurance"), (LOC, "population")]
)
def test_register_and_sign_in_at_level_2(page: Any, stack: Stack, person: Newcomer, method: str) -> None:
    shots, outbox = page.shots, stack.demo.outbox
    page.goto(stack.demo.portal_url + "/")
    shots.take(page, "portal")
    open_registration(page, stack, method)
    shots.take(page, "form")
    # A wrong captcha first: said next to the field, what was typed is kept.
    fill_form(page, person, method)
    page.fill("input[name=captcha]", "00000")
    page.get_by_role("button", name="Đăng ký").click()
    shots.take(page, "wrong-captcha")
    assert "Mã xác thực không đúng" in page.locator("#captcha-error").inner_text()
    assert page.locator("input[name=full_name]").input_value() == person.name
    page.fill("input[name=captcha]", stack.answer(page))
    before = outbox.count(person.e164)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/register/[\w-]+/otp$"))
    shots.take(page, "otp")
    assert person.phone[:3] + "****" + person.phone[-3:] in page.locator("#otp-help").inner_text()
    page.fill("input[name=otp]", wait_for_sms(outbox, person.e164, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/password$"))
    shots.take(page, "password")
    page.fill("input[name=new_password]", "matkhau123")
    page.fill("input[name=confirm_password]", "matkhau123")
    page.get_by_role("button", name="Đăng ký").click()
    shots.take(page, "weak-password")
    assert "Mật khẩu phải có chữ hoa." in page.locator("#new-password-errors li").all_inner_texts()
    page.fill("input[name=new_password]", PASSWORD)
    page.fill("input[name=confirm_password]", PASSWORD)
    page.get_by_role("button", name="Đăng ký").click()
    page.wait_for_url(re.compile(r"/done$"))
    shots.take(page, "done")
    assert page.locator("h1").inner_text() == "Đăng ký tài khoản thành công"
    sign_in_after(page, stack, person)
    shots.take(page, "portal-signed-in")
    assert person.name in page.locator("h1").inner_text()
    assert page.locator("#acr").inner_text() == "LoA2"


def test_the_check_outcomes_a_person_sees(page: Any, stack: Stack) -> None:
    shots = page.shots
    # Already registered: masked, with Quên mật khẩu.
    open_registration(page, stack, "subscriber")
    page.fill("input[name=id_number]", "046090001234")
    page.fill("input[name=full_name]", "Nguyễn Văn An")
    page.fill("input[name=birth_date]", "15/03/1990")
    page.fill("input[name=phone]", "0912345678")
    page.fill("input[name=captcha]", stack.answer(page))
    page.get_by_role("button", name="Đăng ký").click()
    shots.take(page, "already-registered")
    assert alert_text(page) == "Số định danh *********234 đã được đăng ký."
    assert page.get_by_role("link", name="Quên mật khẩu").count() == 1
    # No matching record: the form again, with what was typed.
    open_registration(page, stack, "subscriber")
    fill_form(page, DUC, "subscriber", birth_date="13/07/1988")
    page.fill("input[name=captcha]", stack.answer(page))
    page.get_by_role("button", name="Đăng ký").click()
    shots.take(page, "no-match")
    assert alert_text(page).startswith("Không tìm thấy dữ liệu dân cư trùng khớp")
    assert page.locator("input[name=birth_date]").input_value() == "13/07/1988"
    # A format error is shown next to its field, keyboard focus can reach it.
    page.fill("input[name=id_number]", "04608801234")
    page.fill("input[name=captcha]", stack.answer(page))
    page.get_by_role("button", name="Đăng ký").click()
    shots.take(page, "format-error")
    assert "12 chữ số" in page.locator("#id_number-error").inner_text()
    assert page.locator("#id_number").get_attribute("aria-invalid") == "true"


def test_counter_registration_then_the_citizen_sets_a_password(page: Any, stack: Stack) -> None:
    shots, outbox = page.shots, stack.demo.outbox
    output = run_cli(
        stack.demo.idp.env,
        "accounts",
        "register-in-person",
        "--id-number",
        MAI.id_number,
        "--name",
        MAI.name,
        "--birth-date",
        MAI.birth_date,
        "--gender",
        "female",
        "--phone",
        MAI.phone,
        "--at",
        "counter",
        "--place",
        "Trung tâm Phục vụ hành chính công tỉnh",
        "--operator",
        "quay.01",
        cwd=stack.tmp,
    )
    assert '"loa": "LoA3"' in output
    assert "/password/forgot" in outbox.last(MAI.e164)["text"]
    page.goto(stack.demo.portal_url + "/")
    page.get_by_role("link", name="Đăng nhập", exact=True).click()
    page.locator("a.door[data-account-kind=citizen]").click()
    page.get_by_role("link", name="Quên mật khẩu?").click()
    page.fill("input[name=username]", MAI.id_number)
    page.fill("input[name=captcha]", stack.answer(page))
    before = outbox.count(MAI.e164)
    page.get_by_role("button", name="Gửi mã OTP").click()
    page.wait_for_url(re.compile(r"/otp$"))
    page.fill("input[name=otp]", wait_for_sms(outbox, MAI.e164, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(r"/new$"))
    page.fill("input[name=new_password]", PASSWORD)
    page.fill("input[name=confirm_password]", PASSWORD)
    page.get_by_role("button", name="Đặt mật khẩu mới").click()
    page.wait_for_url(re.compile(r"/done$"))
    shots.take(page, "password-set")
    page.get_by_role("link", name=re.compile("Đăng nhập vào")).click()
    page.wait_for_url(re.compile(r"/citizen$"))
    page.fill("input[name=username]", MAI.id_number)
    page.fill("input[name=password]", PASSWORD)
    before = outbox.count(MAI.e164)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/otp"))
    page.fill("input[name=otp]", wait_for_sms(outbox, MAI.e164, before + 1))
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(stack.demo.portal_url + "/")
    shots.take(page, "portal-signed-in")
    assert page.locator("#acr").inner_text() == "LoA3"
