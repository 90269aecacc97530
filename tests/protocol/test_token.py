"""The token endpoint's authorization_code grant: client authentication, single-use codes, PKCE,
redirect URI binding, response headers and fields, ID tokens, and bad input that must not 500."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import update

from tests.support.clients import PARTNER_SECRET, PORTAL_CALLBACK, PORTAL_SECRET, POST_SECRET
from tests.support.driver import Browser, basic
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH
from tests.support.tokens import (
    CALLBACKS,
    TOKEN_ENDPOINT,
    client_assertion,
    exchange,
    introspect,
    refresh,
    shared_client,
    sign_in_and_exchange,
    userinfo,
    verify_jwt,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


def assert_no_store(response: Any) -> None:
    assert response.headers.get("Cache-Control") == "no-store", dict(response.headers)
    assert response.headers.get("Pragma") == "no-cache", dict(response.headers)


def assert_error(response: Any, error: str | tuple[str, ...], status: int | tuple[int, ...] = 400) -> None:
    errors = (error,) if isinstance(error, str) else error
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)[:300]
    assert response.json["error"] in errors, response.json
    assert "access_token" not in response.json
    assert_no_store(response)


def code_for(browser: Browser, client_id: str = "portal", person: Any = AN, **extra: Any) -> tuple[str, Any]:
    callback, auth = browser.sign_in(
        person.username,
        person.password,
        client_id=client_id,
        redirect_uri=CALLBACKS[client_id],
        **extra,
    )
    assert "code" in callback, callback
    return callback["code"], auth


# -- client authentication -------------------------------------------------------------------------
@pytest.mark.parametrize("client_id", ["portal", "portal-post", "jwt-client", "mobile"])
def test_code_exchange_with_each_registered_auth_method(
    browser: Browser, client: Any, jwt_key: ECKey, client_id: str
) -> None:
    code, auth = code_for(browser, client_id)
    response = exchange(client, code, auth, client_id, jwt_key=jwt_key)
    assert response.status_code == 200, response.json
    assert_no_store(response)
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300  # ACCESS_TOKEN_LIFETIME default
    assert set(body["scope"].split()) == {"openid", "profile"}
    _, claims = verify_jwt(client, body["id_token"])
    assert claims["aud"] == client_id and claims["azp"] == client_id
    assert claims["nonce"] == auth.params["nonce"]
    assert userinfo(client, body["access_token"]).status_code == 200


def test_expires_in_follows_access_token_lifetime(make_app: Any, outbox: Outbox) -> None:
    app = make_app(ACCESS_TOKEN_LIFETIME=123)
    browser = Browser(app.test_client(), outbox)
    body, _ = sign_in_and_exchange(browser)
    assert body["expires_in"] == 123
    record = introspect(browser.client, body["access_token"], caller="portal").json
    assert record["exp"] - record["iat"] == 123


def _wrong_key_assertion(jwt_key: ECKey) -> str:
    return client_assertion(ECKey.generate_key("P-256", private=True))


def _unsigned_assertion(jwt_key: ECKey) -> str:
    """The claims of a good assertion with `alg: none` and no signature."""
    _, payload, _ = client_assertion(jwt_key).split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"jwt-client-1"}').rstrip(b"=").decode()
    return f"{header}.{payload}."


BAD_CLIENT_AUTH: list[tuple[str, Callable[[ECKey], tuple[dict[str, str], dict[str, str]]], int]] = [
    (
        "wrong secret (basic)",
        lambda k: ({}, basic("portal", "not-the-secret-0123456789-abcdefghij")),
        401,
    ),
    ("unknown client (basic)", lambda k: ({}, basic("nobody", PORTAL_SECRET)), 401),
    ("basic with another client's secret", lambda k: ({}, basic("portal", POST_SECRET)), 401),
    ("confidential client without secret", lambda k: ({"client_id": "portal"}, {}), (400, 401)),
    (
        "basic client using client_secret_post",
        lambda k: ({"client_id": "portal", "client_secret": PORTAL_SECRET}, {}),
        (400, 401),
    ),
    (
        "client_secret_post client using basic",
        lambda k: ({}, basic("portal-post", POST_SECRET)),
        401,
    ),
    (
        "client_secret_post with wrong secret",
        lambda k: ({"client_id": "portal-post", "client_secret": "x" * 40}, {}),
        (400, 401),
    ),
    (
        "public client sending a secret",
        lambda k: ({"client_id": "mobile", "client_secret": "x" * 40}, {}),
        (400, 401),
    ),
    (
        "private_key_jwt client without assertion",
        lambda k: ({"client_id": "jwt-client"}, {}),
        (400, 401),
    ),
    (
        "assertion signed with another key",
        lambda k: (
            {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _wrong_key_assertion(k)},
            {},
        ),
        (400, 401),
    ),
    (
        "assertion for the wrong audience",
        lambda k: (
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(k, audience="https://rp.example.vn"),
            },
            {},
        ),
        (400, 401),
    ),
    (
        "expired assertion",
        lambda k: (
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(k, lifetime=-120),
            },
            {},
        ),
        (400, 401),
    ),
    (
        "assertion whose iss differs from sub",
        lambda k: (
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(k, iss="portal"),
            },
            {},
        ),
        (400, 401),
    ),
    (
        "assertion naming a client_secret_basic client",
        lambda k: (
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(k, "portal"),
            },
            {},
        ),
        (400, 401),
    ),
    (
        "unsigned assertion (alg none)",
        lambda k: (
            {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _unsigned_assertion(k)},
            {},
        ),
        (400, 401),
    ),
    (
        "assertion that is not a JWT",
        lambda k: ({"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not.a.jwt"}, {}),
        (400, 401),
    ),
    (
        "basic header that is not base64",
        lambda k: ({}, {"Authorization": "Basic %%%not-base64%%%"}),
        (400, 401),
    ),
    (
        "basic header with non-ASCII credentials",
        lambda k: (
            {},
            {"Authorization": "Basic " + base64.b64encode("cổng:bí-mật".encode()).decode()},
        ),
        (400, 401),
    ),
]


@pytest.mark.parametrize(
    ("form", "status"),
    [pytest.param(f, s, id=name) for name, f, s in BAD_CLIENT_AUTH],
)
def test_bad_client_authentication_is_invalid_client(
    rp: Any,
    jwt_key: ECKey,
    form: Callable[[ECKey], tuple[dict[str, str], dict[str, str]]],
    status: Any,
) -> None:
    data, headers = form(jwt_key)
    data.update(grant_type="authorization_code", code="c" * 43, redirect_uri=PORTAL_CALLBACK)
    response = rp.post("/token", data=data, headers=headers)
    assert_error(response, "invalid_client", status)


def test_wrong_basic_secret_answers_401_with_www_authenticate(rp: Any) -> None:
    response = rp.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "c" * 43,
            "redirect_uri": PORTAL_CALLBACK,
        },
        headers=basic("portal", "wrong-secret-0123456789-abcdefghijklmn"),
    )
    assert_error(response, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_failed_client_authentication_leaves_the_code_usable(browser: Browser, client: Any) -> None:
    code, auth = code_for(browser)
    wrong = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": auth.verifier,
        },
        headers=basic("portal", "wrong-secret-0123456789-abcdefghijklmn"),
    )
    assert wrong.status_code == 401
    assert exchange(client, code, auth).status_code == 200


def test_replayed_client_assertion_is_refused(browser: Browser, client: Any, jwt_key: ECKey) -> None:
    code, auth = code_for(browser, "jwt-client")
    assertion = client_assertion(jwt_key, jti="one-time-jti-0001")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACKS["jwt-client"],
        "code_verifier": auth.verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert client.post("/token", data=data).status_code == 200
    replay = client.post("/token", data={**data, "code": "d" * 43})
    assert_error(replay, "invalid_client", (400, 401))
    # A fresh jti with the same key is fine: the client is not locked out.
    fresh = client.post(
        "/token", data={**data, "code": "d" * 43, "client_assertion": client_assertion(jwt_key)}
    )
    assert_error(fresh, "invalid_grant")


def test_client_assertion_audience_may_be_the_issuer(rp: Any, jwt_key: ECKey) -> None:
    response = rp.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "c" * 43,
            "redirect_uri": CALLBACKS["jwt-client"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(jwt_key, audience=TOKEN_ENDPOINT.rsplit("/", 1)[0]),
        },
    )
    assert_error(response, "invalid_grant")  # authenticated; only the code is bad


# -- the code: single use, lifetime, binding -------------------------------------------------------
def test_code_used_twice_is_refused_and_revokes_what_it_issued(browser: Browser, client: Any) -> None:
    code, auth = code_for(browser, scope="openid profile offline_access")
    first = exchange(client, code, auth)
    assert first.status_code == 200
    tokens = first.json
    assert userinfo(client, tokens["access_token"]).status_code == 200

    replay = exchange(client, code, auth)
    assert_error(replay, "invalid_grant")

    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert_error(refresh(client, tokens["refresh_token"]), "invalid_grant")
    assert introspect(client, tokens["access_token"]).json == {"active": False}
    assert introspect(client, tokens["refresh_token"]).json == {"active": False}


def test_expired_code_is_refused(make_app: Any, outbox: Outbox) -> None:
    app = make_app(CODE_LIFETIME=1)
    browser = Browser(app.test_client(), outbox)
    code, auth = code_for(browser)
    time.sleep(1.2)
    assert_error(exchange(browser.client, code, auth), "invalid_grant")


def test_code_of_another_client_is_refused(browser: Browser, client: Any) -> None:
    code, auth = code_for(browser, "portal")
    stolen = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": auth.verifier,
            "client_id": "portal-post",
            "client_secret": POST_SECRET,
        },
    )
    assert_error(stolen, "invalid_grant")


def test_code_issued_to_a_confidential_client_cannot_be_redeemed_by_a_public_one(
    browser: Browser, client: Any
) -> None:
    code, auth = code_for(browser, "portal")
    stolen = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": auth.verifier,
            "client_id": "mobile",
        },
    )
    assert_error(stolen, "invalid_grant")


@pytest.mark.parametrize("status", ["locked", "cancelled"])
def test_code_of_an_account_locked_since_sign_in_is_refused(
    browser: Browser, client: Any, app: Any, status: str
) -> None:
    """An operator locks the account between the redirect and the exchange: no tokens."""
    from idp.store.models import Account, db

    code, auth = code_for(browser)
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == AN.username).values(status=status))
        db.session.commit()
    assert_error(exchange(client, code, auth), "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("http://127.0.0.1:9/portal/callback", id="another registered uri"),
        pytest.param(PORTAL_CALLBACK + "/", id="trailing slash"),
        pytest.param(PORTAL_CALLBACK + "?x=1", id="extra query"),
        pytest.param("https://PORTAL.example.vn/callback", id="host case"),
        pytest.param("", id="missing"),
    ],
)
def test_redirect_uri_must_equal_the_authorization_requests(
    browser: Browser, client: Any, redirect_uri: str
) -> None:
    code, auth = code_for(browser)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": auth.verifier}
    if redirect_uri:
        data["redirect_uri"] = redirect_uri
    response = client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET))
    assert_error(response, ("invalid_grant", "invalid_request"))


# -- PKCE ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("client_id", "verifier"),
    [
        pytest.param("portal", "wrong-verifier-" + "a" * 40, id="confidential, wrong verifier"),
        pytest.param("portal", None, id="confidential, missing verifier"),
        pytest.param("mobile", "wrong-verifier-" + "a" * 40, id="public, wrong verifier"),
        pytest.param("mobile", None, id="public, missing verifier"),
        pytest.param("mobile", "short", id="public, malformed verifier"),
        pytest.param("mobile", "ä" * 50, id="public, non-ASCII verifier"),
    ],
)
def test_pkce_verifier_must_match_the_challenge(
    browser: Browser, client: Any, client_id: str, verifier: str | None
) -> None:
    code, auth = code_for(browser, client_id)
    auth.verifier = verifier
    response = exchange(client, code, auth, client_id)
    assert_error(response, ("invalid_grant", "invalid_request"))


def test_pkce_challenge_is_bound_to_its_code(browser: Browser, client: Any) -> None:
    """The verifier of one authorization does not unlock another's code."""
    code_a, auth_a = code_for(browser, "mobile")
    code_b, auth_b = code_for(browser, "mobile")  # same browser: SSO, a new code and challenge
    auth_b.verifier = auth_a.verifier
    assert_error(exchange(client, code_b, auth_b, "mobile"), "invalid_grant")


