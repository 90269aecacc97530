"""The authorization endpoint: errors shown as a page until the client and redirect URI are
verified, errors redirected with state and iss (RFC 9207) afterwards, PKCE, request objects,
prompt / max_age / claims validation, duplicates, POST, unknown scopes and native-app redirects.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from idp import create_app
from tests.support import services
from tests.support.clients import MOBILE_CALLBACK, PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import Browser, basic, pkce_pair, query_of
from tests.support.people import AN

ISSUER = "https://idp.example.vn"
LOOPBACK_MOBILE = "http://127.0.0.1:51234/oauth/callback"
_, CHALLENGE = pkce_pair()


@pytest.fixture(scope="module")
def shared(
    keys_dir: Path,
    clients_file: Path,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """One app for the bad-input tables: they only read requests and never touch the database."""
    app = create_app(
        {
            "ISSUER": ISSUER,
            "KEYS_DIR": str(keys_dir),
            "CLIENTS_FILE": str(clients_file),
            "SMS_OUTBOX": str(tmp_path_factory.mktemp("sms") / "outbox.jsonl"),
            "CAPTCHA_ENABLED": False,
            "SANDBOX_VERIFIERS_ALLOWED": True,
            "TESTING": True,
            "DATABASE_URL": services.sqlalchemy_url(pg_url),
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
        }
    )
    yield app.test_client()
    with app.app_context():
        from idp.store.models import db

        db.session.remove()
        db.engine.dispose()


def params_for(rp: str = "portal", **overrides: str | None) -> dict[str, str]:
    """A valid authorization request of relying party `rp`, with overrides (None removes one)."""
    redirect = {
        "portal": PORTAL_CALLBACK,
        "mobile": LOOPBACK_MOBILE,
        "partner": "https://partner.example.vn/cb",
    }
    params: dict[str, str | None] = {
        "client_id": rp,
        "redirect_uri": redirect[rp],
        "response_type": "code",
        "scope": "openid profile",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def get(client: Any, params: dict[str, str] | list[tuple[str, str]]) -> Any:
    return client.get("/authorize?" + urlencode(params))


def assert_error_page(response: Any) -> str:
    """Refused before the client and its redirect URI are known: a page, never a redirect."""
    assert response.status_code == 400, (response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Không thể đăng nhập từ trang này" in page
    return page


def assert_redirected_error(
    response: Any, redirect_uri: str, error: str, state: str | None = "st-123"
) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    query = query_of(location)
    assert query["error"] == error, query
    assert query["iss"] == ISSUER
    assert "code" not in query
    if state is None:
        assert "state" not in query
    else:
        assert query["state"] == state
    return query


def assert_goes_to_login(response: Any) -> None:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert urlsplit(response.headers["Location"]).path.startswith("/login/"), response.headers["Location"]


# -- before the client and redirect URI are verified: a page ----------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"client_id": "nobody"}, id="unknown-client"),
        pytest.param({"client_id": None}, id="missing-client_id"),
        pytest.param({"client_id": ""}, id="empty-client_id"),
        pytest.param({"redirect_uri": "https://evil.example.com/callback"}, id="unregistered-redirect"),
        pytest.param({"redirect_uri": None}, id="missing-redirect_uri"),
        pytest.param({"redirect_uri": PORTAL_CALLBACK + "#frag"}, id="redirect-with-fragment"),
        pytest.param({"redirect_uri": "https://portal.example.vn:8443/callback"}, id="https-other-port"),
        pytest.param({"redirect_uri": PORTAL_CALLBACK + "?next=/x"}, id="redirect-extra-query"),
        pytest.param({"redirect_uri": PORTAL_CALLBACK + "/"}, id="redirect-trailing-slash"),
        pytest.param({"redirect_uri": "http://portal.example.vn/callback"}, id="redirect-http-downgrade"),
        pytest.param({"redirect_uri": "https://PORTAL.example.vn/callback"}, id="redirect-other-case"),
        pytest.param({"redirect_uri": "http://localhost:9/portal/callback"}, id="loopback-name-not-ip"),
        pytest.param({"redirect_uri": "http://127.0.0.1:9/portal/other"}, id="loopback-other-path"),
        # RFC 8252 §7.3's "any port" is for native apps (public clients); a confidential client's
        # loopback URI matches exactly.
        pytest.param(
            {"redirect_uri": "http://127.0.0.1:10/portal/callback"}, id="confidential-loopback-other-port"
        ),
        pytest.param(
            {"redirect_uri": "http://127.0.0.1/portal/callback"}, id="confidential-loopback-no-port"
        ),
        pytest.param({"client_id": 'portal"><script>x</script>'}, id="client_id-with-quotes"),
        pytest.param({"client_id": "cổng-dịch-vụ"}, id="client_id-non-ascii"),
        pytest.param({"redirect_uri": PORTAL_CALLBACK + '"><script>x</script>'}, id="redirect-with-quotes"),
        pytest.param({"redirect_uri": "https://portal.example.vn/cállback"}, id="redirect-non-ascii"),
        pytest.param({"redirect_uri": "javascript:alert(1)"}, id="redirect-javascript"),
    ],
)
def test_unverified_client_or_redirect_is_a_page(shared: Any, overrides: dict[str, str | None]) -> None:
    page = assert_error_page(get(shared, params_for(**overrides)))
    assert "<script>x</script>" not in page


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_duplicate_client_or_redirect_is_a_page(shared: Any, name: str) -> None:
    params = list(params_for().items()) + [
        (name, "https://evil.example.com/cb" if name == "redirect_uri" else "partner")
    ]
    assert_error_page(get(shared, params))


def test_mobile_private_scheme_mismatch_is_a_page(shared: Any) -> None:
    assert_error_page(get(shared, params_for("mobile", redirect_uri="vn.gov.hue.citizen:/oauth/other")))


# -- after: redirected with error, state and iss ----------------------------------------------
def _long(n: int) -> str:
    return "a" * n


@pytest.mark.parametrize(
    ("client_id", "overrides", "error"),
    [
        pytest.param(
            "portal",
            {"response_type": "token"},
            "unsupported_response_type",
            id="response_type-token",
        ),
        pytest.param("portal", {"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param("portal", {"response_type": "cöde"}, "invalid_request", id="response_type-non-ascii"),
        pytest.param(
            "mobile",
            {"code_challenge": None, "code_challenge_method": None},
            "invalid_request",
            id="public-client-without-pkce",
        ),
        pytest.param(
            "portal",
            {"code_challenge": None, "code_challenge_method": None},
            "invalid_request",
            id="require_pkce-client-without-pkce",
        ),
        pytest.param("portal", {"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain"),
        pytest.param("mobile", {"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain-public"),
        pytest.param("portal", {"code_challenge_method": None}, "invalid_request", id="pkce-missing-method"),
        pytest.param(
            "portal",
            {"code_challenge": None},
            "invalid_request",
            id="pkce-method-without-challenge",
        ),
        pytest.param(
            "portal",
            {"code_challenge_method": "s256"},
            "invalid_request",
            id="pkce-method-lowercase",
        ),
        pytest.param("portal", {"code_challenge": "abc"}, "invalid_request", id="pkce-challenge-too-short"),
        pytest.param(
            "portal",
            {"code_challenge": _long(129)},
            "invalid_request",
            id="pkce-challenge-too-long",
        ),
        pytest.param(
            "portal",
            {"code_challenge": _long(42) + "!"},
            "invalid_request",
            id="pkce-challenge-bad-char",
        ),
        pytest.param(
            "portal",
            {"code_challenge": _long(42) + "ế"},
            "invalid_request",
            id="pkce-challenge-non-ascii",
        ),
        pytest.param(
            "portal",
            {
                "request": "eyJhbGciOiJub25lIn0.eyJ9.",
            },
            "request_not_supported",
            id="request",
        ),
        pytest.param(
            "portal",
            {"request_uri": "https://portal.example.vn/req/1"},
            "request_uri_not_supported",
            id="request_uri",
        ),
        pytest.param("portal", {"prompt": "sometimes"}, "invalid_request", id="prompt-unknown"),
        pytest.param("portal", {"prompt": 'login "quoted"'}, "invalid_request", id="prompt-quotes"),
        pytest.param("portal", {"prompt": "đăng nhập"}, "invalid_request", id="prompt-non-ascii"),
        pytest.param("portal", {"prompt": "none login"}, "invalid_request", id="prompt-none-with-login"),
        pytest.param("portal", {"prompt": "consent none"}, "invalid_request", id="prompt-none-with-consent"),
        pytest.param("portal", {"max_age": "-1"}, "invalid_request", id="max_age-negative"),
        pytest.param("portal", {"max_age": "abc"}, "invalid_request", id="max_age-text"),
        pytest.param("portal", {"max_age": "1.5"}, "invalid_request", id="max_age-fraction"),
        pytest.param("portal", {"max_age": "99999999999"}, "invalid_request", id="max_age-huge"),
        pytest.param("portal", {"max_age": "²"}, "invalid_request", id="max_age-superscript-digit"),
        pytest.param("portal", {"max_age": "１２"}, "invalid_request", id="max_age-fullwidth-digits"),
        pytest.param("portal", {"claims": "{not json"}, "invalid_request", id="claims-not-json"),
        pytest.param("portal", {"claims": "[1, 2]"}, "invalid_request", id="claims-array"),
        pytest.param(
            "portal",
            {"claims": '{"id_token": "acr"}'},
            "invalid_request",
            id="claims-member-not-object",
        ),
        pytest.param(
            "portal",
            {"claims": '{"id_token": {"acr": {"essential": "yes"}}}'},
            "invalid_request",
            id="claims-essential-not-bool",
        ),
        pytest.param(
            "portal",
            {"claims": '{"userinfo": {"name": {"values": "x"}}}'},
            "invalid_request",
            id="claims-values-not-array",
        ),
        pytest.param("portal", {"response_mode": "fragment"}, "invalid_request", id="response_mode-fragment"),
        pytest.param(
            "portal",
            {"response_mode": "form_post"},
            "invalid_request",
            id="response_mode-form_post",
        ),
        pytest.param("portal", {"nonce": _long(5000)}, "invalid_request", id="nonce-too-long"),
        pytest.param("portal", {"id_token_hint": "not-a-jwt"}, "invalid_request", id="id_token_hint-garbage"),
        pytest.param(
            "portal",
            {"claims": '{"id_token": {"acr": {"essential": true, "values": ["LoA9"]}}}'},
            "unmet_authentication_requirements",
            id="essential-acr-unknown",
        ),
    ],
)
def test_errors_after_verification_are_redirected_with_state_and_iss(
    shared: Any, client_id: str, overrides: dict[str, str | None], error: str
) -> None:
    params = params_for(client_id, **overrides)
    assert_redirected_error(get(shared, params), params["redirect_uri"], error)


def test_redirected_error_without_state_has_no_state(shared: Any) -> None:
    params = params_for(state=None, prompt="bogus")
    assert_redirected_error(get(shared, params), PORTAL_CALLBACK, "invalid_request", state=None)


@pytest.mark.parametrize("state", ['a"b<c>', "trạng thái ở Huế", "x&code=forged&iss=https://evil"])
def test_state_is_returned_exactly(shared: Any, state: str) -> None:
    params = params_for(state=state, prompt="bogus")
    assert_redirected_error(get(shared, params), PORTAL_CALLBACK, "invalid_request", state=state)


def test_client_without_pkce_requirement_may_omit_it(shared: Any) -> None:
    params = params_for("partner", code_challenge=None, code_challenge_method=None)
    assert_goes_to_login(get(shared, params))


# -- tolerated and refused parameters -------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        {"foo": "bar"},
        {"display": "page"},
        {"claims_locales": "vi"},
        {"ui_locales": "fr"},
        {"acr_values": "LoA9 urn:unknown"},
        {"login_hint": '"><script>x</script>'},
        {"x-ünïcode": "giá trị"},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_unknown_parameters_are_ignored(shared: Any, extra: dict[str, str]) -> None:
    assert_goes_to_login(get(shared, {**params_for(), **extra}))


@pytest.mark.parametrize(
    ("name", "second"),
    [
        ("response_type", "token"),
        ("scope", "openid citizen"),
        ("state", "other"),
        ("nonce", "other"),
        ("code_challenge", "b" * 43),
        ("code_challenge_method", "plain"),
        ("prompt", "none"),
        ("max_age", "0"),
        ("claims", "{}"),
    ],
)
def test_duplicate_parameters_are_refused(shared: Any, name: str, second: str) -> None:
    params = list(params_for(prompt="login", max_age="600", claims="{}").items()) + [(name, second)]
    response = get(shared, params)
    if response.status_code == 400:
        assert_error_page(response)
    else:
        # Once client and redirect URI are known the refusal may be redirected, never a code.
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location.startswith(PORTAL_CALLBACK + "?"), location
        query = query_of(location)
        assert query["error"] == "invalid_request" and query["iss"] == ISSUER


def test_post_authorize_is_answered_with_303_to_the_same_request(shared: Any) -> None:
    params = params_for()
    response = shared.post("/authorize", data=params)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert urlsplit(location).path == "/authorize"
    assert query_of(location) == params
    assert_goes_to_login(shared.get(location))


def test_post_authorize_with_bad_client_is_a_page(shared: Any) -> None:
    response = shared.post("/authorize", data=params_for(client_id="nobody"))
    assert response.status_code == 303
    assert_error_page(shared.get(response.headers["Location"]))


# -- whole flows: scopes and native-app redirects ---------------------------------------------
def token_request(client: Any, client_id: str, code: str, verifier: str | None, redirect_uri: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    if client_id == "mobile":
        data["client_id"] = "mobile"
        return client.post("/token", data=data)
    return client.post("/token", data=data, headers=basic(client_id, PORTAL_SECRET))


def test_unknown_scopes_are_dropped(browser: Browser, client: Any) -> None:
    callback, auth = browser.sign_in(AN.username, AN.password, scope="openid profile bogus records.read")
    assert "code" in callback, callback
    response = token_request(client, "portal", callback["code"], auth.verifier, PORTAL_CALLBACK)
    assert response.status_code == 200, response.json
    assert response.json["scope"].split() == ["openid", "profile"]
    assert "id_token" in response.json


@pytest.mark.parametrize("port", [51234, 8080, 65535])
def test_loopback_redirect_accepts_any_port(browser: Browser, client: Any, port: int) -> None:
    redirect_uri = f"http://127.0.0.1:{port}/oauth/callback"
    callback, auth = browser.sign_in(AN.username, AN.password, client_id="mobile", redirect_uri=redirect_uri)
    assert "code" in callback, callback
    assert callback["iss"] == ISSUER and callback["state"] == auth.params["state"]
    response = token_request(client, "mobile", callback["code"], auth.verifier, redirect_uri)
    assert response.status_code == 200, response.json
    assert "id_token" in response.json


def test_private_use_scheme_redirect(browser: Browser, client: Any) -> None:
    browser.sign_in(AN.username, AN.password)  # an SSO session, so the app gets its code at once
    response, auth = browser.start(client_id="mobile", redirect_uri=MOBILE_CALLBACK, prompt="none")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(MOBILE_CALLBACK + "?"), location
    callback = query_of(location)
    assert callback["iss"] == ISSUER and callback["state"] == auth.params["state"]
    response = token_request(client, "mobile", callback["code"], auth.verifier, MOBILE_CALLBACK)
    assert response.status_code == 200, response.json


def test_code_challenge_is_bound_to_the_code(browser: Browser, client: Any) -> None:
    callback, auth = browser.sign_in(
        AN.username, AN.password, client_id="mobile", redirect_uri=LOOPBACK_MOBILE
    )
    other_verifier = (
        base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).rstrip(b"=").decode() + "abcdefghijk"
    )
    response = token_request(client, "mobile", callback["code"], other_verifier, LOOPBACK_MOBILE)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"
