"""SSO sessions: signing in once serves every relying party until logout or expiry.

The browser holds a random cookie value; the store keeps the session under its SHA-256, with
a public `sid` (the ID token's `sid`), the relying parties that received tokens in it (for
back-channel logout), and an index per account (to end a person's other sessions).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

from idp.store.ephemeral import EphemeralStore

TOUCH_INTERVAL = 60  # seconds between idle-timeout extensions


@dataclass
class SsoSession:
    sid: str
    account_id: int
    subject: str
    auth_time: int
    acr: str
    amr: list[str]
    loa: int
    created_at: int
    expires_at: int
    touched_at: int
    # Shown on the account's sessions page (idp.sessions.devices): never a full address or user agent.
    browser: str = ""
    platform: str = ""
    address: str = ""


def _h(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class SessionStore:
    def __init__(self, store: EphemeralStore, lifetime: int, idle_timeout: int) -> None:
        self.store = store
        self.lifetime = lifetime
        self.idle = idle_timeout

    def _ttl(self, s: SsoSession, now: int) -> int:
        return max(1, min(s.expires_at - now, self.idle))

    def _write(self, cookie_hash: str, s: SsoSession, now: int) -> None:
        ttl = self._ttl(s, now)
        self.store.set_many(
            [("sso:" + cookie_hash, json.dumps(asdict(s)), ttl), ("sso_sid:" + s.sid, cookie_hash, ttl)]
        )

    def create(
        self,
        *,
        account_id: int,
        subject: str,
        auth_time: int,
        acr: str,
        amr: list[str],
        loa: int,
        browser: str = "",
        platform: str = "",
        address: str = "",
    ) -> tuple[str, SsoSession]:
        now = int(time.time())
        cookie = secrets.token_urlsafe(32)
        s = SsoSession(
            sid=secrets.token_urlsafe(24),
            account_id=account_id,
            subject=subject,
            auth_time=auth_time,
            acr=acr,
            amr=amr,
            loa=loa,
            created_at=now,
            expires_at=now + self.lifetime,
            touched_at=now,
            browser=browser,
            platform=platform,
            address=address,
        )
        self._write(_h(cookie), s, now)
        self.store.sadd("sso_acct:" + str(account_id), s.sid, self.lifetime)
        return cookie, s

    def reauthenticate(
        self, cookie: str, s: SsoSession, *, auth_time: int, acr: str, amr: list[str], loa: int
    ) -> None:
        """The same person signed in again in this session (prompt=login, max_age, step-up)."""
        now = int(time.time())
        s.auth_time, s.acr, s.amr, s.loa, s.touched_at = auth_time, acr, amr, loa, now
        self._write(_h(cookie), s, now)

    def load(self, cookie: str | None) -> SsoSession | None:
        if not cookie or len(cookie) > 100:
            return None
        cookie_hash = _h(cookie)
        raw = self.store.get("sso:" + cookie_hash)
        if raw is None:
            return None
        s = SsoSession(**json.loads(raw))
        now = int(time.time())
        if s.expires_at <= now:
            return None
        if now - s.touched_at >= TOUCH_INTERVAL:
            s.touched_at = now
            self._write(cookie_hash, s, now)
        return s

    def add_client(self, s: SsoSession, client_id: str) -> None:
        self.store.sadd("sso_rp:" + s.sid, client_id, max(1, s.expires_at - int(time.time())))

    def clients(self, sid: str) -> set[str]:
        return self.store.smembers("sso_rp:" + sid)

    def remove_client(self, s: SsoSession, client_id: str) -> None:
        """The relying party no longer takes part in the session (its consent was revoked)."""
        self.store.srem("sso_rp:" + s.sid, client_id)

    def end(self, s: SsoSession) -> set[str]:
        """End the session; returns the relying parties that took part in it."""
        clients = self.clients(s.sid)
        cookie_hash = self.store.get("sso_sid:" + s.sid)
        keys = ["sso_sid:" + s.sid, "sso_rp:" + s.sid]
        if cookie_hash:
            keys.append("sso:" + cookie_hash)
        self.store.delete(*keys)
        self.store.srem("sso_acct:" + str(s.account_id), s.sid)
        return clients

    def find_by_sid(self, sid: str) -> SsoSession | None:
        cookie_hash = self.store.get("sso_sid:" + sid)
        if cookie_hash is None:
            return None
        raw = self.store.get("sso:" + cookie_hash)
        return SsoSession(**json.loads(raw)) if raw else None

    def sessions_of(self, account_id: int) -> list[SsoSession]:
        found = []
        for sid in self.store.smembers("sso_acct:" + str(account_id)):
            s = self.find_by_sid(sid)
            if s is None:
                self.store.srem("sso_acct:" + str(account_id), sid)
            else:
                found.append(s)
        return found
