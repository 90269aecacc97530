"""Logout: RP-initiated (OpenID Connect RP-Initiated Logout 1.0) with and without id_token_hint,
back-channel logout tokens to every relying party of the session (Back-Channel Logout 1.0), and
what happens to the session's tokens.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.support.backchannel import BackchannelReceiver
from tests.support.clients import PORTAL_CALLBACK, PORTAL_SECRET, POST_SECRET
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH

ISSUER = "https://idp.example.vn"
SIGNED_OUT = "https://portal.example.vn/signed-out"
ONEGATE = "https://onegate.example.vn/cb"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def tokens_at(
    client: Any, client_id: str, callback: dict[str, str], verifier: str | None, redirect_uri: str
) -> dict[str, Any]:
    assert "code" in callback, callback
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": redirect_uri,
    }
    if verifier:
        data["code_verifier"] = verifier
    if client_id == "portal-post":
        response = client.post("/token", data={**data, "client_id": client_id, "client_secret": POST_SECRET})
    else:
        response = client.post("/token", data=data, headers=basic(client_id, PORTAL_SECRET))
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def sign_in_portal(browser: Browser, person: Any = AN, scope: str = "openid profile") -> dict[str, Any]:
    callback, auth = browser.sign_in(person.username, person.password, phone=person.phone, scope=scope)
    return tokens_at(browser.client, "portal", callback, auth.verifier, PORTAL_CALLBACK)


def claims_of(client: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def still_signed_in(browser: Browser) -> bool:
    response, _ = browser.start(prompt="none")
    callback = query_of(response.headers["Location"])
    assert "code" in callback or callback.get("error") == "login_required", callback
    return "code" in callback


def refresh(client: Any, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET))


def logout_tokens(backchannel: BackchannelReceiver, path: str, sid: str) -> list[str]:
    """The logout tokens `path` received for the session `sid` (the receiver serves every test)."""
    return [token for token in backchannel.tokens_for(path) if _unverified_claims(token).get("sid") == sid]


def _unverified_claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))  # type: ignore[no-any-return]


# -- RP-initiated logout with id_token_hint ---------------------------------------------------
def test_logout_with_id_token_hint_redirects_with_state(browser: Browser) -> None:
    body = sign_in_portal(browser)
    response = browser.client.get(
        "/logout",
        query_string={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "bye-1",
        },
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(SIGNED_OUT + "?")
    assert query_of(location) == {"state": "bye-1"}
    assert any(c.startswith("__Host-idp_sso=;") for c in response.headers.getlist("Set-Cookie"))
    assert not still_signed_in(browser)


def test_logout_is_audited(browser: Browser, app: Any) -> None:
    body = sign_in_portal(browser)
    browser.client.get("/logout", query_string={"id_token_hint": body["id_token"]})
    with app.app_context():
        from sqlalchemy import select

        from idp.store.models import AuditEvent, db

        actions = db.session.execute(select(AuditEvent.action, AuditEvent.client_id)).all()
    assert ("session.logout", "portal") in actions


def test_logout_with_client_id_and_hint(browser: Browser) -> None:
    body = sign_in_portal(browser)
    params = {
        "id_token_hint": body["id_token"],
        "client_id": "portal",
        "post_logout_redirect_uri": SIGNED_OUT,
    }
    response = browser.client.post("/logout", data=params)
    assert response.status_code == 302 and response.headers["Location"] == SIGNED_OUT
    assert not still_signed_in(browser)


def test_logout_without_redirect_uri_shows_signed_out_page(browser: Browser) -> None:
    body = sign_in_portal(browser)
    response = browser.client.get("/logout", query_string={"id_token_hint": body["id_token"]})
    # A redirect to idp's own signed-out page (a GET: reload and language switch are harmless).
    assert response.status_code == 303 and response.headers["Location"] == "/logout/done"
    assert "Bạn đã đăng xuất" in browser.client.get("/logout/done").get_data(as_text=True)
    assert not still_signed_in(browser)


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/",
        SIGNED_OUT + "/more",
        SIGNED_OUT + "?next=https://evil.example.com",
        SIGNED_OUT.upper(),
        "https://partner.example.vn/bye",  # registered, but for another client
        PORTAL_CALLBACK,  # a redirect URI, not a post-logout one
    ],
)
def test_unregistered_post_logout_redirect_uri_is_not_followed(browser: Browser, uri: str) -> None:
    body = sign_in_portal(browser)
    response = browser.client.get(
        "/logout",
        query_string={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": uri,
            "state": "s",
        },
    )
    assert response.status_code in (303, 400)
    # Never to the unregistered URI: at most to idp's own signed-out page.
    assert response.headers.get("Location", "/logout/done") == "/logout/done"


@pytest.mark.parametrize("kind", ["foreign-key", "garbage", "client-mismatch"])
def test_bad_logout_request_is_a_page_and_keeps_the_session(browser: Browser, kind: str) -> None:
    body = sign_in_portal(browser)
    params = {"post_logout_redirect_uri": SIGNED_OUT, "state": "s"}
    if kind == "foreign-key":
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "x", "aud": "portal", "iat": now, "exp": now + 60}
        params["id_token_hint"] = jwt.encode(
            {"alg": "ES256"}, claims, ECKey.generate_key("P-256", private=True)
        )
    elif kind == "garbage":
        params["id_token_hint"] = "not.a.token"
    else:
        params.update(id_token_hint=body["id_token"], client_id="partner")
    response = browser.client.get("/logout", query_string=params)
    assert response.status_code == 400 and "Location" not in response.headers
    assert still_signed_in(browser)


# -- without proof: the person confirms ------------------------------------------------------------
def test_logout_without_id_token_hint_asks_for_confirmation(
    browser: Browser, backchannel: BackchannelReceiver
) -> None:
    body = sign_in_portal(browser)
    sid = claims_of(browser.client, body["id_token"])["sid"]
    page = browser.client.get(
        "/logout", query_string={"client_id": "portal", "post_logout_redirect_uri": SIGNED_OUT}
    )
    assert page.status_code == 200 and "Location" not in page.headers
    html = page.get_data(as_text=True)
    assert "Cổng Dịch vụ công tỉnh" in html and 'action="/logout/confirm"' in html
    assert still_signed_in(browser)  # nothing happened yet
    # Without the CSRF token nothing happens either.
    refused = browser.client.post("/logout/confirm", data={"decision": "logout"})
    assert refused.status_code == 400
    assert still_signed_in(browser)
    page = browser.client.get("/logout")
    done = browser.client.post(
        "/logout/confirm",
        data={"decision": "logout", "csrf_token": csrf_of(page.get_data(as_text=True))},
    )
    # No id_token_hint: nothing proves the redirect URI is the caller's, so idp's own page.
    assert done.status_code == 303 and done.headers["Location"] == "/logout/done"
    assert "Bạn đã đăng xuất" in browser.client.get(done.headers["Location"]).get_data(as_text=True)
    assert not still_signed_in(browser)
    assert len(logout_tokens(backchannel, "/portal", sid)) == 1


def test_declining_the_confirmation_keeps_the_session(browser: Browser) -> None:
    sign_in_portal(browser)
    page = browser.client.get("/logout")
    response = browser.client.post(
        "/logout/confirm",
        data={"decision": "stay", "csrf_token": csrf_of(page.get_data(as_text=True))},
    )
    assert response.status_code == 303
    assert "Bạn vẫn đang đăng nhập" in browser.client.get(response.headers["Location"]).get_data(as_text=True)
    assert still_signed_in(browser)


def test_id_token_hint_of_another_session_asks_for_confirmation(
    browser: Browser, app: Any, outbox: Outbox
) -> None:
    other = Browser(app.test_client(), outbox)
    hint = sign_in_portal(other, BINH)["id_token"]
    sign_in_portal(browser)
    page = browser.client.get(
        "/logout", query_string={"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT}
    )
    assert page.status_code == 200 and "Location" not in page.headers
    assert 'action="/logout/confirm"' in page.get_data(as_text=True)
    assert still_signed_in(browser) and still_signed_in(other)


# -- back-channel logout and tokens -------------------------------------------------------------
def test_backchannel_logout_reaches_every_relying_party_of_the_session(
    browser: Browser, client: Any, backchannel: BackchannelReceiver
) -> None:
    portal = sign_in_portal(browser)
    id_claims = claims_of(client, portal["id_token"])
    sid = id_claims["sid"]
    response, auth = browser.start(client_id="portal-post", redirect_uri=ONEGATE, prompt="none")
    onegate = tokens_at(client, "portal-post", query_of(response.headers["Location"]), auth.verifier, ONEGATE)
    assert claims_of(client, onegate["id_token"])["sid"] == sid
    response, _ = browser.start(
        client_id="mobile", redirect_uri="http://127.0.0.1:5000/oauth/callback", prompt="none"
    )
    assert "code" in query_of(response.headers["Location"])

    response = client.get(
        "/logout",
        query_string={"id_token_hint": portal["id_token"], "post_logout_redirect_uri": SIGNED_OUT},
    )
    assert response.status_code == 302

    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    for path, client_id, alg in (
        ("/portal", "portal", "ES256"),
        ("/portal-post", "portal-post", "RS256"),
    ):
        received = logout_tokens(backchannel, path, sid)
        assert len(received) == 1, (path, backchannel.received)
        token = jwt.decode(received[0], keys, algorithms=["ES256", "RS256"])
        assert token.header["typ"] == "logout+jwt"
        assert token.header["alg"] == alg and token.header["kid"]
        claims = token.claims
        assert claims["iss"] == ISSUER
        assert claims["aud"] == client_id
        assert claims["sid"] == sid and claims["sub"] == id_claims["sub"]
        assert claims["events"] == {EVENT: {}}
        assert "nonce" not in claims
        assert claims["jti"] and abs(claims["iat"] - time.time()) < 60


def test_relying_parties_outside_the_session_hear_nothing(
    browser: Browser, client: Any, backchannel: BackchannelReceiver
) -> None:
    portal = sign_in_portal(browser)
    sid = claims_of(client, portal["id_token"])["sid"]
    client.get("/logout", query_string={"id_token_hint": portal["id_token"]})
    assert len(logout_tokens(backchannel, "/portal", sid)) == 1
    assert logout_tokens(backchannel, "/portal-post", sid) == []


def test_logout_ends_online_tokens_and_keeps_offline_ones(browser: Browser, client: Any) -> None:
    online = sign_in_portal(browser, scope="openid profile")
    response, auth = browser.start(scope="openid profile offline_access", prompt="none")
    offline = tokens_at(
        client, "portal", query_of(response.headers["Location"]), auth.verifier, PORTAL_CALLBACK
    )
    assert "refresh_token" in online and "refresh_token" in offline
    assert refresh(client, online["refresh_token"]).status_code == 200

    response = client.get(
        "/logout",
        query_string={"id_token_hint": online["id_token"], "post_logout_redirect_uri": SIGNED_OUT},
    )
    assert response.status_code == 302

    refused = refresh(client, online["refresh_token"])
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + online["access_token"]})
    assert userinfo.status_code == 401
    kept = refresh(client, offline["refresh_token"])
    assert kept.status_code == 200, kept.json
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + kept.json["access_token"]})
    assert userinfo.status_code == 200 and userinfo.json["name"] == AN.name
