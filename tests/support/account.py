"""Drive the account area (/account) through Flask's test client, as a browser would: its sign-in
goes through /authorize as the built-in relying party `idp-account` and back to /account/callback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.support.driver import Browser, csrf_of
from tests.support.people import SandboxPerson

ISSUER = "https://idp.example.vn"


def follow(browser: Browser, response: Any, limit: int = 12) -> Any:
    """Follow redirects within idp (relative, or absolute on the issuer, such as the callback)."""
    for _ in range(limit):
        if response.status_code not in (301, 302, 303):
            return response
        location = response.headers["Location"]
        if location.startswith(ISSUER + "/"):
            location = location[len(ISSUER) :]
        parts = urlsplit(location)
        if parts.scheme or parts.netloc:
            return response  # a relying party's redirect URI
        response = browser.client.get(location)
    raise AssertionError("too many redirects")


def sign_in_on_page(browser: Browser, page: Any, person: SandboxPerson) -> Any:
    """On the chooser or the citizen page of an interaction: password, then OTP; the next response."""
    path = page.request.path
    assert path.startswith("/login/"), path
    response = browser.submit_password(path, person.username, person.password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    response = browser.submit_otp(response.headers["Location"], browser.outbox.last_code(person.phone))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return follow(browser, response)


def open_account(browser: Browser, person: SandboxPerson | None = None, path: str = "/account") -> Any:
    """Open an account page; sign in as `person` if the sign-in pages appear. Returns the page."""
    response = follow(browser, browser.client.get(path))
    if response.status_code == 200 and response.request.path.startswith("/login/"):
        assert person is not None, "the account area asked to sign in"
        response = sign_in_on_page(browser, response, person)
    return response


def post_form(browser: Browser, page: Any, action: str, **fields: str) -> Any:
    """Submit a form of `page` (its CSRF token) to `action`; the response is not followed."""
    return browser.client.post(action, data={"csrf_token": csrf_of(page.get_data(as_text=True)), **fields})