def test_verifier_without_challenge_is_refused(browser: Browser, client: Any) -> None:
    """RFC 9700 §4.8.2: a code_verifier for a code issued without a challenge is refused."""
    code, auth = code_for(browser, "partner", pkce=False)
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACKS["partner"],
            "code_verifier": "v" * 50,
        },
        headers=basic("partner", PARTNER_SECRET),
    )
    assert_error(response, ("invalid_request", "invalid_grant"))


def test_partner_without_pkce_exchanges_its_code(browser: Browser, client: Any) -> None:
    code, auth = code_for(browser, "partner", pkce=False)
    response = exchange(client, code, auth, "partner")
    assert response.status_code == 200, response.json


# -- response --------------------------------------------------------------------------------------
def test_id_token_for_rs256_client_has_published_kid(browser: Browser, client: Any) -> None:
    body, _ = sign_in_and_exchange(browser, client_id="portal-post")
    header, claims = verify_jwt(client, body["id_token"])
    assert header["alg"] == "RS256"
    published = {k["kid"]: k for k in client.get("/jwks.json").json["keys"]}
    assert header["kid"] in published and published[header["kid"]]["kty"] == "RSA"
    assert claims["iss"] == "https://idp.example.vn"


def test_id_token_default_alg_is_es256_with_published_kid(browser: Browser, client: Any) -> None:
    body, _ = sign_in_and_exchange(browser)
    header, _ = verify_jwt(client, body["id_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] in {k["kid"] for k in client.get("/jwks.json").json["keys"]}


def test_at_hash_is_left_half_of_sha256_of_access_token(browser: Browser, client: Any) -> None:
    body, _ = sign_in_and_exchange(browser, BINH)
    _, claims = verify_jwt(client, body["id_token"])
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_scope_in_response_is_what_was_granted(browser: Browser, client: Any) -> None:
    """Scopes the client may not have (partner has no citizen) and unknown ones are dropped."""
    code, auth = code_for(browser, "partner", scope="openid phone citizen made-up", pkce=False)
    body = exchange(client, code, auth, "partner").json
    assert set(body["scope"].split()) == {"openid", "phone"}


def test_client_with_the_refresh_grant_gets_a_refresh_token(browser: Browser, client: Any) -> None:
    """The default grant types include refresh_token: the code exchange returns one."""
    body, _ = sign_in_and_exchange(browser)
    assert body["token_type"] == "Bearer"
    assert "refresh_token" in body


# -- bad requests ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
)
def test_unsupported_grant_type(rp: Any, grant_type: str) -> None:
    response = rp.post("/token", data={"grant_type": grant_type}, headers=basic("portal", PORTAL_SECRET))
    assert_error(response, "unsupported_grant_type")


def test_client_credentials_for_a_client_not_registered_for_it(rp: Any) -> None:
    response = rp.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic("portal", PORTAL_SECRET)
    )
    assert_error(response, ("unauthorized_client", "unsupported_grant_type"))


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("no body", {}),
    ("grant_type with quotes", {"data": {"grant_type": 'authorization_code"><'}}),
    ("grant_type non-ASCII", {"data": {"grant_type": "mã_ủy_quyền"}}),
    ("grant_type backslash", {"data": {"grant_type": "a\\b"}}),
    (
        "missing code",
        {"data": {"grant_type": "authorization_code", "redirect_uri": PORTAL_CALLBACK}},
    ),
    (
        "code with quotes",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": '"' * 30,
                "redirect_uri": PORTAL_CALLBACK,
            }
        },
    ),
    (
        "code non-ASCII",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": "mã" * 15,
                "redirect_uri": PORTAL_CALLBACK,
            }
        },
    ),
    (
        "code huge",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": "c" * 5000,
                "redirect_uri": PORTAL_CALLBACK,
            }
        },
    ),
    (
        "redirect_uri non-ASCII",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": "c" * 43,
                "redirect_uri": 'https://cổng.vn/"cb',
            }
        },
    ),
    (
        "code_verifier with quotes",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": "c" * 43,
                "code_verifier": '"\\' * 30,
            }
        },
    ),
    (
        "refresh_token with quotes",
        {"data": {"grant_type": "refresh_token", "refresh_token": '"' * 40}},
    ),
    (
        "refresh_token non-ASCII",
        {"data": {"grant_type": "refresh_token", "refresh_token": "ồ" * 40}},
    ),
    (
        "scope non-ASCII",
        {"data": {"grant_type": "refresh_token", "refresh_token": "r" * 43, "scope": 'hồ sơ "'}},
    ),
    (
        "grant_type twice",
        {
            "data": "grant_type=authorization_code&grant_type=refresh_token&code=" + "c" * 43,
            "content_type": "application/x-www-form-urlencoded",
        },
    ),
    ("JSON body", {"json": {"grant_type": "authorization_code", "code": "c" * 43}}),
    (
        "invalid UTF-8",
        {
            "data": b"grant_type=\xff\xfe&code=\xc3",
            "content_type": "application/x-www-form-urlencoded",
        },
    ),
]


