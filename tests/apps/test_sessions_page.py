"""The sessions page (/account/sessions): the person's SSO sessions with device, masked address,
times and the portals of each; "this device"; signing out one session or all of them, which ends
the session, revokes its online grants and sends back-channel logout to its portals.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from idp.sessions.devices import describe_user_agent, mask_address
from tests.support.account import follow, open_account, post_form, sign_in_on_page
from tests.support.backchannel import BackchannelReceiver
from tests.support.clients import PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import Browser, basic, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH

ONEGATE = "https://onegate.example.vn/cb"
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (ANDROID_CHROME, ("Chrome", "Android")),
        (WINDOWS_EDGE, ("Edge", "Windows")),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Mobile/15E148 Safari/604.1",
            ("Safari", "iPhone"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "coc_coc_browser/122.0.258 Chrome/116.0.5845.258 Safari/537.36",
            ("Cốc Cốc", "Windows"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; V2207) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0 "
            "Mobile Safari/537.36 Zalo android/12100578 ZaloTheme/light ZaloLanguage/vi",
            ("Zalo", "Android"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
            ("Firefox", "macOS"),
        ),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0", ("Chrome", "Linux")),
        ("curl/8.5.0", ("", "")),
        ("", ("", "")),
        (None, ("", "")),
    ],
)
def test_user_agent_summary(user_agent: str | None, expected: tuple[str, str]) -> None:
    assert describe_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("203.113.10.25", "203.113.10.0/24"),
        ("14.161.0.1", "14.161.0.0/24"),
        ("2001:ee0:4141:88ab::5", "2001:ee0:4141::/48"),
        ("::ffff:203.113.10.25", "203.113.10.0/24"),
        ("unknown", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_address_masked_to_its_network(address: str | None, masked: str) -> None:
    assert mask_address(address) == masked


# -- helpers ---------------------------------------------------------------------------------
def new_browser(
    app: Any, outbox: Outbox, user_agent: str = ANDROID_CHROME, address: str = "203.113.10.25"
) -> Browser:
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": address})
    return Browser(client, outbox)


def sessions_page(browser: Browser, person: Any = AN) -> tuple[Any, str]:
    page = open_account(browser, person, "/account/sessions")
    assert page.status_code == 200 and page.request.path == "/account/sessions", page.request.path
    return page, page.get_data(as_text=True)


def cards(html: str) -> list[str]:
    """The session cards of the page, each up to the end of its sign-out form."""
    return [part.split("</form>")[0] for part in html.split('<li class="card session"')[1:]]


def sid_of(card: str) -> str:
    match = re.search(r'name="sid" value="([^"]+)"', card)
    assert match
    return match.group(1)


def current_sid(app: Any, browser: Browser) -> str:
    cookie = browser.client.get_cookie("__Host-idp_sso")
    assert cookie is not None
    with app.app_context():
        session = app.extensions["idp"].sessions.load(cookie.value)
    assert session is not None
    return str(session.sid)


def portal_tokens(browser: Browser, client: Any) -> dict[str, Any]:
    callback, auth = browser.sign_in(AN.username, AN.password, scope="openid profile")
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": PORTAL_CALLBACK,
        "code_verifier": auth.verifier,
    }
    response = client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET))
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def at_onegate(browser: Browser) -> None:
    """The second portal, by single sign-on: no page, a code."""
    callback, _ = browser.sign_in(AN.username, AN.password, client_id="portal-post", redirect_uri=ONEGATE)
    assert "code" in callback


def passive_at_portal(browser: Browser) -> dict[str, str]:
    response, _ = browser.start(prompt="none")
    return query_of(response.headers["Location"])


def logout_sids(backchannel: BackchannelReceiver, path: str) -> list[str]:
    import base64

    found = []
    for token in backchannel.tokens_for(path):
        body = token.split(".")[1]
        found.append(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sid"])
    return found


def audit_actions(app: Any, action: str) -> list[dict[str, Any]]:
    from idp.store.models import AuditEvent, db

    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return [{"account_id": r.account_id, "ip": r.ip, **(r.detail or {})} for r in rows]


# -- what the page shows ---------------------------------------------------------------------
def test_one_session_with_two_portals(app: Any, outbox: Outbox) -> None:
    browser = new_browser(app, outbox)
    browser.sign_in(AN.username, AN.password)
    at_onegate(browser)
    _, html = sessions_page(browser)
    found = cards(html)
    assert len(found) == 1
    card = found[0]
    assert 'data-current="true"' in card and "Thiết bị này" in card
    assert "Chrome trên Android" in card
    assert "203.113.10.0/24" in card and "203.113.10.25" not in html
    assert "Cổng Dịch vụ công tỉnh" in card and "Cổng một cửa" in card
    assert "trang quản lý tài khoản" not in card  # the account area itself is not a portal
    assert re.search(r"\d\d:\d\d, \d\d/\d\d/20\d\d", card)  # Vietnam time, dd/mm/yyyy
    assert "Đăng xuất khỏi tất cả thiết bị" not in html  # nothing else to sign out of


def test_a_second_browser_is_a_second_session(app: Any, outbox: Outbox) -> None:
    phone = new_browser(app, outbox)
    laptop = new_browser(app, outbox, WINDOWS_EDGE, "14.161.0.9")
    phone.sign_in(AN.username, AN.password)
    laptop.sign_in(AN.username, AN.password)
    for browser, mine, other in (
        (phone, "Chrome trên Android", "Edge trên Windows"),
        (laptop, "Edge trên Windows", "Chrome trên Android"),
    ):
        _, html = sessions_page(browser)
        found = cards(html)
        assert len(found) == 2
        assert 'data-current="true"' in found[0] and mine in found[0]  # this device first
        assert 'data-current="false"' in found[1] and other in found[1]
        assert "Đăng xuất khỏi tất cả thiết bị" in html


def test_another_persons_sessions_are_not_shown(app: Any, outbox: Outbox) -> None:
    an, binh = new_browser(app, outbox), new_browser(app, outbox, WINDOWS_EDGE)
    an.sign_in(AN.username, AN.password)
    binh.sign_in(BINH.username, BINH.password, phone=BINH.phone)
    _, html = sessions_page(an)
    assert len(cards(html)) == 1 and "Edge" not in html


# -- signing out ----------------------------------------------------------------------------
def test_signing_out_the_other_session_reaches_its_portals(
    app: Any, client: Any, outbox: Outbox, backchannel: BackchannelReceiver
) -> None:
    phone = new_browser(app, outbox)
    laptop = new_browser(app, outbox, WINDOWS_EDGE, "14.161.0.9")
    tokens = portal_tokens(phone, client)
    at_onegate(phone)
    phone_sid = current_sid(app, phone)
    laptop.sign_in(AN.username, AN.password)
    laptop_sid = current_sid(app, laptop)

    page, html = sessions_page(laptop)
    other = next(c for c in cards(html) if 'data-current="false"' in c)
    assert sid_of(other) == phone_sid
    response = post_form(laptop, page, "/account/sessions/end", sid=phone_sid)
    assert response.status_code == 303
    page = follow(laptop, response)
    assert "Đã đăng xuất thiết bị đó" in page.get_data(as_text=True)
    assert len(cards(page.get_data(as_text=True))) == 1

    # Back-channel logout reached both portals of that session, and none for the laptop's.
    assert logout_sids(backchannel, "/portal").count(phone_sid) == 1
    assert logout_sids(backchannel, "/portal-post").count(phone_sid) == 1
    assert laptop_sid not in logout_sids(backchannel, "/portal")
    # The phone is signed out everywhere: prompt=none says so, its online grant is revoked.
    assert passive_at_portal(phone)["error"] == "login_required"
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic("portal", PORTAL_SECRET),
    )
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert userinfo.status_code == 401
    # The laptop is still signed in.
    assert "code" in passive_at_portal(laptop)
    events = audit_actions(app, "session.signed_out")
    assert len(events) == 1
    assert events[0]["reason"] == "account_signout_other" and events[0]["this_device"] is False
    assert events[0]["portals"] == ["portal", "portal-post"] and events[0]["ip"] == "14.161.0.9"


def test_a_session_of_someone_else_cannot_be_ended(app: Any, outbox: Outbox) -> None:
    an, binh = new_browser(app, outbox), new_browser(app, outbox, WINDOWS_EDGE)
    an.sign_in(AN.username, AN.password)
    binh.sign_in(BINH.username, BINH.password, phone=BINH.phone)
    binh_sid = current_sid(app, binh)
    page, _ = sessions_page(an)
    response = follow(an, post_form(an, page, "/account/sessions/end", sid=binh_sid))
    assert "Phiên đăng nhập đó đã kết thúc trước đó" in response.get_data(as_text=True)
    assert "code" in passive_at_portal(binh)
    assert audit_actions(app, "session.signed_out") == []


@pytest.mark.parametrize("token", [None, "forged"])
def test_signing_out_needs_the_csrf_token(app: Any, outbox: Outbox, token: str | None) -> None:
    phone, laptop = new_browser(app, outbox), new_browser(app, outbox, WINDOWS_EDGE)
    phone.sign_in(AN.username, AN.password)
    laptop.sign_in(AN.username, AN.password)
    sessions_page(laptop)
    data = {"sid": current_sid(app, phone)}
    if token:
        data["csrf_token"] = token
    for path in ("/account/sessions/end", "/account/sessions/end-all", "/account/signout"):
        assert laptop.client.post(path, data=data).status_code == 400
    assert "code" in passive_at_portal(phone) and "code" in passive_at_portal(laptop)


def test_signing_out_this_device(app: Any, outbox: Outbox, backchannel: BackchannelReceiver) -> None:
    browser = new_browser(app, outbox)
    browser.sign_in(AN.username, AN.password)
    sid = current_sid(app, browser)
    page, html = sessions_page(browser)
    response = post_form(browser, page, "/account/sessions/end", sid=sid)
    assert response.status_code == 303
    response = follow(browser, response)
    assert response.request.path == "/account/signed-out"
    assert "Bạn đã đăng xuất trên thiết bị này" in response.get_data(as_text=True)
    assert browser.client.get_cookie("__Host-idp_sso") is None  # the cookie is deleted
    assert sid in logout_sids(backchannel, "/portal")
    assert passive_at_portal(browser)["error"] == "login_required"
    assert follow(browser, browser.client.get("/account")).request.path.startswith("/login/")
    assert audit_actions(app, "session.signed_out")[0]["reason"] == "account_signout_this"


def test_the_sign_out_link_of_every_account_page(app: Any, outbox: Outbox) -> None:
    browser = new_browser(app, outbox)
    browser.sign_in(AN.username, AN.password)
    page = open_account(browser)
    response = follow(browser, post_form(browser, page, "/account/signout"))
    assert "Bạn đã đăng xuất trên thiết bị này" in response.get_data(as_text=True)
    assert passive_at_portal(browser)["error"] == "login_required"


def backdate(app: Any, seconds: int) -> None:
    store = app.extensions["idp"].store
    for key in store.client.scan_iter(match=store.prefix + "sso:*"):
        data = json.loads(store.client.get(key))
        data["auth_time"] -= seconds
        store.client.set(key, json.dumps(data), keepttl=True)


def test_signing_out_everywhere_asks_for_a_recent_sign_in_first(
    app: Any, outbox: Outbox, backchannel: BackchannelReceiver
) -> None:
    phone, laptop = new_browser(app, outbox), new_browser(app, outbox, WINDOWS_EDGE)
    phone.sign_in(AN.username, AN.password)
    at_onegate(phone)
    laptop.sign_in(AN.username, AN.password)
    sids = {current_sid(app, phone), current_sid(app, laptop)}
    page, _ = sessions_page(laptop)
    backdate(app, 3600)  # both sign-ins are an hour old
    response = post_form(laptop, page, "/account/sessions/end-all")
    assert response.status_code == 303 and "max_age=600" in response.headers["Location"]
    login = follow(laptop, response)
    assert login.request.path.startswith("/login/")  # the password and OTP again
    assert "code" in passive_at_portal(phone)  # nothing ended yet
    page = sign_in_on_page(laptop, login, AN)
    html = page.get_data(as_text=True)
    assert page.request.path == "/account/sessions" and "một lần nữa để hoàn tất" in html
    assert current_sid(app, laptop) in sids  # the same session, signed in again
    response = follow(laptop, post_form(laptop, page, "/account/sessions/end-all"))
    assert response.request.path == "/account/signed-out"
    assert "Bạn đã đăng xuất khỏi tất cả thiết bị" in response.get_data(as_text=True)
    for browser in (phone, laptop):
        assert passive_at_portal(browser)["error"] == "login_required"
    assert sids <= set(logout_sids(backchannel, "/portal"))
    assert current_sid_or_none(app, phone) is None
    events = audit_actions(app, "session.signed_out")
    assert sorted(e["reason"] for e in events) == ["account_signout_all"] * 2


def current_sid_or_none(app: Any, browser: Browser) -> str | None:
    cookie = browser.client.get_cookie("__Host-idp_sso")
    if cookie is None:
        return None
    with app.app_context():
        session = app.extensions["idp"].sessions.load(cookie.value)
    return None if session is None else str(session.sid)


def test_a_recent_sign_in_signs_out_everywhere_at_once(app: Any, outbox: Outbox) -> None:
    phone, laptop = new_browser(app, outbox), new_browser(app, outbox, WINDOWS_EDGE)
    phone.sign_in(AN.username, AN.password)
    laptop.sign_in(AN.username, AN.password)
    page, _ = sessions_page(laptop)
    response = post_form(laptop, page, "/account/sessions/end-all")
    assert response.status_code == 303 and "/account/signed-out" in response.headers["Location"]
    assert passive_at_portal(phone)["error"] == "login_required"
    assert passive_at_portal(laptop)["error"] == "login_required"
