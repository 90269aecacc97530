"""The upstream OpenID Connect client (idp.upstreams.client) against a provider over real HTTP:
PKCE and nonce in the request, the code exchange with either client authentication, every check
of the ID token (a forged one is refused with its reason), userinfo's sub, RFC 9207 iss, a key
rotation (an unknown kid refetches the JWKS at once, but not on every token), and an upstream that
is down, slow or answers garbage."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc.jwk import ECKey

from idp.upstreams.client import (
    UpstreamClient,
    UpstreamConfig,
    UpstreamRefused,
    UpstreamUnavailable,
)
from tests.support.stub_http import Answer, closed_port_url
from tests.support.upstream_stub import CLIENT_ID, CLIENT_SECRET, FakeUpstream

REDIRECT = "https://idp.example.vn/upstream/vneid/callback"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    yield fake
    fake.close()


def client_for(fake: FakeUpstream, **changes: Any) -> UpstreamClient:
    config = UpstreamConfig(
        name="vneid",
        issuer=fake.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT,
        timeout=changes.pop("timeout", 2.0),
        **changes,
    )
    return UpstreamClient(config)


def start(fake: FakeUpstream, client: UpstreamClient) -> tuple[Any, str]:
    """The authorization request, and the code the upstream will answer for it."""
    authorization = client.authorization()
    code = "code-" + authorization.state[:8]
    fake.nonces[code] = authorization.nonce
    return authorization, code


def test_the_authorization_request_carries_pkce_s256_nonce_and_state(upstream: FakeUpstream) -> None:
    client = client_for(upstream, acr_values="IAL2")
    authorization = client.authorization(prompt="login", max_age=0)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorization.url).query).items()}
    digest = hashlib.sha256(authorization.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query["code_challenge_method"] == "S256"
    assert (query["state"], query["nonce"]) == (authorization.state, authorization.nonce)
    assert query["redirect_uri"] == REDIRECT and query["client_id"] == CLIENT_ID
    assert (query["acr_values"], query["prompt"], query["max_age"]) == ("IAL2", "login", "0")
    assert len(authorization.state) >= 32 and len(authorization.nonce) >= 32


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_the_code_exchange_and_userinfo(upstream: FakeUpstream, method: str) -> None:
    upstream.userinfo = {"SoDinhDanh": "046090001234", "IAL": 2}
    client = client_for(upstream, token_endpoint_auth_method=method)
    authorization, code = start(upstream, client)
    tokens = client.exchange(code, authorization)
    assert tokens.id_claims["sub"] == "upstream-subject-1"
    assert tokens.userinfo["SoDinhDanh"] == "046090001234"
    token_request = next(r for r in upstream.requests if r.path == "/token")
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert form["code_verifier"] == authorization.code_verifier
    if method == "client_secret_post":
        assert form["client_secret"] == CLIENT_SECRET and "Authorization" not in token_request.headers
    else:
        basic = base64.b64decode(token_request.headers["Authorization"].split()[1]).decode()
        assert basic == f"{CLIENT_ID}:{CLIENT_SECRET}" and "client_secret" not in form


NOW = int(time.time())


@pytest.mark.parametrize(
    ("changes", "header", "reason"),
    [
        pytest.param({"aud": "someone-else"}, {}, "wrong_audience", id="wrong-aud"),
        pytest.param({"aud": [CLIENT_ID, "other"]}, {}, "wrong_azp", id="several-audiences-no-azp"),
        pytest.param({"iss": "https://evil.example"}, {}, "wrong_issuer", id="wrong-iss"),
        pytest.param({"exp": NOW - 3600}, {}, "expired", id="expired"),
        pytest.param({"iat": NOW + 3600, "exp": NOW + 7200}, {}, "issued_in_the_future", id="iat-future"),
        pytest.param({"nonce": "replayed-or-other"}, {}, "wrong_nonce", id="wrong-nonce"),
        pytest.param({"sub": ""}, {}, "no_subject", id="no-sub"),
    ],
)
def test_a_forged_or_stale_id_token_is_refused(
    upstream: FakeUpstream, changes: dict[str, Any], header: dict[str, Any], reason: str
) -> None:
    client = client_for(upstream)
    authorization, code = start(upstream, client)
    upstream.next_claims = changes
    with pytest.raises(UpstreamRefused) as refused:
        client.exchange(code, authorization)
    assert refused.value.reason == reason


def test_several_audiences_with_our_azp_are_accepted(upstream: FakeUpstream) -> None:
    client = client_for(upstream)
    authorization, code = start(upstream, client)
    upstream.next_claims = {"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID}
    assert client.exchange(code, authorization).id_claims["azp"] == CLIENT_ID


def test_a_token_signed_by_another_key_is_refused(upstream: FakeUpstream) -> None:
    client = client_for(upstream)
    authorization, code = start(upstream, client)
    upstream.signing_key = ECKey.generate_key("P-256", parameters={"kid": "k1"})  # same kid, not theirs
    with pytest.raises(UpstreamRefused) as refused:
        client.exchange(code, authorization)
    assert refused.value.reason == "bad_signature"


def test_alg_none_is_refused(upstream: FakeUpstream) -> None:
    client = client_for(upstream)
    authorization, _ = start(upstream, client)

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = b64({"alg": "none"}) + "." + b64({"iss": upstream.issuer, "aud": CLIENT_ID, "sub": "x"}) + "."
    with pytest.raises(UpstreamRefused) as refused:
        client.validate_id_token(unsigned, nonce=authorization.nonce)
    assert refused.value.reason == "unsigned_or_unknown_alg"


def test_the_first_sign_in_after_a_key_rotation_succeeds_and_made_up_kids_do_not_flood(
    upstream: FakeUpstream,
) -> None:
    client = client_for(upstream)
    authorization, code = start(upstream, client)
    client.exchange(code, authorization)  # JWKS fetched with k1
    upstream.rotate()  # the upstream now signs with k2
    authorization, code = start(upstream, client)
    assert client.exchange(code, authorization).id_claims["sub"] == "upstream-subject-1"
    fetches = sum(r.path == "/jwks" for r in upstream.requests)
    assert fetches == 2  # one refetch, at once
    # Tokens naming kids nobody published do not refetch again within the interval.
    upstream.next_header = {"kid": "made-up"}
    for _ in range(5):
        authorization, code = start(upstream, client)
        with pytest.raises(UpstreamRefused):
            client.exchange(code, authorization)
    assert sum(r.path == "/jwks" for r in upstream.requests) == fetches


def test_userinfo_for_another_subject_is_refused(upstream: FakeUpstream) -> None:
    upstream.userinfo = {"sub": "someone-else"}
    client = client_for(upstream)
    authorization, code = start(upstream, client)
    with pytest.raises(UpstreamRefused) as refused:
        client.exchange(code, authorization)
    assert refused.value.reason == "userinfo_subject_mismatch"


def test_the_response_issuer_is_checked_when_advertised(upstream: FakeUpstream) -> None:
    client = client_for(upstream)
    client.check_response_issuer(upstream.issuer)
    with pytest.raises(UpstreamRefused):
        client.check_response_issuer(None)  # advertised, so it must be there
    with pytest.raises(UpstreamRefused):
        client.check_response_issuer("https://evil.example")


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        pytest.param(Answer(status=500, body=b"oops"), UpstreamUnavailable, "server_error", id="500"),
        pytest.param(Answer(body=b"<html>not json"), UpstreamRefused, "malformed_json", id="garbage"),
        pytest.param(Answer(body=b"{}", delay=1.5), UpstreamUnavailable, "timeout", id="hangs"),
        pytest.param(
            Answer(status=400, body=b'{"error": "invalid_grant"}'),
            UpstreamRefused,
            "token_error",
            id="invalid-grant",
        ),
    ],
)
def test_a_token_endpoint_that_misbehaves(
    upstream: FakeUpstream, answer: Answer, error: type[Exception], reason: str
) -> None:
    client = client_for(upstream, timeout=0.5)
    authorization, code = start(upstream, client)
    upstream.token_answer = answer
    with pytest.raises(error) as failed:
        client.exchange(code, authorization)
    assert failed.value.reason == reason  # type: ignore[attr-defined]


def test_an_unreachable_upstream_is_unavailable() -> None:
    config = UpstreamConfig(
        name="national-portal",
        issuer=closed_port_url(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT,
        timeout=0.5,
    )
    with pytest.raises(UpstreamUnavailable) as failed:
        UpstreamClient(config).authorization()
    assert failed.value.reason == "unreachable"


def test_discovery_naming_another_issuer_is_refused(upstream: FakeUpstream) -> None:
    upstream.discovery_answer = Answer(body=json.dumps({"issuer": "https://elsewhere.example"}).encode())
    with pytest.raises(UpstreamRefused) as refused:
        client_for(upstream).authorization()
    assert refused.value.reason == "discovery_issuer_mismatch"


def test_explicit_endpoints_need_no_discovery(upstream: FakeUpstream) -> None:
    client = client_for(
        upstream,
        authorization_endpoint=upstream.issuer + "/authorize",
        token_endpoint=upstream.issuer + "/token",
        jwks_uri=upstream.issuer + "/jwks",
    )
    authorization, code = start(upstream, client)
    client.exchange(code, authorization)
    assert not any(r.path.startswith("/.well-known") for r in upstream.requests)
