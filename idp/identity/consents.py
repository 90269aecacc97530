"""Consent: what a person allowed a relying party to receive, by scope and by individual claim.

One home for the rule and the record. A request is covered when every scope it asks for was
granted and every personal claim it would release (those of its scopes and those named in the
`claims` request parameter) was agreed to; the caller says which claims a request releases
(idp.oidc.claims), so the rule here does not depend on the protocol's claim tables. Granting
merges with what was agreed before; withdrawing is the account area's (it also revokes grants).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from idp.identity import audit
from idp.store.models import Consent, db, utcnow


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
