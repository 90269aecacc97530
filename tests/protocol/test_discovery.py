"""Provider metadata (OpenID Connect Discovery 1.0, RFC 8414) and the published JWKS (RFC 7517)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp.oidc.keys import read_keys
from tests.support.tokens import shared_client

ISSUER = "https://idp.example.vn"
WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]

# OpenID Connect Discovery §3 REQUIRED, plus what RFC 8414 §2 asks of a server with these features.
REQUIRED = {
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "userinfo_endpoint",
    "scopes_supported",
    "claims_supported",
    "grant_types_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "revocation_endpoint",
    "introspection_endpoint",
    "end_session_endpoint",
    "code_challenge_methods_supported",
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def rp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One application for this module's tests that sign nobody in."""
    yield from shared_client(request)


@pytest.fixture
def metadata(rp: Any) -> dict[str, Any]:
    response = rp.get(WELL_KNOWN[0])
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_both_well_known_documents_name_this_issuer(rp: Any, path: str) -> None:
    response = rp.get(path)
    assert response.status_code == 200
    assert response.json["issuer"] == ISSUER
    assert response.json == rp.get(WELL_KNOWN[0]).json


def test_required_metadata_is_present(metadata: dict[str, Any]) -> None:
    assert set(metadata) >= REQUIRED, REQUIRED - set(metadata)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
    ],
)
def test_endpoints_are_https_under_the_issuer_and_answer(
    rp: Any, metadata: dict[str, Any], name: str, path: str
) -> None:
    assert metadata[name] == ISSUER + path
    method = "POST" if name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint") else "GET"
    assert rp.open(path, method=method).status_code != 404


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("code_challenge_methods_supported", ["S256"]),
        ("response_types_supported", ["code"]),
        ("authorization_response_iss_parameter_supported", True),
        ("backchannel_logout_supported", True),
        ("backchannel_logout_session_supported", True),
        ("claims_parameter_supported", True),
        ("request_parameter_supported", False),
        ("request_uri_parameter_supported", False),
    ],
)
def test_metadata_values(metadata: dict[str, Any], name: str, expected: Any) -> None:
    assert metadata[name] == expected


def test_supported_lists(metadata: dict[str, Any]) -> None:
    assert set(metadata["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}
    assert "none" not in metadata["id_token_signing_alg_values_supported"]
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "implicit" not in metadata["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} == set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    assert {"openid", "profile", "phone", "offline_access"} <= set(metadata["scopes_supported"])
    for claim in ("sub", "acr", "amr", "auth_time", "sid", "name", "phone_number", "citizen_id"):
        assert claim in metadata["claims_supported"], claim
    assert "public" in metadata["subject_types_supported"]
    assert {"LoA2", "LoA3"} <= set(metadata["acr_values_supported"])


def test_metadata_is_cacheable_and_cross_origin(rp: Any) -> None:
    response = rp.get(WELL_KNOWN[0])
    assert "max-age" in response.headers["Cache-Control"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_loopback_issuer_is_reflected_in_every_endpoint(make_app: Any) -> None:
    app = make_app(ISSUER="http://127.0.0.1:8123")
    body = app.test_client().get(WELL_KNOWN[0]).json
    assert body["issuer"] == "http://127.0.0.1:8123"
    assert body["token_endpoint"] == "http://127.0.0.1:8123/token"


# -- JWKS ------------------------------------------------------------------------------------------
def test_jwks_publishes_es256_and_rs256_with_kid_alg_use(rp: Any) -> None:
    response = rp.get("/jwks.json")
    assert response.status_code == 200
    keys = response.json["keys"]
    assert {k["alg"] for k in keys} == {"ES256", "RS256"}
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert key["kty"] == {"ES256": "EC", "RS256": "RSA"}[key["alg"]]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))


def test_jwks_has_no_private_members(rp: Any) -> None:
    for key in rp.get("/jwks.json").json["keys"]:
        assert not (PRIVATE_MEMBERS & set(key)), sorted(key)


def test_jwks_includes_the_next_keys(rp: Any, keys_dir: Path) -> None:
    published = {k["kid"] for k in rp.get("/jwks.json").json["keys"]}
    stored = read_keys(keys_dir)
    for state in ("active", "next"):
        for alg in ("ES256", "RS256"):
            kids = {k.kid for k in stored if k.status == state and k.alg == alg}
            assert kids and kids <= published, (state, alg)


def test_jwks_cache_is_short(rp: Any) -> None:
    """A next key must reach relying parties well before it signs: minutes, not a day."""
    cache = rp.get("/jwks.json").headers["Cache-Control"]
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 3600
