"""The UserInfo endpoint (OpenID Connect Core §5.3, RFC 6750): how the token is presented, the
Bearer error answers, and which claims each scope and the `claims` parameter release."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from tests.support.driver import Browser
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH
from tests.support.tokens import (
    client_credentials,
    revoke,
    shared_client,
    sign_in_and_exchange,
    userinfo,
    verify_jwt,
)

PROFILE = {"name", "birthdate", "gender"}
PHONE = {"phone_number", "phone_number_verified"}
CITIZEN = {"citizen_id"}


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


def assert_bearer_challenge(response: Any, status: int, error: str | None) -> None:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    if error:
        assert f'error="{error}"' in challenge
    else:
        assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no token was sent
    assert response.headers.get("Cache-Control") == "no-store"


# -- presenting the token --------------------------------------------------------------------------
def test_get_with_bearer_header(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    response = userinfo(client, tokens["access_token"])
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    _, id_claims = verify_jwt(client, tokens["id_token"])
    assert response.json["sub"] == id_claims["sub"]
    assert response.json["name"] == AN.name


def test_post_with_bearer_header(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    response = client.post("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert response.status_code == 200
    assert response.json["name"] == AN.name


def test_post_with_form_access_token(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    response = client.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200
    assert response.json["name"] == AN.name


def test_bearer_scheme_is_case_insensitive(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    response = client.get("/userinfo", headers={"Authorization": "bearer " + tokens["access_token"]})
    assert response.status_code == 200


def test_token_in_the_query_string_is_not_accepted(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    response = client.get("/userinfo", query_string={"access_token": tokens["access_token"]})
    assert_bearer_challenge(response, 401, None)


def test_token_in_both_header_and_body_is_a_bad_request(browser: Browser, client: Any) -> None:
    """RFC 6750 §2: a client must not use more than one method to send the token."""
    tokens, _ = sign_in_and_exchange(browser)
    response = client.post(
        "/userinfo",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
        data={"access_token": tokens["access_token"]},
    )
    assert_bearer_challenge(response, 400, "invalid_request")


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="GET without token"),
        pytest.param({"method": "POST"}, id="POST without token"),
        pytest.param({"headers": {"Authorization": "Basic cG9ydGFsOnNlY3JldA=="}}, id="another scheme"),
    ],
)
def test_missing_token_is_a_bare_bearer_challenge(rp: Any, kwargs: dict[str, Any]) -> None:
    method = kwargs.pop("method", "GET")
    response = rp.open("/userinfo", method=method, **kwargs)
    assert_bearer_challenge(response, 401, None)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer " + "x" * 43, id="unknown token"),
        pytest.param("Bearer " + "x" * 500, id="huge token"),
        pytest.param('Bearer "quoted"', id="quotes"),
        pytest.param("Bearer mã-thông-báo".encode().decode("latin-1"), id="non-ASCII"),
    ],
)
def test_invalid_token(rp: Any, header: str) -> None:
    response = rp.get("/userinfo", headers={"Authorization": header})
    assert_bearer_challenge(response, 401, "invalid_token")
    assert response.json["error"] == "invalid_token"


def test_empty_bearer_value_is_a_bad_request(rp: Any) -> None:
    response = rp.get("/userinfo", headers={"Authorization": "Bearer "})
    assert_bearer_challenge(response, 400, "invalid_request")


def test_expired_token(make_app: Any, outbox: Outbox) -> None:
    app = make_app(ACCESS_TOKEN_LIFETIME=1)
    browser = Browser(app.test_client(), outbox)
    tokens, _ = sign_in_and_exchange(browser)
    time.sleep(1.2)
    assert_bearer_challenge(userinfo(browser.client, tokens["access_token"]), 401, "invalid_token")


def test_revoked_token(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser)
    assert revoke(client, tokens["access_token"]).status_code == 200
    assert_bearer_challenge(userinfo(client, tokens["access_token"]), 401, "invalid_token")


def test_token_of_a_locked_account(browser: Browser, client: Any, app: Any) -> None:
    from idp.store.models import Account, db

    tokens, _ = sign_in_and_exchange(browser)
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == AN.username).values(status="locked"))
        db.session.commit()
    assert_bearer_challenge(userinfo(client, tokens["access_token"]), 401, "invalid_token")


def test_token_without_openid_scope_is_insufficient_scope(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="profile")
    assert "id_token" not in tokens
    response = userinfo(client, tokens["access_token"])
    assert_bearer_challenge(response, 403, "insufficient_scope")


def test_client_credentials_token_is_refused(rp: Any) -> None:
    token = client_credentials(rp).json["access_token"]
    assert_bearer_challenge(userinfo(rp, token), 401, "invalid_token")


# -- claims ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        pytest.param("openid", set(), PROFILE | PHONE | CITIZEN, id="openid only"),
        pytest.param("openid profile", PROFILE, PHONE | CITIZEN, id="profile"),
        pytest.param("openid phone", PHONE, PROFILE | CITIZEN, id="phone"),
        pytest.param("openid citizen", CITIZEN, PROFILE | PHONE, id="citizen"),
        pytest.param("openid profile phone citizen", PROFILE | PHONE | CITIZEN, set(), id="all"),
    ],
)
def test_claims_follow_scope(
    browser: Browser, client: Any, scope: str, present: set[str], absent: set[str]
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=scope)
    body = userinfo(client, tokens["access_token"]).json
    assert "sub" in body
    assert present <= set(body), body
    assert not (absent & set(body)), body


def test_claim_values(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile phone citizen")
    body = userinfo(client, tokens["access_token"]).json
    assert body["name"] == AN.name
    assert body["birthdate"] == "1990-03-15"
    assert body["gender"] == "male"
    assert body["phone_number"] == AN.phone  # E.164
    assert body["phone_number"].startswith("+84")
    assert body["phone_number_verified"] is True
    assert body["citizen_id"] == AN.username


def test_id_number_is_never_the_subject(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, BINH, scope="openid citizen")
    body = userinfo(client, tokens["access_token"]).json
    assert body["sub"] != BINH.username and BINH.username not in body["sub"]


def test_claims_parameter_userinfo_member(browser: Browser, client: Any) -> None:
    claims = {"userinfo": {"name": {"essential": True}, "phone_number": None}}
    tokens, _ = sign_in_and_exchange(browser, scope="openid", claims=json.dumps(claims))
    body = userinfo(client, tokens["access_token"]).json
    assert body["name"] == AN.name
    assert body["phone_number"] == AN.phone
    assert "birthdate" not in body  # only what was asked for, not the whole profile scope
    _, id_claims = verify_jwt(client, tokens["id_token"])
    assert "name" not in id_claims and "phone_number" not in id_claims  # asked for userinfo only


def test_claims_parameter_cannot_reach_beyond_the_clients_scopes(browser: Browser, client: Any) -> None:
    """partner may have openid profile phone, never citizen: asking by `claims` changes nothing."""
    claims = {"userinfo": {"citizen_id": {"essential": True}, "name": None}}
    tokens, _ = sign_in_and_exchange(
        browser, client_id="partner", scope="openid", claims=json.dumps(claims), pkce=False
    )
    body = userinfo(client, tokens["access_token"]).json
    assert "citizen_id" not in body
    assert body["name"] == AN.name


def test_claims_parameter_id_token_member(browser: Browser, client: Any) -> None:
    claims = {"id_token": {"name": None}}
    tokens, _ = sign_in_and_exchange(browser, scope="openid", claims=json.dumps(claims))
    _, id_claims = verify_jwt(client, tokens["id_token"])
    assert id_claims["name"] == AN.name
    assert "name" not in userinfo(client, tokens["access_token"]).json
