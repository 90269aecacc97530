"""Authorization codes, access tokens, refresh-token families: storage and single use.

- Codes live in the short-lived store under the SHA-256 of their value. Consumption is atomic
  (the first caller wins); a replay is recognised for ten minutes and revokes the grant the code
  produced (RFC 6749 §4.1.2, RFC 9700 §4.5.3).
- Access tokens are opaque, stored under their SHA-256 with a TTL equal to their lifetime; each
  names its grant, and a revoked grant invalidates every access token it produced.
- Refresh tokens are durable (SQL), stored as SHA-256 digests, grouped by grant. Public clients'
  tokens rotate on every use; presenting a consumed token revokes the whole family.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from idp.identity import consents
from idp.identity.consents import Consented
from idp.store.ephemeral import EphemeralStore
from idp.store.models import Account, Grant, RefreshToken, db, utcnow

CODE_REPLAY_WINDOW = 600  # seconds a used code is remembered, to recognise replays


def _core():
    """The session's connection: Core statements on the hot path skip the ORM layer, and still run
    in the session's transaction (commit and rollback as usual)."""
    return db.session.connection()


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


@dataclass
class Principal:
    """The signed-in person as the protocol layer sees them."""

    account_id: int
    subject: str


@dataclass
class CodeRecord:
    client_id: str
    redirect_uri: str
    scope: str
    account_id: int
    subject: str
    sid: str | None
    auth_time: int
    acr: str
    amr: list[str]
    grant_id: str
    expires_at: float
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    claims: dict[str, Any] | None = None

    # Authlib's AuthorizationCodeMixin vocabulary.
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return self.amr


