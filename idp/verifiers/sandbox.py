"""Sandbox registers over the bundled dataset of fictional people (sandbox_data/registers.json).

They implement the same protocols with the same matching rules as the real registers (names by
:func:`idp.verifiers.common.register_name_agrees`, inputs refused alike), so the project runs and
is tested without government systems. Evidence ids are deterministic (``sandbox-pop-<hash>`` of
the check's input), so a test can predict them and a repeated check gives the same reference.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idp.identity.identifiers import name_key, normalize_name, normalize_phone, parse_date
from idp.verifiers import common
from idp.verifiers.base import Verification

DEFAULT_DATASET = Path(__file__).parent / "sandbox_data" / "registers.json"


@dataclass(frozen=True)
class SandboxPerson:
    id_number: str
    full_name: str
    birth_date: dt.date
    gender: str | None
    id_issue_date: dt.date | None
    phones: tuple[str, ...]  # E.164
    bhxh_code: str | None
    legacy_id_number: str | None

    def attributes(self, phone: str | None = None) -> dict[str, str]:
        """Canonical attributes; ``phone`` is the matched one, else the person's first phone."""
        values = {
            "id_number": self.id_number,
            "legacy_id_number": self.legacy_id_number,
            "full_name": self.full_name,
            "birth_date": self.birth_date.isoformat(),
            "gender": self.gender,
            "phone": phone or (self.phones[0] if self.phones else None),
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class SandboxData:
    """The dataset, indexed the ways the registers look people up."""

    people: Mapping[str, SandboxPerson]  # by id_number
    by_legacy_id: Mapping[str, SandboxPerson]
    by_bhxh_code: Mapping[str, SandboxPerson]
    subscribers: Mapping[str, str]  # E.164 phone -> owner's id_number

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> SandboxData:
        people = [_person(entry) for entry in document.get("people", [])]
        return cls(
            people={p.id_number: p for p in people},
            by_legacy_id={p.legacy_id_number: p for p in people if p.legacy_id_number},
            by_bhxh_code={p.bhxh_code: p for p in people if p.bhxh_code},
            subscribers={
                normalize_phone(s["phone"]): s["id_number"] for s in document.get("subscribers", [])
            },
        )


def _person(entry: Mapping[str, Any]) -> SandboxPerson:
    return SandboxPerson(
        id_number=entry["id_number"],
        full_name=normalize_name(entry["full_name"]),
        birth_date=parse_date(entry["birth_date"]),
        gender=entry.get("gender"),
        id_issue_date=parse_date(entry["id_issue_date"]) if entry.get("id_issue_date") else None,
        phones=tuple(normalize_phone(p) for p in entry.get("phones", [])),
        bhxh_code=entry.get("bhxh_code"),
        legacy_id_number=entry.get("legacy_id_number"),
    )


@functools.cache
def load_dataset(path: str | Path | None = None) -> SandboxData:
    """Read and index a dataset once per process (default: the bundled fictional people)."""
    with open(path or DEFAULT_DATASET, encoding="utf-8") as handle:
        return SandboxData.from_json(json.load(handle))


def _evidence(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join((kind, *parts)).encode("utf-8")).hexdigest()
    return f"sandbox-{kind}-{digest[:16]}"


def _answer(
    verifier: str, kind: str, inputs: Iterable[str], mismatched: list[str], attributes: Mapping[str, str]
) -> Verification:
    return Verification(
        verified=not mismatched,
        verifier=verifier,
        verified_at=common.utcnow(),
        evidence_id=_evidence(kind, *inputs),
        attributes={} if mismatched else attributes,
        mismatched=tuple(mismatched),
    )


def _compare_person(person: SandboxPerson, full_name: str, birth_date: dt.date) -> list[str]:
    mismatched = []
    if not common.register_name_agrees(full_name, person.full_name):
        mismatched.append("full_name")
    if birth_date != person.birth_date:
        mismatched.append("birth_date")
    return mismatched


class SandboxPopulationRegister:
    """:class:`idp.verifiers.base.PopulationRegister` over the sandbox dataset."""

    name = "population-register:sandbox"

    def __init__(self, data: SandboxData | None = None) -> None:
        self.data = data or load_dataset()

    def check_citizen(
        self,
        *,
        id_number: str,
        full_name: str,
        birth_date: dt.date,
        gender: str | None = None,
        id_issue_date: dt.date | None = None,
        phone: str | None = None,
    ) -> Verification:
        number = common.id_number(self.name, id_number)
        name = common.full_name(self.name, full_name)
        common.gender(self.name, gender)
        e164 = common.phone(self.name, phone) if phone is not None else None
        inputs = [
            number,
            name_key(name),
            birth_date.isoformat(),
            gender or "",
            str(id_issue_date or ""),
            e164 or "",
        ]
        person = self.data.people.get(number)
        if person is None:
            return _answer(self.name, "pop", inputs, ["id_number"], {})
        mismatched = _compare_person(person, name, birth_date)
        if gender is not None and gender != person.gender:
            mismatched.append("gender")
        if id_issue_date is not None and id_issue_date != person.id_issue_date:
            mismatched.append("id_issue_date")
        if e164 is not None and e164 not in person.phones:
            mismatched.append("phone")
        return _answer(self.name, "pop", inputs, mismatched, person.attributes(e164))

    def find_by_legacy_id(
        self, *, legacy_id_number: str, full_name: str, birth_date: dt.date
    ) -> Verification:
        legacy = common.legacy_id_number(self.name, legacy_id_number)
        name = common.full_name(self.name, full_name)
        inputs = [legacy, name_key(name), birth_date.isoformat()]
        person = self.data.by_legacy_id.get(legacy)
        if person is None:
            return _answer(self.name, "cmnd", inputs, ["legacy_id_number"], {})
        mismatched = _compare_person(person, name, birth_date)
        return _answer(self.name, "cmnd", inputs, mismatched, person.attributes())


class SandboxSubscriberRegister:
    """:class:`idp.verifiers.base.SubscriberRegister` over the sandbox dataset."""

    name = "subscriber-register:sandbox"

    def __init__(self, data: SandboxData | None = None) -> None:
        self.data = data or load_dataset()

    def check_subscriber(self, *, phone: str, id_number: str) -> Verification:
        e164 = common.phone(self.name, phone)
        number = common.id_number(self.name, id_number)
        owner = self.data.subscribers.get(e164)
        if owner is None:
            mismatched = ["phone"]
        elif owner != number:
            mismatched = ["id_number"]
        else:
            mismatched = []
        return _answer(self.name, "sub", [e164, number], mismatched, {"phone": e164, "id_number": number})


class SandboxSocialInsuranceRegister:
    """:class:`idp.verifiers.base.SocialInsuranceRegister` over the sandbox dataset."""

    name = "social-insurance-register:sandbox"

    def __init__(self, data: SandboxData | None = None) -> None:
        self.data = data or load_dataset()

    def check_insured(self, *, bhxh_code: str, full_name: str, birth_date: dt.date) -> Verification:
        code = common.bhxh_code(self.name, bhxh_code)
        name = common.full_name(self.name, full_name)
        inputs = [code, name_key(name), birth_date.isoformat()]
        person = self.data.by_bhxh_code.get(code)
        if person is None:
            return _answer(self.name, "bhxh", inputs, ["bhxh_code"], {})
        mismatched = _compare_person(person, name, birth_date)
        attributes = {**person.attributes(), "bhxh_code": code}
        attributes.pop("legacy_id_number", None)
        return _answer(self.name, "bhxh", inputs, mismatched, attributes)
