"""Local citizen accounts: creation by an operator, lookup by ID number, password check."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.identity import audit
from idp.identity.assurance import IDENTITY_LEVELS
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_id_number,
    is_id_number,
    is_legacy_id,
    mask_id,
    normalize_name,
    normalize_phone,
)
from idp.identity.passwords import PasswordHashing, check_policy
from idp.store.models import Account, IdentityProof, Person, Phone, db, utcnow

CITIZEN = "citizen"


class AlreadyRegistered(Exception):
    """A person with this ID number already has an account (message masks the number)."""

    def __init__(self, id_number: str) -> None:
        super().__init__(f"ID number {mask_id(id_number)} is already registered")
        self.id_number = id_number


class WeakPassword(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewCitizen:
    id_number: str
    full_name: str
    birth_date: dt.date
    phone: str
    gender: str | None = None
    email: str | None = None
    loa: int = 2


def new_subject() -> str:
    return secrets.token_urlsafe(24)


def create_citizen(
    data: NewCitizen,
    password: str,
    hashing: PasswordHashing,
    *,
    actor: str,
    method: str,
    verifier: str,
    evidence_id: str | None = None,
) -> Account:
    """Create person + citizen account + verified phone + audit event in one transaction."""
    id_number = check_id_number(data.id_number, data.birth_date, data.gender)
    phone = normalize_phone(data.phone)
    if data.loa not in IDENTITY_LEVELS:
        raise InvalidIdentifier("loa.range", "assurance level must be 2 or 3")
    problems = check_policy(password, id_number=id_number, phone=phone, birth_date=data.birth_date)
    if problems:
        raise WeakPassword([p.message for p in problems])
    person = Person(
        id_number=id_number,
        full_name=normalize_name(data.full_name),
        birth_date=data.birth_date,
        gender=data.gender,
        email=data.email,
        loa=data.loa,
        loa_method=method,
        loa_verifier=verifier,
        loa_evidence_id=evidence_id,
    )
    return _save_citizen(person, id_number, phone, hashing.hash(password), actor=actor, method=method)


def _save_citizen(
    person: Person,
    login: str,
    phone: str,
    password_hash: str | None,
    *,
    actor: str,
    method: str,
    place: str | None = None,
    audit_detail: dict[str, Any] | None = None,
) -> Account:
    """Person + its identity proof + citizen account + verified primary phone + audit event, in one
    transaction. ``password_hash`` None: the person sets it through "Quên mật khẩu" (counter).

    The database's unique constraints decide between two concurrent registrations of one person:
    the loser gets AlreadyRegistered and nothing of it is written.
    """
    now = utcnow()
    person.subject = new_subject()
    if person.loa_verified_at is None:
        person.loa_verified_at = now
    proof = IdentityProof(
        person=person,
        level=person.loa,
        method=person.loa_method,
        verifier=person.loa_verifier,
        evidence_id=person.loa_evidence_id,
        verified_at=person.loa_verified_at,
        recorded_by=actor,
        place=place,
    )
    account = Account(
        kind=CITIZEN,
        username=login,
        person=person,
        password_hash=password_hash,
        password_changed_at=now if password_hash else None,
        created_by=actor,
    )
    account.phones.append(Phone(number=phone, is_primary=True, verified_at=now))
    db.session.add_all([person, proof, account])
    try:
        db.session.flush()
        audit.record(
            "account.created",
            actor=actor,
            account_id=account.id,
            kind=CITIZEN,
            login=mask_id(login),
            loa=person.loa,
            method=method,
            **(audit_detail or {}),
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyRegistered(login) from None
    return account


def find_citizen(login: str) -> Account | None:
    """The citizen account for a 12-digit ID number or a legacy 9-digit CMND."""
    login = login.strip()
    if is_id_number(login):
        column = Person.id_number
    elif is_legacy_id(login):
        column = Person.legacy_id_number
    else:
        return None
    stmt = (
        select(Account)
        .join(Person, Account.person_id == Person.id)
        .where(column == login, Account.kind == CITIZEN)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def verified_phones(account: Account) -> list[str]:
    phones = sorted(account.phones, key=lambda p: (not p.is_primary, p.id))
    return [p.number for p in phones if p.verified_at is not None]


def create_legacy_citizen(
    *,
    legacy_id_number: str,
    full_name: str,
    birth_date: dt.date,
    gender: str | None,
    phone: str,
    password: str,
    hashing: PasswordHashing,
    actor: str,
    loa: int = 2,
) -> Account:
    """An account keyed on an old 9-digit CMND, waiting to be normalized to the 12-digit number."""
    if not is_legacy_id(legacy_id_number):
        raise InvalidIdentifier("legacy_id.format", "CMND must be 9 digits")
    number = normalize_phone(phone)
    problems = check_policy(password, id_number=legacy_id_number, phone=number, birth_date=birth_date)
    if problems:
        raise WeakPassword([p.message for p in problems])
    person = Person(
        legacy_id_number=legacy_id_number,
        full_name=normalize_name(full_name),
        birth_date=birth_date,
        gender=gender,
        loa=loa,
        loa_method="legacy",
        loa_verifier="legacy",
    )
    return _save_citizen(
        person, legacy_id_number, number, hashing.hash(password), actor=actor, method="legacy"
    )


def add_phone(account: Account, phone: str, *, actor: str) -> Phone:
    """Add a verified phone that may receive this account's OTPs."""
    entry = Phone(number=normalize_phone(phone), is_primary=False, verified_at=utcnow())
    account.phones.append(entry)
    db.session.flush()
    audit.record(
        "phone.added", actor=actor, account_id=account.id, phone=entry.number[:5] + "****" + entry.number[-3:]
    )
    db.session.commit()
    return entry