@dataclass
class AccessTokenRecord:
    client_id: str
    scope: str
    iat: int
    exp: int
    subject: str | None = None
    account_id: int | None = None
    grant_id: str | None = None
    sid: str | None = None
    claims: dict[str, Any] | None = field(default=None)

    # Authlib's TokenMixin vocabulary (introspection, revocation).
    def check_client(self, client: Any) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.exp - self.iat

    def is_expired(self) -> bool:
        return self.exp <= time.time()

    def is_revoked(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class GrantInfo:
    """A grant as the token endpoint reads it (plain values, not an ORM entity: this is the hot path)."""

    id: str
    client_id: str
    account_id: int
    subject: str
    sid: str | None
    scope: str
    claims: dict[str, Any] | None
    auth_time: int
    acr: str
    amr: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


_GRANT_COLUMNS = (
    Grant.id,
    Grant.client_id,
    Grant.account_id,
    Grant.subject,
    Grant.sid,
    Grant.scope,
    Grant.claims,
    Grant.auth_time,
    Grant.acr,
    Grant.amr,
    Grant.created_at,
    Grant.expires_at,
    Grant.revoked_at,
)
# Built once: one round trip finds the token, its grant and the account's status.
_FIND_REFRESH = (
    select(RefreshToken.token_hash, RefreshToken.consumed_at, Account.status, *_GRANT_COLUMNS)
    .join(Grant, RefreshToken.grant_id == Grant.id)
    .join(Account, Grant.account_id == Account.id)
    .where(RefreshToken.token_hash == bindparam("token_hash"))
)
# The other hot-path statements, also built once with bound parameters: a statement object that is
# the same on every call skips both its construction and SQLAlchemy's adaptation of a cached
# compilation to a new statement (about a tenth of a refresh grant's CPU when built per call).
_ACCOUNT_STATUS = select(Account.status).where(Account.id == bindparam("account_id"))
_INSERT_GRANT = insert(Grant)
_INSERT_REFRESH = insert(RefreshToken)
_UNUSED_SUCCESSOR = select(RefreshToken.token_hash).where(
    RefreshToken.token_hash == bindparam("token_hash"),
    RefreshToken.grant_id == bindparam("grant_id"),
    RefreshToken.consumed_at.is_(None),
)
_CONSUME_REFRESH = (
    update(RefreshToken)
    .where(RefreshToken.token_hash == bindparam("spent_hash"), RefreshToken.consumed_at.is_(None))
    .values(consumed_at=bindparam("spent_at"))
)


@dataclass
class RefreshTokenRecord:
    token_hash: str
    consumed: bool
    grant: GrantInfo
    account_status: str
    # A consumed token presented again after a rotation whose commit was uncertain: the digest of
    # the successor that commit may have written (see TokenService.note_uncertain_rotation).
    retry_of: str | None = None

    def check_client(self, client: Any) -> bool:
        return self.grant.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.grant.scope

    def is_expired(self) -> bool:
        return self.grant.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None or self.consumed


class TokenService:
    def __init__(self, store: EphemeralStore, access_token_lifetime: int) -> None:
        self.store = store
        self.access_token_lifetime = access_token_lifetime

    # -- authorization codes -------------------------------------------------------------
    def save_code(self, code: str, record: CodeRecord) -> None:
        self.store.set("code:" + digest(code), json.dumps(record.__dict__), CODE_REPLAY_WINDOW)

    def consume_code(self, code: str) -> tuple[CodeRecord | None, bool]:
        """(record, first_use). A record with first_use False is a replay."""
        raw, uses = self.store.consume("code:" + digest(code), CODE_REPLAY_WINDOW)
        if raw is None:
            return None, False
        return CodeRecord(**json.loads(raw)), uses == 1

    def unspend_code(self, code: str) -> bool:
        """The exchange failed before its tokens were issued (a store was unavailable): the code
        may be redeemed again, so that the client's retry does not lose the person's sign-in.
        A replay that came meanwhile stays counted (and has marked the grant revoked)."""
        return self.store.unconsume("code:" + digest(code))

    # -- access tokens -------------------------------------------------------------------
    def issue_access_token(
        self,
        *,
        client_id: str,
        scope: str,
        subject: str | None = None,
        account_id: int | None = None,
        grant_id: str | None = None,
        sid: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> tuple[str, AccessTokenRecord]:
        now = int(time.time())
        record = AccessTokenRecord(
            client_id=client_id,
            scope=scope,
            iat=now,
            exp=now + self.access_token_lifetime,
            subject=subject,
            account_id=account_id,
            grant_id=grant_id,
            sid=sid,
            claims=claims,
        )
        token = new_token()
        self.store.set("at:" + digest(token), json.dumps(record.__dict__), self.access_token_lifetime)
        return token, record

    def load_access_token(self, token: str) -> AccessTokenRecord | None:
        key = "at:" + digest(token)
        raw = self.store.get(key)
        if raw is None:
            return None
        record = AccessTokenRecord(**json.loads(raw))
        if record.is_expired():
            return None
        if record.grant_id and self.store.get("grev:" + record.grant_id) is not None:
            return None
        return record

    def revoke_access_token(self, token: str) -> None:
        self.store.delete("at:" + digest(token))

    # -- grants and refresh tokens ---------------------------------------------------------
    def account_is_active(self, account_id: int) -> bool:
        """Whether the account may still receive tokens (not locked or cancelled)."""
        return _core().execute(_ACCOUNT_STATUS, {"account_id": account_id}).scalar_one_or_none() == "active"

    def consent_covers(self, account_id: int, client_id: str, scope: str, claims: Iterable[str]) -> bool:
        """Whether the person's consent to the client still covers `scope` and the personal
        `claims` the grant releases (current transaction)."""
        row = (
            _core()
            .execute(consents.FOR_EXCHANGE, {"account_id": account_id, "client_id": client_id})
            .one_or_none()
        )
        return row is not None and Consented.of(row[0], row[1]).covers(scope, claims)

    def create_grant(
        self, code: CodeRecord, *, offline: bool, lifetime: int, with_refresh: bool
    ) -> str | None:
        """Write the grant (and its first refresh token) in the current transaction."""
        now = utcnow()
        connection = _core()
        connection.execute(
            _INSERT_GRANT,
            {
                "id": code.grant_id,
                "client_id": code.client_id,
                "account_id": code.account_id,
                "subject": code.subject,
                "sid": code.sid,
                "scope": code.scope,
                "claims": code.claims,
                "auth_time": code.auth_time,
                "acr": code.acr,
                "amr": code.amr,
                "offline": offline,
                "created_at": now,
                "expires_at": now + dt.timedelta(seconds=lifetime),
            },
        )
        if not with_refresh:
            return None
        token = new_token()
        connection.execute(
            _INSERT_REFRESH, {"token_hash": digest(token), "grant_id": code.grant_id, "issued_at": now}
        )
        return token

    def find_refresh_token(self, token: str) -> RefreshTokenRecord | None:
        row = _core().execute(_FIND_REFRESH, {"token_hash": digest(token)}).one_or_none()
        if row is None:
            return None
        return RefreshTokenRecord(
            token_hash=row[0], consumed=row[1] is not None, account_status=row[2], grant=GrantInfo(*row[3:])
        )

    def rotate_refresh_token(self, record: RefreshTokenRecord) -> str | None:
        """Consume `record` (or, for a retry, the successor its uncertain rotation may have written)
        and add a successor in the current transaction; None if already used."""
        connection = _core()
        now = utcnow()
        spent = record.retry_of or record.token_hash
        result = connection.execute(_CONSUME_REFRESH, {"spent_hash": spent, "spent_at": now})
        if result.rowcount != 1:
            return None
        token = new_token()
        connection.execute(
            _INSERT_REFRESH, {"token_hash": digest(token), "grant_id": record.grant.id, "issued_at": now}
        )
        return token

    # -- a rotation whose commit failed in an uncertain way -----------------------------------
    # When PostgreSQL fails during the commit itself (its primary crashed, a failover), the
    # rotation may or may not be durable (with synchronous replication it may be on the promoted
    # standby) while the client was told 503 and keeps the old token. Its retry would then look
    # like a stolen token replayed and revoke the family. So the failed commit is noted here (the
    # old token's digest -> the successor's) for UNCERTAIN_ROTATION seconds; a presentation of the
    # old token finding the note, and the successor never used, continues from that successor,
    # once. A replay without such a note is reuse, as before.
    UNCERTAIN_ROTATION = 120

    def note_uncertain_rotation(self, record: RefreshTokenRecord, successor: str) -> None:
        """The commit of a rotation of `record` failed: its successor is either the new token (if
        the commit happened) or, for a retry, the successor the retry was consuming (if not)."""
        candidates = [digest(successor)] + ([record.retry_of] if record.retry_of else [])
        self.store.set("rotq:" + record.token_hash, ",".join(candidates), self.UNCERTAIN_ROTATION)

    def uncertain_successor(self, record: RefreshTokenRecord) -> str | None:
        """The successor digest of an uncertain rotation of `record`, if noted and never used
        (the note is taken: one retry)."""
        noted = self.store.take("rotq:" + record.token_hash)
        for candidate in (noted or "").split(","):
            if not candidate:
                continue
            params = {"token_hash": candidate, "grant_id": record.grant.id}
            if _core().execute(_UNUSED_SUCCESSOR, params).one_or_none() is not None:
                return candidate
        return None

    def mark_revoked(self, grant_ids: list[str], reason: str) -> None:
        """The short-lived mark that a grant is revoked: its access tokens stop working at once."""
        ttl = self.access_token_lifetime + 60
        self.store.set_many(("grev:" + gid, reason, ttl) for gid in grant_ids)

    def is_marked_revoked(self, grant_id: str) -> bool:
        return self.store.get("grev:" + grant_id) is not None

    def revoke_grants(self, grant_ids: list[str], reason: str) -> int:
        """Revoke grants and every access token they produced; commits."""
        if not grant_ids:
            return 0
        result = db.session.execute(
            update(Grant)
            .where(Grant.id.in_(grant_ids), Grant.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )
        db.session.commit()
        self.mark_revoked(grant_ids, reason)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def revoke_session_grants(self, sid: str, reason: str) -> int:
        """Online grants die with the SSO session; offline_access grants outlive it."""
        ids = list(
            db.session.execute(
                select(Grant.id).where(Grant.sid == sid, Grant.offline.is_(False), Grant.revoked_at.is_(None))
            ).scalars()
        )
        return self.revoke_grants(ids, reason)


def new_grant_id() -> str:
    return secrets.token_urlsafe(24)
