"""The authorization code flow from /authorize to userinfo, on PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.clients import PORTAL_SECRET
from tests.support.driver import Browser, basic
from tests.support.people import AN, BINH


def exchange(
    client: Any, code: str, verifier: str | None, redirect_uri: str = "https://portal.example.vn/callback"
) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    return client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET))


def verify_id_token(client: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def test_sign_in_returns_code_state_and_iss(browser: Browser) -> None:
    callback, auth = browser.sign_in(AN.username, AN.password)
    assert callback["state"] == auth.params["state"]
    assert callback["iss"] == "https://idp.example.vn"
    assert len(callback["code"]) >= 22  # at least 128 bits


def test_id_token_claims_after_code_exchange(browser: Browser, client: Any) -> None:
    callback, auth = browser.sign_in(BINH.username, BINH.password, scope="openid profile citizen")
    response = exchange(client, callback["code"], auth.verifier)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    claims = verify_id_token(client, body["id_token"])
    assert claims["iss"] == "https://idp.example.vn"
    assert claims["aud"] == "portal" and claims["azp"] == "portal"
    assert claims["nonce"] == auth.params["nonce"]
    assert claims["acr"] == "LoA3"
    assert set(claims["amr"]) >= {"pwd", "otp", "sms"}
    for name in ("auth_time", "sid", "at_hash", "exp", "iat"):
        assert name in claims
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert userinfo.status_code == 200
    assert userinfo.json["sub"] == claims["sub"]
    assert userinfo.json["name"] == BINH.name
    assert userinfo.json["citizen_id"] == BINH.username
