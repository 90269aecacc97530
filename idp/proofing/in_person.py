"""In-person registration (DESIGN §5): an operator at a one-stop counter or a Vietnam Post office
saw the citizen's ID card. The data are checked against the population register first (a typo is
caught before the account exists); the account gets level 3 and no password — the citizen sets it
through "Quên mật khẩu" with an OTP to this phone, and an SMS says how.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from idp.identity.accounts import AlreadyRegistered
from idp.identity.identifiers import (
    InvalidIdentifier,
    check_birth_date,
    check_id_number,
    mask_id,
    normalize_name,
    normalize_phone,
    parse_date,
)
from idp.identity.registration import IN_PERSON, ProvenIdentity, register_citizen, registered_number
from idp.verifiers.base import VerifierError


class InPersonRefused(Exception):
    """Nothing was written; the message is for the operator (English, short, ID numbers masked)."""


@dataclass(frozen=True)
class InPerson:
    """What the operator typed from the ID card, and where."""

    id_number: str
    full_name: str
    birth_date: str  # dd/mm/yyyy as typed
    phone: str
    method: str  # "counter" | "post_office"
    place: str
    operator: str
    gender: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Registered:
    account_id: int
    id_number: str
    phone: str
    created_at: dt.datetime


def register_in_person(rt: Any, data: InPerson, *, send_sms: bool = True) -> Registered:
    """Check the population register, then write person, proof, account, phone and audit event in
    one transaction; text the citizen how to set the password. Raises InPersonRefused."""
    if data.method not in IN_PERSON:
        raise InPersonRefused(f"unknown place kind {data.method!r}")
    try:
        birth_date = check_birth_date(parse_date(data.birth_date))
        id_number = check_id_number(data.id_number, birth_date, data.gender)
        phone = normalize_phone(data.phone)
    except InvalidIdentifier as exc:
        raise InPersonRefused(str(exc)) from None
    full_name = normalize_name(data.full_name)
    number = registered_number(id_number)
    if number:
        raise InPersonRefused(
            f"ID number {mask_id(number)} is already registered (see the support console to help the citizen)"
        )
    try:
        check = rt.registers.population.check_citizen(
            id_number=id_number, full_name=full_name, birth_date=birth_date, gender=data.gender
        )
    except VerifierError as exc:
        raise InPersonRefused(f"the population register did not answer: {exc}") from None
    if not check.verified:
        fields = ", ".join(check.mismatched) or "no record"
        raise InPersonRefused(
            f"no matching population record ({fields}): check the ID card and the data typed"
        )
    stamp = dt.datetime.now(dt.UTC)
    identity = ProvenIdentity(
        id_number=id_number,
        full_name=check.attributes.get("full_name") or full_name,
        birth_date=birth_date,
        gender=data.gender or check.attributes.get("gender"),
        method=data.method,
        verifier=f"operator:{data.operator}"[:80],
        evidence_id=f"{data.method}:{secrets.token_hex(8)};population:{check.evidence_id}"[:160],
        verified_at=stamp.replace(tzinfo=None),
    )
    try:
        account = register_citizen(
            identity,
            phone=phone,
            password_hash=None,
            email=data.email,
            actor=f"operator:{data.operator}",
            place=data.place,
        )
    except AlreadyRegistered as exc:
        raise InPersonRefused(str(exc)) from None
    if send_sms:
        rt.sms.send(
            phone,
            "Tai khoan dich vu cong cua ban da duoc tao. De dat mat khau, vao "
            f"{rt.config['ISSUER']}/password/forgot, nhap so dinh danh va ma OTP gui toi so nay.",
        )
    return Registered(account.id, id_number, phone, stamp)
