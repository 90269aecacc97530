"""What the sandbox and the HTTP adapters share: input checks and the name rule.

Both implementations refuse malformed input the same way (:class:`VerifierRejected`, as a register
answering 400 would), so a flow behaves the same against the sandbox and against the real registers.
"""

from __future__ import annotations

import datetime as dt
import re

from idp.identity.identifiers import (
    InvalidIdentifier,
    accent_free_name,
    names_match,
    normalize_name,
    normalize_phone,
)
from idp.verifiers.base import Verification, VerifierRejected

ID_NUMBER = re.compile(r"^\d{12}$")
LEGACY_ID = re.compile(r"^\d{9}$")
BHXH_CODE = re.compile(r"^\d{10}$")
E164_VN = re.compile(r"^\+84\d{9}$")
GENDERS = ("male", "female")


def utcnow() -> dt.datetime:
    """UTC, naive: the way the database stores times (Verification.verified_at)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def id_number(verifier: str, value: str) -> str:
    value = value.strip()
    if not ID_NUMBER.match(value):
        raise VerifierRejected(verifier, "id_number must be 12 digits")
    return value


def legacy_id_number(verifier: str, value: str) -> str:
    value = value.strip()
    if not LEGACY_ID.match(value):
        raise VerifierRejected(verifier, "legacy_id_number must be 9 digits")
    return value


def bhxh_code(verifier: str, value: str) -> str:
    value = value.strip()
    if not BHXH_CODE.match(value):
        raise VerifierRejected(verifier, "bhxh_code must be 10 digits")
    return value


def phone(verifier: str, value: str) -> str:
    """E.164 (+84…); a national 0… form is accepted and converted."""
    try:
        return normalize_phone(value)
    except InvalidIdentifier:
        raise VerifierRejected(verifier, "phone is not a Vietnamese mobile number") from None


def full_name(verifier: str, value: str) -> str:
    value = normalize_name(value)
    if not accent_free_name(value).strip():
        raise VerifierRejected(verifier, "full_name is empty")
    return value


def gender(verifier: str, value: str | None) -> str | None:
    if value is not None and value not in GENDERS:
        raise VerifierRejected(verifier, "gender must be male or female")
    return value


def register_name_agrees(submitted: str, registered: str) -> bool:
    """Does the name a person typed agree with the register's spelling?

    The rule is :func:`names_match` (case, spaces and tone-mark placement do not matter; tones do).
    A register record kept without any diacritics (old records typed as "NGUYEN VAN AN") can only be
    compared accent-free: refusing such a person would be idp's fault, not theirs.
    """
    if registered.isascii():
        return accent_free_name(submitted) == accent_free_name(registered)
    return names_match(submitted, registered)


def outcome(result: Verification) -> str:
    """For the log: the verdict, the register's reference and mismatched field names, never values."""
    if result.verified:
        return f"match (ref {result.evidence_id})"
    return f"no match ({', '.join(result.mismatched) or 'unspecified'}; ref {result.evidence_id})"
