"""End to end with an independent OpenID Connect client library: pyoidc (`oic`, Roland Hedberg's
certified relying-party library), against a live `idp serve` with two workers on PostgreSQL and
Redis, the pages driven over HTTP like a browser.

pyoidc does the discovery, builds the authorization request (state, nonce, PKCE S256), parses and
verifies the authorization response (state, and `iss` when present), exchanges the code with the
client's authentication method, verifies the ID token against the provider's JWKS (signature,
`iss`, `aud`, `azp`, expiry, nonce), calls userinfo (and checks its `sub` against the ID token),
refreshes and builds the logout request. What it does not check (that `iss` is present at all,
`at_hash`, the algorithm each client registered) is checked here explicitly.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jwkest.jws import left_hash
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    IdToken,
    LogoutToken,
    OpenIDSchema,
    RefreshAccessTokenRequest,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.support.backchannel import BackchannelReceiver
from tests.support.clients import MOBILE_CALLBACK, PORTAL_CALLBACK, PORTAL_SECRET, POST_SECRET
from tests.support.html_signin import HtmlSignIn, parse_page
from tests.support.live import Deployment, idp_logs, shared_deployment  # noqa: F401 - idp_logs is a fixture
from tests.support.people import AN, BINH, CUC, SandboxPerson

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]

PORTAL_SIGNED_OUT = "https://portal.example.vn/signed-out"
ONEGATE_CALLBACK = "https://onegate.example.vn/cb"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, clients_file: Path, redis_url: str
) -> Iterator[Deployment]:
    """idp on a database of its own and a Redis prefix of its own, two gunicorn workers."""
    yield from shared_deployment(
        tmp_path_factory.mktemp("e2e"),
        names_and_workers=[("idp-e2e", 2)],
        keys_dir=keys_dir,
        clients_file=clients_file,
        redis_url=redis_url,
    )


def relying_party(deployment: Deployment, client_id: str, redirect_uri: str, **registration: Any) -> Client:
    """A pyoidc client: discovery from the issuer, then the static registration of clients.yaml."""
    client = Client(client_id=client_id, client_authn_method=CLIENT_AUTHN_METHOD)
    provider = client.provider_config(deployment.issuer)
    assert provider["issuer"] == deployment.issuer
    assert "S256" in provider["code_challenge_methods_supported"]
    assert provider["authorization_response_iss_parameter_supported"] is True
    client.store_registration_info(
        RegistrationResponse(client_id=client_id, redirect_uris=[redirect_uri], **registration)
    )
    client.redirect_uris = [redirect_uri]
    return client


def authorization(client: Client, redirect_uri: str, scope: str) -> tuple[str, dict[str, Any], str]:
    """pyoidc's authorization request with state, nonce and PKCE S256; (url, request, verifier)."""
    pkce, verifier = client.add_code_challenge()
    assert pkce["code_challenge_method"] == "S256"
    args = {
        "response_type": "code",
        "scope": scope.split(),
        "redirect_uri": redirect_uri,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        **pkce,
    }
    url, _, _, request = client.authorization_request_info(request_args=args)
    return url, request, verifier


def sign_in(
    deployment: Deployment, client: Client, redirect_uri: str, scope: str, person: SandboxPerson
) -> dict[str, Any]:
    """Authorization request -> sign-in pages -> authorization response parsed by pyoidc."""
    url, request, verifier = authorization(client, redirect_uri, scope)
    browser = deployment.browser()
    callback = browser.sign_in(url, person)
    assert callback.startswith(redirect_uri + "?"), callback
    response = client.parse_response(AuthorizationResponse, info=callback, sformat="urlencoded")
    assert isinstance(response, AuthorizationResponse), response
    assert response["state"] == request["state"]
    # RFC 9207: pyoidc compares `iss` with the issuer when it is there; it must be there.
    assert response["iss"] == deployment.issuer
    return {
        "browser": browser,
        "callback": callback,
        "code": response["code"],
        "request": request,
        "verifier": verifier,
        "state": request["state"],
    }


def check_id_token(
    client: Client, deployment: Deployment, tokens: AccessTokenResponse, request: Any, alg: str
) -> IdToken:
    id_token = tokens["id_token"]
    assert isinstance(id_token, IdToken), "pyoidc verified the ID token (signature, iss, aud, exp)"
    client.verify_id_token(id_token, request)  # nonce, and acr/max_age when asked
    assert id_token["iss"] == deployment.issuer
    assert id_token["aud"] == [client.client_id] and id_token["azp"] == client.client_id
    assert id_token["nonce"] == request["nonce"]
    # OpenID Connect Core §3.1.3.6: at_hash is the left half of the hash of the access token.
    assert id_token["at_hash"] == left_hash(tokens["access_token"], "HS" + alg[-3:])
    header = id_token.jws_header
    assert header["alg"] == alg
    published = requests.get(client.provider_info["jwks_uri"], timeout=10).json()["keys"]
    assert header["kid"] in {k["kid"] for k in published if k.get("alg", alg) == alg}
    for name in ("sub", "auth_time", "acr", "amr", "sid", "iat", "exp"):
        assert name in id_token, name
    assert set(id_token["amr"]) >= {"pwd", "otp"}
    return id_token


