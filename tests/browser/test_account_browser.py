"""The account area in a real browser (Debian's chromium): two portals in one session, a second
browser, signing out the other one (its portals hear of it by back-channel logout) and everywhere,
revoking a consent, keyboard-only use and a phone-sized screen. Screenshots of every step are
saved under test-artifacts/screenshots/.
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
from tests.support.pages import open_account, sign_in_at_portal
from tests.support.people import AN, BINH, CUC, DUNG

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PORTAL = "Cổng Dịch vụ công (demo)"
PARTNER = "Ứng dụng đối tác (demo)"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    yield from start_demo_stack(tmp_path_factory.mktemp("account"), partner=True)


@pytest.fixture
def contexts(chromium: Any) -> Iterator[Any]:
    opened: list[Any] = []

    def new(**options: Any) -> Any:
        context = chromium.new_context(
            **{"viewport": {"width": 1280, "height": 900}, "locale": "vi-VN", **options}
        )
        opened.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        return page

    yield new
    for context in opened:
        context.close()


def signed_in_at(page: Any, url: str) -> bool:
    page.goto(url + "/")
    return "Bạn chưa đăng nhập" not in page.locator("body").inner_text()


def session_cards(page: Any) -> Any:
    return page.locator("li.session")


def test_two_portals_two_browsers_sign_out_one_and_all(
    contexts: Any, stack: DemoStack, request: pytest.FixtureRequest
) -> None:
    shots = Shots(request.node.name)
    desk = contexts()
    assert stack.partner_url
    # One sign-in serves both portals: the partner asks only for consent.
    sign_in_at_portal(desk, stack, AN)
    desk.goto(stack.partner_url + "/login")
    desk.wait_for_url(re.compile(r"/consent/"))
    shots.take(desk, "consent")
    assert PARTNER in desk.locator("main").inner_text()
    desk.get_by_role("button", name="Đồng ý").click()
    desk.wait_for_url(stack.partner_url + "/")
    # From the portal's link to the account area: no password asked.
    desk.goto(stack.portal_url + "/")
    desk.get_by_role("link", name=re.compile("Quản lý tài khoản đăng nhập")).click()
    desk.wait_for_url(stack.idp.base + "/account")
    shots.take(desk, "account")
    assert AN.name in desk.locator("main").inner_text()
    desk.get_by_role("link", name="Phiên đăng nhập", exact=True).click()
    shots.take(desk, "one-session-two-portals")
    assert session_cards(desk).count() == 1
    card = session_cards(desk).first
    assert "Thiết bị này" in card.inner_text()
    assert PORTAL in card.inner_text() and PARTNER in card.inner_text()
    assert "Chrome trên Linux" in card.inner_text()

    # A second browser, a phone: a second session.
    phone = contexts(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, user_agent=ANDROID
    )
    sign_in_at_portal(phone, stack, AN)
    open_account(phone, stack, AN, "/account/sessions")
    shots.take(phone, "phone-two-sessions")
    assert session_cards(phone).count() == 2
    assert "Chrome trên Android" in session_cards(phone).first.inner_text()
    assert "Thiết bị này" in session_cards(phone).first.inner_text()
    # The phone signs the desk out: both of the desk's portals hear of it by back-channel logout.
    other = session_cards(phone).nth(1)
    assert "Chrome trên Linux" in other.inner_text()
    other.get_by_role("button", name="Đăng xuất phiên này").click()
    phone.wait_for_url(re.compile(r"/account/sessions\?done="))
    shots.take(phone, "phone-signed-out-the-desk")
    assert "Đã đăng xuất thiết bị đó" in phone.locator("[role=status]").inner_text()
    assert session_cards(phone).count() == 1
    assert not signed_in_at(desk, stack.portal_url)
    assert not signed_in_at(desk, stack.partner_url)
    shots.take(desk, "desk-portal-signed-out")
    assert signed_in_at(phone, stack.portal_url)

    # The desk signs in again; the phone signs out everywhere (a recent sign-in: no password).
    sign_in_at_portal(desk, stack, AN)
    open_account(phone, stack, AN, "/account/sessions")
    assert session_cards(phone).count() == 2
    phone.get_by_role("button", name="Đăng xuất khỏi tất cả thiết bị").click()
    phone.wait_for_url(re.compile(r"/account/signed-out"))
    shots.take(phone, "phone-signed-out-everywhere")
    assert "Bạn đã đăng xuất khỏi tất cả thiết bị" in phone.locator("main").inner_text()
    assert not signed_in_at(desk, stack.portal_url)
    assert not signed_in_at(phone, stack.portal_url)
    phone.goto(stack.idp.base + "/account")
    assert "/login/" in phone.url  # the account area asks to sign in again


def test_revoking_a_consent_in_the_browser(
    contexts: Any, stack: DemoStack, request: pytest.FixtureRequest
) -> None:
    shots = Shots(request.node.name)
    page = contexts()
    assert stack.partner_url
    sign_in_at_portal(page, stack, BINH, stack.partner_url)  # consent given on the way
    assert signed_in_at(page, stack.partner_url)
    open_account(page, stack, BINH, "/account/consents")
    shots.take(page, "consents")
    consent = page.locator("li.consent")
    assert consent.count() == 1 and PARTNER in consent.inner_text()
    assert "Họ và tên, ngày sinh, giới tính" in consent.inner_text()
    consent.get_by_role("button", name="Thu hồi quyền").click()
    page.wait_for_url(re.compile(r"/account/consents\?done=revoked"))
    shots.take(page, "revoked")
    assert page.locator("li.consent").count() == 0
    assert "Đã thu hồi quyền" in page.locator("[role=status]").inner_text()
    # The partner was signed out (back-channel logout) and must ask again.
    assert not signed_in_at(page, stack.partner_url)
    page.get_by_role("link", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/consent/"))
    shots.take(page, "consent-asked-again")


def test_keyboard_only_on_the_account_pages(contexts: Any, stack: DemoStack) -> None:
    page = contexts()
    sign_in_at_portal(page, stack, CUC)
    assert stack.partner_url
    sign_in_at_portal(page, stack, CUC, stack.partner_url)
    page.goto(stack.idp.base + "/account")
    page.wait_for_url(stack.idp.base + "/account")

    def tab_to(predicate: str, limit: int = 25) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(predicate):
                return
        pytest.fail(f"not reachable with Tab: {predicate}")

    # The skip link comes first and leads to the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip')")
    tab_to("document.activeElement.textContent.trim() === 'Chia sẻ thông tin'")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.idp.base + "/account/consents")
    tab_to("document.activeElement.textContent.trim() === 'Thu hồi quyền'")
    focus = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth; })()"
    )
    assert focus.startswith("solid") and not focus.endswith(" 0px"), focus  # the focus is visible
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"done=revoked"))
    assert page.locator("li.consent").count() == 0
    tab_to("document.activeElement.textContent.trim() === 'Phiên đăng nhập'")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.idp.base + "/account/sessions")
    tab_to("document.activeElement.textContent.trim() === 'Đăng xuất trên thiết bị này'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/account/signed-out"))
    assert not signed_in_at(page, stack.portal_url)


def test_phone_sized_account_pages(contexts: Any, stack: DemoStack, request: pytest.FixtureRequest) -> None:
    shots = Shots(request.node.name)
    page = contexts(
        viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True, user_agent=ANDROID
    )
    assert stack.partner_url
    sign_in_at_portal(page, stack, DUNG, stack.partner_url)
    for path in ("/account", "/account/sessions", "/account/consents"):
        open_account(page, stack, DUNG, path)
        shots.take(page, path.strip("/").replace("/", "-"))
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375, path
        heights = page.locator("main button, main a.door, nav.account-nav a").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 44, (path, heights)


def test_english_account_pages(contexts: Any, stack: DemoStack) -> None:
    page = contexts(locale="en-GB")
    open_account(page, stack, AN, "/account/sessions")
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.url.startswith(stack.idp.base + "/account/sessions")
