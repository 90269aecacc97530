"""Single sign-on across relying parties: prompt, max_age, id_token_hint, login_hint, ui_locales,
and the assurance level a relying party asks for (acr_values, an essential acr, require_acr).
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import update

from tests.support.clients import PORTAL_CALLBACK, PORTAL_SECRET, POST_SECRET
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH

ISSUER = "https://idp.example.vn"
ONEGATE = "https://onegate.example.vn/cb"
STRICT = "https://strict.example.vn/cb"
LOOPBACK_MOBILE = "http://127.0.0.1:50000/oauth/callback"
ESSENTIAL_LOA3 = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA3"]}}})


def tokens(
    client: Any, client_id: str, callback: dict[str, str], verifier: str | None, redirect_uri: str
) -> dict[str, Any]:
    """Exchange the callback's code as the relying party `client_id` would."""
    assert "code" in callback, callback
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": redirect_uri,
    }
    if verifier:
        data["code_verifier"] = verifier
    headers = {}
    if client_id == "portal-post":
        data.update(client_id=client_id, client_secret=POST_SECRET)
    elif client_id == "mobile":
        data["client_id"] = client_id
    else:
        headers = basic(client_id, PORTAL_SECRET)
    response = client.post("/token", data=data, headers=headers)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def id_token_claims(client: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def sign_in_claims(browser: Browser, client: Any, person: Any = AN, **start: Any) -> dict[str, Any]:
    """Sign in at the portal (or as told) and return the ID token's claims."""
    client_id = start.setdefault("client_id", "portal")
    redirect_uri = start.setdefault("redirect_uri", PORTAL_CALLBACK)
    callback, auth = browser.sign_in(person.username, person.password, **start)
    body = tokens(client, client_id, callback, auth.verifier, redirect_uri)
    return id_token_claims(client, body["id_token"])


def passive(
    browser: Browser, client_id: str = "portal", redirect_uri: str = PORTAL_CALLBACK, **extra: str
) -> tuple[dict[str, str], Any]:
    """An authorization request that must be answered without any page."""
    response, auth = browser.start(client_id=client_id, redirect_uri=redirect_uri, **extra)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    callback = query_of(location)
    assert callback["iss"] == ISSUER and callback["state"] == auth.params["state"]
    return callback, auth


def asks_to_sign_in(browser: Browser, **start: Any) -> str:
    response, _ = browser.start(**start)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/login/"), response.headers["Location"]
    return path


def backdate_sessions(app: Any, seconds: int) -> None:
    """Pretend every SSO session's sign-in happened `seconds` earlier (instead of sleeping)."""
    store = app.extensions["idp"].store
    for key in store.client.scan_iter(match=store.prefix + "sso:*"):
        data = json.loads(store.client.get(key))
        data["auth_time"] -= seconds
        store.client.set(key, json.dumps(data), keepttl=True)


def allow_next_otp(app: Any) -> None:
    """End the per-account OTP send cooldown, so that a second sign-in need not wait for it."""
    store = app.extensions["idp"].store
    for key in store.client.scan_iter(match=store.prefix + "otp_cool:*"):
        store.client.delete(key)


def sign_in_again(browser: Browser, login_path: str, person: Any, outbox: Outbox) -> dict[str, str]:
    """Password and OTP on an interaction already opened; returns the callback query."""
    response = browser.submit_password(login_path, person.username, person.password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    response = browser.submit_otp(response.headers["Location"], outbox.last_code(person.phone))
    response = browser.follow(response)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return query_of(response.headers["Location"])


# -- one sign-in, many relying parties ------------------------------------------------------------
@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "alg"),
    [
        ("portal-post", ONEGATE, "RS256"),
        ("mobile", LOOPBACK_MOBILE, "ES256"),
        ("portal", PORTAL_CALLBACK, "ES256"),
    ],
)
def test_prompt_none_across_relying_parties(
    browser: Browser, client: Any, outbox: Outbox, client_id: str, redirect_uri: str, alg: str
) -> None:
    first = sign_in_claims(browser, client)
    sent = outbox.count()
    callback, auth = passive(browser, client_id, redirect_uri, prompt="none")
    body = tokens(client, client_id, callback, auth.verifier, redirect_uri)
    claims = id_token_claims(client, body["id_token"])
    assert (
        jwt.decode(body["id_token"], KeySet.import_key_set(client.get("/jwks.json").json)).header["alg"]
        == alg
    )
    assert claims["aud"] == client_id
    assert claims["sub"] == first["sub"] and claims["sid"] == first["sid"]
    assert claims["auth_time"] == first["auth_time"]
    assert claims["nonce"] == auth.params["nonce"]
    assert outbox.count() == sent  # no second OTP