def tamper(jwt: str) -> str:
    head, body, signature = jwt.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return ".".join((head, body, signature[:5] + flipped + signature[6:]))


def test_portal_confidential_client_with_pkce(
    deployment: Deployment, backchannel: BackchannelReceiver
) -> None:
    """`portal`: client_secret_basic, ES256; code + PKCE, ID token, userinfo, refresh, logout."""
    client = relying_party(
        deployment,
        "portal",
        PORTAL_CALLBACK,
        client_secret=PORTAL_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        id_token_signed_response_alg="ES256",
        post_logout_redirect_uris=[PORTAL_SIGNED_OUT],
    )
    flow = sign_in(deployment, client, PORTAL_CALLBACK, "openid profile citizen", BINH)
    state = flow["state"]

    # pyoidc refuses an authorization response whose iss is not the provider's (mix-up defence).
    forged = flow["callback"].replace("iss=http", "iss=https")
    with pytest.raises(Exception, match="(?i)issuer"):
        client.parse_response(AuthorizationResponse, info=forged, sformat="urlencoded")

    tokens = exchange_code(
        client, state, flow["code"], PORTAL_CALLBACK, flow["verifier"], "client_secret_basic"
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    assert tokens["token_type"].lower() == "bearer"
    assert "refresh_token" in tokens
    id_token = check_id_token(client, deployment, tokens, flow["request"], "ES256")
    assert id_token["acr"] == "LoA3"

    # A tampered ID token does not verify with the published keys.
    with pytest.raises(Exception):  # noqa: B017 - jwkest raises its own BadSignature family
        IdToken().from_jwt(tamper(tokens["id_token_jwt"]), keyjar=client.keyjar, sender=deployment.issuer)

    # userinfo: GET with the Authorization header, POST with the token in the body.
    for method in ("GET", "POST"):
        info = client.do_user_info_request(method=method, state=state)
        assert isinstance(info, OpenIDSchema), info.to_dict()
        assert info["sub"] == id_token["sub"]
        assert info["name"] == BINH.name
        assert info["citizen_id"] == BINH.username

    # The code is single use.
    replay = client.do_access_token_request(
        state=state,
        request_args={
            "code": flow["code"],
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": flow["verifier"],
        },
        authn_method="client_secret_basic",
    )
    assert replay["error"] == "invalid_grant"
    # ... and its replay revoked what it had issued (RFC 6749 §4.1.2).
    assert client.do_user_info_request(token=tokens["access_token"])["error"] == "invalid_token"

    # A fresh sign-in (the SSO session answers at once) for the rest of the cycle.
    url, request, verifier = authorization(client, PORTAL_CALLBACK, "openid profile citizen")
    callback = flow["browser"].sign_in(url, BINH)
    response = client.parse_response(AuthorizationResponse, info=callback, sformat="urlencoded")
    assert response["iss"] == deployment.issuer
    state = request["state"]
    tokens = exchange_code(client, state, response["code"], PORTAL_CALLBACK, verifier, "client_secret_basic")
    id_token = check_id_token(client, deployment, tokens, request, "ES256")
    assert id_token["sid"] == flow_sid(client, flow["state"]), "one SSO session, one sid"

    refreshed = client.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["id_token"]["sub"] == id_token["sub"]
    assert refreshed["id_token"]["at_hash"] == left_hash(refreshed["access_token"], "HS256")
    assert "nonce" not in refreshed["id_token"]
    info = client.do_user_info_request(token=refreshed["access_token"])
    assert info["sub"] == id_token["sub"]

    # RP-initiated logout in the browser, with the ID token as id_token_hint.
    logout_state = secrets.token_urlsafe(8)
    end_session = client.construct_EndSessionRequest(
        state=state,
        request_args={"post_logout_redirect_uri": PORTAL_SIGNED_OUT, "state": logout_state},
    )
    assert end_session["id_token_hint"]
    logout_url = end_session.request(client.provider_info["end_session_endpoint"])
    answer = flow["browser"].get(logout_url)
    assert answer.status_code == 302, answer.text[:500]
    assert answer.headers["Location"] == f"{PORTAL_SIGNED_OUT}?state={logout_state}"

    # Back-channel logout: a logout token for this session, verified by pyoidc with the JWKS.
    logout_tokens = []
    for raw in backchannel.tokens_for("/portal"):
        token = LogoutToken().from_jwt(raw, keyjar=client.keyjar, sender=deployment.issuer)
        if token.get("sid") == id_token["sid"]:
            logout_tokens.append(token)
    assert len(logout_tokens) == 1
    assert logout_tokens[0].verify(iss=deployment.issuer, aud="portal")
    assert logout_tokens[0]["events"] == {BACKCHANNEL_EVENT: {}}

    # The session's online grant is revoked: access token and refresh token no longer work.
    after = client.do_user_info_request(token=refreshed["access_token"])
    assert after["error"] == "invalid_token"
    refused = refresh(client, tokens["refresh_token"], "client_secret_basic")
    assert refused["error"] == "invalid_grant", refused.to_dict()
    # And the browser is signed out: a new request shows the sign-in page again.
    url, _, _ = authorization(client, PORTAL_CALLBACK, "openid")
    chooser = flow["browser"].start(url)
    assert chooser.status_code == 200
    assert {a.get("data-account-kind") for a in parse_page(chooser.text).links} >= {"citizen"}


def exchange_code(
    client: Client, state: str, code: str, redirect_uri: str, verifier: str, authn_method: str
) -> Any:
    """pyoidc's token request for a code, with the PKCE verifier it does not keep itself."""
    return client.do_access_token_request(
        state=state,
        request_args={"code": code, "redirect_uri": redirect_uri, "code_verifier": verifier},
        authn_method=authn_method,
    )


def flow_sid(client: Client, state: str) -> str:
    return client.grant[state].get_id_token()["sid"]


def test_mobile_public_client_with_pkce_and_rotation(deployment: Deployment) -> None:
    """`mobile`: public client (no secret), PKCE S256, offline_access, refresh-token rotation."""
    client = relying_party(deployment, "mobile", MOBILE_CALLBACK, token_endpoint_auth_method="none")
    flow = sign_in(deployment, client, MOBILE_CALLBACK, "openid profile phone offline_access", AN)
    state = flow["state"]
    tokens = exchange_code(client, state, flow["code"], MOBILE_CALLBACK, flow["verifier"], "")
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    id_token = check_id_token(client, deployment, tokens, flow["request"], "ES256")
    assert id_token["acr"] == "LoA2"
    info = client.do_user_info_request(method="GET", state=state)
    assert info["sub"] == id_token["sub"] and info["name"] == AN.name
    assert info["phone_number"] == AN.phone

    first_refresh = tokens["refresh_token"]
    rotated = client.do_access_token_refresh(state=state, authn_method="")
    assert isinstance(rotated, AccessTokenResponse), rotated.to_dict()
    assert rotated["refresh_token"] != first_refresh, "public clients' refresh tokens rotate"
    assert client.do_user_info_request(token=rotated["access_token"])["sub"] == id_token["sub"]

    # The rotated-away token comes back: reuse detection revokes the whole family.
    stolen = refresh(client, first_refresh, "")
    assert stolen["error"] == "invalid_grant"
    family = refresh(client, rotated["refresh_token"], "")
    assert family["error"] == "invalid_grant"
    assert client.do_user_info_request(token=rotated["access_token"])["error"] == "invalid_token"

    # A code exchanged without its PKCE verifier is refused.
    url, request, _ = authorization(client, MOBILE_CALLBACK, "openid profile phone offline_access")
    browser: HtmlSignIn = flow["browser"]
    callback = browser.sign_in(url, AN)  # the SSO session answers at once
    response = client.parse_response(AuthorizationResponse, info=callback, sformat="urlencoded")
    no_verifier = client.do_access_token_request(
        state=request["state"],
        request_args={"code": response["code"], "redirect_uri": MOBILE_CALLBACK},
        authn_method="",
    )
    assert no_verifier["error"] in ("invalid_grant", "invalid_request"), no_verifier.to_dict()


class ExplicitRefreshRequest(RefreshAccessTokenRequest):
    """pyoidc's refresh request with the token given (its own picks the newest token it holds)."""


def refresh(client: Client, refresh_token: str, authn_method: str) -> Any:
    return client.do_any(
        request=ExplicitRefreshRequest,
        endpoint=client.token_endpoint,
        request_args={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client.client_id,
        },
        response=AccessTokenResponse,
        authn_method=authn_method,
    )


def test_rs256_client_with_client_secret_post(deployment: Deployment) -> None:
    """`portal-post`: client_secret_post and ID tokens signed RS256, as it registered."""
    client = relying_party(
        deployment,
        "portal-post",
        ONEGATE_CALLBACK,
        client_secret=POST_SECRET,
        token_endpoint_auth_method="client_secret_post",
        id_token_signed_response_alg="RS256",
    )
    flow = sign_in(deployment, client, ONEGATE_CALLBACK, "openid profile", CUC)
    state = flow["state"]
    tokens = exchange_code(
        client, state, flow["code"], ONEGATE_CALLBACK, flow["verifier"], "client_secret_post"
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    id_token = check_id_token(client, deployment, tokens, flow["request"], "RS256")
    info = client.do_user_info_request(state=state)
    assert info["sub"] == id_token["sub"] and info["name"] == CUC.name
    refreshed = client.do_access_token_refresh(state=state, authn_method="client_secret_post")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["id_token"].jws_header["alg"] == "RS256"

    # The same client authenticating with the other method is refused.
    wrong = client.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert wrong["error"] == "invalid_client"
