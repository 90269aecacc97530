"""Session fixation of the browser binding (issue 8, item 2).

An attacker who starts an authorization, plants its own page-session cookie in a victim's browser
(cookie tossing from a sibling subdomain) and lets the victim sign in must not be able to finish
that authorization with its own copy of the cookie: the binding is renewed at every successful
authentication step. On an https issuer the cookies carry the ``__Host-`` prefix, which browsers
refuse to accept from a sibling subdomain or with a Domain attribute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.clients import PORTAL_CALLBACK
from tests.support.driver import Browser, csrf_of, query_of
from tests.support.org import LAN
from tests.support.outbox import Outbox
from tests.support.people import AN

SESSION_COOKIE = "__Host-idp_s"
SSO_COOKIE = "__Host-idp_sso"


def planted(attacker: Any, victim: Any) -> None:
    """Copy the attacker's page-session cookie into the victim's browser."""
    cookie = attacker.get_cookie(SESSION_COOKIE)
    assert cookie is not None, "the attacker's /authorize set no page-session cookie"
    victim.set_cookie(SESSION_COOKIE, cookie.value, domain="localhost")


def attacker_starts(app: Any, outbox: Outbox) -> tuple[Browser, str]:
    attacker = Browser(app.test_client(), outbox)
    response, _ = attacker.start()
    chooser = attacker.follow(response)
    assert chooser.status_code == 200 and chooser.request.path.startswith("/login/")
    return attacker, chooser.request.path.split("/")[2]


def test_a_planted_session_cookie_gives_the_attacker_nothing_after_the_victim_signs_in(
    app: Any, outbox: Outbox
) -> None:
    attacker, ix_id = attacker_starts(app, outbox)
    victim = Browser(app.test_client(), outbox)
    planted(attacker.client, victim.client)
    # The victim is lured to the attacker's sign-in page and signs in with password and OTP.
    response = victim.submit_password(f"/login/{ix_id}/citizen", AN.username, AN.password)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    # Already after the password, the attacker's copy no longer reaches the interaction.
    assert attacker.client.get(f"/login/{ix_id}/otp").status_code == 400
    response = victim.submit_otp(response.headers["Location"], outbox.last_code(AN.phone))
    assert response.status_code == 302
    resume = response.headers["Location"]
    # The attacker replays the resume with its own copy: an expired page, no code, no SSO cookie.
    stolen = attacker.client.get(resume)
    assert stolen.status_code == 400, stolen.headers.get("Location")
    assert "Location" not in stolen.headers
    assert "Phiên đăng nhập đã hết hạn" in stolen.get_data(as_text=True)
    assert attacker.client.get_cookie(SSO_COOKIE) is None
    # The victim, who signed in, goes on to the portal with a code.
    done = victim.follow(victim.client.get(resume))
    assert done.status_code == 302 and done.headers["Location"].startswith(PORTAL_CALLBACK + "?")
    assert "code" in query_of(done.headers["Location"])


def test_the_organization_door_renews_the_binding_too(app: Any, outbox: Outbox) -> None:
    attacker, ix_id = attacker_starts(app, outbox)
    victim = Browser(app.test_client(), outbox)
    planted(attacker.client, victim.client)
    door = f"/login/{ix_id}/organization"
    page = victim.client.get(door)
    response = victim.client.post(
        door,
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "username": LAN.username,
            "password": LAN.password,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    second_factor = urlsplit(response.headers["Location"]).path
    assert second_factor.startswith(door + "/"), second_factor
    assert attacker.client.get(second_factor).status_code == 400
    assert victim.client.get(second_factor).status_code == 200


def test_the_page_session_is_renewed_at_sign_in(app: Any, outbox: Outbox) -> None:
    """The cookie the browser held before the password is not the one it holds after, and its CSRF
    token is new: a form token the attacker read before does not work after."""
    browser = Browser(app.test_client(), outbox)
    response, _ = browser.start()
    chooser = browser.follow(response)
    ix_id = chooser.request.path.split("/")[2]
    before = browser.client.get_cookie(SESSION_COOKIE).value
    form = browser.client.get(f"/login/{ix_id}/citizen").get_data(as_text=True)
    old_token = csrf_of(form)
    response = browser.submit_password(f"/login/{ix_id}/citizen", AN.username, AN.password)
    assert response.status_code == 302
    assert browser.client.get_cookie(SESSION_COOKIE).value != before
    otp_page = browser.client.get(urlsplit(response.headers["Location"]).path).get_data(as_text=True)
    assert csrf_of(otp_page) != old_token
    refused = browser.client.post(
        urlsplit(response.headers["Location"]).path, data={"csrf_token": old_token, "otp": "123456"}
    )
    assert refused.status_code == 400


def set_cookies(response: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def test_cookies_of_an_https_issuer_are_host_only(browser: Browser, outbox: Outbox) -> None:
    response, _ = browser.start()
    chooser = browser.follow(response)
    ix_id = chooser.request.path.split("/")[2]
    response = browser.submit_password(f"/login/{ix_id}/citizen", AN.username, AN.password)
    page = browser.client.get(urlsplit(response.headers["Location"]).path)
    final = browser.client.post(
        urlsplit(response.headers["Location"]).path,
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "otp": outbox.last_code(AN.phone),
            "remember": "y",
        },
    )
    seen = set_cookies(final)
    seen.update(set_cookies(browser.client.get(final.headers["Location"])))
    seen.update(set_cookies(browser.client.get("/?lang=en")))
    for name in ("__Host-idp_s", "__Host-idp_sso", "__Host-idp_device", "__Host-idp_lang"):
        assert name in seen, sorted(seen)
        header = seen[name]
        assert "; Secure" in header and "; Path=/" in header and "Domain=" not in header, header
    assert not {"idp_s", "idp_sso", "idp_device", "idp_lang"} & set(seen)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://localhost:8000"])
def test_a_loopback_issuer_keeps_plain_names(make_app: Any, issuer: str) -> None:
    """Browsers keep no Secure cookie from plain http, so a loopback issuer cannot use __Host-."""
    client = make_app(ISSUER=issuer).test_client()
    response = client.get("/?lang=en")
    names = set(set_cookies(response))
    assert "idp_lang" in names and not any(n.startswith("__Host-") for n in names)
