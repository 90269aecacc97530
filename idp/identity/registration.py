"""Registration: a verified identity becomes a citizen account, and a proven identity may rise to
level 3 later (DESIGN §4, §5).

The flows in idp.flows.register.steps ask the verifiers; this module only writes what they proved,
in one transaction each, and lets the database's unique constraints (persons.id_number,
persons.legacy_id_number, accounts(kind, username)) decide between concurrent registrations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select

from idp.identity import audit
from idp.identity.accounts import AlreadyRegistered, _save_citizen
from idp.identity.identifiers import mask_id, mask_phone, normalize_name
from idp.store.models import Account, IdentityProof, Person, db, utcnow

# The ways to register (DESIGN §5) and the level each proves.
METHOD_LEVELS = {
    "subscriber": 2,  # carrier subscriber register: the phone is the person's own ("chính chủ")
    "social_insurance": 2,  # social-insurance register: the BHXH code names the person
    "population": 2,  # national population register, as the provincial app checks it
    "sim": 3,  # digital-signature SIM: certificate chain + signature over our challenge
    "usb": 3,  # USB token: certificate chain + signature over our challenge
    "counter": 3,  # an operator saw the ID card at a one-stop counter
    "post_office": 3,  # an operator saw the ID card at a Vietnam Post office
}
IN_PERSON = ("counter", "post_office")


@dataclass(frozen=True)
class ProvenIdentity:
    """What a registration proved about a person, and how."""

    id_number: str
    full_name: str
    birth_date: dt.date | None
    method: str
    verifier: str
    evidence_id: str | None
    verified_at: dt.datetime
    gender: str | None = None
    legacy_id_number: str | None = None

    @property
    def level(self) -> int:
        return METHOD_LEVELS[self.method]


def registered_number(id_number: str | None, legacy_id_number: str | None = None) -> str | None:
    """The number (12-digit, or the old CMND) under which this person is known already, if any."""
    conditions = []
    if id_number:
        conditions.append(Person.id_number == id_number)
    if legacy_id_number:
        conditions.append(Person.legacy_id_number == legacy_id_number)
    if not conditions:
        return None
    row = db.session.execute(
        select(Person.id_number, Person.legacy_id_number).where(or_(*conditions)).limit(1)
    ).first()
    if row is None:
        return None
    if id_number and row.id_number == id_number:
        return id_number
    return legacy_id_number


def register_citizen(
    identity: ProvenIdentity,
    *,
    phone: str,
    password_hash: str | None,
    actor: str,
    email: str | None = None,
    place: str | None = None,
) -> Account:
    """Person + proof + citizen account (login: the 12-digit ID number) + verified phone + audit,
    in one transaction. Raises AlreadyRegistered when the person exists (also when a concurrent
    registration of the same person won the race)."""
    if identity.method in IN_PERSON and not place:
        raise ValueError("an in-person registration records the counter or post office")
    person = Person(
        id_number=identity.id_number,
        legacy_id_number=identity.legacy_id_number,
        full_name=normalize_name(identity.full_name),
        birth_date=identity.birth_date,
        gender=identity.gender,
        email=email,
        loa=identity.level,
        loa_method=identity.method,
        loa_verifier=identity.verifier[:80],
        loa_evidence_id=identity.evidence_id,
        loa_verified_at=identity.verified_at,
    )
    return _save_citizen(
        person,
        identity.id_number,
        phone,
        password_hash,
        actor=actor,
        method=identity.method,
        place=place,
        audit_detail={
            "phone": mask_phone(phone),
            "verifier": identity.verifier,
            **({"place": place} if place else {}),
        },
    )


class IdentityMismatch(Exception):
    """The proof names someone else (another ID number) than the account's person."""


def raise_assurance(
    person_id: int,
    *,
    id_number: str,
    method: str,
    verifier: str,
    evidence_id: str | None,
    actor: str,
    ip: str | None = None,
) -> int:
    """Record a level-3 proof (a certificate naming the same ID number) for a person, and raise
    their level to 3, in one transaction. Returns the level after the change."""
    level = METHOD_LEVELS[method]
    person = db.session.execute(select(Person).where(Person.id == person_id).with_for_update()).scalar_one()
    if person.id_number != id_number:
        db.session.rollback()
        raise IdentityMismatch(mask_id(id_number))
    now = utcnow()
    db.session.add(
        IdentityProof(
            person_id=person.id,
            level=level,
            method=method,
            verifier=verifier[:80],
            evidence_id=evidence_id,
            verified_at=now,
            recorded_by=actor,
        )
    )
    before = person.loa
    if level > person.loa:
        person.loa = level
        person.loa_method = method
        person.loa_verifier = verifier[:80]
        person.loa_evidence_id = evidence_id
        person.loa_verified_at = now
    account_ids = db.session.execute(select(Account.id).where(Account.person_id == person.id)).scalars().all()
    audit.record(
        "assurance.raised" if person.loa > before else "assurance.confirmed",
        actor=actor,
        account_id=account_ids[0] if account_ids else None,
        ip=ip,
        before=before,
        after=person.loa,
        method=method,
        verifier=verifier,
    )
    db.session.commit()
    return person.loa


def proofs_of(person_id: int) -> list[IdentityProof]:
    return list(
        db.session.execute(
            select(IdentityProof).where(IdentityProof.person_id == person_id).order_by(IdentityProof.id)
        ).scalars()
    )


__all__ = [
    "METHOD_LEVELS",
    "AlreadyRegistered",
    "IdentityMismatch",
    "ProvenIdentity",
    "proofs_of",
    "raise_assurance",
    "register_citizen",
    "registered_number",
]
