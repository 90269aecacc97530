"""What an upstream sign-in says about the person (or organization), in idp's own terms."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CITIZEN = "citizen"
ENTERPRISE = "enterprise"
ORGANIZATION = "organization"


@dataclass(frozen=True)
class UpstreamIdentity:
    upstream: str  # "national-portal" | "vneid"
    subject: str  # the upstream's stable key (with the issuer, unique in idp)
    level: int  # mapped from the upstream's own level (VNeID's IAL), never from VNeID's acr
    account_kind: str  # CITIZEN | ENTERPRISE | ORGANIZATION
    full_name: str | None = None  # Vietnamese order, NFC; never split into given/family
    id_number: str | None = None  # 12 digits, only when the upstream vouches for it
    legacy_id_number: str | None = None  # a 9-digit CMND the upstream knows
    birth_date: dt.date | None = None
    gender: str | None = None  # "male" | "female"
    phone: str | None = None  # E.164
    email: str | None = None
    tax_code: str | None = None  # an enterprise's or organization's (check digit verified)
    organization_name: str | None = None
    tech_id: str | None = None  # the national portal's account id (TechID)
    login_idp: str | None = None  # who the upstream itself used ("BCA": VNeID)
    upstream_level: str | None = None  # the upstream's own level value, as it sent it (loAs, IAL)
