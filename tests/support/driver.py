"""Drive the protocol and the sign-in pages through Flask's test client, as a browser would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.outbox import Outbox

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


@dataclass
class Authorization:
    """One authorization request in progress."""

    params: dict[str, str]
    verifier: str | None


class Browser:
    """A browser session against the app (cookies persist between calls)."""

    def __init__(self, client: Any, outbox: Outbox) -> None:
        self.client = client
        self.outbox = outbox

    def start(
        self,
        client_id: str = "portal",
        redirect_uri: str = "https://portal.example.vn/callback",
        scope: str = "openid profile",
        pkce: bool = True,
        **extra: str,
    ) -> tuple[Any, Authorization]:
        verifier, challenge = pkce_pair()
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
        }
        if pkce:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(extra)
        params = {k: v for k, v in params.items() if v is not None}
        response = self.client.get("/authorize", query_string=params)
        return response, Authorization(params, verifier if pkce else None)

    def submit_password(self, login_url: str, username: str, password: str) -> Any:
        path = urlsplit(login_url).path
        if not path.endswith("/citizen"):
            path = path + "/citizen"
        page = self.client.get(path)
        assert page.status_code == 200, page.status_code
        return self.client.post(
            path,
            data={
                "csrf_token": csrf_of(page.get_data(as_text=True)),
                "username": username,
                "password": password,
            },
        )

    def submit_otp(self, otp_url: str, code: str) -> Any:
        path = urlsplit(otp_url).path
        page = self.client.get(path)
        return self.client.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)), "otp": code})

    def follow(self, response: Any, until_host: str | None = None, limit: int = 10) -> Any:
        """Follow local redirects; stop at a redirect that leaves the provider."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303):
                return response
            location = response.headers["Location"]
            parts = urlsplit(location)
            if parts.scheme not in ("", "http", "https") or parts.netloc not in ("", "localhost"):
                return response  # a relying party's URI (including a private-use scheme)
            response = self.client.get(location)
        raise AssertionError("too many redirects")

    def sign_in(
        self, username: str, password: str, phone: str | None = None, **start: Any
    ) -> tuple[dict[str, str], Authorization]:
        """Run a whole authorization with a citizen sign-in; returns the callback's query."""
        response, auth = self.start(**start)
        response = self.follow(response)
        if response.status_code == 302:  # SSO: straight back to the client
            return query_of(response.headers["Location"]), auth
        login_url = response.request.path
        response = self.submit_password(login_url, username, password)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        otp_url = response.headers["Location"]
        response = self.submit_otp(otp_url, self.outbox.last_code(phone))
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        response = self.follow(response)
        if response.status_code == 200 and "/consent/" in response.request.path:
            page = response.get_data(as_text=True)
            response = self.client.post(
                response.request.path, data={"csrf_token": csrf_of(page), "decision": "allow"}
            )
            response = self.follow(response)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return query_of(response.headers["Location"]), auth
