"""The client_credentials grant for agency back-ends: only the client's own scopes, no refresh
token, no ID token, no person behind the token, and only for clients registered for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clients import AGENCY_SECRET
from tests.support.driver import basic
from tests.support.tokens import client_credentials, introspect, revoke, shared_client, userinfo


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


def test_agency_backend_gets_an_access_token_with_its_scopes(rp: Any) -> None:
    response = client_credentials(rp)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert set(body["scope"].split()) == {"records.read", "records.write"}
    assert "refresh_token" not in body
    assert "id_token" not in body


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param("records.read", {"records.read"}, id="a subset"),
        pytest.param("records.read records.write", {"records.read", "records.write"}, id="all"),
        pytest.param("records.read made.up", {"records.read"}, id="unknown scope dropped"),
        pytest.param("records.read openid offline_access", {"records.read"}, id="user scopes dropped"),
    ],
)
def test_requested_scope_is_narrowed_to_the_clients(rp: Any, requested: str, granted: set[str]) -> None:
    response = client_credentials(rp, scope=requested)
    assert response.status_code == 200, response.json
    assert set(response.json["scope"].split()) == granted


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("made.up", id="only unknown"),
        pytest.param("openid profile", id="only user scopes"),
        pytest.param("records.delete", id="a scope the client lacks"),
    ],
)
def test_no_acceptable_scope_is_invalid_scope(rp: Any, requested: str) -> None:
    response = client_credentials(rp, scope=requested)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"
    assert "access_token" not in response.json


@pytest.mark.parametrize(
    ("form", "headers", "errors"),
    [
        pytest.param(
            {"client_id": "mobile"},
            {},
            ("unauthorized_client", "invalid_client"),
            id="public client",
        ),
        pytest.param(
            {},
            basic("agency-backend", "wrong-" + AGENCY_SECRET),
            ("invalid_client",),
            id="wrong secret",
        ),
        pytest.param({"client_id": "agency-backend"}, {}, ("invalid_client",), id="no secret"),
    ],
)
def test_who_may_not_use_client_credentials(
    rp: Any, form: dict[str, str], headers: dict[str, str], errors: tuple[str, ...]
) -> None:
    response = rp.post("/token", data={"grant_type": "client_credentials", **form}, headers=headers)
    assert response.status_code in (400, 401)
    assert response.json["error"] in errors
    assert "access_token" not in response.json


def test_agency_backend_may_not_use_the_code_grant(rp: Any) -> None:
    response = rp.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "c" * 43,
            "redirect_uri": "https://agency.example.vn/cb",
        },
        headers=basic("agency-backend", AGENCY_SECRET),
    )
    assert response.status_code in (400, 401)
    assert response.json["error"] == "unauthorized_client"


def test_client_credentials_token_is_not_accepted_at_userinfo(rp: Any) -> None:
    token = client_credentials(rp).json["access_token"]
    response = userinfo(rp, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_introspection_of_a_client_credentials_token(rp: Any) -> None:
    token = client_credentials(rp, scope="records.read").json["access_token"]
    own = introspect(rp, token, caller="agency-backend").json
    assert own["active"] is True
    assert own["client_id"] == "agency-backend"
    assert own["scope"] == "records.read"
    assert own["token_type"] == "Bearer"
    assert own["iss"] == "https://idp.example.vn"
    assert own["exp"] - own["iat"] == 300
    by_resource_server = introspect(rp, token, caller="resource-api").json
    assert by_resource_server["active"] is True and by_resource_server["client_id"] == "agency-backend"


def test_revoked_client_credentials_token_is_inactive(rp: Any) -> None:
    token = client_credentials(rp).json["access_token"]
    assert revoke(rp, token, caller="agency-backend").status_code == 200
    assert introspect(rp, token).json == {"active": False}


def test_each_request_gets_a_distinct_token(rp: Any) -> None:
    first = client_credentials(rp).json["access_token"]
    second = client_credentials(rp).json["access_token"]
    assert first != second
    assert introspect(rp, first).json["active"] and introspect(rp, second).json["active"]
