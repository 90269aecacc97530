"""Fictional sandbox accounts for the demo and the tests (listed in the README)."""

from __future__ import annotations

import json
from pathlib import Path

from idp.identity.accounts import (
    AlreadyRegistered,
    NewCitizen,
    add_phone,
    create_citizen,
    create_legacy_citizen,
)
from idp.identity.identifiers import mask_id, parse_date
from idp.identity.organizations import (
    NewStaff,
    OrganizationExists,
    UsernameTaken,
    create_organization,
    create_staff,
    find_staff,
)
from idp.identity.passwords import PasswordHashing
from idp.identity.totp import SecondFactorKeys, store_recovery_codes, store_totp

DATA = Path(__file__).parent / "accounts.json"
ACTOR = "system:sandbox"


def load_sandbox(hashing: PasswordHashing, secret_key: str | None = None) -> list[str]:
    """Create the sandbox accounts that do not exist yet; returns what was done.

    `secret_key` encrypts the sandbox authenticator secrets (default: the current app's SECRET_KEY).
    """
    data = json.loads(DATA.read_text(encoding="utf-8"))
    done = []
    for person in data["citizens"]:
        citizen = NewCitizen(
            id_number=person["id_number"],
            full_name=person["full_name"],
            birth_date=parse_date(person["birth_date"]),
            phone=person["phones"][0],
            gender=person.get("gender"),
            email=person.get("email"),
            loa=person["loa"],
        )
        try:
            account = create_citizen(
                citizen, person["password"], hashing, actor=ACTOR, method="sandbox", verifier="sandbox"
            )
        except AlreadyRegistered:
            done.append(f"sandbox citizen {mask_id(person['id_number'])} already present")
            continue
        for extra in person["phones"][1:]:
            add_phone(account, extra, actor=ACTOR)
        done.append(f"sandbox citizen {mask_id(person['id_number'])} created")
    for person in data.get("legacy_citizens", []):
        try:
            create_legacy_citizen(
                legacy_id_number=person["legacy_id_number"],
                full_name=person["full_name"],
                birth_date=parse_date(person["birth_date"]),
                gender=person.get("gender"),
                phone=person["phones"][0],
                password=person["password"],
                hashing=hashing,
                actor=ACTOR,
                loa=person["loa"],
            )
            done.append(f"sandbox legacy citizen {mask_id(person['legacy_id_number'])} created")
        except AlreadyRegistered:
            done.append(f"sandbox legacy citizen {mask_id(person['legacy_id_number'])} already present")
    if data.get("organizations"):
        if secret_key is None:
            from flask import current_app

            secret_key = current_app.config["SECRET_KEY"]
        done.extend(_load_organizations(data["organizations"], hashing, SecondFactorKeys(secret_key)))
    return done


def _load_organizations(orgs: list[dict], hashing: PasswordHashing, keys: SecondFactorKeys) -> list[str]:
    done = []
    for org in orgs:
        try:
            create_organization(org["code"], org["name"], org["kind"], actor=ACTOR)
            done.append(f"sandbox organization {org['code']} created")
        except OrganizationExists:
            done.append(f"sandbox organization {org['code']} already present")
        for staff in org["staff"]:
            data = NewStaff(
                organization_code=org["code"],
                username=staff["username"],
                full_name=staff["full_name"],
                phone=staff["phones"][0],
                extra_phones=tuple(staff["phones"][1:]),
                roles=tuple(staff["roles"]),
                loa=staff["loa"],
            )
            try:
                account = create_staff(data, staff["password"], hashing, actor=ACTOR)
                done.append(f"sandbox staff {staff['username']} created")
            except UsernameTaken:
                done.append(f"sandbox staff {staff['username']} already present")
                found = find_staff(staff["username"])
                if found is None:
                    continue
                account = found
            if staff.get("totp_secret"):
                store_totp(account.id, staff["totp_secret"], keys, actor=ACTOR)
                store_recovery_codes(account.id, staff.get("recovery_codes", []), keys)
    return done
