"""Consent: a relying party that is not first party asks the person before it receives anything;
the answer is remembered per person, client and scope; first-party portals never ask.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.clients import PARTNER_CALLBACK, PARTNER_SECRET, PORTAL_CALLBACK
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN

ISSUER = "https://idp.example.vn"
PARTNER = {"client_id": "partner", "redirect_uri": PARTNER_CALLBACK}

SCOPE_TEXT = {
    "profile": "Họ và tên, ngày sinh, giới tính",
    "phone": "Số điện thoại di động đã xác thực",
    "email": "Địa chỉ thư điện tử",
    "citizen": "Số định danh cá nhân (số CCCD)",
}


def sign_in(browser: Browser, outbox: Outbox, **start: Any) -> tuple[Any, Any]:
    """Start an authorization, sign in with password and OTP; returns the next response."""
    response, auth = browser.start(**start)
    response = browser.follow(response)
    assert response.status_code == 200, response.status_code
    response = browser.submit_password(response.request.path, AN.username, AN.password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    response = browser.submit_otp(response.headers["Location"], outbox.last_code(AN.phone))
    return browser.follow(response), auth


def is_consent_page(response: Any) -> bool:
    return response.status_code == 200 and response.request.path.startswith("/consent/")


def decide(browser: Browser, page: Any, decision: str) -> Any:
    html = page.get_data(as_text=True)
    response = browser.client.post(
        page.request.path, data={"csrf_token": csrf_of(html), "decision": decision}
    )
    return browser.follow(response)


def callback_of(response: Any, redirect_uri: str, state: str) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    query = query_of(location)
    assert query["state"] == state and query["iss"] == ISSUER
    return query


def consented(browser: Browser, outbox: Outbox, scope: str = "openid profile phone") -> None:
    page, auth = sign_in(browser, outbox, scope=scope, **PARTNER)
    assert is_consent_page(page)
    assert "code" in callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])


def test_consent_page_lists_the_claims_in_vietnamese(browser: Browser, outbox: Outbox) -> None:
    page, _ = sign_in(browser, outbox, scope="openid profile phone citizen bogus", **PARTNER)
    assert is_consent_page(page)
    html = page.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Ứng dụng đối tác" in html and "muốn nhận các thông tin sau của bạn" in html
    assert SCOPE_TEXT["profile"] in html and SCOPE_TEXT["phone"] in html
    # Neither what was not asked for nor what the client may never have.
    assert SCOPE_TEXT["email"] not in html and SCOPE_TEXT["citizen"] not in html
    assert 'name="decision" value="allow"' in html and 'name="decision" value="deny"' in html


def test_deny_is_access_denied(browser: Browser, outbox: Outbox) -> None:
    page, auth = sign_in(browser, outbox, **PARTNER)
    callback = callback_of(decide(browser, page, "deny"), PARTNER_CALLBACK, auth.params["state"])
    assert callback["error"] == "access_denied" and "code" not in callback
    # Nothing was remembered: the next request asks again.
    response, _ = browser.start(**PARTNER)
    assert is_consent_page(browser.follow(response))


def test_allow_gives_a_code_and_is_remembered(browser: Browser, client: Any, outbox: Outbox) -> None:
    page, auth = sign_in(browser, outbox, scope="openid profile phone", **PARTNER)
    callback = callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": PARTNER_CALLBACK,
        "code_verifier": auth.verifier,
    }
    token = client.post("/token", data=data, headers=basic("partner", PARTNER_SECRET))
    assert token.status_code == 200, token.json
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + token.json["access_token"]})
    assert userinfo.json["phone_number"] == AN.phone
    # Next time: no page at all, with or without prompt=none.
    for extra in ({}, {"prompt": "none"}):
        response, auth = browser.start(scope="openid profile", **PARTNER, **extra)
        assert "code" in callback_of(response, PARTNER_CALLBACK, auth.params["state"])


def test_a_wider_scope_asks_again_for_what_is_new(browser: Browser, outbox: Outbox) -> None:
    consented(browser, outbox, scope="openid profile")
    response, _ = browser.start(scope="openid profile phone", **PARTNER)
    page = browser.follow(response)
    assert is_consent_page(page)
    assert SCOPE_TEXT["phone"] in page.get_data(as_text=True)


def test_prompt_none_without_consent_is_consent_required(browser: Browser, outbox: Outbox) -> None:
    browser.sign_in(AN.username, AN.password)  # signed in at a first-party portal
    response, auth = browser.start(prompt="none", **PARTNER)
    callback = callback_of(response, PARTNER_CALLBACK, auth.params["state"])
    assert callback["error"] == "consent_required" and "code" not in callback


def test_prompt_consent_asks_again(browser: Browser, outbox: Outbox) -> None:
    consented(browser, outbox)
    sent = outbox.count()
    response, auth = browser.start(prompt="consent", **PARTNER)
    page = browser.follow(response)
    assert is_consent_page(page)  # straight to consent: the session is still there
    assert outbox.count() == sent
    callback = callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])
    assert "code" in callback


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_consent_without_csrf_token_is_refused(browser: Browser, outbox: Outbox, token: str | None) -> None:
    page, _ = sign_in(browser, outbox, **PARTNER)
    data = {"decision": "allow"} if token is None else {"decision": "allow", "csrf_token": token}
    response = browser.client.post(page.request.path, data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers
    response, _ = browser.start(prompt="none", **PARTNER)
    assert query_of(response.headers["Location"])["error"] == "consent_required"


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [("portal", PORTAL_CALLBACK), ("portal-post", "https://onegate.example.vn/cb")],
)
def test_first_party_never_asks(browser: Browser, outbox: Outbox, client_id: str, redirect_uri: str) -> None:
    response, auth = sign_in(
        browser,
        outbox,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope="openid profile",
        prompt="consent",
    )
    assert not is_consent_page(response)
    assert "code" in callback_of(response, redirect_uri, auth.params["state"])
    assert not urlsplit(response.headers["Location"]).path.startswith("/consent/")


# -- the claims parameter: what is released is what the person agreed to ------------------------
def exchange(client: Any, code: str, verifier: str | None) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PARTNER_CALLBACK,
        "code_verifier": verifier,
    }
    token = client.post("/token", data=data, headers=basic("partner", PARTNER_SECRET))
    assert token.status_code == 200, token.json
    return token.json


def userinfo_of(client: Any, access_token: str) -> dict[str, Any]:
    response = client.get("/userinfo", headers={"Authorization": "Bearer " + access_token})
    assert response.status_code == 200, response.json
    return response.json


def id_token_claims(jwt: str) -> dict[str, Any]:
    import base64
    import json

    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


CLAIMS_OF_PROFILE_AND_PHONE = '{"userinfo": {"name": null, "phone_number": null}}'


def test_claims_asked_through_the_claims_parameter_are_on_the_consent_page(
    browser: Browser, client: Any, outbox: Outbox
) -> None:
    """scope=openid alone, but name and phone asked by `claims`: the page must say so."""
    page, auth = sign_in(browser, outbox, scope="openid", claims=CLAIMS_OF_PROFILE_AND_PHONE, **PARTNER)
    assert is_consent_page(page)
    html = page.get_data(as_text=True)
    assert "Họ và tên" in html and "Số điện thoại di động đã xác thực" in html
    # What was neither asked for nor may be received is not listed.
    assert "Ngày sinh" not in html and "Số định danh cá nhân" not in html
    callback = callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])
    tokens = exchange(client, callback["code"], auth.verifier)
    info = userinfo_of(client, tokens["access_token"])
    assert info["name"] == AN.name and info["phone_number"] == AN.phone
    assert "birthdate" not in info and "gender" not in info


def test_a_claim_not_yet_consented_asks_again(browser: Browser, client: Any, outbox: Outbox) -> None:
    consented(browser, outbox, scope="openid")
    # Asking for birthdate through `claims` needs the person's agreement; prompt=none cannot get it.
    birthdate = '{"userinfo": {"birthdate": null}}'
    response, auth = browser.start(scope="openid", claims=birthdate, prompt="none", **PARTNER)
    callback = callback_of(response, PARTNER_CALLBACK, auth.params["state"])
    assert callback["error"] == "consent_required" and "code" not in callback
    response, auth = browser.start(scope="openid", claims=birthdate, **PARTNER)
    page = browser.follow(response)
    assert is_consent_page(page), response.headers.get("Location")
    assert "Ngày sinh" in page.get_data(as_text=True)
    callback = callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])
    info = userinfo_of(client, exchange(client, callback["code"], auth.verifier)["access_token"])
    assert info["birthdate"] == "1990-03-15" and "name" not in info
    # Now remembered: the same request needs no page, and prompt=none gets a code.
    response, auth = browser.start(scope="openid", claims=birthdate, prompt="none", **PARTNER)
    assert "code" in callback_of(response, PARTNER_CALLBACK, auth.params["state"])


def test_claims_in_the_id_token_need_consent_too(browser: Browser, client: Any, outbox: Outbox) -> None:
    consented(browser, outbox, scope="openid")
    response, auth = browser.start(scope="openid", claims='{"id_token": {"name": null}}', **PARTNER)
    page = browser.follow(response)
    assert is_consent_page(page)
    assert "Họ và tên" in page.get_data(as_text=True)
    callback = callback_of(decide(browser, page, "deny"), PARTNER_CALLBACK, auth.params["state"])
    assert callback["error"] == "access_denied"


def test_a_claim_the_client_may_not_have_is_neither_asked_nor_released(
    browser: Browser, client: Any, outbox: Outbox
) -> None:
    """partner may not have the citizen scope: citizen_id through `claims` is dropped, not asked."""
    consented(browser, outbox, scope="openid")
    claims = '{"userinfo": {"citizen_id": null}, "id_token": {"citizen_id": {"essential": true}}}'
    response, auth = browser.start(scope="openid", claims=claims, **PARTNER)
    callback = callback_of(response, PARTNER_CALLBACK, auth.params["state"])  # nothing new to agree to
    tokens = exchange(client, callback["code"], auth.verifier)
    assert "citizen_id" not in userinfo_of(client, tokens["access_token"])
    assert "citizen_id" not in id_token_claims(tokens["id_token"])


def test_a_refresh_releases_nothing_the_consent_no_longer_covers(
    browser: Browser, client: Any, outbox: Outbox, app: Any
) -> None:
    """The refresh grant re-reads the consent as the code exchange does: a grant whose claims the
    person's consent does not cover (one from before consents recorded claims, or a consent
    narrowed since) gets no new tokens."""
    from sqlalchemy import update

    from idp.store.models import Consent, db

    page, auth = sign_in(browser, outbox, scope="openid", claims=CLAIMS_OF_PROFILE_AND_PHONE, **PARTNER)
    callback = callback_of(decide(browser, page, "allow"), PARTNER_CALLBACK, auth.params["state"])
    tokens = exchange(client, callback["code"], auth.verifier)
    assert "refresh_token" in tokens, tokens
    again = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic("partner", PARTNER_SECRET),
    )
    assert again.status_code == 200, again.json
    with app.app_context():  # what a consent given before migration 0005 looks like: scopes only
        db.session.execute(update(Consent).values(claims=""))
        db.session.commit()
    refused = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic("partner", PARTNER_SECRET),
    )
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant", refused.json
