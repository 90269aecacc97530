"""An enterprise registers itself with a digital-signature certificate that carries its tax code
(seed 003, DESIGN §3, §5): the organization, its first staff account (role admin) and that staff
member's person, roles and verified phone, the organization's identity proof (level 3) and the
audit event, in one transaction.

The database decides between two concurrent registrations of one tax code (organizations.code is
unique): the organization row is written first, so the loser's insert waits for the winner's
commit, fails, and the loser gets OrganizationExists with nothing of it written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.identity import audit
from idp.identity.accounts import new_subject
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_tax_code,
    mask_id,
    mask_phone,
    normalize_name,
    normalize_phone,
)
from idp.identity.organizations import ORGANIZATION, OrganizationExists, UsernameTaken, check_username
from idp.identity.registration import METHOD_LEVELS
from idp.store.models import Account, AccountRole, IdentityProof, Organization, Person, Phone, db, utcnow


@dataclass(frozen=True)
class ProvenEnterprise:
    """What a certificate proved about an enterprise, and how."""

    tax_code: str
    name: str
    method: str  # "sim" or "usb"
    verifier: str  # "signature:<CA>"
    evidence_id: str | None  # the certificate's fingerprint, "sha256:…"
    verified_at: dt.datetime

    @property
    def level(self) -> int:
        return METHOD_LEVELS[self.method]


@dataclass(frozen=True)
class EnterpriseAdmin:
    """The first staff account: the person who holds the enterprise's certificate."""

    username: str
    full_name: str
    phone: str  # verified (OTP, or the signing SIM itself)
    email: str


def organization_registered(tax_code: str) -> bool:
    return (
        db.session.execute(select(Organization.id).where(Organization.code == tax_code)).scalar_one_or_none()
        is not None
    )


def username_taken(username: str) -> bool:
    stmt = select(Account.id).where(Account.kind == ORGANIZATION, Account.username == username)
    return db.session.execute(stmt).scalar_one_or_none() is not None


def register_enterprise(
    enterprise: ProvenEnterprise,
    admin: EnterpriseAdmin,
    *,
    password_hash: str,
    actor: str,
    ip: str | None = None,
) -> Account:
    """Organization + proof + admin person + staff account (role admin) + verified phone + audit,
    in one transaction. Raises OrganizationExists (the tax code is registered, also when a
    concurrent registration won), UsernameTaken, or InvalidIdentifier for bad input."""
    tax_code = check_tax_code(enterprise.tax_code)
    username = check_username(admin.username)
    phone = normalize_phone(admin.phone)
    org_name = normalize_name(enterprise.name)
    full_name = normalize_name(admin.full_name)
    if not org_name or not full_name:
        raise InvalidIdentifier("name.missing", "the enterprise's and the administrator's names are required")
    if not admin.email:
        raise InvalidIdentifier("email.missing", "an enterprise registers with an e-mail address")
    now = utcnow()
    org = Organization(
        code=tax_code, code_type="tax", name=org_name, kind="enterprise", email=admin.email, created_by=actor
    )
    db.session.add(org)
    try:
        db.session.flush()  # the tax code first: a concurrent registration waits here, then fails
    except IntegrityError:
        db.session.rollback()
        raise OrganizationExists(tax_code) from None
    db.session.add(
        IdentityProof(
            organization_id=org.id,
            level=enterprise.level,
            method=enterprise.method,
            verifier=enterprise.verifier[:80],
            evidence_id=enterprise.evidence_id,
            verified_at=enterprise.verified_at,
            recorded_by=actor,
        )
    )
    # The administrator proved control of the enterprise's certificate (token + PIN, or the SIM):
    # the account is at the level of that proof, as the guide says of certificate registrations.
    person = Person(
        subject=new_subject(),
        full_name=full_name,
        email=admin.email,
        loa=enterprise.level,
        loa_method=enterprise.method,
        loa_verifier=enterprise.verifier[:80],
        loa_evidence_id=enterprise.evidence_id,
        loa_verified_at=enterprise.verified_at,
    )
    account = Account(
        kind=ORGANIZATION,
        username=username,
        person=person,
        organization=org,
        password_hash=password_hash,
        password_changed_at=now,
        created_by=actor,
    )
    account.roles.append(AccountRole(role="admin"))
    account.phones.append(Phone(number=phone, is_primary=True, verified_at=now))
    db.session.add_all([person, account])
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        if username_taken(username):
            raise UsernameTaken(username) from None
        raise OrganizationExists(tax_code) from None
    audit.record(
        "organization.registered",
        actor=actor,
        account_id=account.id,
        ip=ip,
        organization=tax_code,
        kind="enterprise",
        method=enterprise.method,
        verifier=enterprise.verifier,
        loa=enterprise.level,
    )
    audit.record(
        "account.created",
        actor=actor,
        account_id=account.id,
        ip=ip,
        kind=ORGANIZATION,
        organization=tax_code,
        username=username,
        roles=["admin"],
        phone=mask_phone(phone),
        loa=enterprise.level,
        method=enterprise.method,
    )
    db.session.commit()
    return account


def describe(tax_code: str) -> str:
    """The tax code as messages and logs show it."""
    return mask_id(tax_code)
