"""Ending SSO sessions: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and
back-channel logout tokens to every relying party of the session (Back-Channel Logout 1.0).
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import requests
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.jwk import KeySet

from idp.clients import ClientConfig
from idp.oidc.jsonlimits import check_jwt
from idp.sessions.sso import SessionStore, SsoSession

log = logging.getLogger("idp.logout")

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="backchannel")


class EndSession(EndSessionEndpoint):
    """Validation of logout requests (id_token_hint, client_id, post_logout_redirect_uri, state)."""

    def validate_request(self, request: Any) -> Any:
        hint = request.payload.data.get("id_token_hint")
        if hint:
            try:
                check_jwt(hint)
            except ValueError:
                raise InvalidRequestError("id_token_hint is not an ID token issued here") from None
        return super().validate_request(request)

    def get_server_jwks(self) -> KeySet:
        return KeySet.import_key_set(self.server.keys.jwks())

    def end_session(self, end_session_request: Any) -> None:
        # The view ends the session itself (it owns the cookie); see idp.oidc.views.logout.
        return None


def logout_token(server: Any, client: ClientConfig, session: SsoSession) -> str:
    now = int(time.time())
    claims = {
        "iss": server.issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sub": session.subject,
        "sid": session.sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    return server.keys.sign(claims, client.id_token_signed_response_alg, typ="logout+jwt")


def _post(uri: str, token: str, timeout: float, client_id: str) -> bool:
    try:
        response = requests.post(
            uri,
            data={"logout_token": token},
            timeout=timeout,
            allow_redirects=False,
            headers={"Cache-Control": "no-store"},
        )
    except requests.RequestException as exc:
        log.warning("back-channel logout to %s failed: %s", client_id, exc.__class__.__name__)
        return False
    if response.status_code not in (200, 204):
        log.warning("back-channel logout to %s answered %s", client_id, response.status_code)
        return False
    return True


def notify_relying_parties(
    server: Any, session: SsoSession, client_ids: set[str], timeout: float
) -> dict[str, bool]:
    """Send logout tokens concurrently; waits at most `timeout` seconds in all."""
    futures = {}
    for client_id in sorted(client_ids):
        client = server.clients.get(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        token = logout_token(server, client, session)
        futures[client_id] = _pool.submit(_post, client.backchannel_logout_uri, token, timeout, client_id)
    if futures:
        wait(list(futures.values()), timeout=timeout + 0.5)
    return {cid: f.done() and f.result() for cid, f in futures.items()}


def end_sso_session(
    server: Any, sessions: SessionStore, session: SsoSession, reason: str, timeout: float
) -> dict[str, bool]:
    """End the session, revoke its online grants, tell its relying parties."""
    client_ids = sessions.end(session)
    server.tokens.revoke_session_grants(session.sid, reason)
    return notify_relying_parties(server, session, client_ids, timeout)