def test_sso_without_prompt_needs_no_page(browser: Browser, client: Any) -> None:
    sign_in_claims(browser, client)
    callback, _ = passive(browser, "portal-post", ONEGATE)
    assert "code" in callback


def test_prompt_none_without_session_is_login_required(browser: Browser) -> None:
    callback, _ = passive(browser, prompt="none")
    assert callback["error"] == "login_required" and "code" not in callback


def test_prompt_none_in_another_browser_is_login_required(
    browser: Browser, client: Any, app: Any, outbox: Outbox
) -> None:
    sign_in_claims(browser, client)
    stranger = Browser(app.test_client(), outbox)
    callback, _ = passive(stranger, prompt="none")
    assert callback["error"] == "login_required"


def test_prompt_login_signs_in_again_with_a_new_auth_time(
    browser: Browser, client: Any, app: Any, outbox: Outbox
) -> None:
    first = sign_in_claims(browser, client)
    backdate_sessions(app, 30)
    sent = outbox.count()
    response, auth = browser.start(prompt="login")
    login = urlsplit(response.headers["Location"]).path
    assert login.startswith("/login/"), response.headers.get("Location")
    callback = sign_in_again(browser, login, AN, outbox)
    assert outbox.count() == sent + 1  # password and OTP again
    second = id_token_claims(
        client, tokens(client, "portal", callback, auth.verifier, PORTAL_CALLBACK)["id_token"]
    )
    assert second["sub"] == first["sub"] and second["sid"] == first["sid"]
    assert second["auth_time"] >= first["auth_time"] > second["auth_time"] - 30
    # The session now carries the new sign-in for every relying party.
    callback, auth = passive(browser, "portal-post", ONEGATE, prompt="none")
    third = id_token_claims(
        client, tokens(client, "portal-post", callback, auth.verifier, ONEGATE)["id_token"]
    )
    assert third["auth_time"] == second["auth_time"]


@pytest.mark.parametrize("prompt", ["none", None])
def test_locked_account_ends_the_session(browser: Browser, client: Any, app: Any, prompt: str | None) -> None:
    sign_in_claims(browser, client)
    with app.app_context():
        from idp.store.models import Account, db

        db.session.execute(update(Account).values(status="locked"))
        db.session.commit()
    if prompt == "none":
        callback, _ = passive(browser, prompt="none")
        assert callback["error"] == "login_required"
    else:
        assert asks_to_sign_in(browser).startswith("/login/")


@pytest.mark.parametrize("prompt", ["login", "select_account"])
def test_prompt_login_asks_even_with_a_session(browser: Browser, client: Any, prompt: str) -> None:
    sign_in_claims(browser, client)
    asks_to_sign_in(browser, prompt=prompt)


@pytest.mark.parametrize(
    ("max_age", "age", "fresh"),
    [("0", 0, False), ("5", 10, False), ("60", 10, True), ("999999999", 3000, True)],
)
def test_max_age(browser: Browser, client: Any, app: Any, max_age: str, age: int, fresh: bool) -> None:
    sign_in_claims(browser, client)
    backdate_sessions(app, age)
    if fresh:
        callback, _ = passive(browser, "portal-post", ONEGATE, max_age=max_age)
        assert "code" in callback
    else:
        asks_to_sign_in(browser, client_id="portal-post", redirect_uri=ONEGATE, max_age=max_age)
        callback, _ = passive(browser, "portal-post", ONEGATE, max_age=max_age, prompt="none")
        assert callback["error"] == "login_required"


