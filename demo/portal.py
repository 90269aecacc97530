"""A demo provincial portal: an OpenID Connect relying party written with nothing but requests
and joserfc, so that every check a portal must make is visible in one file.

It signs people in with authorization code + PKCE (S256), checks `state` and the RFC 9207 `iss`
parameter, verifies the ID token (signature from the JWKS, iss, aud, azp, exp, nonce, at_hash),
reads userinfo, signs out through the provider's end_session_endpoint and honours back-channel
logout tokens.

    DEMO_IDP_ISSUER=http://127.0.0.1:8000 DEMO_PORTAL_CLIENT_SECRET=... python demo/portal.py
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, abort, redirect, request, session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Authorization parameters the demo's /login passes on to idp when given in its own query.
PASSED_THROUGH = ("door", "login_hint", "acr_values", "claims", "prompt", "max_age")


class Provider:
    """Discovery and JWKS of the identity provider, fetched on first use and cached."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            response = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=5)
            response.raise_for_status()
            metadata = response.json()
            if metadata["issuer"] != self.issuer:
                raise RuntimeError("discovery document names another issuer")
            self._metadata = metadata
        return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            response = requests.get(self.metadata["jwks_uri"], timeout=5)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys

    def decode(self, token: str) -> dict[str, Any]:
        try:
            return dict(jwt.decode(token, self.keys(), algorithms=["ES256", "RS256"]).claims)
        except JoseError:
            # A key rotated since we cached the JWKS: fetch it again once.
            return dict(jwt.decode(token, self.keys(refresh=True), algorithms=["ES256", "RS256"]).claims)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def page(title: str, body: str, name: str = "Cổng Dịch vụ công (demo)", colour: str = "#a4161a") -> str:
    return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}
