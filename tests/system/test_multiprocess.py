"""Two `idp serve` processes behind one issuer, as behind a load balancer: they share the
database, the Redis prefix, the keys and the relying parties, and keep nothing of their own.

A sign-in starts on A (authorization request, password) and finishes on B (OTP, resume, code
exchange, userinfo); a code is single use across processes; a refresh token works on either.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.clients import MOBILE_CALLBACK, PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import basic
from tests.support.html_signin import HtmlSignIn, query_of
from tests.support.live import Deployment, IdpProcess, authorization_url, idp_logs, shared_deployment  # noqa: F401 - idp_logs is a fixture
from tests.support.people import AN, BINH, CUC

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]

RACE_ROUNDS = 8


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, clients_file: Path, redis_url: str
) -> Iterator[Deployment]:
    # Process A listens on the issuer's port, B on a port of its own; same issuer, stores, keys.
    yield from shared_deployment(
        tmp_path_factory.mktemp("multiprocess"),
        names_and_workers=[("idp-A", 1), ("idp-B", 1)],
        keys_dir=keys_dir,
        clients_file=clients_file,
        redis_url=redis_url,
    )


@pytest.fixture
def a(deployment: Deployment) -> IdpProcess:
    return deployment.servers[0]


@pytest.fixture
def b(deployment: Deployment) -> IdpProcess:
    return deployment.servers[1]


def exchange(
    server: IdpProcess,
    code: str,
    verifier: str,
    *,
    client_id: str = "portal",
    redirect_uri: str = PORTAL_CALLBACK,
) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if client_id == "portal":
        return requests.post(
            server.url("/token"), data=data, headers=basic("portal", PORTAL_SECRET), timeout=15
        )
    return requests.post(server.url("/token"), data={**data, "client_id": client_id}, timeout=15)


def refresh(server: IdpProcess, token: str, client_id: str = "portal") -> requests.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    if client_id == "portal":
        return requests.post(
            server.url("/token"), data=data, headers=basic("portal", PORTAL_SECRET), timeout=15
        )
    return requests.post(server.url("/token"), data={**data, "client_id": client_id}, timeout=15)


def userinfo(server: IdpProcess, access_token: str) -> requests.Response:
    return requests.get(
        server.url("/userinfo"), headers={"Authorization": "Bearer " + access_token}, timeout=15
    )


def id_token_claims(server: IdpProcess, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(server.url("/jwks.json"), timeout=15).json())
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def test_sign_in_starts_on_a_and_finishes_on_b(deployment: Deployment, a: IdpProcess, b: IdpProcess) -> None:
    since_a, since_b = a.log_size(), b.log_size()
    url, params, verifier = authorization_url(a, scope="openid profile citizen")
    browser = deployment.browser(a)
    chooser = browser.start(url)
    after_password = browser.password(chooser, BINH.username, BINH.password)
    assert after_password.status_code == 302, after_password.text[:500]

    browser.use(b.base)  # the load balancer sends the rest elsewhere
    callback = browser.finish(browser.otp(after_password, BINH.phone))
    answer = query_of(callback)
    assert callback.startswith(PORTAL_CALLBACK + "?")
    assert answer["state"] == params["state"]
    assert answer["iss"] == deployment.issuer  # B speaks for the one issuer

    tokens = exchange(b, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = id_token_claims(b, body["id_token"])
    assert claims["iss"] == deployment.issuer and claims["aud"] == "portal"
    assert claims["nonce"] == params["nonce"] and claims["acr"] == "LoA3"
    info = userinfo(b, body["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"] and info.json()["citizen_id"] == BINH.username
    # ... and the access token B issued is good on A too.
    assert userinfo(a, body["access_token"]).json()["sub"] == claims["sub"]

    # Each step really ran where the test says.
    log_a, log_b = a.logs(since_a), b.logs(since_b)
    assert '"GET /authorize"' in log_a and '"POST /login/' in log_a and '/citizen"' in log_a
    assert '/otp"' in log_b and '"GET /authorize/resume/' in log_b and '"POST /token"' in log_b
    assert '"POST /token"' not in log_a and '/otp"' not in log_a


def test_code_from_a_is_single_use_on_b(deployment: Deployment, a: IdpProcess, b: IdpProcess) -> None:
    url, _, verifier = authorization_url(a)
    callback = deployment.browser(a).sign_in(url, AN)
    code = query_of(callback)["code"]

    first = exchange(a, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    replay = exchange(b, code, verifier)
    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"
    # The replay on B revoked what A issued from that code (RFC 6749 §4.1.2), everywhere.
    for server in (a, b):
        assert userinfo(server, tokens["access_token"]).status_code == 401
        assert refresh(server, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_raced_on_both_processes_is_issued_once(
    deployment: Deployment, a: IdpProcess, b: IdpProcess
) -> None:
    """The same code sent to A and B at the same moment: one exchange wins, and the replay
    revokes what it issued, whatever the interleaving (several rounds, to meet several)."""
    browser = deployment.browser(a)
    for round_ in range(RACE_ROUNDS):
        url, _, verifier = authorization_url(a)
        code = query_of(browser.sign_in(url, CUC))["code"]  # SSO after the first round
        results: dict[str, requests.Response] = {}
        start = threading.Barrier(2)

        def send(
            server: IdpProcess,
            code: str = code,
            verifier: str = verifier,
            start: threading.Barrier = start,
            results: dict[str, requests.Response] = results,
        ) -> None:
            start.wait()
            results[server.name] = exchange(server, code, verifier)

        threads = [threading.Thread(target=send, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        answers = {k: (r.status_code, r.text) for k, r in results.items()}
        # At most one exchange answers with tokens (the other, or both when the replay lands
        # while the first is still writing its grant, answer invalid_grant).
        assert sorted(r.status_code for r in results.values()) in ([200, 400], [400, 400]), answers
        assert all(r.json()["error"] == "invalid_grant" for r in results.values() if r.status_code == 400)
        for won in [r.json() for r in results.values() if r.status_code == 200]:
            for server in (a, b):
                assert userinfo(server, won["access_token"]).status_code == 401, f"round {round_}"
                again = refresh(server, won["refresh_token"])
                assert again.status_code == 400, (round_, again.text)
                assert again.json()["error"] == "invalid_grant"


def test_refresh_on_b_of_tokens_from_a(deployment: Deployment, a: IdpProcess, b: IdpProcess) -> None:
    # Confidential client: the refresh token from A works on B (and again on A).
    url, _, verifier = authorization_url(a)
    browser = deployment.browser(a)
    callback = browser.sign_in(url, AN)
    tokens = exchange(a, query_of(callback)["code"], verifier).json()
    on_b = refresh(b, tokens["refresh_token"])
    assert on_b.status_code == 200, on_b.text
    assert userinfo(a, on_b.json()["access_token"]).status_code == 200
    assert refresh(a, tokens["refresh_token"]).status_code == 200

    # Public client: rotation on B, and the rotated-away token presented to A is a reuse.
    url, _, verifier = authorization_url(
        a, client_id="mobile", redirect_uri=MOBILE_CALLBACK, scope="openid profile offline_access"
    )
    callback = browser.sign_in(url, AN)  # SSO: answered at once
    mobile = exchange(
        a, query_of(callback)["code"], verifier, client_id="mobile", redirect_uri=MOBILE_CALLBACK
    )
    assert mobile.status_code == 200, mobile.text
    first = mobile.json()["refresh_token"]
    rotated = refresh(b, first, client_id="mobile")
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    reuse = refresh(a, first, client_id="mobile")
    assert reuse.json()["error"] == "invalid_grant"
    assert refresh(b, second, client_id="mobile").json()["error"] == "invalid_grant"  # family revoked


def test_browser_moves_between_processes_mid_sign_in(
    deployment: Deployment, a: IdpProcess, b: IdpProcess
) -> None:
    """Every step on the other process than the one before: A, B, A, B..."""
    url, params, verifier = authorization_url(b, client_id="portal")
    browser = HtmlSignIn(b.base, deployment.outbox, issuer=deployment.issuer)
    chooser = browser.start(url)
    browser.use(a.base)
    page = browser.citizen_door(chooser)
    assert page.status_code == 200
    browser.use(b.base)
    after_password = browser.password(chooser, CUC.username, CUC.password)
    browser.use(a.base)
    after_otp = browser.otp(after_password, CUC.phone)
    browser.use(b.base)
    callback = browser.finish(after_otp)
    answer = query_of(callback)
    assert answer["state"] == params["state"] and answer["iss"] == deployment.issuer
    assert exchange(a, answer["code"], verifier).status_code == 200
