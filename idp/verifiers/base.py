"""The verifier contract (DESIGN §5): what every adapter to an external register or signer promises.

A verifier answers one question about a person or an enterprise with a frozen
:class:`Verification`. It never raises for "no such record" or "the data do not match": that is a
normal answer (``verified=False``). It raises a :class:`VerifierError` when it could not get an
answer it can trust:

- :class:`VerifierUnavailable`: the register did not answer in time, answered 5xx, answered
  something malformed or oversized, or the circuit breaker is open. Try later; nothing was learnt.
- :class:`VerifierRejected`: the register refused the request itself (4xx other than "not found":
  bad input it would not take, our quota exceeded). Retrying the same request will not help.
- :class:`VerifierMisconfigured`: our side is wrong (missing URL or credentials, bad certificate
  files, 401/403 from the register). An operator must act; the person sees a generic message.

Adapters import neither Flask nor Authlib, and never log or return raw register data beyond the
canonical attributes the flow needs; evidence is kept as the register's reference for the check
(``evidence_id``), never as the register's answer.

Canonical attribute names (all strings; absent when the register has no value):
``id_number`` (12 digits), ``legacy_id_number`` (9 digits), ``full_name`` (NFC, as the register
spells it), ``birth_date`` (ISO yyyy-mm-dd), ``gender`` ("male"/"female"), ``id_issue_date`` (ISO),
``phone`` (E.164 +84…), ``bhxh_code`` (10 digits), ``tax_code``, ``organization_name``, ``email``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable


def _frozen(values: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Verification:
    """One verifier's answer."""

    verified: bool
    verifier: str  # which adapter answered, e.g. "population-register:sandbox", "population-register:http"
    verified_at: dt.datetime  # UTC, naive (as the database stores times)
    evidence_id: str | None = None  # the register's reference for this check (or a certificate's fingerprint)
    attributes: Mapping[str, str] = field(default_factory=dict)
    # Names of the submitted fields that did not match (e.g. ("full_name", "birth_date")), for the
    # operator's support console only: never shown to the person, never the register's values.
    mismatched: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _frozen(self.attributes))
        object.__setattr__(self, "mismatched", tuple(self.mismatched))


class VerifierError(Exception):
    """The verifier could not give a trustworthy answer. ``verifier`` names the adapter."""

    def __init__(self, verifier: str, message: str) -> None:
        super().__init__(f"{verifier}: {message}")
        self.verifier = verifier


class VerifierUnavailable(VerifierError):
    """Timeout, connection failure, 5xx, malformed or oversized answer, or an open circuit."""


class VerifierRejected(VerifierError):
    """The register refused the request itself; the same request will not succeed later."""


class VerifierMisconfigured(VerifierError):
    """Our configuration is wrong (URL, credentials, TLS files) or the register refused our credentials."""


@runtime_checkable
class PopulationRegister(Protocol):
    """The national population register (CSDL quốc gia về dân cư)."""

    name: str

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
        """Does a record with this ID number carry this name, birth date (and, when given, gender,
        ID issue date, phone)? Names compare insensitive to case and tone-mark placement. On a
        match the attributes are the register's canonical values (id_number, full_name,
        birth_date, gender, and phone when the register has one)."""
        ...

    def find_by_legacy_id(
        self, *, legacy_id_number: str, full_name: str, birth_date: dt.date
    ) -> Verification:
        """Normalization of an old 9-digit CMND: on a match, the attributes carry the 12-digit id_number."""
        ...


@runtime_checkable
class SubscriberRegister(Protocol):
    """The carriers' subscriber register: is this phone registered to this ID number ("thuê bao chính chủ")?"""

    name: str

    def check_subscriber(self, *, phone: str, id_number: str) -> Verification:
        """``phone`` in E.164. verified=True only when the subscription's owner is this ID number."""
        ...


@runtime_checkable
class SocialInsuranceRegister(Protocol):
    """The social-insurance register (CSDL BHXH): a BHXH code names a person."""

    name: str

    def check_insured(self, *, bhxh_code: str, full_name: str, birth_date: dt.date) -> Verification:
        """On a match of name and birth date, the attributes carry the person's id_number (the
        duplicate key), full_name, birth_date, gender and phone when the register has one."""
        ...