header{{background:{colour};color:#fff;padding:1rem;border-radius:6px}}a.button,button{{display:inline-block;background:#0b4f9c;
color:#fff;padding:.6rem 1.2rem;border-radius:4px;text-decoration:none;border:0;font-size:1rem;cursor:pointer}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}}
code{{word-break:break-all}}</style></head><body><header><strong>{html.escape(name)}</strong><br>
<small>Một cổng dịch vụ mẫu dùng idp để đăng nhập</small></header>{body}</body></html>"""


def create_app() -> Flask:
    issuer = os.environ.get("DEMO_IDP_ISSUER", "http://127.0.0.1:8000")
    base_url = os.environ.get("DEMO_PORTAL_URL", "http://127.0.0.1:8001")
    client_id = os.environ.get("DEMO_PORTAL_CLIENT_ID", "demo-portal")
    client_secret = os.environ["DEMO_PORTAL_CLIENT_SECRET"]
    # The same code serves the demo partner application (README): another name and colour.
    name = os.environ.get("DEMO_PORTAL_NAME", "Cổng Dịch vụ công (demo)")
    colour = os.environ.get("DEMO_PORTAL_COLOUR", "#a4161a")

    def show(title: str, body: str) -> str:
        return page(title, body, name, colour)

    provider = Provider(issuer)
    # Signed-in people, by local session id; back-channel logout removes entries by `sid`.
    signed_in: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)
    app.config.update(
        # One cookie name per client: the portal and the partner share the host 127.0.0.1.
        SESSION_COOKIE_NAME=f"{client_id}_s",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    redirect_uri = base_url + "/callback"

    def current() -> dict[str, Any] | None:
        local = session.get("local")
        with lock:
            return signed_in.get(local) if local else None

    @app.get("/")
    def home() -> str:
        me = current()
        if me is None:
            return show(
                name,
                "<h1>Chào mừng</h1><p>Bạn chưa đăng nhập.</p>"
                '<p><a class="button" href="/login">Đăng nhập</a> '
                '<a class="button" href="/login?prompt=create">Đăng ký</a></p>',
            )
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}</td></tr>"
            for k, v in sorted(me["userinfo"].items())
        )
        id_rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}</td></tr>"
            for k, v in sorted(me["id_token"].items())
        )
        return show(
            "Đã đăng nhập",
            f"<h1>Xin chào, {html.escape(me['userinfo'].get('name', me['id_token']['sub']))}</h1>"
            f"<p>Mức bảo đảm (acr): <strong id='acr'>{html.escape(me['id_token']['acr'])}</strong> — "
            f"phương thức (amr): <strong id='amr'>{html.escape(' '.join(me['id_token']['amr']))}</strong></p>"
            f"<h2>Thông tin người dùng (userinfo)</h2><table id='userinfo'>{rows}</table>"
            f"<h2>ID token</h2><table id='id-token'>{id_rows}</table>"
            '<p><a class="button" href="/logout">Đăng xuất</a></p>'
            f'<p><a href="{html.escape(issuer)}/account">Quản lý tài khoản đăng nhập (phiên, thiết bị, chia sẻ thông tin)</a></p>',
        )

    @app.get("/login")
    def login() -> Any:
        state, nonce, verifier = (
            secrets.token_urlsafe(16),
            secrets.token_urlsafe(16),
            secrets.token_urlsafe(48),
        )
        session["pending"] = {"state": state, "nonce": nonce, "verifier": verifier}
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile phone email citizen organization",
                "state": state,
                "nonce": nonce,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                "ui_locales": "vi",
                # Passed through, to try them from the address bar: /login?door=citizen,
                # /login?login_hint=046090001234, /login?acr_values=LoA2, /login?prompt=login.
                **{k: v for k, v in request.args.items() if k in PASSED_THROUGH and v},
            }
        )
        return redirect(provider.metadata["authorization_endpoint"] + "?" + query)

    @app.get("/callback")
    def callback() -> Any:
        pending = session.pop("pending", None)
        if pending is None or request.args.get("state") != pending["state"]:
            abort(400, "state does not match: start again from the home page")
        if request.args.get("iss") != provider.issuer:  # RFC 9207: mix-up defence
            abort(400, "iss does not match the provider")
        if "error" in request.args:
            return show(
                "Không đăng nhập được",
                f"<h1>Không đăng nhập được</h1><p><code>{html.escape(request.args['error'])}</code>: "
                f"{html.escape(request.args.get('error_description', ''))}</p><p><a href='/'>Quay lại</a></p>",
            )
        response = requests.post(
            provider.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": request.args["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": pending["verifier"],
            },
            auth=(client_id, client_secret),
            timeout=10,
        )
        if response.status_code != 200:
            abort(502, f"token endpoint answered {response.status_code}: {response.text[:200]}")
        tokens = response.json()
        claims = provider.decode(tokens["id_token"])
        now = time.time()
        checks = {
            "iss": claims.get("iss") == provider.issuer,
            "aud": claims.get("aud") == client_id or client_id in (claims.get("aud") or []),
            "azp": claims.get("azp", client_id) == client_id,
            "exp": claims.get("exp", 0) > now - 30,
            "nonce": claims.get("nonce") == pending["nonce"],
            "at_hash": claims.get("at_hash")
            == base64.urlsafe_b64encode(hashlib.sha256(tokens["access_token"].encode()).digest()[:16])
            .rstrip(b"=")
            .decode(),
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            abort(400, f"ID token check failed: {', '.join(failed)}")
        info = requests.get(
            provider.metadata["userinfo_endpoint"],
            headers={"Authorization": "Bearer " + tokens["access_token"]},
            timeout=10,
        )
        info.raise_for_status()
        userinfo = info.json()
        if userinfo.get("sub") != claims["sub"]:
            abort(400, "userinfo names another subject")
        local = secrets.token_urlsafe(16)
        with lock:
            signed_in[local] = {"id_token": claims, "raw_id_token": tokens["id_token"], "userinfo": userinfo}
        session["local"] = local
        return redirect("/")

    @app.get("/logout")
    def logout() -> Any:
        me = current()
        local = session.pop("local", None)
        with lock:
            signed_in.pop(local, None)
        if me is None:
            return redirect("/")
        query = urlencode(
            {
                "id_token_hint": me["raw_id_token"],
                "post_logout_redirect_uri": base_url + "/",
                "state": secrets.token_urlsafe(8),
            }
        )
        return redirect(provider.metadata["end_session_endpoint"] + "?" + query)

    @app.post("/backchannel-logout")
    def backchannel_logout() -> Any:
        token = request.form.get("logout_token", "")
        try:
            claims = provider.decode(token)
        except (JoseError, ValueError):
            return {"error": "invalid_request"}, 400
        valid = (
            claims.get("iss") == provider.issuer
            and claims.get("aud") in (client_id, [client_id])
            and BACKCHANNEL_EVENT in (claims.get("events") or {})
            and "nonce" not in claims
            and claims.get("sid")
        )
        if not valid:
            return {"error": "invalid_request"}, 400
        with lock:
            for local in [k for k, v in signed_in.items() if v["id_token"].get("sid") == claims["sid"]]:
                del signed_in[local]
        return "", 200, {"Cache-Control": "no-store"}

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=8001)
