"""The upstreams' settings (IDP_NATIONAL_PORTAL_*, IDP_VNEID_*, IDP_UPSTREAM_TIMEOUT): one
generated group per upstream in the documented table, checked across settings, and turned into
a client whose redirect URI at the upstream is exactly {IDP_ISSUER}/upstream/<door>/callback."""

from __future__ import annotations

from typing import Any

import pytest

from idp.config import ConfigError, describe, resolve
from idp.upstreams import UpstreamMisconfigured, build_upstreams, upstream_config

ISSUER = "https://idp.example.vn"
VNEID = {
    "IDP_ISSUER": ISSUER,
    "IDP_VNEID_ISSUER": "https://sso.vneid.example.vn/auth/realms/citizen",
    "IDP_VNEID_CLIENT_ID": "idp-tinh",
    "IDP_VNEID_CLIENT_SECRET_ENV": "VNEID_SECRET",
}


def settings(environ: dict[str, str]) -> dict[str, Any]:
    return resolve(environ)


def test_every_setting_of_both_upstreams_is_documented() -> None:
    table = describe()
    for prefix in ("NATIONAL_PORTAL", "VNEID"):
        for key in (
            "ISSUER",
            "AUTHORIZATION_ENDPOINT",
            "TOKEN_ENDPOINT",
            "USERINFO_ENDPOINT",
            "JWKS_URI",
            "END_SESSION_ENDPOINT",
            "CLIENT_ID",
            "CLIENT_SECRET",
            "CLIENT_SECRET_ENV",
            "TOKEN_ENDPOINT_AUTH_METHOD",
            "SCOPE",
            "ACR_VALUES",
        ):
            assert f"IDP_{prefix}_{key} = " in table
    assert "IDP_UPSTREAM_TIMEOUT = 5.0" in table


def test_an_unset_issuer_leaves_the_door_closed() -> None:
    assert build_upstreams(settings({"IDP_ISSUER": ISSUER}), {}) == {}


def test_a_configured_upstream_becomes_a_client() -> None:
    found = upstream_config(
        settings({**VNEID, "IDP_UPSTREAM_TIMEOUT": "3"}), "vneid", {"VNEID_SECRET": "s3cret"}
    )
    assert found is not None
    assert found.redirect_uri == f"{ISSUER}/upstream/vneid/callback"
    assert (found.client_id, found.client_secret, found.timeout) == ("idp-tinh", "s3cret", 3.0)
    assert (found.token_endpoint_auth_method, found.scope, found.acr_values) == (
        "client_secret_basic",
        "openid",
        None,
    )


def test_a_missing_secret_variable_is_named() -> None:
    with pytest.raises(
        UpstreamMisconfigured, match="IDP_VNEID_CLIENT_SECRET_ENV: environment variable VNEID_SECRET"
    ):
        upstream_config(settings(VNEID), "vneid", {})


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"IDP_VNEID_CLIENT_ID": ""}, "IDP_VNEID_CLIENT_ID: is required", id="no-client-id"),
        pytest.param({"IDP_VNEID_CLIENT_SECRET": "x"}, "exactly one", id="both-secrets"),
        pytest.param({"IDP_VNEID_CLIENT_SECRET_ENV": ""}, "exactly one", id="no-secret"),
        pytest.param(
            {"IDP_VNEID_CLIENT_SECRET_ENV": "bad name"}, "name of an environment variable", id="bad-env"
        ),
        pytest.param({"IDP_VNEID_ISSUER": "http://vneid.example.vn"}, "https", id="plain-http"),
        pytest.param({"IDP_VNEID_TOKEN_ENDPOINT_AUTH_METHOD": "private_key_jwt"}, "one of", id="auth-method"),
        pytest.param(
            {
                "IDP_VNEID_ISSUER": "",
                "IDP_VNEID_AUTHORIZATION_ENDPOINT": "https://v.example.vn/a",
                "IDP_VNEID_TOKEN_ENDPOINT": "https://v.example.vn/t",
                "IDP_VNEID_JWKS_URI": "https://v.example.vn/k",
            },
            "IDP_VNEID_ISSUER: is required",
            id="endpoints-without-issuer",
        ),
    ],
)
def test_bad_upstream_settings_are_refused_naming_the_key(changes: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        settings({**VNEID, **changes})
