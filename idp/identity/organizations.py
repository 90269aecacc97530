"""Organizations and their staff accounts: creation by an operator, lookup by username, listing.

An organization (department, public unit, enterprise) is keyed on its tax code or a
province-issued code, unique in the database (DESIGN §3). A staff account (Account.kind
"organization") belongs to one organization; the human behind it is a Person like any other,
whose ID number is optional. Sign-in is username + password + a second factor (idp.identity.totp
for the authenticator app; the SMS OTP goes to the account's verified phone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from idp.identity import audit
from idp.identity.accounts import WeakPassword, new_subject
from idp.identity.assurance import IDENTITY_LEVELS
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_id_number,
    check_organization_code,
    mask_id,
    mask_phone,
    normalize_name,
    normalize_phone,
)
from idp.identity.passwords import PasswordHashing, check_policy
from idp.store.models import Account, AccountRole, Organization, Person, Phone, db, utcnow

ORGANIZATION = "organization"  # Account.kind of a staff account
ORG_KINDS = ("department", "public-unit", "enterprise")
# The roles a staff account may hold; a new role is one more name here (stored one row per role).
ROLES = ("admin", "staff")
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")


class OrganizationExists(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"an organization with code {code} already exists")
        self.code = code


class UnknownOrganization(LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(f"no organization with code {code}")


class UsernameTaken(Exception):
    def __init__(self, username: str) -> None:
        super().__init__(f"username {username} is already taken")


class PersonExists(Exception):
    """The ID number belongs to a person already: linking needs the owner's proof (DESIGN §3)."""

    def __init__(self, id_number: str) -> None:
        super().__init__(
            f"ID number {mask_id(id_number)} already belongs to a person; an account is linked to an "
            "existing person only after its owner proves control of it"
        )


def normalize_username(value: str) -> str:
    return value.strip().lower()


def check_username(value: str) -> str:
    username = normalize_username(value)
    if not _USERNAME.match(username):
        raise InvalidIdentifier(
            "username.format",
            "username must be 3-64 characters: a letter first, then letters, digits, '.', '_' or '-'",
        )
    return username


def check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    chosen = sorted({r.strip().lower() for r in roles if r.strip()})
    unknown = [r for r in chosen if r not in ROLES]
    if unknown:
        raise InvalidIdentifier("role.unknown", f"unknown role {unknown[0]} (known: {', '.join(ROLES)})")
    if not chosen:
        raise InvalidIdentifier("role.missing", "a staff account needs at least one role")
    return chosen


def create_organization(code: str, name: str, kind: str, *, actor: str) -> Organization:
    """Create an organization (code validated, unique in the database) with its audit event."""
    normal, code_type = check_organization_code(code)
    if kind not in ORG_KINDS:
        raise InvalidIdentifier(
            "organization_kind.unknown", f"organization kind must be one of {', '.join(ORG_KINDS)}"
        )
    name = normalize_name(name)
    if not name:
        raise InvalidIdentifier("organization_name.missing", "organization name is required")
    org = Organization(code=normal, code_type=code_type, name=name, kind=kind, created_by=actor)
    db.session.add(org)
    try:
        db.session.flush()
        audit.record("organization.created", actor=actor, organization=normal, kind=kind)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise OrganizationExists(normal) from None
    return org


def find_organization(code: str) -> Organization | None:
    try:
        normal, _ = check_organization_code(code)
    except InvalidIdentifier:
        return None
    return db.session.execute(select(Organization).where(Organization.code == normal)).scalar_one_or_none()


@dataclass(frozen=True)
class NewStaff:
    organization_code: str
    username: str
    full_name: str
    phone: str
    roles: tuple[str, ...] = ("staff",)
    id_number: str | None = None
    email: str | None = None
    loa: int = 2
    extra_phones: tuple[str, ...] = field(default_factory=tuple)


