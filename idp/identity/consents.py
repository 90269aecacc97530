"""Consent: what a person allowed a relying party to receive, by scope and by individual claim.

One home for the rule and the record. A request is covered when every scope it asks for was
granted and every personal claim it would release (those of its scopes and those named in the
`claims` request parameter) was agreed to; the caller says which claims a request releases
(idp.oidc.claims), so the rule here does not depend on the protocol's claim tables. Granting
merges with what was agreed before; withdrawing deletes the consent and revokes the grants it
allowed, in one transaction (the caller then stops their tokens and sessions at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from idp.identity import audit
from idp.store.models import Consent, Grant, db, utcnow

# The code exchange's check (idp.oidc.tokens), built once with bound parameters. FOR SHARE
# (PostgreSQL): a withdrawal (which locks the consent FOR UPDATE) waits for the exchange to commit
# and then revokes the grant it wrote, or the exchange waits and finds no consent.
FOR_EXCHANGE = (
    select(Consent.scope, Consent.claims)
    .where(Consent.account_id == bindparam("account_id"), Consent.client_id == bindparam("client_id"))
    .with_for_update(read=True)
)


@dataclass(frozen=True)
class Consented:
    """What one person agreed that one relying party may receive."""

    scopes: frozenset[str]
    claims: frozenset[str]

    @classmethod
    def of(cls, scope: str | None, claims: str | None) -> Consented:
        return cls(frozenset((scope or "").split()), frozenset((claims or "").split()))

    def covers(self, scope: str, claims: Iterable[str]) -> bool:
        """Whether a request for `scope` releasing `claims` needs nothing the person did not allow."""
        return set(scope.split()) <= self.scopes and set(claims) <= self.claims


def covers(consented: Consented | None, scope: str, claims: Iterable[str]) -> bool:
    return consented is not None and consented.covers(scope, claims)


def find(account_id: int, client_id: str) -> Consented | None:
    row = db.session.execute(
        select(Consent.scope, Consent.claims).where(
            Consent.account_id == account_id, Consent.client_id == client_id
        )
    ).one_or_none()
    return Consented.of(row.scope, row.claims) if row is not None else None


def grant(account_id: int, client_id: str, scope: str, claims: Iterable[str], *, ip: str | None) -> None:
    """Record (in the caller's transaction) that the person allows these scopes and claims, in
    addition to what they allowed before; audited. The caller commits."""
    claims = sorted(set(claims))
    existing = db.session.execute(
        select(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
    ).scalar_one_or_none()
    if existing is None:
        db.session.add(
            Consent(account_id=account_id, client_id=client_id, scope=scope, claims=" ".join(claims))
        )
    else:
        existing.scope = _merge(existing.scope, scope.split())
        existing.claims = _merge(existing.claims, claims)
        existing.granted_at = utcnow()
    audit.record(
        "consent.granted",
        actor=f"account:{account_id}",
        account_id=account_id,
        client_id=client_id,
        ip=ip,
        scope=scope,
        claims=claims,
    )


def _merge(before: str | None, added: Iterable[str]) -> str:
    return " ".join(dict.fromkeys((before or "").split() + list(added)))


def of_account(account_id: int) -> list[Consent]:
    """The person's consents, the most recent first."""
    return list(
        db.session.execute(
            select(Consent).where(Consent.account_id == account_id).order_by(Consent.granted_at.desc())
        ).scalars()
    )


@dataclass(frozen=True)
class Withdrawn:
    scope: str
    grant_ids: list[str]


def withdraw(account_id: int, client_id: str, *, ip: str | None) -> Withdrawn | None:
    """Delete the consent and revoke the client's grants for this person (refresh-token families),
    audited, committed. None when there was no consent. The caller stops the grants' access
    tokens and signs the person out of the client (``runtime().withdraw_client``)."""
    # Locked first: a code exchange under way (which reads it FOR SHARE) either commits its grant
    # before the grants below are looked for, or waits and then finds no consent.
    consent = db.session.execute(
        select(Consent)
        .where(Consent.account_id == account_id, Consent.client_id == client_id)
        .with_for_update()
    ).scalar_one_or_none()
    if consent is None:
        db.session.rollback()
        return None
    grant_ids = list(
        db.session.execute(
            select(Grant.id).where(
                Grant.account_id == account_id, Grant.client_id == client_id, Grant.revoked_at.is_(None)
            )
        ).scalars()
    )
    if grant_ids:
        db.session.execute(
            update(Grant)
            .where(Grant.id.in_(grant_ids), Grant.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason="consent_revoked")
        )
    db.session.delete(consent)
    audit.record(
        "consent.revoked",
        actor=f"account:{account_id}",
        account_id=account_id,
        client_id=client_id,
        ip=ip,
        scope=consent.scope,
        grants_revoked=len(grant_ids),
    )
    db.session.commit()
    return Withdrawn(consent.scope, grant_ids)