def test_max_age_sign_in_then_answers_with_the_new_auth_time(
    browser: Browser, client: Any, app: Any, outbox: Outbox
) -> None:
    sign_in_claims(browser, client)
    backdate_sessions(app, 600)
    allow_next_otp(app)
    response, auth = browser.start(max_age="300")
    login = urlsplit(response.headers["Location"]).path
    assert login.startswith("/login/")
    callback = sign_in_again(browser, login, AN, outbox)
    claims = id_token_claims(
        client, tokens(client, "portal", callback, auth.verifier, PORTAL_CALLBACK)["id_token"]
    )
    assert abs(int(time.time()) - claims["auth_time"]) <= 5


# -- id_token_hint, login_hint, ui_locales --------------------------------------------------------
def test_id_token_hint_of_the_signed_in_person_answers(browser: Browser, client: Any) -> None:
    callback, auth = browser.sign_in(AN.username, AN.password)
    hint = tokens(client, "portal", callback, auth.verifier, PORTAL_CALLBACK)["id_token"]
    callback, _ = passive(browser, prompt="none", id_token_hint=hint)
    assert "code" in callback


def test_id_token_hint_of_another_person_is_login_required(
    browser: Browser, client: Any, app: Any, outbox: Outbox
) -> None:
    other = Browser(app.test_client(), outbox)
    callback, auth = other.sign_in(BINH.username, BINH.password, phone=BINH.phone)
    hint = tokens(other.client, "portal", callback, auth.verifier, PORTAL_CALLBACK)["id_token"]
    sign_in_claims(browser, client)  # AN in this browser
    callback, _ = passive(browser, prompt="none", id_token_hint=hint)
    assert callback["error"] == "login_required" and "code" not in callback
    # Without prompt=none the person is asked to sign in (as the one the client expects).
    asks_to_sign_in(browser, id_token_hint=hint)


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _foreign_token(kind: str, app: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "someone", "aud": "portal", "iat": now, "exp": now + 600}
    if kind == "foreign-key":
        key = ECKey.generate_key("P-256", private=True)
        return jwt.encode({"alg": "ES256", "kid": "x"}, claims, key)
    if kind == "other-issuer":
        return app.extensions["idp"].oidc.keys.sign({**claims, "iss": "https://evil.example.com"})  # type: ignore[no-any-return]
    if kind == "unsigned":
        return ".".join(_b64(part) for part in ({"alg": "none"}, claims)) + "."
    return "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln"


@pytest.mark.parametrize("kind", ["foreign-key", "other-issuer", "unsigned", "garbage"])
def test_id_token_hint_not_ours_is_invalid_request(browser: Browser, app: Any, kind: str) -> None:
    hint = _foreign_token(kind, app)
    callback, _ = passive(browser, prompt="none", id_token_hint=hint)
    assert callback["error"] == "invalid_request" and "code" not in callback


@pytest.mark.parametrize(
    ("hint", "prefilled"),
    [
        (AN.username, True),
        ("191234567", True),
        ("0912345678", False),
        ('"><script>x</script>', False),
    ],
)
def test_login_hint_prefills_the_id_number(browser: Browser, hint: str, prefilled: bool) -> None:
    login = asks_to_sign_in(browser, login_hint=hint)
    page = browser.client.get(login + "/citizen").get_data(as_text=True)
    assert (f'value="{hint}"' in page) is prefilled
    assert "<script>x</script>" not in page


def test_ui_locales_en_shows_english(browser: Browser) -> None:
    login = asks_to_sign_in(browser, ui_locales="en-US vi")
    page = browser.client.get(login).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Đăng nhập bằng tài khoản" not in page and "Chọn loại tài khoản" not in page
    assert "Sign in" in page or "sign in" in page
    page = browser.client.get(login + "/citizen").get_data(as_text=True)
    assert "Số định danh cá nhân" not in page


def test_ui_locales_default_is_vietnamese(browser: Browser) -> None:
    login = asks_to_sign_in(browser, ui_locales="fr")
    page = browser.client.get(login).get_data(as_text=True)
    assert '<html lang="vi">' in page and "Chọn loại tài khoản" in page


