"""Machine-side helpers: each test relying party authenticating the way clients.yaml registers it,
a sign-in turned into tokens, and calls to userinfo, introspection and revocation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.support.clients import (
    AGENCY_SECRET,
    MOBILE_CALLBACK,
    PARTNER_CALLBACK,
    PARTNER_SECRET,
    PORTAL_CALLBACK,
    PORTAL_SECRET,
    POST_SECRET,
    RESOURCE_SECRET,
)
from tests.support.driver import Authorization, Browser, basic
from tests.support.people import AN, SandboxPerson

ISSUER = "https://idp.example.vn"
TOKEN_ENDPOINT = ISSUER + "/token"

CALLBACKS = {
    "portal": PORTAL_CALLBACK,
    "portal-post": "https://onegate.example.vn/cb",
    "partner": PARTNER_CALLBACK,
    "mobile": MOBILE_CALLBACK,
    "strict-portal": "https://strict.example.vn/cb",
    "jwt-client": "https://jwt.example.vn/cb",
}
BASIC_SECRETS = {
    "portal": PORTAL_SECRET,
    "strict-portal": PORTAL_SECRET,
    "partner": PARTNER_SECRET,
    "agency-backend": AGENCY_SECRET,
    "resource-api": RESOURCE_SECRET,
}


def client_assertion(
    key: ECKey,
    client_id: str = "jwt-client",
    *,
    audience: str = TOKEN_ENDPOINT,
    jti: str | None = None,
    lifetime: int = 60,
    kid: str = "jwt-client-1",
    **claims: Any,
) -> str:
    """An RFC 7523 client assertion (private_key_jwt) signed with `key`."""
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime,
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": kid}, body, key, algorithms=["ES256"])


def with_auth(
    client_id: str, data: dict[str, str], jwt_key: ECKey | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(form, headers) for `client_id` authenticating with its registered method."""
    data = dict(data)
    if client_id in BASIC_SECRETS:
        return data, basic(client_id, BASIC_SECRETS[client_id])
    if client_id == "portal-post":
        data.update(client_id=client_id, client_secret=POST_SECRET)
    elif client_id == "jwt-client":
        assert jwt_key is not None, "jwt-client needs the jwt_key fixture"
        data.update(
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion=client_assertion(jwt_key),
        )
    else:  # public clients
        data["client_id"] = client_id
    return data, {}


def post_as(
    client: Any, path: str, client_id: str, data: dict[str, str], jwt_key: ECKey | None = None
) -> Any:
    form, headers = with_auth(client_id, data, jwt_key)
    return client.post(path, data=form, headers=headers)


def exchange(
    client: Any,
    code: str,
    auth: Authorization,
    client_id: str = "portal",
    *,
    redirect_uri: str | None = None,
    jwt_key: ECKey | None = None,
) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or auth.params["redirect_uri"],
    }
    if auth.verifier:
        data["code_verifier"] = auth.verifier
    return post_as(client, "/token", client_id, data, jwt_key)


def sign_in_and_exchange(
    browser: Browser,
    person: SandboxPerson = AN,
    client_id: str = "portal",
    scope: str = "openid profile",
    jwt_key: ECKey | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], Authorization]:
    """A whole code flow for `client_id`; returns the token response body and the authorization."""
    callback, auth = browser.sign_in(
        person.username,
        person.password,
        client_id=client_id,
        redirect_uri=CALLBACKS[client_id],
        scope=scope,
        **extra,
    )
    assert "code" in callback, callback
    response = exchange(browser.client, callback["code"], auth, client_id, jwt_key=jwt_key)
    assert response.status_code == 200, response.json
    return response.json, auth


def refresh(client: Any, refresh_token: str, client_id: str = "portal", **extra: str) -> Any:
    return post_as(
        client,
        "/token",
        client_id,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
    )


def client_credentials(client: Any, client_id: str = "agency-backend", **extra: str) -> Any:
    return post_as(client, "/token", client_id, {"grant_type": "client_credentials", **extra})


def userinfo(client: Any, access_token: str) -> Any:
    return client.get("/userinfo", headers={"Authorization": "Bearer " + access_token})


def introspect(client: Any, token: str, caller: str = "resource-api", **extra: str) -> Any:
    return post_as(client, "/introspect", caller, {"token": token, **extra})


def revoke(client: Any, token: str, caller: str = "portal", **extra: str) -> Any:
    return post_as(client, "/revoke", caller, {"token": token, **extra})


def is_active(client: Any, token: str) -> bool:
    response = introspect(client, token)
    assert response.status_code == 200, response.json
    return bool(response.json["active"])


def verify_jwt(client: Any, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT verified against the published JWKS."""
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    result = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
    return dict(result.header), dict(result.claims)


def shared_client(request: Any) -> Iterator[Any]:
    """A test client of one application shared by a module's tests that sign nobody in.

    The per-test `app` fixture resets PostgreSQL and Redis and loads the sandbox people for
    every test; tests that only send bad input or read metadata share this one instead. Use it
    from a module-scoped fixture: ``yield from shared_client(request)``.
    """
    from idp import create_app
    from idp.store.models import db
    from tests.support import services

    value = request.getfixturevalue
    app = create_app(
        {
            "ISSUER": ISSUER,
            "KEYS_DIR": str(value("keys_dir")),
            "CLIENTS_FILE": str(value("clients_file")),
            "SMS_OUTBOX": str(value("tmp_path_factory").mktemp("shared") / "sms.jsonl"),
            "DATABASE_URL": services.sqlalchemy_url(value("pg_url")),
            "REDIS_URL": value("redis_url"),
            "REDIS_PREFIX": value("redis_prefix"),
            "CAPTCHA_ENABLED": False,
            "SANDBOX_VERIFIERS_ALLOWED": True,
            "TESTING": True,
        }
    )
    yield app.test_client()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
