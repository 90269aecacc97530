"""Token revocation (RFC 7009): what dies with a revoked refresh or access token, and what a
client learns (nothing) about tokens that are not its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clients import PORTAL_SECRET
from tests.support.driver import Browser, basic
from tests.support.tokens import (
    introspect,
    refresh,
    revoke,
    shared_client,
    sign_in_and_exchange,
    userinfo,
)

OFFLINE = "openid profile offline_access"


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


def assert_revoked_ok(response: Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_revoking_a_refresh_token_revokes_its_grant(browser: Browser, client: Any, hint: str | None) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    extra = {"token_type_hint": hint} if hint else {}
    assert_revoked_ok(revoke(client, tokens["refresh_token"], **extra))
    assert refresh(client, tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert introspect(client, tokens["access_token"]).json == {"active": False}
    assert introspect(client, tokens["refresh_token"]).json == {"active": False}


def test_revoking_a_refresh_token_kills_access_tokens_issued_by_later_refreshes(
    browser: Browser, client: Any
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    later = refresh(client, tokens["refresh_token"]).json
    assert_revoked_ok(revoke(client, tokens["refresh_token"]))
    assert userinfo(client, later["access_token"]).status_code == 401


def test_public_client_revokes_its_rotated_family(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope="openid profile offline_access")
    newer = refresh(client, tokens["refresh_token"], "mobile").json
    assert_revoked_ok(revoke(client, newer["refresh_token"], caller="mobile"))
    assert refresh(client, newer["refresh_token"], "mobile").json["error"] == "invalid_grant"
    assert userinfo(client, newer["access_token"]).status_code == 401


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_revoking_an_access_token_kills_it(browser: Browser, client: Any, hint: str | None) -> None:
    """RFC 7009 §2.1: a wrong hint only widens the search; the token is revoked all the same."""
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    extra = {"token_type_hint": hint} if hint else {}
    assert_revoked_ok(revoke(client, tokens["access_token"], **extra))
    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert introspect(client, tokens["access_token"]).json == {"active": False}


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_another_clients_token_is_answered_200_and_left_alone(
    browser: Browser, client: Any, kind: str
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    response = revoke(client, tokens[kind], caller="portal-post")
    assert_revoked_ok(response)
    assert userinfo(client, tokens["access_token"]).status_code == 200
    assert refresh(client, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("x" * 43, id="unknown"),
        pytest.param("short", id="too short to be ours"),
        pytest.param("y" * 1000, id="huge"),
        pytest.param('"quoted\\token"' * 3, id="quotes"),
        pytest.param("mã-thông-báo-" * 4, id="non-ASCII"),
    ],
)
def test_unknown_or_malformed_token_is_answered_200(rp: Any, token: str) -> None:
    assert_revoked_ok(revoke(rp, token))


def test_unsupported_token_type_hint(rp: Any) -> None:
    response = revoke(rp, "x" * 43, token_type_hint="id_token")
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_token_type"


def test_missing_token_parameter(rp: Any) -> None:
    response = rp.post("/revoke", data={}, headers=basic("portal", PORTAL_SECRET))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        pytest.param({}, {}, id="no client authentication"),
        pytest.param({}, basic("portal", "wrong-secret-0123456789-abcdefghijklmn"), id="wrong secret"),
        pytest.param({"client_id": "portal"}, {}, id="confidential client as public"),
    ],
)
def test_revocation_requires_client_authentication(
    browser: Browser, client: Any, form: dict[str, str], headers: dict[str, str]
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope=OFFLINE)
    response = client.post("/revoke", data={"token": tokens["refresh_token"], **form}, headers=headers)
    assert response.status_code in (400, 401)
    assert response.json["error"] == "invalid_client"
    assert refresh(client, tokens["refresh_token"]).status_code == 200
