"""Token introspection (RFC 7662): the fields of an active token, who may see which tokens, and
inactive answers for revoked, expired and unknown ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clients import PORTAL_SECRET
from tests.support.driver import Browser, basic
from tests.support.outbox import Outbox
from tests.support.tokens import (
    client_credentials,
    introspect,
    refresh,
    revoke,
    shared_client,
    sign_in_and_exchange,
    verify_jwt,
)

OFFLINE = "openid profile offline_access"


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


def test_own_access_token_is_active_with_its_fields(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    _, id_claims = verify_jwt(client, tokens["id_token"])
    before = int(time.time())
    response = introspect(client, tokens["access_token"], caller="portal")
    assert response.status_code == 200
    body = response.json
    assert body["active"] is True
    assert body["client_id"] == "portal"
    assert set(body["scope"].split()) == set(OFFLINE.split())
    assert body["sub"] == id_claims["sub"]
    assert body["iss"] == "https://idp.example.vn"
    assert body["token_type"] == "Bearer"
    assert abs(body["iat"] - before) <= 5
    assert body["exp"] - body["iat"] == 300


def test_own_refresh_token_is_active_with_its_fields(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    body = introspect(client, tokens["refresh_token"], caller="portal", token_type_hint="refresh_token").json
    assert body["active"] is True
    assert body["client_id"] == "portal"
    assert body["token_type"] == "refresh_token"
    assert body["iss"] == "https://idp.example.vn"
    now = time.time()
    assert abs(body["iat"] - now) <= 5
    assert abs(body["exp"] - (now + 30 * 86400)) <= 5  # REFRESH_TOKEN_LIFETIME for offline_access


@pytest.fixture
def far_timezone() -> Iterator[None]:
    """Run with the local clock 7 hours ahead of UTC, as a server in Vietnam might."""
    import os

    saved = os.environ.get("TZ")
    os.environ["TZ"] = "ICT-7"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_timestamps_do_not_depend_on_the_servers_time_zone(
    browser: Browser, client: Any, far_timezone: None
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    now = time.time()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        body = introspect(client, token, caller="portal").json
        assert abs(body["iat"] - now) <= 5, body


def test_another_clients_token_is_inactive_for_an_ordinary_client(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(client, token, caller="portal-post").json == {"active": False}
        assert introspect(client, token, caller="agency-backend").json == {"active": False}


def test_resource_server_may_introspect_any_token(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    body = introspect(client, tokens["access_token"], caller="resource-api").json
    assert body["active"] is True and body["client_id"] == "portal"
    assert introspect(client, tokens["refresh_token"], caller="resource-api").json["active"] is True


def test_revoked_tokens_are_inactive(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    revoke(client, tokens["refresh_token"])
    for caller in ("portal", "resource-api"):
        assert introspect(client, tokens["access_token"], caller=caller).json == {"active": False}
        assert introspect(client, tokens["refresh_token"], caller=caller).json == {"active": False}


def test_tokens_of_a_locked_account_are_inactive(browser: Browser, client: Any, app: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    assert introspect(client, tokens["access_token"], caller="resource-api").json["active"] is True
    with app.app_context():
        from sqlalchemy import update

        from idp.store.models import Account, db

        db.session.execute(update(Account).values(status="locked"))
        db.session.commit()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(client, token, caller="resource-api").json == {"active": False}


def test_rotated_away_refresh_token_is_inactive(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope=OFFLINE)
    newer = refresh(client, tokens["refresh_token"], "mobile").json
    assert introspect(client, tokens["refresh_token"]).json == {"active": False}
    assert introspect(client, newer["refresh_token"]).json["active"] is True


def test_expired_access_token_is_inactive(make_app: Any, outbox: Outbox) -> None:
    app = make_app(ACCESS_TOKEN_LIFETIME=1)
    client = app.test_client()
    token = client_credentials(client).json["access_token"]
    assert introspect(client, token).json["active"] is True
    time.sleep(1.2)
    assert introspect(client, token).json == {"active": False}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("x" * 43, id="unknown"),
        pytest.param("z", id="short"),
        pytest.param('mã"' * 20, id="non-ASCII quotes"),
    ],
)
def test_unknown_token_is_inactive(rp: Any, token: str) -> None:
    response = introspect(rp, token)
    assert response.status_code == 200
    assert response.json == {"active": False}


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        pytest.param({"client_id": "mobile"}, {}, id="public client"),
        pytest.param({}, {}, id="no authentication"),
        pytest.param({}, basic("portal", "wrong-secret-0123456789-abcdefghijklmn"), id="wrong secret"),
    ],
)
def test_introspection_requires_a_confidential_client(
    browser: Browser, client: Any, form: dict[str, str], headers: dict[str, str]
) -> None:
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope=OFFLINE)
    response = client.post("/introspect", data={"token": tokens["access_token"], **form}, headers=headers)
    assert response.status_code in (400, 401)
    assert response.json["error"] == "invalid_client"
    assert "active" not in response.json


def test_missing_token_parameter(rp: Any) -> None:
    response = rp.post("/introspect", data={}, headers=basic("portal", PORTAL_SECRET))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_unsupported_token_type_hint(rp: Any) -> None:
    response = introspect(rp, "x" * 43, token_type_hint="id_token")
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_token_type"


def test_wrong_hint_still_finds_the_token(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    body = introspect(client, tokens["access_token"], token_type_hint="refresh_token").json
    assert body["active"] is True and body["token_type"] == "Bearer"