@pytest.mark.parametrize("kwargs", [pytest.param(k, id=name) for name, k in MALFORMED])
def test_malformed_token_requests_get_an_oauth_error(rp: Any, kwargs: dict[str, Any]) -> None:
    response = rp.post("/token", headers=basic("portal", PORTAL_SECRET), **kwargs)
    assert_error(
        response,
        (
            "invalid_request",
            "invalid_grant",
            "unsupported_grant_type",
            "invalid_client",
            "invalid_scope",
        ),
        (400, 401),
    )


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param('mobile"', id="quote"),
        pytest.param("ứng-dụng", id="non-ASCII"),
        pytest.param("m" * 300, id="long"),
    ],
)
def test_malformed_client_id_of_a_public_client(rp: Any, client_id: str) -> None:
    response = rp.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "c" * 43, "client_id": client_id},
    )
    assert_error(response, ("invalid_client", "invalid_request"), (400, 401))


def test_token_endpoint_refuses_get(rp: Any) -> None:
    response = rp.get("/token", query_string={"grant_type": "authorization_code"})
    assert response.status_code == 405
    assert response.is_json and "error" in response.json


# -- one authentication method per request (RFC 6749 §2.3), bounded assertions (RFC 7523 §3) ------
TWO_METHODS = [
    pytest.param(
        lambda k: ({"client_secret": PORTAL_SECRET}, basic("portal", PORTAL_SECRET)),
        id="basic-and-body-secret",
    ),
    pytest.param(
        lambda k: (
            {"client_id": "portal-post", "client_secret": POST_SECRET},
            basic("portal-post", POST_SECRET),
        ),
        id="basic-and-body-secret-post-client",
    ),
    pytest.param(
        lambda k: (
            {"client_assertion_type": ASSERTION_TYPE, "client_assertion": client_assertion(k)},
            basic("portal", PORTAL_SECRET),
        ),
        id="basic-and-assertion",
    ),
    pytest.param(
        lambda k: (
            {
                "client_id": "jwt-client",
                "client_secret": PORTAL_SECRET,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(k),
            },
            {},
        ),
        id="body-secret-and-assertion",
    ),
    pytest.param(
        lambda k: ({"client_id": "partner"}, basic("portal", PORTAL_SECRET)), id="basic-and-another-client_id"
    ),
]


