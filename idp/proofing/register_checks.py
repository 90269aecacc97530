"""Online registration's register checks (DESIGN §5; seeds 000, 002, 003): what the person typed
is checked against a register; a match is the identity the registration then proves.

Each check returns a :class:`Matched` or a :class:`Refused` with the reason the page explains; a
register that cannot answer raises VerifierError (the page says so; nothing is written).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from idp.verifiers.base import Verification

# Why a check refused, for the page to word.
NO_POPULATION_MATCH = "no_population_match"
PHONE_NOT_OWNED = "phone_not_owned"  # the carrier does not register the phone to this person
NO_INSURANCE_MATCH = "no_insurance_match"
NO_POPULATION_MATCH_WITH_ISSUE_DATE = "no_population_match_with_issue_date"


@dataclass(frozen=True)
class Claimed:
    """What the person typed, each field in the right format already."""

    full_name: str
    birth_date: dt.date
    phone: str
    id_number: str | None = None
    legacy_id_number: str | None = None
    bhxh_code: str | None = None
    id_issue_date: dt.date | None = None


@dataclass(frozen=True)
class Matched:
    """The register's answer (its reference is the evidence) and the identity it vouches for."""

    verification: Verification
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    reason: str


Outcome = Matched | Refused


def check_subscriber(registers: Any, claimed: Claimed) -> Outcome:
    """Mobile subscriber (seeds 002, 003): the population register knows the person, and the
    carrier's register says the phone is theirs ("thuê bao chính chủ"). A 9-digit CMND is first
    normalized to the 12-digit number through the population register (seed 002's note)."""
    if claimed.legacy_id_number:
        found = registers.population.find_by_legacy_id(
            legacy_id_number=claimed.legacy_id_number,
            full_name=claimed.full_name,
            birth_date=claimed.birth_date,
        )
    else:
        assert claimed.id_number is not None
        found = registers.population.check_citizen(
            id_number=claimed.id_number, full_name=claimed.full_name, birth_date=claimed.birth_date
        )
    if not found.verified or not found.attributes.get("id_number"):
        return Refused(NO_POPULATION_MATCH)
    id_number = found.attributes["id_number"]
    owner = registers.subscribers.check_subscriber(phone=claimed.phone, id_number=id_number)
    if not owner.verified:
        return Refused(PHONE_NOT_OWNED)
    return Matched(
        owner,
        {
            "id_number": id_number,
            "legacy_id_number": claimed.legacy_id_number,
            "full_name": found.attributes.get("full_name") or claimed.full_name,
            "birth_date": claimed.birth_date.isoformat(),
            "gender": found.attributes.get("gender"),
            "phone": claimed.phone,
        },
    )


def check_social_insurance(registers: Any, claimed: Claimed) -> Outcome:
    """Social-insurance code (seed 003): the register's person must match the name and birth date
    typed; the duplicate check then uses the ID number the register gives."""
    assert claimed.bhxh_code
    found = registers.social_insurance.check_insured(
        bhxh_code=claimed.bhxh_code, full_name=claimed.full_name, birth_date=claimed.birth_date
    )
    if not found.verified or not found.attributes.get("id_number"):
        return Refused(NO_INSURANCE_MATCH)
    return Matched(
        found,
        {
            "full_name": claimed.full_name,
            "birth_date": claimed.birth_date.isoformat(),
            "phone": claimed.phone,
        },
    )


def check_population(registers: Any, claimed: Claimed) -> Outcome:
    """The provincial app's check (seed 000, letter 001): ID number, name, birth date, ID issue date
    and phone against the national population register."""
    assert claimed.id_number
    found = registers.population.check_citizen(
        id_number=claimed.id_number,
        full_name=claimed.full_name,
        birth_date=claimed.birth_date,
        id_issue_date=claimed.id_issue_date,
        phone=claimed.phone,
    )
    if not found.verified:
        return Refused(NO_POPULATION_MATCH_WITH_ISSUE_DATE)
    return Matched(
        found,
        {
            "id_number": claimed.id_number,
            "full_name": claimed.full_name,
            "birth_date": claimed.birth_date.isoformat(),
            "phone": claimed.phone,
        },
    )


RegisterCheck = Callable[[Any, Claimed], Outcome]