def create_staff(data: NewStaff, password: str, hashing: PasswordHashing, *, actor: str) -> Account:
    """Person + staff account + roles + verified phone + audit event, in one transaction.

    The staff member's identity is vouched for by the operator who creates the account on the
    organization's behalf: LoA2 by default (LoA3 when the operator saw the ID card in person).
    """
    org = find_organization(data.organization_code)
    if org is None:
        raise UnknownOrganization(data.organization_code)
    username = check_username(data.username)
    roles = check_roles(list(data.roles))
    phone = normalize_phone(data.phone)
    extra = [normalize_phone(p) for p in data.extra_phones]
    id_number = check_id_number(data.id_number) if data.id_number else None
    if data.loa not in IDENTITY_LEVELS:
        raise InvalidIdentifier("loa.range", "assurance level must be 2 or 3")
    full_name = normalize_name(data.full_name)
    if not full_name:
        raise InvalidIdentifier("full_name.missing", "full name is required")
    problems = [p.message for p in check_policy(password, id_number=id_number, phone=phone)]
    if username in password.lower():
        problems.append("Mật khẩu không được chứa tên đăng nhập.")
    if problems:
        raise WeakPassword(problems)
    if (
        id_number
        and db.session.execute(select(Person.id).where(Person.id_number == id_number)).scalar_one_or_none()
    ):
        db.session.rollback()
        raise PersonExists(id_number)
    now = utcnow()
    person = Person(
        subject=new_subject(),
        id_number=id_number,
        full_name=full_name,
        email=data.email,
        loa=data.loa,
        loa_method="organization",
        loa_verifier=actor[:80],
        loa_verified_at=now,
    )
    account = Account(
        kind=ORGANIZATION,
        username=username,
        person=person,
        organization=org,
        password_hash=hashing.hash(password),
        password_changed_at=now,
        created_by=actor,
    )
    account.roles.extend(AccountRole(role=r) for r in roles)
    account.phones.append(Phone(number=phone, is_primary=True, verified_at=now))
    for number in extra:
        if number != phone:
            account.phones.append(Phone(number=number, is_primary=False, verified_at=now))
    db.session.add_all([person, account])
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        if (
            id_number
            and db.session.execute(
                select(Person.id).where(Person.id_number == id_number)
            ).scalar_one_or_none()
        ):
            raise PersonExists(id_number) from None
        raise UsernameTaken(username) from None
    audit.record(
        "account.created",
        actor=actor,
        account_id=account.id,
        kind=ORGANIZATION,
        organization=org.code,
        username=username,
        roles=roles,
        phone=mask_phone(phone),
        loa=data.loa,
    )
    db.session.commit()
    return account


def find_staff(username: str) -> Account | None:
    """The staff account with this username (any status), or None."""
    stmt = select(Account).where(
        Account.kind == ORGANIZATION, Account.username == normalize_username(username)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def is_active_staff(account: Account) -> bool:
    org = account.organization
    return account.status == "active" and org is not None and org.status == "active"


def role_names(account: Account) -> list[str]:
    return [r.role for r in account.roles]


def list_organizations() -> list[tuple[Organization, int]]:
    """Every organization with its number of staff accounts, by code."""
    counts = (
        select(Account.organization_id, func.count(Account.id).label("n"))
        .where(Account.kind == ORGANIZATION)
        .group_by(Account.organization_id)
        .subquery()
    )
    stmt = (
        select(Organization, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.organization_id == Organization.id)
        .order_by(Organization.code)
    )
    return [(org, int(n)) for org, n in db.session.execute(stmt).all()]


def list_staff(organization: Organization) -> list[Account]:
    stmt = (
        select(Account)
        .where(Account.kind == ORGANIZATION, Account.organization_id == organization.id)
        .order_by(Account.username)
    )
    return list(db.session.execute(stmt).scalars())


def organization_claim(org: Organization) -> dict[str, str]:
    """What relying parties receive about an organization (the `organization` claim)."""
    return {"code": org.code, "code_type": org.code_type, "name": org.name, "kind": org.kind}