# -- assurance levels -------------------------------------------------------------------------
def sign_in_until_answered(browser: Browser, person: Any, **start: Any) -> tuple[Any, Any]:
    """A whole sign-in up to idp's last answer: (that response, the authorization)."""
    response, auth = browser.start(**start)
    response = browser.submit_password(
        browser.follow(response).request.path, person.username, person.password
    )
    response = browser.submit_otp(response.headers["Location"], browser.outbox.last_code(person.phone))
    return browser.follow(response), auth


def decline_raise(browser: Browser, response: Any, portal: str) -> dict[str, str]:
    """The "level too low" page (a citizen at LoA2, a portal demanding LoA3) says so, offers the
    raise, and its "Quay lại" button sends the portal unmet_authentication_requirements."""
    assert response.status_code == 403, response.get_data(as_text=True)[:800]
    page = response.get_data(as_text=True)
    assert "Cần tài khoản đã xác minh mức 3" in page and "Tài khoản của bạn đang ở mức 2" in page
    assert 'id="raise-level" href="/account/assurance?ix=' in page and f"Quay lại {portal}" in page
    action = re.search(r'action="(/authorize/unmet/[^"]+)"', page)
    assert action is not None
    assert browser.client.post(action.group(1), data={}).status_code == 400  # CSRF token required
    answer = browser.client.post(action.group(1), data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 302
    return query_of(answer.headers["Location"])


def test_essential_acr_above_the_person_is_unmet_never_lower(browser: Browser) -> None:
    response, auth = sign_in_until_answered(browser, AN, claims=ESSENTIAL_LOA3)
    callback = decline_raise(browser, response, "Cổng Dịch vụ công tỉnh")
    assert callback["error"] == "unmet_authentication_requirements", callback
    assert "code" not in callback
    assert callback["state"] == auth.params["state"] and callback["iss"] == ISSUER


def test_essential_acr_with_a_session_below_it_is_unmet(browser: Browser, client: Any) -> None:
    sign_in_claims(browser, client)
    callback, _ = passive(browser, "portal-post", ONEGATE, claims=ESSENTIAL_LOA3, prompt="none")
    assert callback["error"] == "unmet_authentication_requirements", callback
    response, auth = browser.start(client_id="portal-post", redirect_uri=ONEGATE, claims=ESSENTIAL_LOA3)
    callback = decline_raise(browser, response, "Cổng một cửa")
    assert (
        callback["error"] == "unmet_authentication_requirements" and callback["state"] == auth.params["state"]
    )


def test_essential_acr_met_by_a_level_3_person(browser: Browser, client: Any) -> None:
    claims = sign_in_claims(browser, client, BINH, phone=BINH.phone, claims=ESSENTIAL_LOA3)
    assert claims["acr"] == "LoA3"


@pytest.mark.parametrize(
    ("person", "expected"),
    [(AN, "unmet_authentication_requirements"), (BINH, None)],
    ids=["LoA2-refused", "LoA3-admitted"],
)
def test_require_acr_client(browser: Browser, client: Any, person: Any, expected: str | None) -> None:
    if expected:
        response, _ = sign_in_until_answered(browser, person, client_id="strict-portal", redirect_uri=STRICT)
        callback = decline_raise(browser, response, "Cổng yêu cầu mức 3")
        assert callback["error"] == expected and "code" not in callback
        return
    callback, auth = browser.sign_in(
        person.username,
        person.password,
        phone=person.phone,
        client_id="strict-portal",
        redirect_uri=STRICT,
    )
    claims = id_token_claims(
        client, tokens(client, "strict-portal", callback, auth.verifier, STRICT)["id_token"]
    )
    assert claims["acr"] == "LoA3"


def test_require_acr_client_refuses_an_sso_session_below_it(browser: Browser, client: Any) -> None:
    sign_in_claims(browser, client)  # AN, LoA2, at the portal
    callback, _ = passive(browser, "strict-portal", STRICT, prompt="none")
    assert callback["error"] == "unmet_authentication_requirements"


@pytest.mark.parametrize(("person", "acr"), [(AN, "LoA2"), (BINH, "LoA3")])
def test_voluntary_acr_values_answer_the_level_reached(
    browser: Browser, client: Any, person: Any, acr: str
) -> None:
    claims = sign_in_claims(browser, client, person, phone=person.phone, acr_values="LoA3")
    assert claims["acr"] == acr
