"""The account area (/account): signing in as idp's own relying party `idp-account` through
/authorize (the same pages and rules as a portal), the callback that redeems the code, and the gate
that every account page shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from idp.clients import ClientConfigError, load_clients
from tests.support.account import ISSUER, follow, open_account, post_form, sign_in_on_page
from tests.support.driver import Browser, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH, DUNG

ACCOUNT_PAGES = ["/account", "/account/sessions", "/account/consents"]


def authorize_query(response: Any) -> dict[str, str]:
    assert response.status_code in (302, 303), response.status_code
    location = response.headers["Location"]
    assert urlsplit(location).path == "/authorize", location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def is_signed_in_page(response: Any, name: str = AN.name) -> bool:
    return response.status_code == 200 and name in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_an_account_page_without_a_session_goes_through_authorize(browser: Browser, path: str) -> None:
    query = authorize_query(browser.client.get(path))
    assert query["client_id"] == "idp-account"
    assert query["redirect_uri"] == ISSUER + "/account/callback"
    assert query["response_type"] == "code" and query["scope"] == "openid"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["ui_locales"] == "vi"
    assert "max_age" not in query


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_sign_in_uses_the_portals_pages_and_returns_to_the_page(browser: Browser, path: str) -> None:
    chooser = follow(browser, browser.client.get(path))
    assert chooser.status_code == 200 and chooser.request.path.startswith("/login/")
    html = chooser.get_data(as_text=True)
    assert "Đăng nhập để sử dụng <strong>trang quản lý tài khoản</strong>" in html  # as for a portal
    assert html.count("data-account-kind=") >= 4  # the same four doors
    page = sign_in_on_page(browser, chooser, AN)
    assert page.request.path == path
    assert is_signed_in_page(page) if path == "/account" else page.status_code == 200


def test_an_open_sso_session_opens_the_account_without_asking(browser: Browser, outbox: Outbox) -> None:
    browser.sign_in(AN.username, AN.password)  # at a portal
    sent = outbox.count()
    page = open_account(browser)  # no person given: a sign-in page would fail
    assert is_signed_in_page(page)
    assert outbox.count() == sent
    html = page.get_data(as_text=True)
    assert "*********234" in html  # the ID number, masked
    assert AN.username not in html


def test_the_account_signs_in_with_the_acr_rules_of_a_portal(app: Any, browser: Browser) -> None:
    """A locked account gets no account page: /authorize ends its session like for a portal."""
    browser.sign_in(AN.username, AN.password)
    assert is_signed_in_page(open_account(browser))
    from idp.store.models import Account, db

    with app.app_context():
        db.session.execute(update(Account).where(Account.username == AN.username).values(status="locked"))
        db.session.commit()
    response = follow(browser, browser.client.get("/account"))
    assert response.request.path.startswith("/login/")  # asked to sign in again, not shown the page


def test_signing_out_at_a_portal_signs_the_account_area_out(browser: Browser) -> None:
    callback, _ = browser.sign_in(AN.username, AN.password)
    assert is_signed_in_page(open_account(browser))
    logout = browser.client.get("/logout")  # no id_token_hint: the person confirms
    confirm = post_form(browser, logout, "/logout/confirm", decision="logout")
    assert confirm.status_code == 303 and confirm.headers["Location"] == "/logout/done"
    authorize_query(browser.client.get("/account"))


def test_another_person_signing_in_replaces_the_account_session(browser: Browser, outbox: Outbox) -> None:
    assert is_signed_in_page(open_account(browser, AN))
    response, _ = browser.start(prompt="login")
    page = browser.follow(response)
    response = browser.submit_password(page.request.path, BINH.username, BINH.password)
    browser.follow(browser.submit_otp(response.headers["Location"], outbox.last_code(BINH.phone)))
    page = open_account(browser, BINH)
    assert is_signed_in_page(page, BINH.name) and AN.name not in page.get_data(as_text=True)


def _start_callback(browser: Browser) -> tuple[dict[str, str], str]:
    """Sign in at the account area up to (not including) its callback: (callback query, the URL)."""
    chooser = follow(browser, browser.client.get("/account"))
    response = browser.submit_password(chooser.request.path, AN.username, AN.password)
    response = browser.submit_otp(response.headers["Location"], browser.outbox.last_code(AN.phone))
    for _ in range(5):
        location = response.headers["Location"]
        if location.startswith(ISSUER + "/account/callback"):
            return query_of(location), location[len(ISSUER) :]
        response = browser.client.get(location)
    raise AssertionError("no callback")


@pytest.mark.parametrize(
    "tamper",
    ["no-state", "other-state", "no-iss", "other-iss", "no-code", "other-code", "replay"],
)
def test_the_callback_refuses_what_it_did_not_start(browser: Browser, tamper: str) -> None:
    query, url = _start_callback(browser)
    if tamper == "replay":
        assert follow(browser, browser.client.get(url)).request.path == "/account"
        response = browser.client.get(url)
    else:
        changed = dict(query)
        if tamper == "no-state":
            changed.pop("state")
        elif tamper == "other-state":
            changed["state"] = "x" * 32
        elif tamper == "no-iss":
            changed.pop("iss")
        elif tamper == "other-iss":
            changed["iss"] = "https://evil.example"
        elif tamper == "no-code":
            changed.pop("code")
        else:
            changed["code"] = "y" * 43
        response = browser.client.get("/account/callback", query_string=changed)
    assert response.status_code == 400
    assert "Chưa vào được trang quản lý tài khoản" in response.get_data(as_text=True)
    if tamper != "replay":  # the account area did not sign in
        authorize_query(browser.client.get("/account"))


def test_the_callback_is_bound_to_the_browser_that_started(app: Any, browser: Browser) -> None:
    _, url = _start_callback(browser)
    other = app.test_client()
    response = other.get(url)
    assert response.status_code == 400


def test_cancelling_at_the_chooser_says_so(browser: Browser) -> None:
    chooser = follow(browser, browser.client.get("/account/consents"))
    response = follow(browser, post_form(browser, chooser, chooser.request.path + "/cancel"))
    assert response.status_code == 200 and response.request.path == "/account/signed-out"
    html = response.get_data(as_text=True)
    assert "Bạn chưa đăng nhập" in html
    assert "/account/login?next=/account/consents" in html.replace("%2F", "/")


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/account",
        "/authorize?client_id=portal",
        "/account/callback?x=1",
        "/account/../authorize?client_id=portal",
        "/accounting",
        "/\\evil.example/account",
    ],
)
def test_after_sign_in_only_account_pages_are_reached(browser: Browser, next_path: str) -> None:
    chooser = follow(browser, browser.client.get("/account/login", query_string={"next": next_path}))
    page = sign_in_on_page(browser, chooser, AN)
    assert page.request.path == "/account"


def test_the_account_page_lists_what_the_person_is(browser: Browser) -> None:
    page = open_account(browser, BINH)
    html = page.get_data(as_text=True)
    assert BINH.name in html and "Tài khoản công dân" in html and "Mức 3" in html
    assert "098****321" in html  # the OTP phone, masked
    assert BINH.username not in html
    assert '<html lang="vi">' in html


def test_english_switch(browser: Browser) -> None:
    open_account(browser, AN)
    page = browser.client.get("/account?lang=en")
    assert '<html lang="en">' in page.get_data(as_text=True)


def test_idp_account_is_reserved_in_clients_yaml(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(
        "clients:\n  - client_id: idp-account\n    client_name: x\n"
        "    redirect_uris: [https://x.example/cb]\n    token_endpoint_auth_method: none\n",
        encoding="utf-8",
    )
    with pytest.raises(ClientConfigError, match="reserved"):
        load_clients(path, {})


def test_a_code_of_the_account_area_gives_no_tokens_at_the_token_endpoint(browser: Browser) -> None:
    """Redeemed in-process: the token endpoint finds the code already consumed."""
    query, url = _start_callback(browser)
    follow(browser, browser.client.get(url))
    response = browser.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "client_id": "idp-account",
            "redirect_uri": ISSUER + "/account/callback",
            "code_verifier": "z" * 43,
        },
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_signin_is_audited_for_the_account_area(app: Any, browser: Browser) -> None:
    open_account(browser, AN)
    from idp.store.models import AuditEvent, db

    with app.app_context():
        clients = db.session.execute(
            select(AuditEvent.client_id).where(AuditEvent.action == "signin")
        ).scalars()
        assert "idp-account" in list(clients)


def test_a_form_sent_after_the_session_ended_comes_back_to_a_page(browser: Browser) -> None:
    """A post cannot be replayed after the sign-in pages: the person lands on the account's home."""
    browser.sign_in(AN.username, AN.password)
    sessions = open_account(browser, AN, "/account/sessions")
    logout = browser.client.get("/logout")
    post_form(browser, logout, "/logout/confirm", decision="logout")  # signed out in another tab
    response = post_form(browser, sessions, "/account/sessions/end", sid="whatever")
    assert authorize_query(response)["client_id"] == "idp-account"
    page = sign_in_on_page(browser, follow(browser, response), AN)
    assert page.request.path == "/account" and is_signed_in_page(page)


def test_an_old_cmnd_account_shows_its_cmnd_number(browser: Browser) -> None:
    page = open_account(browser, DUNG)
    html = page.get_data(as_text=True)
    assert "Số chứng minh nhân dân (cũ)" in html and "******567" in html
    assert "Số định danh cá nhân</dt>" not in html and DUNG.username not in html


def test_a_staff_account_shows_its_organization(browser: Browser) -> None:
    """The account area serves organization staff too (signed in through the organization door)."""
    from tests.support.org import MINH, OrgDoor, fresh_totp_code

    door = OrgDoor(browser)
    door.password(MINH.username, MINH.password)
    door.post(door.path("method"), method="totp")
    browser.follow(door.post(door.path("app"), otp=fresh_totp_code(MINH.totp_secret or "")))
    html = open_account(browser).get_data(as_text=True)
    assert "Tài khoản tổ chức" in html and MINH.org_name in html and MINH.name in html
