"""What the protocol layer does for the browser flows, installed on the runtime (flows never import
idp.oidc): end an SSO session, withdraw a relying party from a person, redeem a built-in client's code.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from idp.clients import ACCOUNT_CLIENT_ID
from idp.oidc.logout import end_sso_session, notify_relying_parties
from idp.oidc.pkce import s256
from idp.oidc.server import IdpServer
from idp.sessions.sso import SsoSession

# Relying parties whose codes are redeemed in-process rather than at the token endpoint.
BUILTIN_CLIENTS = frozenset({ACCOUNT_CLIENT_ID})


def install(runtime: Any, server: IdpServer) -> None:
    from idp.runtime import RedeemedCode

    timeout = server.config["BACKCHANNEL_TIMEOUT"]

    def end_session(session: SsoSession, reason: str) -> dict[str, bool]:
        return end_sso_session(server, runtime.sessions, session, reason, timeout)

    def withdraw_client(account_id: int, client_id: str, grant_ids: list[str], reason: str) -> None:
        if grant_ids:
            server.tokens.mark_revoked(grant_ids, reason)
        for session in runtime.sessions.sessions_of(account_id):
            if client_id in runtime.sessions.clients(session.sid):
                runtime.sessions.remove_client(session, client_id)
                notify_relying_parties(server, session, {client_id}, timeout)

    def redeem_code(code: str, client_id: str, redirect_uri: str, verifier: str) -> RedeemedCode | None:
        """Consume the code (single use) and check client, redirect URI, lifetime and PKCE (S256)."""
        if client_id not in BUILTIN_CLIENTS or not 20 <= len(code) <= 128 or not verifier:
            return None
        record, first_use = server.tokens.consume_code(code)
        if record is None or not first_use:
            return None
        if (
            record.client_id != client_id
            or record.redirect_uri != redirect_uri
            or record.expires_at < time.time()
            or record.code_challenge_method != "S256"
            or record.code_challenge is None
            or not hmac.compare_digest(record.code_challenge, s256(verifier))
        ):
            return None
        return RedeemedCode(
            account_id=record.account_id,
            subject=record.subject,
            sid=record.sid,
            auth_time=record.auth_time,
            acr=record.acr,
            nonce=record.nonce,
        )

    runtime.end_session = end_session
    runtime.withdraw_client = withdraw_client
    runtime.redeem_code = redeem_code
