"""Claim profiles: each upstream's claims mapped into one UpstreamIdentity, one table per upstream
(facts in the shared reference file, "National portal sign-in" and "VNeID sign-in").

Absent and empty fields are normal and map to None. A malformed identifier (an ID number with the
wrong shape, a tax code whose check digit is wrong, an impossible birth date) is not vouched for:
it maps to None too, never to an error — the person is then treated as the upstream's account
without that fact. Names are kept in Vietnamese order (family, middle, given), NFC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from idp.identity.identifiers import (
    InvalidIdentifier,
    check_tax_code,
    is_id_number,
    is_legacy_id,
    normalize_name,
    normalize_phone,
)
from idp.upstreams.identity import CITIZEN, ENTERPRISE, ORGANIZATION, UpstreamIdentity

NATIONAL_PORTAL = "national-portal"
VNEID = "vneid"

# LoaiTaiKhoan: the string "1" from the national portal, a number in some VNeID integrations.
ACCOUNT_KINDS = {"1": CITIZEN, "2": ENTERPRISE, "3": ORGANIZATION}
GENDERS = {
    "1": "male",
    "nam": "male",
    "male": "male",
    "2": "female",
    "nữ": "female",
    "nu": "female",
    "female": "female",
}
# VNeID's IAL (mức độ 1 / 2) -> idp's level; VNeID's `acr` is Keycloak's fresh-login flag, never a level.
VNEID_IAL_LEVELS = {"1": 2, "2": 3}
# The national portal's own levels (`loAs`) are unpublished: LoA2 unless configured otherwise.
NATIONAL_PORTAL_DEFAULT_LEVEL = 2


def text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()
    return value or None


def _id_number(value: str | None) -> str | None:
    return value if value and is_id_number(value) else None


def _legacy(value: str | None) -> str | None:
    return value if value and is_legacy_id(value) else None


def _yyyymmdd(value: str | None) -> dt.date | None:
    if not value or len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _gender(value: str | None) -> str | None:
    return GENDERS.get((value or "").strip().lower())


def _phone(value: str | None) -> str | None:
    try:
        return normalize_phone(value) if value else None
    except InvalidIdentifier:
        return None


def _tax_code(value: str | None) -> str | None:
    try:
        return check_tax_code(value) if value else None
    except InvalidIdentifier:
        return None


def _name(value: str | None) -> str | None:
    return normalize_name(value) or None if value else None


def _kind(value: str | None) -> str:
    return ACCOUNT_KINDS.get((value or "1").strip(), CITIZEN)


def national_portal(
    claims: Mapping[str, Any], *, subject: str, levels: Mapping[str, int] | None = None
) -> UpstreamIdentity:
    """The national portal's PascalCase userinfo. `levels` maps its `loAs` values to idp levels
    (IDP_NATIONAL_PORTAL_LEVELS); anything else is LoA2."""
    loas = text(claims, "loAs")
    kind = _kind(text(claims, "LoaiTaiKhoan"))
    level = (levels or {}).get(loas or "", NATIONAL_PORTAL_DEFAULT_LEVEL)
    return _identity(NATIONAL_PORTAL, claims, subject=subject, level=level, kind=kind, upstream_level=loas)


def vneid(claims: Mapping[str, Any], *, subject: str) -> UpstreamIdentity:
    """VNeID's userinfo (and ID token claims): the level from IAL; the ID number from SoDinhDanh or
    preferred_username; organization identities carry a tax code."""
    ial = text(claims, "IAL")
    level = VNEID_IAL_LEVELS.get(ial or "", 2)
    kind = _kind(text(claims, "LoaiTaiKhoan"))
    return _identity(
        VNEID,
        claims,
        subject=subject,
        level=level,
        kind=kind,
        upstream_level=f"IAL{ial}" if ial else None,
        id_number_fallback=text(claims, "preferred_username"),
    )


def _identity(
    upstream: str,
    claims: Mapping[str, Any],
    *,
    subject: str,
    level: int,
    kind: str,
    upstream_level: str | None,
    id_number_fallback: str | None = None,
) -> UpstreamIdentity:
    person = kind == CITIZEN
    return UpstreamIdentity(
        upstream=upstream,
        subject=subject,
        level=level,
        account_kind=kind,
        full_name=_name(text(claims, "HoVaTen")),
        id_number=_id_number(text(claims, "SoDinhDanh"))
        or (_id_number(id_number_fallback) if person else None),
        legacy_id_number=_legacy(text(claims, "SoCMND")),
        birth_date=_yyyymmdd(text(claims, "NgayThangNamSinh")),
        gender=_gender(text(claims, "GioiTinh")),
        phone=_phone(text(claims, "SoDienThoai")),
        email=text(claims, "ThuDienTu"),
        tax_code=None if person else _tax_code(text(claims, "MaSoThue") or text(claims, "MaSoDoanhNghiep")),
        organization_name=None if person else _name(text(claims, "TenDoanhNghiep")),
        tech_id=text(claims, "TechID"),
        login_idp=text(claims, "loginIdp"),
        upstream_level=upstream_level,
    )


PROFILES: dict[str, Callable[..., UpstreamIdentity]] = {NATIONAL_PORTAL: national_portal, VNEID: vneid}
