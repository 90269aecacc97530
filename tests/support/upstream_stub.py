"""A minimal upstream OpenID provider over real HTTP for the upstream client's tests: discovery,
JWKS, a token endpoint that answers one prepared token response, userinfo. Each test decides what
the provider answers (a forged ID token, a rotated key, a 500, garbage, a hang)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.support.stub_http import Answer, Request, StubServer

CLIENT_ID = "idp-at-upstream"
CLIENT_SECRET = "upstream-secret-0123456789abcdefghij"


@dataclass
class FakeUpstream:
    keys: list[Any] = field(default_factory=lambda: [ECKey.generate_key("P-256", parameters={"kid": "k1"})])
    userinfo: dict[str, Any] = field(default_factory=dict)
    token_answer: Answer | None = None  # overrides the token endpoint's answer
    discovery_answer: Answer | None = None
    iss_parameter: bool = True
    server: StubServer | None = None

    def __post_init__(self) -> None:
        self.server = StubServer(self.handle)
        self.issuer = self.server.url
        self.next_claims: dict[str, Any] = {}
        self.next_header: dict[str, Any] = {}
        self.signing_key: Any = None  # default: the first key

    def close(self) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def requests(self) -> list[Request]:
        assert self.server is not None
        return self.server.requests

    def rotate(self) -> None:
        """A new signing key first in the JWKS (the old one published beside it)."""
        new = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self.keys) + 1}"})
        self.keys.insert(0, new)

    def id_token(self, nonce: str | None, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "upstream-subject-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            **({"nonce": nonce} if nonce is not None else {}),
            **self.next_claims,
            **changes,
        }
        key = self.signing_key or self.keys[0]
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        header = {"alg": alg, "kid": key.kid, **self.next_header}
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, key)

    def handle(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path == "/.well-known/openid-configuration":
            if self.discovery_answer is not None:
                return self.discovery_answer
            return Answer(
                body=json.dumps(
                    {
                        "issuer": self.issuer,
                        "authorization_endpoint": self.issuer + "/authorize",
                        "token_endpoint": self.issuer + "/token",
                        "userinfo_endpoint": self.issuer + "/userinfo",
                        "jwks_uri": self.issuer + "/jwks",
                        "authorization_response_iss_parameter_supported": self.iss_parameter,
                    }
                ).encode()
            )
        if path == "/jwks":
            return Answer(body=json.dumps(KeySet(self.keys).as_dict(private=False)).encode())
        if path == "/token":
            if self.token_answer is not None:
                return self.token_answer
            form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
            nonce = self.nonces.get(form.get("code", ""))
            body = {"access_token": "at-1", "token_type": "Bearer", "id_token": self.id_token(nonce)}
            return Answer(body=json.dumps(body).encode())
        if path == "/userinfo":
            return Answer(body=json.dumps({"sub": "upstream-subject-1", **self.userinfo}).encode())
        return Answer(status=404, body=b"{}")

    nonces: dict[str, str] = field(default_factory=dict)