@pytest.mark.parametrize("endpoint", ["/token", "/revoke", "/introspect"])
@pytest.mark.parametrize("credentials", TWO_METHODS)
def test_two_authentication_methods_at_once_are_invalid_request(
    rp: Any, jwt_key: ECKey, endpoint: str, credentials: Any
) -> None:
    form, headers = credentials(jwt_key)
    data = {
        "grant_type": "authorization_code",
        "code": "c" * 43,
        "redirect_uri": PORTAL_CALLBACK,
        "token": "t" * 43,
    }
    assert_error(rp.post(endpoint, data={**data, **form}, headers=headers), "invalid_request")


def test_the_same_client_id_in_the_body_beside_basic_is_accepted(browser: Browser, client: Any) -> None:
    code, auth = code_for(browser)
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": auth.verifier,
            "client_id": "portal",
        },
        headers=basic("portal", PORTAL_SECRET),
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    ("lifetime", "accepted"),
    [(60, True), (300, True), (3600, False), (365 * 86400, False)],
)
def test_a_client_assertion_may_live_a_few_minutes_only(
    browser: Browser, client: Any, app: Any, jwt_key: ECKey, lifetime: int, accepted: bool
) -> None:
    code, auth = code_for(browser, "jwt-client")
    jti = f"lifetime-{lifetime}"
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACKS["jwt-client"],
        "code_verifier": auth.verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(jwt_key, jti=jti, lifetime=lifetime),
    }
    response = client.post("/token", data=data)
    if not accepted:
        assert_error(response, "invalid_client", (400, 401))
        return
    assert response.status_code == 200, response.json
    # The replay cache keeps the jti as long as the assertion could be used, not longer.
    rt = app.extensions["idp"]
    left = rt.store.ttl(f"jti:jwt-client:{jti}")
    assert 0 < left <= 5 * 60 + 60, left


def test_a_client_assertion_without_exp_is_refused(rp: Any, jwt_key: ECKey) -> None:
    from joserfc import jwt as josejwt

    now = int(time.time())
    claims = {"iss": "jwt-client", "sub": "jwt-client", "aud": TOKEN_ENDPOINT, "jti": "no-exp", "iat": now}
    assertion = josejwt.encode({"alg": "ES256", "kid": "jwt-client-1"}, claims, jwt_key, algorithms=["ES256"])
    response = rp.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "c" * 43,
            "redirect_uri": CALLBACKS["jwt-client"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert_error(response, "invalid_client", (400, 401))
